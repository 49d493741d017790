//! `byoc plugin run`: one stream session over segment files, without a node.
//!
//! Each input file is one segment, fed in chunks; output segments are written as `DIR/<seq>.ts`,
//! data lines to `DIR/data.jsonl`, events to `DIR/events.jsonl`. A frame plugin gets the
//! segments decoded into frames, as on a node, and its frames are encoded into the output
//! segments (H.264, cut where the input segments were); here no frame is dropped.
//!
//! By default input is fed as fast as the plugin takes it. With `realtime`, each segment is fed
//! when its media time comes (the first PTS of every segment, counted from the first segment's,
//! read with `byoc-ts`), the last one is held for its duration, and the session's timer
//! (`on-tick`) is driven meanwhile, as a node drives it: time-based behaviour is as live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use byoc_runtime::{Output, Plugin};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// What `byoc plugin run` was asked to do.
pub struct RunOptions<'a> {
    pub inputs: &'a [PathBuf],
    pub out_dir: &'a Path,
    pub params: &'a str,
    pub controls: &'a [String],
    pub chunk_size: usize,
    pub realtime: bool,
}

/// Runs one session of `plugin` over the input files.
pub async fn run_session(plugin: &Plugin, options: RunOptions<'_>) -> anyhow::Result<()> {
    let RunOptions { inputs, out_dir, params, controls, chunk_size, realtime } = options;
    let clock = realtime.then(MediaClock::default);
    tokio::fs::create_dir_all(out_dir).await.with_context(|| format!("creating {}", out_dir.display()))?;
    let (mut session, outputs) = plugin.open_session(params).await.context("opening the session")?;
    let writer = tokio::spawn(write_outputs(outputs, out_dir.to_owned()));
    if let Some(needs) = plugin.describe().frames {
        let result = run_frames(&mut session, needs, inputs, out_dir, controls, chunk_size, clock).await;
        if let Err(e) = session.close().await {
            eprintln!("close: {} error: {e}", e.kind());
        }
        let summary = writer.await.context("output writer")??;
        eprintln!("wrote {} data line(s), {} event(s) to {}", summary.data, summary.events, out_dir.display());
        return result;
    }

    let mut result = Ok(());
    let mut clock = clock;
    let mut ticker = Ticker::default();
    'feed: for (seq, input) in inputs.iter().enumerate() {
        let bytes = tokio::fs::read(input).await.with_context(|| format!("reading {}", input.display()))?;
        if let Some(clock) = clock.as_mut() {
            let due = clock.segment_due(&bytes);
            if let Err(e) = ticker.ticks_until(&mut session, due).await {
                result = Err(e);
                break 'feed;
            }
        }
        let steps = std::iter::once(Step::Start(seq as u64))
            .chain(bytes.chunks(chunk_size).map(Step::Chunk))
            .chain(std::iter::once(Step::End));
        for step in steps {
            let call = match step {
                Step::Start(seq) => session.on_segment_start(seq).await,
                Step::Chunk(chunk) => session.on_chunk(chunk).await,
                Step::End => session.on_segment_end().await,
            };
            if let Err(e) = call {
                eprintln!("segment {} ({}): {} error: {e}", seq, input.display(), e.kind());
                if e.is_failure() {
                    result = Err(anyhow::anyhow!("the session failed: {e}"));
                    break 'feed;
                }
            }
        }
    }
    if result.is_ok()
        && let Some(clock) = clock.as_ref()
    {
        // The last segment lasts until its last timestamp.
        result = ticker.ticks_until(&mut session, clock.end_due()).await;
    }
    if result.is_ok() {
        for message in controls {
            if let Err(e) = session.on_control(message).await {
                eprintln!("control {message}: {} error: {e}", e.kind());
            }
        }
    }
    if let Err(e) = session.close().await {
        eprintln!("close: {} error: {e}", e.kind());
    }
    let summary = writer.await.context("output writer")??;
    eprintln!(
        "wrote {} segment(s), {} data line(s), {} event(s) to {}",
        summary.segments,
        summary.data,
        summary.events,
        out_dir.display()
    );
    result
}

