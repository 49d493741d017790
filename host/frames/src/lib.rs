//! Frame-level media: the decoded video and audio frames a frame plugin works on, and (feature
//! `codec`) the [`pipeline`] that decodes a stream's H.264/AAC to such frames and encodes the plugin's
//! frames back to MPEG-TS.
//!
//! The frame types here are plain data with no codec behind them, so the wasm host
//! (`byoc-runtime`) can hand frames to plugins without linking any media library.

mod frame;
#[cfg(feature = "codec")]
pub mod pipeline;

pub use frame::{
    AudioFrame, AudioNeeds, FrameError, FrameNeeds, MAX_AUDIO_SAMPLES_PER_CHANNEL, MAX_AUDIO_CHANNELS, MAX_VIDEO_BYTES,
    MAX_VIDEO_SIDE, PixelFormat, StreamInfo, VideoFrame, VideoNeeds,
};
#[cfg(feature = "codec")]
pub use pipeline::{
    Decoded, EncodeSettings, Encoded, EncodedOutput, Feeder, FrameSink, FrameSource, Pipeline, PipelineConfig,
    PipelineError, Processed, Stats, start,
};
