//! `passthrough`: every input segment is published unchanged as an output segment, chunk
//! by chunk, without buffering. It is the reference for the host's per-hop latency and
//! overhead: whatever it costs is the cost of the plugin boundary itself.

use byoc_sdk::{Batch, CapabilityInfo, Context, Describe, Error, Legs, Request, Response, Stream, StreamSession};

/// The capability.
pub struct Passthrough;

impl Describe for Passthrough {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new("passthrough", env!("CARGO_PKG_VERSION"), "Returns the input video unchanged")
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT)
            .params_schema(r#"{"type":"object","additionalProperties":false}"#)
    }
}

impl Batch for Passthrough {
    /// Echoes the body with its content type, so a batch call costs what a segment does.
    fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let content_type =
            if request.content_type.is_empty() { "application/octet-stream".to_owned() } else { request.content_type };
        Ok(Response::bytes(content_type, request.body))
    }
}

impl Stream for Passthrough {
    type Session = PassthroughSession;

    fn open(_ctx: &Context<'_>, params: &str) -> Result<PassthroughSession, Error> {
        // No params are accepted; rejecting unknown ones catches a misrouted stream early.
        let _: NoParams = byoc_sdk::params::parse(params)?;
        Ok(PassthroughSession)
    }
}

/// Params: an empty object.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// One stream: no state, every call maps to one output call.
pub struct PassthroughSession;

impl StreamSession for PassthroughSession {
    fn on_segment_start(&mut self, ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
        ctx.segment_start()?;
        Ok(())
    }

    fn on_chunk(&mut self, ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        Ok(ctx.segment_chunk(bytes)?)
    }

    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        Ok(ctx.segment_end()?)
    }

    /// There is nothing to change live, but an empty update (a client's keep-alive or a
    /// generic UI) is harmless, so only non-empty updates are refused.
    fn on_control(&mut self, _ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let _: NoParams = byoc_sdk::params::parse(message)?;
        Ok(())
    }
}

byoc_sdk::export!(Passthrough);

#[cfg(test)]
mod tests {
    use byoc_sdk::testing::Harness;

    use super::*;

    type TestResult = Result<(), Error>;

    #[test]
    fn describe_is_valid_and_declares_video_legs() -> TestResult {
        let info = Harness::<Passthrough>::new().describe()?;
        assert_eq!(info.name, "passthrough");
        assert_eq!(info.legs, Legs::VIDEO_IN | Legs::VIDEO_OUT);
        Ok(())
    }

    #[test]
    fn segments_come_out_unchanged_and_chunked_like_the_input() -> TestResult {
        let harness = Harness::<Passthrough>::new().with_chunk_size(1000);
        let mut session = harness.open("{}")?;
        let first: Vec<u8> = (0..=255u8).cycle().take(4500).collect();
        let second = vec![0x47; 188];
        session.segment(10, &first)?;
        session.segment(11, &second)?;
        session.close()?;

        let out = session.outputs();
        assert_eq!(out.segments.len(), 2);
        assert_eq!(out.segments[0].bytes, first);
        assert_eq!(out.segments[0].chunks, 5, "no buffering: one output chunk per input chunk");
        assert_eq!(out.segments[1].bytes, second);
        assert!(out.segments.iter().all(|s| s.complete));
        assert_eq!(out.segments.iter().map(|s| s.seq).collect::<Vec<_>>(), [0, 1]);
        Ok(())
    }

    #[test]
    fn output_is_available_before_the_segment_ends() -> TestResult {
        let harness = Harness::<Passthrough>::new();
        let mut session = harness.open("")?;
        session.segment_start(0)?;
        session.chunk(b"early")?;
        let out = session.outputs();
        assert_eq!(out.segments[0].bytes, b"early");
        assert!(!out.segments[0].complete);
        Ok(())
    }

    #[test]
    fn unknown_params_are_rejected() {
        let harness = Harness::<Passthrough>::new();
        assert!(matches!(harness.open(r#"{"gain": 2}"#), Err(Error::InvalidParams(_))));
    }

    #[test]
    fn batch_echoes_body_and_content_type() -> TestResult {
        let harness = Harness::<Passthrough>::new();
        let response = harness.process(Request::new("/", "video/mp2t", vec![1, 2, 3]))?;
        assert_eq!(response.content_type, "video/mp2t");
        assert_eq!(response.body, byoc_sdk::Body::Bytes(vec![1, 2, 3]));
        Ok(())
    }
}
