//! Input that is no H.264 TS, and pipelines dropped mid-stream: no panic, a clean end, no thread left.

use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{FrameNeeds, PixelFormat, VideoNeeds, start};
use bytes::Bytes;

use crate::common::{config, ffmpeg_available, make_segments, run, wait_stopped};

fn video_needs() -> FrameNeeds {
    FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: Some(byoc_frames::AudioNeeds { sample_rate: 0, channels: 0 }),
    }
}

/// Deterministic noise.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_input_ends_cleanly() {
    // Random bytes; random bytes behind TS sync bytes; nothing at all.
    let mut fake_ts = noise(188 * 300, 7);
    for packet in fake_ts.chunks_mut(188) {
        packet[0] = 0x47;
    }
    let inputs = vec![noise(100_000, 1), fake_ts, Vec::new()];
    let out = run(config(video_needs(), 8), inputs, Box::new(Some), Duration::ZERO).await;
    assert!(out.seen.is_empty());
    assert!(out.segments.is_empty(), "no output from no media");
    assert_eq!(out.segment_ends, [100, 101, 102], "segment ends still flow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_foreign_media_end_cleanly() {
    if !ffmpeg_available("broken_and_foreign_media_end_cleanly") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let good = make_segments(dir.path(), 2);
    // A truncated segment, one with bytes flipped throughout, then a good one.
    let mut flipped = good[1].clone();
    for (i, b) in noise(flipped.len() / 50, 3).into_iter().enumerate() {
        let at = (i * 50 + 11) % flipped.len();
        flipped[at] ^= b | 1;
    }
    let truncated = good[0][..good[0].len() / 2 + 77].to_vec();
    let inputs = vec![truncated, flipped, good[1].clone()];
    let out = run(config(video_needs(), 64), inputs, Box::new(Some), Duration::ZERO).await;
    assert!(!out.seen.is_empty(), "the good segment decodes");
    eprintln!("broken media: {} decode errors", out.stats.decode_errors.load(Ordering::Relaxed));

    // MPEG-2 video is not H.264: passed over, no frames, no panic.
    let mpeg2 = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25"])
        .args(["-t", "1", "-c:v", "mpeg2video", "-f", "mpegts", "-"])
        .output()
        .expect("ffmpeg");
    assert!(mpeg2.status.success());
    let out = run(config(video_needs(), 8), vec![mpeg2.stdout], Box::new(Some), Duration::ZERO).await;
    assert!(out.seen.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pipeline_stops_its_threads() {
    let input = noise(188 * 100, 9);
    // Dropped while idle.
    let pipeline = start(config(video_needs(), 8)).expect("starts");
    let stats = pipeline.stats.clone();
    assert_eq!(stats.threads.load(Ordering::Relaxed), 2);
    drop(pipeline);
    wait_stopped(&stats).await;

    // Dropped mid-stream, with nobody reading the frames or the output.
    let pipeline = start(config(video_needs(), 8)).expect("starts");
    let stats = pipeline.stats.clone();
    pipeline.input.segment_start(0).await.expect("start");
    pipeline.input.chunk(Bytes::from(input)).await.expect("chunk");
    drop(pipeline);
    wait_stopped(&stats).await;

    // Only the output reader gone: the rest ends as the input ends.
    if ffmpeg_available("a_dropped_pipeline_stops_its_threads") {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = make_segments(dir.path(), 1);
        let pipeline = start(config(video_needs(), 8)).expect("starts");
        let (feeder, mut frames, sink, output, stats) =
            (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);
        drop(output);
        let plugin = tokio::spawn(async move {
            while let Some(item) = frames.recv().await {
                let processed = match item {
                    byoc_frames::Decoded::Video(f) => byoc_frames::Processed::Video(f),
                    byoc_frames::Decoded::Audio(f) => byoc_frames::Processed::Audio(f),
                    byoc_frames::Decoded::SegmentEnd { .. } => byoc_frames::Processed::SegmentEnd,
                };
                if sink.send(processed).await.is_err() {
                    break;
                }
            }
        });
        for segment in &good {
            if feeder.segment_start(0).await.is_err() || feeder.chunk(Bytes::from(segment.clone())).await.is_err() {
                break;
            }
            let _ = feeder.segment_end().await;
        }
        feeder.finish().await;
        tokio::time::timeout(Duration::from_secs(60), plugin).await.expect("plugin ends").expect("plugin");
        wait_stopped(&stats).await;
    }
}
