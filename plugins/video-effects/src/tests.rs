//! The plugin driven natively through the SDK's frame harness.

use byoc_sdk::frames::{PixelFormat, VideoFrame, convert};
use byoc_sdk::testing::{FrameHarness, FrameHarnessSession, color_bars};

use super::*;

type TestResult = Result<(), Error>;

fn open(params: &str) -> Result<FrameHarnessSession<VideoEffects>, Error> {
    FrameHarness::<VideoEffects>::new().open(params)
}

/// A 64×36 I420 frame with a luma gradient and colour bars' chroma.
fn test_frame() -> VideoFrame {
    let mut frame = color_bars(64, 36, PixelFormat::I420).with_pts(2_000_000_000);
    for (i, y) in frame.plane_mut(0).iter_mut().enumerate() {
        *y = 16 + (i % 64) as u8 * 3;
    }
    frame
}

fn run(params: &str, frame: VideoFrame) -> Result<VideoFrame, Error> {
    open(params)?.video(frame)?.ok_or_else(|| Error::internal("frame dropped"))
}

#[test]
fn describe_declares_i420_frames_up_to_1080p_and_a_valid_schema() -> TestResult {
    let info = FrameHarness::<VideoEffects>::new().describe()?;
    assert_eq!(info.name, "video-effects");
    assert_eq!(info.legs, Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS);
    let video = info.frames.and_then(|f| f.video).unwrap();
    assert_eq!(
        (video.pixel_format, video.max_width, video.max_height, video.max_fps),
        (PixelFormat::I420, 1920, 1080, 0)
    );
    assert!(info.frames.unwrap().audio.is_none());
    let schema: serde_json::Value = serde_json::from_str(info.params_schema.as_deref().unwrap()).unwrap();
    assert_eq!(schema["properties"]["effect"]["enum"].as_array().unwrap().len(), 9);
    Ok(())
}

#[test]
fn none_returns_the_frame_unchanged() -> TestResult {
    let input = test_frame();
    assert_eq!(run("{}", input.clone())?, input);
    Ok(())
}

