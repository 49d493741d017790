//! `audio-gain`: an audio frame plugin, for the host's tests of audio frames through wasm. It
//! asks for audio only (the video passes through untouched) and scales every sample by `gain`
//! (params; 1 when absent), changed live by a stream update (which starts the processor over). Each frame is announced once on
//! the events leg while none has been, so a test can see frames arrive.

use byoc_sdk::frames::{AudioFrame, AudioNeeds, FrameNeeds, FrameProcessor, StreamInfo, VideoFrame};
use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
use serde::{Deserialize, Serialize};

/// The stream's params.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// What every sample is multiplied by, 0 to 4.
    pub gain: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self { gain: 1.0 }
    }
}

fn checked(params: &Params) -> Result<f32, Error> {
    if !(0.0..=4.0).contains(&params.gain) {
        return Err(Error::invalid_params("gain must be 0 to 4"));
    }
    Ok(params.gain)
}

/// The event announcing the first audio frame (after the start or an update).
#[derive(Serialize)]
struct AudioEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    sample_rate: u32,
    channels: u8,
    gain: f32,
}

/// One stream.
pub struct AudioGain {
    gain: f32,
    announced: bool,
}

impl Describe for AudioGain {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new("audio-gain", "0.1.0", "Scales the audio by a gain (tests only)")
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS)
            .frames(FrameNeeds { video: None, audio: Some(AudioNeeds::default()) })
    }
}

impl FrameProcessor for AudioGain {
    type Params = Params;

    fn on_start(_ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
        Ok(Self { gain: checked(&params)?, announced: false })
    }

    /// Never called: the plugin asks for no video.
    fn process_video(&mut self, _ctx: &Context<'_>, frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        Ok(Some(frame))
    }

    fn process_audio(&mut self, ctx: &Context<'_>, mut frame: AudioFrame) -> Result<Option<AudioFrame>, Error> {
        if !self.announced {
            self.announced = true;
            let event = AudioEvent {
                kind: "audio",
                sample_rate: frame.sample_rate(),
                channels: frame.channels(),
                gain: self.gain,
            };
            ctx.publish_event(&event)?;
        }
        if self.gain != 1.0 {
            frame.samples_mut().iter_mut().for_each(|s| *s *= self.gain);
        }
        Ok(Some(frame))
    }
}

byoc_sdk::export!(frames AudioGain);
