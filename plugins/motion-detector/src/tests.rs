//! The detector driven natively through the SDK's frame harness, on synthetic scenes.

use byoc_sdk::frames::{Color, PixelFormat, Rect, VideoFrame, fill_rect};
use byoc_sdk::testing::{FrameHarness, FrameHarnessSession};

use super::*;

type TestResult = Result<(), Error>;

const FRAME_NS: i64 = 40_000_000; // 25 fps

fn open(params: &str) -> Result<FrameHarnessSession<MotionDetector>, Error> {
    FrameHarness::<MotionDetector>::new().open(params)
}

/// Frame `n` of a 320×180 scene: mid-gray, with a white 40×40 box at `box_x` if any.
fn scene(n: i64, box_x: Option<u32>) -> VideoFrame {
    let mut frame = VideoFrame::new(320, 180, PixelFormat::I420).unwrap().with_pts(10_000_000_000 + n * FRAME_NS);
    frame.plane_mut(0).fill(120);
    if let Some(x) = box_x {
        fill_rect(&mut frame, Rect::new(x, 70, 40, 40), Color::WHITE);
    }
    frame
}

#[test]
fn describe_declares_i420_frames_and_all_output_legs() -> TestResult {
    let info = FrameHarness::<MotionDetector>::new().describe()?;
    assert_eq!(info.legs, Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::DATA | Legs::EVENTS);
    let video = info.frames.and_then(|f| f.video).unwrap();
    assert_eq!((video.pixel_format, video.max_width, video.max_height), (PixelFormat::I420, 1280, 720));
    Ok(())
}

#[test]
fn a_static_scene_gives_no_events_and_untouched_frames() -> TestResult {
    let mut session = open("{}")?;
    for n in 0..750 {
        let frame = scene(n, Some(100));
        assert_eq!(session.video(frame.clone())?, Some(frame));
        if n % 25 == 24 {
            session.tick()?;
        }
    }
    session.close()?;
    let out = session.outputs();
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(out.data.len(), 30);
    let line = &out.data_json()[1];
    assert_eq!(
        (line["motion"].as_bool(), line["score"].as_f64(), line["frames"].as_u64()),
        (Some(false), Some(0.0), Some(25))
    );
    Ok(())
}

#[test]
fn a_moving_box_starts_motion_at_once_and_ends_it_after_the_hold() -> TestResult {
    let mut session = open(r#"{"hold_ms": 1000}"#)?;
    for n in 0..10 {
        session.video(scene(n, Some(20)))?;
    }
    assert!(session.outputs().events.is_empty());
    // The box moves 8 pixels a frame for 20 frames.
    for n in 10..30 {
        let x = 20 + 8 * (n - 9) as u32;
        session.video(scene(n, Some(x)))?;
        if n == 10 {
            let start = session.outputs().events_of_type("motion_start").len();
            assert_eq!(start, 1, "motion starts on the first moving frame");
        }
    }
    assert!(session.processor().in_motion());
    // Then it stays: motion ends after a second of stream time (25 frames), not before.
    for n in 30..54 {
        session.video(scene(n, Some(180)))?;
    }
    assert!(session.processor().in_motion(), "24 quiet frames are less than the hold");
    session.video(scene(54, Some(180)))?;
    assert!(!session.processor().in_motion());

    let out = session.outputs();
    let types: Vec<&str> = out.events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["motion_start", "motion_end"]);
    let (start, end) = (&out.events[0], &out.events[1]);
    assert_eq!(start["pts_ms"], 10_400);
    assert!(start["score"].as_f64().unwrap() > 0.01);
    assert!(end["peak_score"].as_f64().unwrap() >= start["score"].as_f64().unwrap());
    assert_eq!(end["duration_ms"], 19 * 40, "from the first to the last moving frame");
    Ok(())
}

#[test]
fn frames_in_motion_get_a_red_box_around_the_change() -> TestResult {
    let mut session = open("{}")?;
    session.video(scene(0, Some(100)))?;
    let out = session.video(scene(1, Some(140)))?.unwrap();
    // The change spans x 100..180 (old and new box), y 70..110, in whole 2-pixel cells.
    let red = |x, y| out.pixel_rgb(x, y).is_some_and(|[r, g, b]| r > 200 && g < 60 && b < 60);
    assert!(red(100, 70) && red(179, 109) && red(100, 90) && red(140, 70));
    assert!(!red(140, 90), "inside the outline");
    assert!(!red(90, 60) && !red(200, 120), "outside the box");

    let mut session = open(r#"{"draw_boxes": false}"#)?;
    session.video(scene(0, Some(100)))?;
    let frame = scene(1, Some(140));
    assert_eq!(session.video(frame.clone())?, Some(frame));
    assert_eq!(session.outputs().events_of_type("motion_start").len(), 1);
    Ok(())
}

#[test]
fn data_lines_come_from_ticks_every_second_even_without_frames() -> TestResult {
    let mut session = open("{}")?;
    assert_eq!(session.tick_interval(), Some(Duration::from_secs(1)));
    session.tick()?;
    session.video(scene(0, None))?;
    session.video(scene(1, Some(0)))?;
    session.tick()?;
    let lines = session.outputs().data_json();
    assert_eq!(lines[0]["frames"], 0);
    assert_eq!(lines[1]["frames"], 2);
    assert_eq!(lines[1]["motion"], true);
    assert!(lines[1]["peak"].as_f64().unwrap() > 0.0);
    Ok(())
}

#[test]
fn a_new_frame_size_is_not_taken_for_motion() -> TestResult {
    let mut session = open("{}")?;
    session.video(scene(0, Some(100)))?;
    let mut bigger = VideoFrame::new(640, 360, PixelFormat::I420)?;
    bigger.plane_mut(0).fill(30);
    session.video(bigger.clone())?;
    session.video(bigger)?;
    assert!(session.outputs().events.is_empty());
    Ok(())
}

#[test]
fn stopping_during_motion_ends_it() -> TestResult {
    let mut session = open("{}")?;
    session.video(scene(0, Some(0)))?;
    session.video(scene(1, Some(60)))?;
    session.close()?;
    let out = session.outputs();
    assert_eq!(out.events_of_type("motion_end").len(), 1);
    assert_eq!(out.events_of_type("motion_end")[0]["pts_ms"], 10_040);
    Ok(())
}

#[test]
fn invalid_params_are_refused_and_updates_keep_the_state() -> TestResult {
    for params in [
        r#"{"threshold": 0}"#,
        r#"{"threshold": 1.5}"#,
        r#"{"hold_ms": 60001}"#,
        r#"{"pixel_threshold": 300}"#,
        r#"{"sensitivity": 1}"#,
    ] {
        assert!(matches!(open(params), Err(Error::InvalidParams(_))), "{params}");
    }
    let mut session = open("{}")?;
    session.video(scene(0, Some(0)))?;
    session.video(scene(1, Some(60)))?;
    session.control(r#"{"threshold": 0.5}"#)?;
    assert!(session.processor().in_motion(), "an update keeps the ongoing motion");
    assert!(matches!(session.control(r#"{"threshold": -1}"#), Err(Error::InvalidParams(_))));
    Ok(())
}
