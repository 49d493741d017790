//! `video-effects`: a frame plugin. The host decodes the stream to I420 frames (at most
//! 1080p), this plugin applies one effect to each, and the host encodes the result.
//!
//! Params: `{"effect": …, "strength": 0..1, "text": "…"}`; a stream update with any of them
//! switches the effect live (a JSON merge patch: unnamed fields keep their values). Every
//! change of effect is announced with an event `{"type": "effect", "effect": …, "strength": …}`.
//! See [`effects`] for what each effect does to the pixels.

pub mod effects;

use byoc_sdk::frames::{FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame, VideoNeeds};
use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
use serde::{Deserialize, Serialize};

/// The longest overlay text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// Which effect to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Frames pass unchanged (no copy back to the host).
    #[default]
    None,
    /// Colour removed.
    Grayscale,
    /// Colours inverted.
    Invert,
    /// Blocks averaged; `strength` sets the block size (2–32 pixels).
    Pixelate,
    /// Box blur; `strength` sets the radius (0–10 pixels).
    Blur,
    /// Mirrored left to right.
    Mirror,
    /// Luma shifted; `strength` 0.5 is neutral.
    Brightness,
    /// Contrast scaled around mid-gray; `strength` 0.5 is neutral.
    Contrast,
    /// `text` and the frame's timestamp drawn at the top left.
    Overlay,
}

/// The stream's params.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The effect; `none` when absent.
    #[serde(default)]
    pub effect: Effect,
    /// How strong, 0 to 1; 0.5 when absent.
    #[serde(default = "default_strength")]
    pub strength: f32,
    /// Text for `overlay` (printable ASCII; others are drawn as `?`).
    #[serde(default)]
    pub text: String,
}

fn default_strength() -> f32 {
    0.5
}

impl Params {
    /// Checks what the schema cannot express to serde: the ranges.
    fn validate(self) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(Error::invalid_params(format!("strength must be between 0 and 1, not {}", self.strength)));
        }
        if self.text.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::invalid_params(format!("text must be at most {MAX_TEXT_CHARS} characters")));
        }
        Ok(self)
    }
}

/// JSON Schema of [`Params`].
const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "effect": {
      "enum": ["none", "grayscale", "invert", "pixelate", "blur", "mirror", "brightness", "contrast", "overlay"],
      "default": "none",
      "description": "The effect applied to every frame; a stream update switches it live"
    },
    "strength": {
      "type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
      "description": "pixelate: block size 2-32 px; blur: radius 0-10 px; brightness and contrast: 0.5 is neutral"
    },
    "text": {
      "type": "string", "maxLength": 200, "default": "",
      "description": "overlay: text drawn above the frame's timestamp"
    }
  }
}"#;

/// One stream: the current params.
pub struct VideoEffects {
    params: Params,
}

impl VideoEffects {
    /// The params in force.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn announce(&self, ctx: &Context<'_>) -> Result<(), Error> {
        ctx.publish_event(&serde_json::json!({
            "type": "effect",
            "effect": self.params.effect,
            "strength": self.params.strength,
        }))
    }
}

impl Describe for VideoEffects {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new(
            "video-effects",
            env!("CARGO_PKG_VERSION"),
            "Video effects on decoded frames, switched live",
        )
        .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS)
        .params_schema(PARAMS_SCHEMA)
        .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420).max_size(1920, 1080)))
    }
}

impl FrameProcessor for VideoEffects {
    type Params = Params;

    fn on_start(ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
        let session = Self { params: params.validate()? };
        session.announce(ctx)?;
        Ok(session)
    }

    fn process_video(&mut self, _ctx: &Context<'_>, mut frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        if !effects::is_i420(&frame) {
            return Err(Error::invalid_input(format!("expected an I420 frame, got {:?}", frame.format())));
        }
        let strength = self.params.strength;
        match self.params.effect {
            Effect::None => {}
            Effect::Grayscale => effects::grayscale(&mut frame),
            Effect::Invert => effects::invert(&mut frame),
            Effect::Pixelate => effects::pixelate(&mut frame, strength),
            Effect::Blur => effects::blur(&mut frame, strength),
            Effect::Mirror => effects::mirror(&mut frame),
            Effect::Brightness => effects::brightness(&mut frame, strength),
            Effect::Contrast => effects::contrast(&mut frame, strength),
            Effect::Overlay => {
                effects::overlay(&mut frame, &self.params.text);
            }
        }
        Ok(Some(frame))
    }

    /// Takes the new params; announces the effect when it changed.
    fn update_params(&mut self, ctx: &Context<'_>, params: Params, _info: &StreamInfo) -> Result<(), Error> {
        let params = params.validate()?;
        let changed = params.effect != self.params.effect;
        self.params = params;
        if changed {
            self.announce(ctx)?;
        }
        Ok(())
    }
}

byoc_sdk::export!(frames VideoEffects);

#[cfg(test)]
mod tests;
