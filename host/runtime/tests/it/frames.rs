//! Frame sessions and timers on real wasmtime: `video-effects` gets host-owned frames and
//! returns them changed; a session asks for ticks; a frame session refuses what is not frames.

use std::time::Duration;

use crate::common::*;
use byoc_frames::{PixelFormat, StreamInfo, VideoFrame};
use byoc_runtime::{CallError, CapabilityError, Runtime};

/// A 64x48 I420 frame with colour in it: every chroma sample far from gray.
fn colourful(pts_ns: i64) -> VideoFrame {
    let mut frame = VideoFrame::black(64, 48, PixelFormat::I420).unwrap();
    frame.pts_ns = pts_ns;
    frame.plane_mut(0).unwrap().iter_mut().enumerate().for_each(|(i, y)| *y = 16 + (i % 200) as u8);
    frame.plane_mut(1).unwrap().fill(40);
    frame.plane_mut(2).unwrap().fill(220);
    frame
}

#[tokio::test]
async fn a_frame_plugin_changes_host_frames_and_switches_live() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let plugin = runtime.plugin("video-effects").expect("video-effects loads");
    let needs = plugin.describe().frames.expect("video-effects declares frames");
    assert_eq!(needs.video.map(|v| v.format), Some(PixelFormat::I420));
    let info = StreamInfo { width: 64, height: 48, fps_num: 25, fps_den: 1, ..StreamInfo::default() };
    let (mut session, outputs) = plugin.open_frame_session(r#"{"effect":"grayscale"}"#, info).await?;
    assert!(session.takes_frames());
    let reader = tokio::spawn(collect(outputs));

    let input = colourful(40_000_000);
    let out = session.on_video_frame(input.clone()).await?.expect("a frame back");
    assert_eq!((out.width(), out.height(), out.pts_ns), (64, 48, 40_000_000));
    assert_eq!(out.plane(0)?, input.plane(0)?, "grayscale keeps the luma");
    assert!(out.plane(1)?.iter().chain(out.plane(2)?).all(|&c| c == 128), "grayscale sets chroma to 128");

    // Switched live by a control message (a stream update).
    session.on_control(r#"{"effect":"invert"}"#).await?;
    let out = session.on_video_frame(colourful(80_000_000)).await?.expect("a frame back");
    assert!(out.plane(1)?.iter().all(|&c| c != 128), "invert is not gray");

    // Segments are not for a frame session: refused, and the session goes on.
    let refused = session.on_segment_start(0).await;
    assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::Unsupported(_)))), "{refused:?}");
    let bad = session.on_control(r#"{"effect":"sideways"}"#).await;
    assert!(matches!(bad, Err(CallError::Plugin(CapabilityError::InvalidParams(_)))), "{bad:?}");
    assert!(session.on_video_frame(colourful(120_000_000)).await?.is_some());
    session.close().await?;
    let events = events(&reader.await?);
    assert!(events.iter().any(|e| e["type"] == "effect" && e["effect"] == "invert"), "{events:?}");
    Ok(())
}

#[tokio::test]
async fn a_frame_plugin_refuses_bad_params_at_open() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let plugin = runtime.plugin("video-effects").unwrap();
    let refused = plugin.open_session(r#"{"effect":"sideways"}"#).await;
    assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::InvalidParams(_)))), "{:?}", refused.err());
    Ok(())
}

#[tokio::test]
async fn a_session_asks_for_ticks_and_stops_them() -> TestResult {
    let runtime = Runtime::load(hostile_dir(), config()).await?;
    let plugin = runtime.plugin("hostile").unwrap();
    let (mut session, mut outputs) = plugin.open_session("").await?;
    assert_eq!(session.tick_interval(), None);
    session.on_control("tick 250").await?;
    assert_eq!(session.tick_interval(), Some(Duration::from_millis(250)));
    session.on_tick().await?;
    assert_eq!(data_lines(&drain(&mut outputs)), ["0.1.0:tick"]);
    // Clamped to the shortest interval the host allows.
    session.on_control("tick 1").await?;
    assert_eq!(session.tick_interval(), Some(Duration::from_millis(10)));
    session.on_control("tick 0").await?;
    assert_eq!(session.tick_interval(), None);
    session.close().await?;
    Ok(())
}

#[tokio::test]
async fn frames_a_plugin_makes_count_against_its_memory_limit() -> TestResult {
    let runtime = Runtime::load(hostile_dir(), config()).await?;
    let plugin = runtime.plugin("hostile").unwrap();
    let (mut session, mut outputs) = plugin.open_session("").await?;
    session.on_control("frames").await?;
    let lines = data_lines(&drain(&mut outputs));
    // 16 MiB of memory: five 1080p I420 frames (3,110,400 bytes each), not six.
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("held 5 then FrameError::TooLarge"), "{lines:?}");
    // Dropping them gave the budget back, and the session is fine.
    session.on_control("frames").await?;
    assert!(data_lines(&drain(&mut outputs))[0].starts_with("held 5 then"));
    session.on_control("echo alive").await?;
    session.close().await?;
    Ok(())
}
