//! An identity plugin: the output has the input's frames, timing, cuts and audio.

use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{FrameNeeds, PixelFormat, VideoNeeds};

use crate::common::{audio_packets, config, ffmpeg_available, make_segments, run, video_frames, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_keeps_frames_timing_cuts_and_audio() {
    if !ffmpeg_available("identity_keeps_frames_timing_cuts_and_audio") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 4);
    assert!(input.len() >= 4, "ffmpeg cut {} segments", input.len());
    let input_file = write(dir.path(), "in.ts", &input.concat());

    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: None,
    };
    let started = std::time::Instant::now();
    let out = run(config(needs, 256), input.clone(), Box::new(Some), Duration::ZERO).await;
    let elapsed = started.elapsed();

    let stats = &out.stats;
    let encoded = stats.encoded_video.load(Ordering::Relaxed);
    eprintln!(
        "identity: {} frames in {elapsed:?} ({:?} per frame, decode + encode)",
        encoded,
        elapsed / u32::try_from(encoded.max(1)).unwrap_or(1)
    );
    assert_eq!(stats.dropped_video.load(Ordering::Relaxed), 0);
    assert_eq!(out.seen.len() as u64, stats.decoded_video.load(Ordering::Relaxed));
    assert!(out.seen.iter().all(|&s| s == (PixelFormat::I420, 320, 240)));
    assert_eq!(out.segment_ends, (100..100 + input.len() as u64).collect::<Vec<_>>());

    // Cut where the input was cut, each output segment starting on a keyframe.
    assert_eq!(out.segments.len(), input.len(), "one output segment per input segment");
    for (i, segment) in out.segments.iter().enumerate() {
        let file = write(dir.path(), &format!("out{i:03}.ts"), segment);
        let frames = video_frames(&file);
        let expected = video_frames(&write(dir.path(), &format!("in{i:03}-copy.ts"), &input[i]));
        assert_eq!(frames.len(), expected.len(), "segment {i}: frame count");
        assert!(frames.first().is_some_and(|f| f.1), "segment {i} starts on a keyframe");
    }

    // The same frames at the same times, the same audio packets.
    let output_file = write(dir.path(), "out.ts", &out.segments.concat());
    let (want, got) = (video_frames(&input_file), video_frames(&output_file));
    assert_eq!(got.len(), want.len(), "frame count");
    assert_eq!(got.len() as u64, encoded);
    for (w, g) in want.iter().zip(&got) {
        assert!((w.0 - g.0).abs() <= 1, "pts {} became {}", w.0, g.0);
    }
    let (want, got) = (audio_packets(&input_file), audio_packets(&output_file));
    assert!(!want.is_empty());
    assert_eq!(got, want, "audio packets (pts, size, md5) untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_decoded_passes_both_streams_through() {
    if !ffmpeg_available("nothing_decoded_passes_both_streams_through") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 2);
    let input_file = write(dir.path(), "in.ts", &input.concat());
    let out = run(config(FrameNeeds::default(), 8), input.clone(), Box::new(Some), Duration::ZERO).await;
    assert!(out.seen.is_empty());
    assert_eq!(out.stats.encoded_video.load(Ordering::Relaxed), 0);
    assert_eq!(out.segments.len(), input.len());
    let output_file = write(dir.path(), "out.ts", &out.segments.concat());
    assert_eq!(video_frames(&output_file), video_frames(&input_file));
    assert_eq!(audio_packets(&output_file), audio_packets(&input_file));
}

/// WebRTC input carries Opus: it passes through untouched (never decoded) next to the processed
/// video, so a WHIP stream through a frame plugin keeps its sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_passes_through_next_to_processed_video() {
    if !ffmpeg_available("opus_passes_through_next_to_processed_video") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input_file = dir.path().join("opus.ts");
    crate::common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-c:a",
        "libopus",
        "-ac",
        "2",
        "-f",
        "mpegts",
        input_file.to_str().expect("utf-8 path"),
    ]);
    let input = std::fs::read(&input_file).expect("the input");
    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: None,
    };
    let out = run(config(needs, 256), vec![input], Box::new(Some), Duration::ZERO).await;
    let output_file = write(dir.path(), "out.ts", &out.segments.concat());
    assert_eq!(video_frames(&output_file).len(), 50, "the video frames");
    // (pts, size): ffprobe's CSV puts an Opus packet's hash in another column when the input
    // packet carries side data, so the hashes are not comparable here.
    let sized = |file| audio_packets(file).into_iter().map(|(pts, size, _)| (pts, size)).collect::<Vec<_>>();
    let (want, got) = (sized(&input_file), sized(&output_file));
    assert!(want.len() > 50, "{} Opus packets in", want.len());
    assert_eq!(got, want, "Opus packets (pts, size) untouched");
}
