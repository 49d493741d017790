//! What the plugin declares: the pixel format and size it gets, audio frames, and what it returns.

use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{AudioNeeds, FrameNeeds, PixelFormat, VideoNeeds};

use crate::common::{
    audio_packets, config, ffmpeg_available, make_segments, raw_yuv, run, stream_fields, video_frames, video_size,
    write,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grayscale_plugin_gives_gray_output() {
    if !ffmpeg_available("grayscale_plugin_gives_gray_output") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 2);
    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: None,
    };
    let gray = Box::new(|mut frame: byoc_frames::VideoFrame| {
        for plane in [1, 2] {
            frame.plane_mut(plane).expect("chroma").fill(128);
        }
        Some(frame)
    });
    let out = run(config(needs, 256), input, gray, Duration::ZERO).await;
    let file = write(dir.path(), "out.ts", &out.segments.concat());
    let raw = raw_yuv(&file);
    let (w, h) = (320, 240);
    let frame_len = w * h * 3 / 2;
    assert_eq!(raw.len() % frame_len, 0);
    assert_eq!((raw.len() / frame_len) as u64, out.stats.encoded_video.load(Ordering::Relaxed));
    assert!(raw.len() / frame_len >= 40);
    for (i, frame) in raw.chunks(frame_len).enumerate() {
        let chroma = &frame[w * h..];
        let worst = chroma.iter().map(|&c| (i32::from(c) - 128).abs()).max().unwrap_or(0);
        assert!(worst <= 3, "frame {i}: a chroma sample {worst} away from 128");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgb24_scaled_down_is_what_the_plugin_sees() {
    if !ffmpeg_available("rgb24_scaled_down_is_what_the_plugin_sees") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 2);
    let input_file = write(dir.path(), "in.ts", &input.concat());
    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::Rgb24, max_width: 160, max_height: 120, max_fps: 0 }),
        audio: None,
    };
    let out = run(config(needs, 256), input, Box::new(Some), Duration::ZERO).await;
    assert!(!out.seen.is_empty());
    assert!(out.seen.iter().all(|&s| s == (PixelFormat::Rgb24, 160, 120)), "{:?}", out.seen.first());
    let file = write(dir.path(), "out.ts", &out.segments.concat());
    assert_eq!(video_size(&file), (160, 120), "the output takes the size of the first returned frame");
    assert_eq!(video_frames(&file).len(), video_frames(&input_file).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_fps_thins_evenly_and_returned_frames_of_another_size_are_scaled() {
    if !ffmpeg_available("max_fps_thins_evenly_and_returned_frames_of_another_size_are_scaled") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 2);
    let needs = FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 10 }),
        audio: None,
    };
    // The first frame sets the output size; later ones come back at another size and format.
    let mut first = true;
    let resize = Box::new(move |frame: byoc_frames::VideoFrame| {
        let mut out = if first {
            byoc_frames::VideoFrame::black(200, 100, PixelFormat::I420).expect("frame")
        } else {
            byoc_frames::VideoFrame::black(64, 64, PixelFormat::Rgba).expect("frame")
        };
        first = false;
        out.pts_ns = frame.pts_ns;
        Some(out)
    });
    let out = run(config(needs, 256), input, resize, Duration::ZERO).await;
    let stats = &out.stats;
    let (decoded, skipped) = (stats.decoded_video.load(Ordering::Relaxed), stats.skipped_fps.load(Ordering::Relaxed));
    assert_eq!(decoded, 50);
    // 25 fps to 10 fps: 2 of 5 kept.
    assert!((18..=22).contains(&(decoded - skipped)), "{} of {decoded} kept", decoded - skipped);
    assert_eq!(stats.dropped_video.load(Ordering::Relaxed), 0);
    let file = write(dir.path(), "out.ts", &out.segments.concat());
    assert_eq!(video_size(&file), (200, 100));
    assert_eq!(video_frames(&file).len() as u64, decoded - skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_frames_are_decoded_resampled_and_encoded_again() {
    if !ffmpeg_available("audio_frames_are_decoded_resampled_and_encoded_again") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 2);
    let input_file = write(dir.path(), "in.ts", &input.concat());
    let needs = FrameNeeds { video: None, audio: Some(AudioNeeds { sample_rate: 48_000, channels: 1 }) };
    let out = run(config(needs, 8), input, Box::new(Some), Duration::ZERO).await;
    let stats = &out.stats;
    assert!(out.audio_seen > 0);
    assert_eq!(stats.dropped_audio.load(Ordering::Relaxed), 0);
    let file = write(dir.path(), "out.ts", &out.segments.concat());
    assert_eq!(video_frames(&file), video_frames(&input_file), "video passes untouched");
    let (want, got) = (audio_packets(&input_file), audio_packets(&file));
    assert!(got.len().abs_diff(want.len()) <= 2, "{} AAC frames out, {} in", got.len(), want.len());
    // Re-encoded: the first packet starts within one AAC frame (1024 samples, 1920 ticks) of the input's.
    let (w, g) = (want.first().expect("audio in").0, got.first().expect("audio out").0);
    assert!((w - g).abs() <= 1920, "audio starts at {g}, input at {w}");
    assert_eq!(stream_fields(&file, "a:0", "stream=channels,sample_rate"), ["48000", "1"]);
}