#[test]
fn grayscale_sets_chroma_to_128_and_keeps_luma() -> TestResult {
    let input = test_frame();
    let out = run(r#"{"effect": "grayscale"}"#, input.clone())?;
    assert_eq!(out.plane(0), input.plane(0));
    assert!(out.plane(1).iter().chain(out.plane(2)).all(|&c| c == 128));
    assert_eq!(out.pts(), input.pts());
    Ok(())
}

#[test]
fn invert_maps_black_to_white_and_colours_to_their_complements() -> TestResult {
    let black = VideoFrame::new(4, 4, PixelFormat::I420)?;
    let out = run(r#"{"effect": "invert"}"#, black)?;
    assert!(out.plane(0).iter().all(|&y| y == 235));
    assert!(out.plane(1).iter().chain(out.plane(2)).all(|&c| c == 128));

    // Red becomes cyan, within the rounding of two conversions.
    let red = VideoFrame::from_data(4, 4, PixelFormat::Rgb24, [255, 0, 0].repeat(16))?;
    let out = run(r#"{"effect": "invert"}"#, convert::convert(&red, PixelFormat::I420)?)?;
    let [r, g, b] = out.pixel_rgb(1, 1).unwrap();
    assert!(r <= 4 && g >= 251 && b >= 251, "{r} {g} {b}");

    // Inverting twice restores limited-range input exactly.
    let input = test_frame();
    let mut session = open(r#"{"effect": "invert"}"#)?;
    let once = session.video(input.clone())?.unwrap();
    let twice = session.video(once)?.unwrap();
    assert_eq!(twice, input);
    Ok(())
}

#[test]
fn pixelate_makes_blocks_of_their_average() -> TestResult {
    // Strength 0.5 gives 16-pixel blocks; the gradient rises by 3 per column.
    let out = run(r#"{"effect": "pixelate", "strength": 0.5}"#, test_frame())?;
    let y = out.plane(0);
    for row in y.chunks(64) {
        for (block, chunk) in row.chunks(16).enumerate() {
            // Columns 16b..16b+15 hold 16 + 3x; their mean is 16 + 3 (16b + 7.5), rounded.
            let expected = (16.0 + 3.0 * (16.0 * block as f64 + 7.5)).round() as u8;
            assert!(chunk.iter().all(|&v| v == expected), "block {block}: {chunk:?}");
        }
    }
    // Chroma blocks are 8×8: the bars are 8 luma pixels wide, so each chroma block
    // averages two bars' halves... all samples within a block are equal.
    for row in out.plane(1).chunks(32) {
        for chunk in row.chunks(8) {
            assert!(chunk.iter().all(|&v| v == chunk[0]));
        }
    }
    Ok(())
}

#[test]
fn blur_keeps_flat_areas_and_softens_edges_within_bounds() -> TestResult {
    let mut input = VideoFrame::new(32, 8, PixelFormat::I420)?;
    for (i, y) in input.plane_mut(0).iter_mut().enumerate() {
        *y = if i % 32 < 16 { 16 } else { 235 };
    }
    let out = run(r#"{"effect": "blur", "strength": 0.2}"#, input)?;
    // Radius 2: a 5-wide window; the step spreads over columns 14..=17 only.
    for row in out.plane(0).chunks(32) {
        assert!(row[..14].iter().all(|&v| v == 16));
        assert!(row[18..].iter().all(|&v| v == 235));
        assert_eq!(&row[14..18], &[60, 104, 147, 191]);
    }
    assert!(out.plane(1).iter().all(|&c| c == 128), "flat chroma stays flat");
    Ok(())
}

#[test]
fn mirror_reverses_every_row_of_every_plane() -> TestResult {
    let input = test_frame();
    let out = run(r#"{"effect": "mirror"}"#, input.clone())?;
    for plane in 0..3 {
        let width = input.stride(plane);
        for (a, b) in out.plane(plane).chunks(width).zip(input.plane(plane).chunks(width)) {
            let reversed: Vec<u8> = b.iter().rev().copied().collect();
            assert_eq!(a, reversed.as_slice());
        }
    }
    Ok(())
}

#[test]
fn brightness_shifts_luma_and_clamps_to_limited_range() -> TestResult {
    let input = test_frame();
    assert_eq!(run(r#"{"effect": "brightness", "strength": 0.5}"#, input.clone())?, input);
    let out = run(r#"{"effect": "brightness", "strength": 1}"#, input.clone())?;
    for (&o, &i) in out.plane(0).iter().zip(input.plane(0)) {
        assert_eq!(o, i.saturating_add(110).min(235));
    }
    assert_eq!(out.plane(1), input.plane(1));
    let out = run(r#"{"effect": "brightness", "strength": 0}"#, input.clone())?;
    assert!(out.plane(0).iter().zip(input.plane(0)).all(|(&o, &i)| o == i.saturating_sub(110).max(16)));
    Ok(())
}

#[test]
fn contrast_scales_luma_around_mid_gray() -> TestResult {
    let input = test_frame();
    assert_eq!(run(r#"{"effect": "contrast", "strength": 0.5}"#, input.clone())?, input);
    let flat = run(r#"{"effect": "contrast", "strength": 0}"#, input.clone())?;
    assert!(flat.plane(0).iter().all(|&y| y == 126));
    let strong = run(r#"{"effect": "contrast", "strength": 1}"#, input.clone())?;
    for (&o, &i) in strong.plane(0).iter().zip(input.plane(0)) {
        assert_eq!(i32::from(o), (126 + 2 * (i32::from(i) - 126)).clamp(16, 235));
    }
    Ok(())
}

#[test]
fn overlay_draws_text_and_timestamp_in_a_box_at_the_top_left() -> TestResult {
    let mut input = VideoFrame::new(320, 180, PixelFormat::I420)?.with_pts(3_723_456_000_000);
    input.plane_mut(0).fill(100);
    let out = run(r#"{"effect": "overlay", "text": "HELLO"}"#, input.clone())?;
    let mut expected = input.clone();
    let area = effects::overlay(&mut expected, "HELLO");
    assert_eq!(out, expected);
    // The box: scale 1 on 180 rows, margin 2; two lines ("HELLO", "1:02:03.456", 11 cells).
    assert_eq!(area, byoc_sdk::frames::Rect::new(2, 2, 65 + 4, 15 + 4));
    let y = out.plane(0);
    let inside = y.chunks(320).skip(2).take(19).flat_map(|row| &row[2..71]);
    let (white, black) = inside.fold((0, 0), |(w, b), &v| (w + usize::from(v == 235), b + usize::from(v == 16)));
    assert!(white > 50 && black > 500 && white + black == 69 * 19, "{white} white, {black} black");
    assert!(y.chunks(320).skip(30).all(|row| row.iter().all(|&v| v == 100)), "below the box: untouched");
    Ok(())
}

#[test]
fn a_stream_update_switches_the_effect_and_announces_it() -> TestResult {
    let mut session = open(r#"{"effect": "grayscale", "strength": 0.3}"#)?;
    let input = test_frame();
    let gray = session.video(input.clone())?.unwrap();
    assert!(gray.plane(1).iter().all(|&c| c == 128));

    session.control(r#"{"effect": "invert"}"#)?;
    assert_eq!(session.processor().params().strength, 0.3, "a merge patch keeps the other params");
    let inverted = session.video(input.clone())?.unwrap();
    assert_eq!(inverted.plane(0)[0], 251 - input.plane(0)[0]);
    assert_ne!(inverted.plane(1), gray.plane(1));

    // A change of strength alone is not an effect change.
    session.control(r#"{"strength": 0.9}"#)?;
    session.close()?;
    let events = session.outputs().events;
    let effects: Vec<&str> = events.iter().map(|e| e["effect"].as_str().unwrap()).collect();
    assert_eq!(effects, ["grayscale", "invert"]);
    assert!(events.iter().all(|e| e["type"] == "effect"));
    assert_eq!(events[1]["strength"], 0.3f32 as f64);
    Ok(())
}

#[test]
fn invalid_params_are_refused_at_open() {
    for params in [
        r#"{"effect": "sepia"}"#,
        r#"{"strength": 1.5}"#,
        r#"{"strength": -0.1}"#,
        r#"{"effect": "blur", "radius": 3}"#,
        r#"{"strength": "high"}"#,
        "[]",
        "{",
    ] {
        assert!(matches!(open(params), Err(Error::InvalidParams(_))), "{params}");
    }
    let long = format!(r#"{{"effect": "overlay", "text": "{}"}}"#, "x".repeat(MAX_TEXT_CHARS + 1));
    assert!(matches!(open(&long), Err(Error::InvalidParams(_))));
}

#[test]
fn an_invalid_update_is_refused_and_leaves_the_effect_in_place() -> TestResult {
    let mut session = open(r#"{"effect": "mirror"}"#)?;
    assert!(matches!(session.control(r#"{"effect": "swirl"}"#), Err(Error::InvalidParams(_))));
    assert!(matches!(session.control(r#"{"strength": 2}"#), Err(Error::InvalidParams(_))));
    assert_eq!(session.processor().params().effect, Effect::Mirror);
    assert_eq!(session.processor().params().strength, 0.5);
    assert_eq!(session.outputs().events.len(), 1);
    Ok(())
}

#[test]
fn frames_larger_than_declared_are_not_delivered() -> TestResult {
    let mut session = open("{}")?;
    assert!(session.video(VideoFrame::new(1922, 1080, PixelFormat::I420)?).is_err());
    Ok(())
}
