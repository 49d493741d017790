//! `{{name}}`: a byte-level stream plugin. Every input segment goes out unchanged, chunk by
//! chunk, and at its end an event says how many bytes and MPEG-TS packets it had.
//!
//! Params: `{"label": "…"}` (copied into every event); a stream update changes them live.

use byoc_sdk::ts::PACKET_SIZE;
use byoc_sdk::{Batch, CapabilityInfo, Context, Describe, Error, Legs, Stream, StreamSession, params};
use serde::{Deserialize, Serialize};

/// The stream's params; an update (control message) is merged into them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Copied into every event.
    pub label: String,
}

/// JSON Schema of [`Params`], published by describe().
const PARAMS_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"properties":{"label":{"type":"string"}}}"#;

/// The capability.
pub struct {{type}};

impl Describe for {{type}} {
    fn describe() -> CapabilityInfo {
        // The name, version and description come from Cargo.toml.
        CapabilityInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_DESCRIPTION"))
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS)
            .params_schema(PARAMS_SCHEMA)
    }
}

// No batch API: the default answers `unsupported`.
impl Batch for {{type}} {}

impl Stream for {{type}} {
    type Session = Session;

    fn open(_ctx: &Context<'_>, params: &str) -> Result<Session, Error> {
        Ok(Session { params: params::parse(params)?, bytes: 0 })
    }
}

/// One stream.
pub struct Session {
    params: Params,
    /// Bytes of the current segment so far.
    bytes: usize,
}

impl StreamSession for Session {
    fn on_segment_start(&mut self, ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
        self.bytes = 0;
        ctx.segment_start()?;
        Ok(())
    }

    /// Chunks go out as they come: output starts before the segment is complete.
    fn on_chunk(&mut self, ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        self.bytes += bytes.len();
        Ok(ctx.segment_chunk(bytes)?)
    }

    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        ctx.segment_end()?;
        ctx.publish_event(&serde_json::json!({
            "type": "segment",
            "label": self.params.label,
            "bytes": self.bytes,
            "packets": self.bytes / PACKET_SIZE,
        }))?;
        Ok(())
    }

    /// A stream update: a JSON merge patch of the params.
    fn on_control(&mut self, _ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        self.params = params::merge(&self.params, message)?;
        Ok(())
    }
}

byoc_sdk::export!({{type}});
