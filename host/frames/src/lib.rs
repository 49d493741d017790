//! Frame-level media: the decoded video and audio frames a frame plugin works on, and (feature
//! `codec`) the [`pipeline`] that decodes a stream's H.264/AAC to such frames and encodes the plugin's
//! frames back to MPEG-TS.
//!
//! The frame types here are plain data with no codec behind them, so the wasm host
//! (`byoc-runtime`) can hand frames to plugins without linking any media library.

// Network bytes and plugin output reach the pipeline: no panics outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod encoder;
mod frame;
#[cfg(feature = "codec")]
pub mod pipeline;

pub use encoder::{EncodeLimits, EncodeSettings, EncoderRequest};
pub use frame::{
    AudioFrame, AudioNeeds, FrameError, FrameNeeds, MAX_AUDIO_CHANNELS, MAX_AUDIO_SAMPLES_PER_CHANNEL, MAX_VIDEO_BYTES,
    MAX_VIDEO_SIDE, PixelFormat, StreamInfo, VideoFrame, VideoNeeds,
};
#[cfg(feature = "codec")]
pub use pipeline::{
    Decoded, Encoded, EncodedOutput, Feeder, FrameSink, FrameSource, Pipeline, PipelineConfig, PipelineError,
    Processed, Stats, start,
};
