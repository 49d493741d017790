//! Our frame path as the orchestrator drives it (`backend/frames.rs`): a `byoc-frames` pipeline
//! (decoder and encoder threads) around a `byoc-runtime` frame session, one driver task moving
//! each decoded frame through `Session::on_video_frame` to the encoder. Input is fed frame by
//! frame at its presentation time (live pace); each frame is timed from its last input byte to
//! the output chunk that carries it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use byoc_frames::{Decoded, Encoded, Processed, StreamInfo};
use byoc_runtime::Plugin;

use crate::R;
use crate::media::{Clip, percentile, video_pts};

/// How one stream went.
pub struct StreamRun {
    /// Input frame → output frame, sorted, for the frames that came out.
    pub latencies: Vec<Duration>,
    pub frames_in: usize,
    pub frames_out: usize,
    pub dropped: u64,
}

impl StreamRun {
    pub fn p(&self, p: usize) -> Duration {
        percentile(&self.latencies, p)
    }

    pub fn worst(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

type Times = Arc<Mutex<HashMap<u64, Instant>>>;

/// One stream of `clip` through `plugin` opened with `params`, fed at live pace from `start`.
pub async fn stream(plugin: &Plugin, params: &str, clip: &Clip, start: Instant) -> R<StreamRun> {
    let needs = plugin.describe().frames.ok_or("the plugin is not a frame plugin")?;
    let info = StreamInfo { width: clip.width, height: clip.height, fps_num: 30, fps_den: 1, ..StreamInfo::default() };
    let (mut session, mut outputs) = plugin.open_frame_session(params, info).await?;
    // The plugin's events (video-effects announces its effect) must be read, or it would wait.
    let events = tokio::spawn(async move { while outputs.recv().await.is_some() {} });
    // Exactly the node's pipeline: its queue bounds and encoder settings.
    let pipeline =
        byoc_frames::start(byoc_orchestrator::frame_pipeline_config(needs, byoc_frames::EncodeSettings::default()))?;
    let (feeder, mut source, sink, mut output, stats) =
        (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);

    let fed: Times = Arc::default();
    let came_out: Times = Arc::default();

    let feed_times = fed.clone();
    let pts0 = clip.segments.first().and_then(|s| s.frames.first()).map_or(0, |f| f.pts);
    let segments: Vec<_> =
        clip.segments.iter().map(|s| s.frames.iter().map(|f| (f.pts, f.bytes.clone())).collect::<Vec<_>>()).collect();
    let feed = tokio::spawn(async move {
        for (seq, frames) in (0u64..).zip(segments) {
            feeder.segment_start(seq).await?;
            for (pts, bytes) in frames {
                let due = start + Duration::from_micros(pts.saturating_sub(pts0) * 100 / 9);
                tokio::time::sleep_until(due.into()).await;
                feeder.chunk(bytes).await?;
                feed_times.lock().map_err(|_| "poisoned")?.insert(pts, Instant::now());
            }
            feeder.segment_end().await?;
        }
        feeder.finish().await;
        R::Ok(())
    });

    let out_times = came_out.clone();
    let read = tokio::spawn(async move {
        while let Some(piece) = output.recv().await {
            if let Encoded::Chunk(bytes) = piece {
                let now = Instant::now();
                if let Ok(mut times) = out_times.lock() {
                    for pts in video_pts(&bytes) {
                        times.entry(pts).or_insert(now);
                    }
                }
            }
        }
    });

    // The driver, as `backend/frames.rs` runs it (without control messages and ticks).
    while let Some(item) = source.recv().await {
        match item {
            Decoded::Video(frame) => {
                if let Some(frame) = session.on_video_frame(frame).await? {
                    sink.send(Processed::Video(frame)).await?;
                }
            }
            Decoded::Audio(_) => {}
            Decoded::SegmentEnd { .. } => sink.send(Processed::SegmentEnd).await?,
        }
    }
    sink.finish();
    session.close().await?;
    feed.await??;
    read.await?;
    events.await?;

    let fed = fed.lock().map_err(|_| "poisoned")?;
    let came_out = came_out.lock().map_err(|_| "poisoned")?;
    let mut latencies: Vec<Duration> =
        came_out.iter().filter_map(|(pts, out)| fed.get(pts).map(|f| out.saturating_duration_since(*f))).collect();
    latencies.sort();
    Ok(StreamRun {
        latencies,
        frames_in: clip.frames(),
        frames_out: came_out.len(),
        dropped: stats.dropped_video.load(Ordering::Relaxed),
    })
}
