//! Frame plugins: the stream's input is decoded into frames for the plugin's frame session,
//! and what it returns is encoded into the output channel. Decoding and encoding run on the
//! pipeline's own threads (`byoc-frames`); the driver here only moves frames in and out of the
//! plugin, one call at a time, with control messages and ticks in between.
//!
//! When the plugin is slower than the input, the decoder drops frames rather than queue them;
//! the driver reports drops on the events channel (at most once a second, and once more with the
//! final counts when decoding pauses) and as the metric `byoc_frames_dropped_total{capability}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{
    Decoded, EncodeSettings, Encoded, EncodedOutput, Feeder, FrameNeeds, FrameSink, FrameSource, PipelineConfig,
    Processed, Stats,
};
use byoc_runtime::Session;
use byoc_trickle::{LocalPublisher, LocalSegmentWriter, Seq};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{Cmd, InputSink, Recovery, Ticker, publish_text, read_input, recover};

/// Frames queued between the decoder and the plugin before the decoder drops: enough to ride out
/// a whole segment arriving at once (2 s at 30 fps)...
const QUEUE_FRAMES: usize = 60;

/// ...as long as they fit in this many bytes (about ten 1080p I420 frames).
const QUEUE_BYTES: usize = 32 << 20;

/// How often dropped frames are reported, at most.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// A stream's frame pipeline, started before its tasks.
pub(crate) struct Frames {
    feeder: Feeder,
    source: FrameSource,
    sink: FrameSink,
    output: EncodedOutput,
    stats: Arc<Stats>,
}

/// The pipeline a node runs for a frame plugin that declared `needs`, encoding with the
/// stream's settings: its queue bounds (drops past them, as input is live).
pub fn frame_pipeline_config(needs: FrameNeeds, encode: EncodeSettings) -> PipelineConfig {
    PipelineConfig { needs, encode, queue_frames: QUEUE_FRAMES, queue_bytes: QUEUE_BYTES, lossless: false }
}

impl Frames {
    /// Starts the decoder and encoder threads for what the plugin declared.
    pub(crate) fn start(needs: FrameNeeds, encode: EncodeSettings) -> Result<Frames, byoc_frames::PipelineError> {
        let pipeline = byoc_frames::start(frame_pipeline_config(needs, encode))?;
        Ok(Frames {
            feeder: pipeline.input,
            source: pipeline.frames,
            sink: pipeline.processed,
            output: pipeline.output,
            stats: pipeline.stats,
        })
    }
}

impl InputSink for Feeder {
    async fn start(&self, seq: u64) -> bool {
        self.segment_start(seq).await.is_ok()
    }

    async fn chunk(&self, bytes: Bytes) -> bool {
        Feeder::chunk(self, bytes).await.is_ok()
    }

    async fn end(&self) -> bool {
        self.segment_end().await.is_ok()
    }
}

/// What a frame stream's tasks need besides the pipeline.
pub(super) struct FrameTasks {
    pub(super) id: String,
    pub(super) session: Session,
    pub(super) commands: mpsc::Receiver<Cmd>,
    pub(super) input: Option<byoc_trickle::LocalSubscriber>,
    pub(super) output: Option<LocalPublisher>,
    pub(super) events: Option<LocalPublisher>,
    pub(super) cancel: CancellationToken,
    pub(super) failed: CancellationToken,
}

/// Spawns the input feeder, the frame driver and the encoded-output writer.
pub(super) fn spawn(frames: Frames, tasks: FrameTasks) {
    let Frames { feeder, source, sink, output, stats } = frames;
    let cancel = tasks.cancel.clone();
    if let Some(sub) = tasks.input {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            read_input(sub, &feeder, &cancel).await;
            feeder.finish().await;
        });
    }
    tokio::spawn(write_encoded(output, tasks.output, cancel));
    let driver = Driver {
        id: tasks.id,
        session: tasks.session,
        source,
        sink: Some(sink),
        stats,
        events: tasks.events,
        cancel: tasks.cancel,
        failed: tasks.failed,
    };
    tokio::spawn(driver.run(tasks.commands));
}

/// One step of the driver.
enum Step {
    Frame(Decoded),
    Control(String),
    Tick,
    Report,
}

struct Driver {
    id: String,
    session: Session,
    source: FrameSource,
    /// Gone once the input has ended: no frame can come after, and the encoder drains at once.
    sink: Option<FrameSink>,
    stats: Arc<Stats>,
    events: Option<LocalPublisher>,
    cancel: CancellationToken,
    failed: CancellationToken,
}

