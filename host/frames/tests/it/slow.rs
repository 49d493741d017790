//! A plugin slower than the input: frames are dropped and counted, the output stays valid.

use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{FrameNeeds, PixelFormat, VideoNeeds};

use crate::common::{audio_packets, config, ffmpeg_available, make_segments, run_paced, video_frames, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_plugin_drops_frames_and_output_stays_valid() {
    if !ffmpeg_available("slow_plugin_drops_frames_and_output_stays_valid") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 3);
    let input_file = write(dir.path(), "in.ts", &input.concat());
    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: None,
    };
    let queue = 4;
    // Input at live pace (25 fps), a plugin taking 100 ms a frame.
    let (delay, pace) = (Duration::from_millis(100), Duration::from_secs(1));
    let out = run_paced(config(needs, queue), input.clone(), Box::new(Some), delay, pace).await;
    let stats = &out.stats;
    let decoded = stats.decoded_video.load(Ordering::Relaxed);
    let dropped = stats.dropped_video.load(Ordering::Relaxed);
    eprintln!("slow plugin: {dropped} of {decoded} frames dropped");
    assert_eq!(decoded, 75);
    assert!(dropped > 0, "the plugin takes 100 ms a frame of 40");
    assert_eq!(out.seen.len() as u64 + dropped, decoded, "every frame is either handed out or counted");
    // Memory stays bounded: the decoder never runs more than the queue ahead of the plugin, so the plugin
    // gets at most what its time allows plus one queue per segment (3 s at 100 ms a frame when the
    // input keeps its pace; the time it really took when a loaded machine slowed the feeding down).
    let allowed = (out.fed_in.as_millis() / delay.as_millis()) as usize + 1;
    assert!(
        out.seen.len() <= allowed.max(30) + 3 * queue,
        "{} frames handed out in {:?} of feeding",
        out.seen.len(),
        out.fed_in
    );
    let file = write(dir.path(), "out.ts", &out.segments.concat());
    let frames = video_frames(&file);
    assert_eq!(frames.len(), out.seen.len(), "every frame the plugin returned is in the output");
    assert_eq!(out.segments.len(), input.len());
    for (i, segment) in out.segments.iter().enumerate() {
        let frames = video_frames(&write(dir.path(), &format!("out{i}.ts"), segment));
        assert!(frames.first().is_some_and(|f| f.1), "segment {i} starts on a keyframe");
    }
    assert_eq!(audio_packets(&file), audio_packets(&input_file), "audio is not dropped");
}
