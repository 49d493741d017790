//! Frame-level media: the decoded video and audio frames a frame plugin works on.
//!
//! The frame types here are plain data with no codec behind them, so the wasm host
//! (`byoc-runtime`) can hand frames to plugins without linking any media library.

mod frame;

pub use frame::{
    AudioFrame, AudioNeeds, FrameError, FrameNeeds, MAX_AUDIO_SAMPLES_PER_CHANNEL, MAX_AUDIO_CHANNELS, MAX_VIDEO_BYTES,
    MAX_VIDEO_SIDE, PixelFormat, StreamInfo, VideoFrame, VideoNeeds,
};
