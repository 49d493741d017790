//! `{{name}}` run natively through the SDK's harness: no wasm, no network. The harness records
//! what the plugin outputs and enforces the host's rules (declared legs, output order).

use byoc_sdk::testing::Harness;
use byoc_sdk::{Error, Legs};
use {{crate}}::{{type}};

/// A two-second MPEG-TS segment (H.264 + AAC) made by ffmpeg from its test sources, cached in
/// cargo's target directory; `None` (the test is skipped) when ffmpeg is not installed.
fn fixture() -> std::io::Result<Option<Vec<u8>>> {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("{{name}}-fixture.ts");
    if !path.is_file() {
        // Written aside and renamed, so an interrupted run leaves no half-written fixture.
        let partial = path.with_extension("partial.ts");
        let made = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"])
            .args(["-c:a", "aac", "-f", "mpegts"])
            .arg(&partial)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: ffmpeg is not installed (or failed), so there is no fixture segment");
            return Ok(None);
        }
        std::fs::rename(&partial, &path)?;
    }
    std::fs::read(&path).map(Some)
}

#[test]
fn describe_declares_video_and_events() -> Result<(), Error> {
    let info = Harness::<{{type}}>::new().describe()?;
    assert_eq!(info.name, "{{name}}");
    assert_eq!(info.legs, Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS);
    Ok(())
}

#[test]
fn a_segment_comes_out_unchanged_with_an_event() -> Result<(), Box<dyn std::error::Error>> {
    let Some(segment) = fixture()? else { return Ok(()) };
    let harness = Harness::<{{type}}>::new();
    let mut session = harness.open(r#"{"label": "camera 1"}"#)?;
    session.segment(0, &segment)?;
    session.close()?;

    let out = session.outputs();
    assert_eq!(out.segments.len(), 1);
    assert_eq!(out.segments[0].bytes, segment);
    let events = out.events_of_type("segment");
    assert_eq!(events[0]["bytes"], segment.len());
    assert_eq!(events[0]["packets"], segment.len() / 188);
    assert_eq!(events[0]["label"], "camera 1");
    Ok(())
}

#[test]
fn an_update_changes_the_params_and_unknown_params_are_refused() -> Result<(), Error> {
    let harness = Harness::<{{type}}>::new();
    let mut session = harness.open("{}")?;
    session.control(r#"{"label": "renamed"}"#)?;
    session.segment(0, &[0x47; 188])?;
    assert_eq!(session.outputs().events_of_type("segment")[0]["label"], "renamed");
    assert!(matches!(harness.open(r#"{"lable": "typo"}"#), Err(Error::InvalidParams(_))));
    Ok(())
}