impl Driver {
    /// Moves frames through the plugin until the stream ends; applies control messages, ticks
    /// and the plugin's failure policy in between.
    async fn run(mut self, mut commands: mpsc::Receiver<Cmd>) {
        let mut ticker = Ticker::default();
        let mut report = tokio::time::interval(DROP_REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut reported = Reported::default();
        let mut input_open = true;
        loop {
            ticker.follow(self.session.tick_interval());
            let step = tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = ticker.tick() => Step::Tick,
                _ = report.tick() => Step::Report,
                c = commands.recv() => match c {
                    Some(Cmd::Control(text)) => Step::Control(text),
                    Some(_) => continue,
                    None => break,
                },
                f = self.source.recv(), if input_open => match f {
                    Some(frame) => Step::Frame(frame),
                    None => {
                        // The input has ended: the encoder drains into the last segment now.
                        input_open = false;
                        if let Some(sink) = self.sink.take() {
                            sink.finish();
                        }
                        continue;
                    }
                },
            };
            let began = std::time::Instant::now();
            let (call, result) = match step {
                Step::Report => {
                    reported = self.report_drops(reported);
                    continue;
                }
                Step::Frame(Decoded::SegmentEnd { .. }) => {
                    let _ = send(self.sink.as_ref(), Processed::SegmentEnd).await;
                    continue;
                }
                Step::Frame(Decoded::Video(frame)) => {
                    let result = match self.session.on_video_frame(frame).await {
                        Ok(Some(frame)) => send(self.sink.as_ref(), Processed::Video(frame)).await,
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    ("video_frame", result)
                }
                Step::Frame(Decoded::Audio(frame)) => {
                    let result = match self.session.on_audio_frame(frame).await {
                        Ok(Some(frame)) => send(self.sink.as_ref(), Processed::Audio(frame)).await,
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    ("audio_frame", result)
                }
                Step::Control(text) => ("control", self.session.on_control(&text).await),
                Step::Tick => ("tick", self.session.on_tick().await),
            };
            byoc_protocol::telemetry::plugin_call(call, began);
            let Err(e) = result else { continue };
            if let Recovery::Failed = recover(&self.id, &mut self.session, e, &self.cancel, self.events.as_ref()).await
            {
                self.failed.cancel();
                return;
            }
        }
        self.report_drops(reported);
        if let Some(sink) = self.sink.take() {
            sink.finish();
        }
        let _ = self.session.close().await;
    }

    /// Publishes the counts when frames were dropped since the last event, or when decoding has
    /// paused (the input stopped or ended) since frames were dropped and the last event's counts
    /// are behind: the last event of a stream that dropped frames has its final decoded count.
    fn report_drops(&self, last: Reported) -> Reported {
        let (dropped_video, dropped_audio) =
            (self.stats.dropped_video.load(Ordering::Relaxed), self.stats.dropped_audio.load(Ordering::Relaxed));
        let decoded = self.stats.decoded_video.load(Ordering::Relaxed);
        let dropped = dropped_video + dropped_audio;
        let rose = dropped > last.dropped;
        let settled = last.dropped > 0 && decoded == last.decoded_at_tick && decoded != last.decoded;
        if !rose && !settled {
            return Reported { decoded_at_tick: decoded, ..last };
        }
        if rose {
            let capability = byoc_protocol::telemetry::capability_label(self.session.plugin_name());
            let (id, newly) = (&self.id, dropped - last.dropped);
            metrics::counter!("byoc_frames_dropped_total", "capability" => capability).increment(newly);
            tracing::info!(stream_id = %id, dropped = newly, "frames dropped: the plugin is slower than its input");
        }
        let event = json!({
            "type": "frames_dropped",
            "dropped_video": dropped_video,
            "dropped_audio": dropped_audio,
            "decoded_video": decoded,
            "reason": "the plugin is slower than the input",
        });
        publish_text(self.events.as_ref(), &event.to_string());
        Reported { dropped, decoded, decoded_at_tick: decoded }
    }
}

/// What the `frames_dropped` events have told, to know when to tell again.
#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    /// Frames dropped (video and audio) as of the last event.
    dropped: u64,
    /// Video frames decoded as of the last event.
    decoded: u64,
    /// Video frames decoded as of the last report tick.
    decoded_at_tick: u64,
}

/// Hands a processed frame to the encoder. Its end having gone means the stream is ending, which
/// the driver learns from its token: not the plugin's failure.
async fn send(sink: Option<&FrameSink>, processed: Processed) -> Result<(), byoc_runtime::CallError> {
    if let Some(sink) = sink {
        let _ = sink.send(processed).await;
    }
    Ok(())
}

/// Publishes the encoded output as segments 0, 1, 2, … of the output channel.
async fn write_encoded(mut output: EncodedOutput, out: Option<LocalPublisher>, cancel: CancellationToken) {
    let mut seq = 0u64;
    let mut segment: Option<LocalSegmentWriter> = None;
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            e = output.recv() => e,
        };
        let Some(piece) = next else { return };
        match piece {
            Encoded::SegmentStart => {
                segment = out.as_ref().and_then(|p| p.segment(Seq(seq)).ok());
                seq += 1;
            }
            Encoded::Chunk(bytes) => {
                if let Some(w) = segment.as_mut()
                    && w.write(bytes).is_err()
                {
                    segment = None;
                }
            }
            Encoded::SegmentEnd => {
                if let Some(w) = segment.take() {
                    w.finish();
                }
            }
        }
    }
}
