//! `slow-frames`: a frame plugin slower than the input, for the host's drop tests. Every video
//! frame goes back unchanged after the plugin has slept `sleep_ms` (params; 100 ms when absent,
//! two and a half frame intervals at 25 fps), so a live stream makes the host drop frames.

use std::time::Duration;

use byoc_sdk::frames::{FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame, VideoNeeds};
use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
use serde::Deserialize;

/// The stream's params.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// How long each frame takes, in milliseconds.
    pub sleep_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self { sleep_ms: 100 }
    }
}

/// One stream.
pub struct SlowFrames {
    sleep: Duration,
}

impl Describe for SlowFrames {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new("slow-frames", "0.1.0", "Sleeps on every frame (tests only)")
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::EVENTS)
            .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420)))
    }
}

impl FrameProcessor for SlowFrames {
    type Params = Params;

    fn on_start(_ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
        if params.sleep_ms > 1000 {
            return Err(Error::invalid_params("sleep_ms must be at most 1000"));
        }
        Ok(Self { sleep: Duration::from_millis(params.sleep_ms) })
    }

    fn process_video(&mut self, _ctx: &Context<'_>, frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        // A blocking sleep, as a plugin calling a slow model would block: the host must not
        // let it hold up other streams.
        std::thread::sleep(self.sleep);
        Ok(Some(frame))
    }
}

byoc_sdk::export!(frames SlowFrames);
