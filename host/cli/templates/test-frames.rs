//! `{{name}}` run natively through the SDK's frame harness: no wasm, no codec. The harness
//! hands the plugin frames as the host does after decoding, and records what it outputs.

use byoc_sdk::Error;
use byoc_sdk::frames::PixelFormat;
use byoc_sdk::testing::{FrameHarness, color_bars};
use {{crate}}::{{type}};

#[test]
fn describe_asks_for_i420_frames() -> Result<(), Error> {
    let info = FrameHarness::<{{type}}>::new().describe()?;
    assert_eq!(info.name, "{{name}}");
    let video = info.frames.and_then(|f| f.video).unwrap();
    assert_eq!(video.pixel_format, PixelFormat::I420);
    Ok(())
}

#[test]
fn frames_are_inverted_and_an_update_switches_it_off() -> Result<(), Error> {
    let input = color_bars(64, 36, PixelFormat::I420).with_pts(40_000_000);
    let mut session = FrameHarness::<{{type}}>::new().open("{}")?;
    let out = session.video(input.clone())?.unwrap();
    assert!(out.plane(0).iter().zip(input.plane(0)).all(|(o, i)| *o == 255 - *i));
    assert_eq!(out.pts(), input.pts());

    session.control(r#"{"invert": false}"#)?;
    assert_eq!(session.video(input.clone())?.unwrap(), input);
    let events = session.outputs().events_of_type("invert").into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(events.len(), 2, "announced at the start and when switched: {events:?}");
    Ok(())
}
