//! `{{name}}`: a frame plugin. The host decodes the stream to I420 frames (at most 720p here),
//! this plugin inverts their colours, and the host encodes the result.
//!
//! Params: `{"invert": true}`; a stream update switches it live, announced by an event
//! `{"type": "invert", "invert": …}`.

use byoc_sdk::frames::{FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame, VideoNeeds};
use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
use serde::{Deserialize, Serialize};

/// The stream's params; an update is merged into them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Invert the colours (`false`: frames pass unchanged).
    pub invert: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self { invert: true }
    }
}

/// JSON Schema of [`Params`], published by describe().
const PARAMS_SCHEMA: &str =
    r#"{"type":"object","additionalProperties":false,"properties":{"invert":{"type":"boolean","default":true}}}"#;

/// One stream: the params in force.
pub struct {{type}} {
    params: Params,
}

impl {{type}} {
    fn announce(&self, ctx: &Context<'_>) -> Result<(), Error> {
        ctx.publish_event(&serde_json::json!({"type": "invert", "invert": self.params.invert}))
    }
}

impl Describe for {{type}} {
    fn describe() -> CapabilityInfo {
        // The name, version and description come from Cargo.toml.
        CapabilityInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_DESCRIPTION"))
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS)
            .params_schema(PARAMS_SCHEMA)
            .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420).max_size(1280, 720)))
    }
}

impl FrameProcessor for {{type}} {
    type Params = Params;

    fn on_start(ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
        let session = Self { params };
        session.announce(ctx)?;
        Ok(session)
    }

    fn process_video(&mut self, _ctx: &Context<'_>, mut frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        if frame.format() != PixelFormat::I420 {
            return Err(Error::invalid_input(format!("expected an I420 frame, got {:?}", frame.format())));
        }
        if self.params.invert {
            // Y, U and V planes: inverting each inverts the colour.
            for plane in 0..3 {
                frame.plane_mut(plane).iter_mut().for_each(|v| *v = 255 - *v);
            }
        }
        Ok(Some(frame))
    }

    fn update_params(&mut self, ctx: &Context<'_>, params: Params, _info: &StreamInfo) -> Result<(), Error> {
        let changed = params != self.params;
        self.params = params;
        if changed {
            self.announce(ctx)?;
        }
        Ok(())
    }
}

byoc_sdk::export!(frames {{type}});
