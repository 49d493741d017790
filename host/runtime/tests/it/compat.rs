//! Plugins built against `byoc:capability@0.1.0` (before frame plugins) keep loading and
//! running unchanged: the fixtures are the bundled `passthrough` and `text-transform` as they
//! were built against 0.1.0, never rebuilt.

use crate::common::*;
use byoc_runtime::{CallError, CapabilityError, Request, ResponseBody, Runtime};

fn fixtures() -> std::path::PathBuf {
    root().join("host/runtime/tests/fixtures/wit-0.1.0")
}

fn ts_fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("plugins/ts-analyzer/tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn a_0_1_0_plugin_still_serves_sessions_byte_exact() -> TestResult {
    let components = std::fs::read(fixtures().join("passthrough/passthrough.wasm"))?;
    assert!(
        components.windows(b"byoc:capability/adapter@0.1.0".len()).any(|w| w == b"byoc:capability/adapter@0.1.0"),
        "the fixture is a 0.1.0 component"
    );
    let runtime = Runtime::load(fixtures(), config()).await?;
    let plugin = runtime.plugin("passthrough").expect("the 0.1.0 passthrough loads");
    assert!(plugin.describe().frames.is_none());
    let (mut session, outputs) = plugin.open_session("{}").await?;
    assert!(!session.takes_frames());
    let reader = tokio::spawn(collect(outputs));
    let input = ts_fixture("h264-aac-2s.ts");
    session.on_segment_start(7).await?;
    for chunk in input.chunks(5000) {
        session.on_chunk(chunk).await?;
    }
    session.on_segment_end().await?;
    // What only 0.2.0 has is refused, not trapped: the session carries on.
    session.on_tick().await?;
    assert_eq!(session.tick_interval(), None);
    let frame = byoc_frames::VideoFrame::black(16, 16, byoc_frames::PixelFormat::I420)?;
    assert!(matches!(session.on_video_frame(frame).await, Err(CallError::Plugin(CapabilityError::Unsupported(_)))));
    session.on_control("{}").await.or_else(|e| match e {
        CallError::Plugin(_) => Ok(()),
        other => Err(other),
    })?;
    session.close().await?;
    let segments = segments(&reader.await?);
    assert_eq!(segments.len(), 1);
    assert!(segments[0].2 && segments[0].1 == input, "the 0.1.0 plugin's output is its input");
    Ok(())
}

#[tokio::test]
async fn a_0_1_0_plugin_still_serves_batch_calls() -> TestResult {
    let runtime = Runtime::load(fixtures(), config()).await?;
    let plugin = runtime.plugin("text-transform").expect("the 0.1.0 text-transform loads");
    assert!(plugin.describe().params_schema.is_some());
    let response = plugin.process(&Request::new("/upper", "text/plain", "quiet words")).await?;
    assert_eq!(response.status, 200);
    let ResponseBody::Bytes(body) = &response.body else { panic!("expected a body") };
    assert!(String::from_utf8_lossy(body).contains("QUIET WORDS"), "{body:?}");
    let refused = plugin.process(&Request::new("/nosuch", "text/plain", "x")).await;
    assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::NotFound(_)))), "{refused:?}");
    Ok(())
}