/// A frame plugin's run: the input files through the frame pipeline and the plugin, the
/// encoded output to `DIR/<seq>.ts`. The pipeline is lossless (the decoder waits for the plugin),
/// so input is fed from its own task while the plugin takes the frames.
async fn run_frames(
    session: &mut byoc_runtime::Session,
    needs: byoc_frames::FrameNeeds,
    inputs: &[PathBuf],
    out_dir: &Path,
    controls: &[String],
    chunk_size: usize,
    clock: Option<MediaClock>,
) -> anyhow::Result<()> {
    use byoc_frames::{Decoded, Encoded, PipelineConfig, Processed};
    // Not live: the decoder waits for the plugin rather than drop.
    let config =
        PipelineConfig { needs, encode: Default::default(), queue_frames: 16, queue_bytes: 64 << 20, lossless: true };
    let pipeline = byoc_frames::start(config).context("starting the frame pipeline")?;
    let (feeder, mut source, sink, mut encoded, stats) =
        (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);
    let dir = out_dir.to_owned();
    let written = tokio::spawn(async move {
        let (mut seq, mut file, mut segments) = (0u64, None::<tokio::fs::File>, 0usize);
        while let Some(piece) = encoded.recv().await {
            match piece {
                Encoded::SegmentStart => {
                    file = Some(tokio::fs::File::create(dir.join(format!("{seq}.ts"))).await?);
                    seq += 1;
                    segments += 1;
                }
                Encoded::Chunk(bytes) => {
                    if let Some(f) = file.as_mut() {
                        f.write_all(&bytes).await?;
                    }
                }
                Encoded::SegmentEnd => {
                    if let Some(mut f) = file.take() {
                        f.flush().await?;
                    }
                }
            }
        }
        anyhow::Ok(segments)
    });
    let files = inputs.to_vec();
    // Ticks are media time passing: only sent when input is paced as live.
    let realtime = clock.is_some();
    let mut clock = clock;
    let feeding = tokio::spawn(async move {
        for (seq, input) in files.iter().enumerate() {
            let bytes = tokio::fs::read(input).await.with_context(|| format!("reading {}", input.display()))?;
            if let Some(clock) = clock.as_mut() {
                tokio::time::sleep_until(clock.segment_due(&bytes)).await;
            }
            feeder.segment_start(seq as u64).await.context("feeding the decoder")?;
            for chunk in bytes.chunks(chunk_size) {
                feeder.chunk(bytes::Bytes::copy_from_slice(chunk)).await.context("feeding the decoder")?;
            }
            if seq + 1 < files.len() {
                feeder.segment_end().await.context("feeding the decoder")?;
            }
        }
        if let Some(clock) = clock.as_ref() {
            // The last segment lasts until its last timestamp.
            tokio::time::sleep_until(clock.end_due()).await;
        }
        // The input ends with the last file: the encoders' last frames go into its segment.
        match files.is_empty() {
            true => feeder.finish().await,
            false => feeder.last_segment_end().await.context("feeding the decoder")?,
        }
        anyhow::Ok(())
    });
    let mut result = Ok(());
    let mut segment = 0;
    let mut ticker = Ticker::default();
    loop {
        ticker.follow(session.tick_interval().filter(|_| realtime));
        let decoded = tokio::select! {
            decoded = source.recv() => match decoded {
                Some(decoded) => decoded,
                None => break,
            },
            _ = ticker.tick() => {
                if let Err(e) = session.on_tick().await {
                    eprintln!("tick: {} error: {e}", e.kind());
                    if e.is_failure() {
                        result = Err(anyhow::anyhow!("the session failed: {e}"));
                        break;
                    }
                }
                continue;
            }
        };
        let call = match decoded {
            Decoded::SegmentEnd { input_seq } => {
                segment = input_seq + 1;
                let _ = sink.send(Processed::SegmentEnd).await;
                continue;
            }
            Decoded::Video(frame) => match session.on_video_frame(frame).await {
                Ok(Some(frame)) => sink.send(Processed::Video(frame)).await.map_err(anyhow::Error::from),
                Ok(None) => Ok(()),
                Err(e) => Err(anyhow::Error::from(e)),
            },
            Decoded::Audio(frame) => match session.on_audio_frame(frame).await {
                Ok(Some(frame)) => sink.send(Processed::Audio(frame)).await.map_err(anyhow::Error::from),
                Ok(None) => Ok(()),
                Err(e) => Err(anyhow::Error::from(e)),
            },
        };
        if let Err(e) = call {
            eprintln!("segment {segment}: {e:#}");
            if session.failure().is_some() {
                result = Err(anyhow::anyhow!("the session failed: {e:#}"));
                break;
            }
        }
    }
    drop(source);
    if result.is_ok() {
        for message in controls {
            if let Err(e) = session.on_control(message).await {
                eprintln!("control {message}: {} error: {e}", e.kind());
            }
        }
    }
    sink.finish();
    // Feeding fails only when the pipeline stopped first (the session failed): that is reported.
    let fed = feeding.await.context("feeding")?;
    if result.is_ok() {
        fed?;
    }
    let segments = written.await.context("segment writer")??;
    let decoded = stats.decoded_video.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{decoded} video frame(s) decoded; wrote {segments} segment(s) to {}", out_dir.display());
    result
}

enum Step<'a> {
    Start(u64),
    Chunk(&'a [u8]),
    End,
}

#[derive(Default)]
struct Summary {
    segments: usize,
    data: usize,
    events: usize,
}

/// Writes a session's outputs as they arrive.
async fn write_outputs(mut outputs: byoc_runtime::Outputs, dir: PathBuf) -> anyhow::Result<Summary> {
    let mut data = tokio::fs::File::create(dir.join("data.jsonl")).await?;
    let mut events = tokio::fs::File::create(dir.join("events.jsonl")).await?;
    let mut segment: Option<tokio::fs::File> = None;
    let mut summary = Summary::default();
    while let Some(output) = outputs.recv().await {
        match output {
            Output::SegmentStart { seq } => {
                segment = Some(tokio::fs::File::create(dir.join(format!("{seq}.ts"))).await?);
                summary.segments += 1;
            }
            Output::SegmentChunk(bytes) => {
                if let Some(file) = segment.as_mut() {
                    file.write_all(&bytes).await?;
                }
            }
            Output::SegmentEnd => {
                if let Some(mut file) = segment.take() {
                    file.flush().await?;
                }
            }
            Output::Data(line) => {
                // One JSON document per line: a line that is not JSON is written as a string.
                let line = match serde_json::from_str::<Value>(&line) {
                    Ok(_) => line,
                    Err(_) => Value::String(line).to_string(),
                };
                data.write_all(format!("{line}\n").as_bytes()).await?;
                summary.data += 1;
            }
            Output::Event(json) => {
                events.write_all(format!("{json}\n").as_bytes()).await?;
                summary.events += 1;
            }
            Output::Log { level, msg } => eprintln!("[plugin {level:?}] {msg}"),
        }
    }
    data.flush().await?;
    events.flush().await?;
    Ok(summary)
}

/// Media time against wall time, for `--realtime`: segment `n` is due when as much wall time
/// has passed since the first segment was fed as media time between their first timestamps.
#[derive(Default)]
struct MediaClock {
    /// The first segment's first PTS and when it was fed.
    origin: Option<(byoc_ts::Timestamp, Instant)>,
    /// When the last segment seen ends (its largest PTS).
    end: Option<Instant>,
}

impl MediaClock {
    /// When the segment `bytes` is due. A segment without timestamps is due at once.
    fn segment_due(&mut self, bytes: &[u8]) -> Instant {
        let now = Instant::now();
        let Some((first, last)) = pts_range(bytes) else {
            self.end = None;
            return now;
        };
        let (base, started) = *self.origin.get_or_insert((first, now));
        let at = |pts: byoc_ts::Timestamp| started + byoc_ts::ticks_to_duration(pts.ticks_since(base));
        self.end = Some(at(last));
        at(first).max(now)
    }

    /// When the last segment fed ends.
    fn end_due(&self) -> Instant {
        self.end.unwrap_or_else(Instant::now)
    }
}

/// The smallest and largest PTS of a segment's PES packets (presentation order differs from
/// decoding order, so both are searched), counted past a wrap-around from the first one.
fn pts_range(bytes: &[u8]) -> Option<(byoc_ts::Timestamp, byoc_ts::Timestamp)> {
    let mut pts = byoc_ts::packets(bytes).flatten().filter(|p| p.payload_unit_start).filter_map(|p| {
        let payload = p.payload?;
        byoc_ts::PesHeader::parse(payload).ok()?.pts
    });
    let first = pts.next()?;
    // Offsets from `first` (a wrap-around between them is counted forward, up to half the range).
    let half = byoc_ts::Timestamp::MODULUS / 2;
    let (mut low, mut high) = (0i64, 0i64);
    for t in pts {
        let ahead = t.ticks_since(first);
        let offset = if ahead < half { ahead as i64 } else { -((first.ticks_since(t)) as i64) };
        low = low.min(offset);
        high = high.max(offset);
    }
    let at = |offset: i64| {
        let ticks = (first.ticks() as i64 + offset).rem_euclid(byoc_ts::Timestamp::MODULUS as i64);
        byoc_ts::Timestamp::new(ticks as u64)
    };
    Some((at(low)?, at(high)?))
}

/// Drives a session's timer as a node does: at the interval it asks for, missed ticks skipped.
#[derive(Default)]
struct Ticker {
    every: Option<Duration>,
    interval: Option<tokio::time::Interval>,
}

impl Ticker {
    /// Follows the interval the session wants now.
    fn follow(&mut self, wanted: Option<Duration>) {
        if wanted == self.every {
            return;
        }
        self.every = wanted;
        self.interval = wanted.map(|every| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            interval
        });
    }

    /// The next tick; never, when no ticks are wanted.
    async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Waits until `due`, calling the session's `on-tick` when a tick falls due meanwhile. Fails
    /// only when a tick failed the session.
    async fn ticks_until(&mut self, session: &mut byoc_runtime::Session, due: Instant) -> anyhow::Result<()> {
        loop {
            self.follow(session.tick_interval());
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return Ok(()),
                _ = self.tick() => {
                    if let Err(e) = session.on_tick().await {
                        eprintln!("tick: {} error: {e}", e.kind());
                        if e.is_failure() {
                            return Err(anyhow::anyhow!("the session failed: {e}"));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TS packet starting a PES with `pts` on PID 0x100.
    fn pes_packet(pts: u64) -> Vec<u8> {
        let mut packet = vec![0x47, 0x41, 0x00, 0x10];
        let p = |shift: u32| ((pts >> shift) & 0xff) as u8;
        let pts_bytes = [
            0x21 | (((pts >> 30) & 0x07) << 1) as u8,
            p(22),
            (((pts >> 15) & 0x7f) << 1) as u8 | 1,
            p(7),
            ((pts & 0x7f) << 1) as u8 | 1,
        ];
        packet.extend([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
        packet.extend(pts_bytes);
        packet.resize(byoc_ts::PACKET_SIZE, 0xff);
        packet
    }

    #[test]
    fn pts_range_finds_the_earliest_and_latest_presentation_times() {
        let segment: Vec<u8> = [90_000u64, 99_000, 93_600].iter().flat_map(|&t| pes_packet(t)).collect();
        let (low, high) = pts_range(&segment).unwrap();
        assert_eq!((low.ticks(), high.ticks()), (90_000, 99_000));
        assert_eq!(pts_range(b"no transport stream here"), None);
    }

    #[test]
    fn pts_range_counts_across_a_wrap_around() {
        let last = byoc_ts::Timestamp::MODULUS - 900;
        let segment: Vec<u8> = [last, 900].iter().flat_map(|&t| pes_packet(t)).collect();
        let (low, high) = pts_range(&segment).unwrap();
        assert_eq!((low.ticks(), high.ticks()), (last, 900));
    }

    #[tokio::test(start_paused = true)]
    async fn segments_are_due_at_their_media_time() {
        let mut clock = MediaClock::default();
        let start = Instant::now();
        let first: Vec<u8> = [90_000u64, 180_000].iter().flat_map(|&t| pes_packet(t)).collect();
        let second = pes_packet(270_000);
        assert_eq!(clock.segment_due(&first), start);
        assert_eq!(clock.end_due(), start + Duration::from_secs(1));
        assert_eq!(clock.segment_due(&second), start + Duration::from_secs(2));
        assert_eq!(clock.segment_due(b"garbage"), Instant::now(), "no timestamps: at once");
    }
}
