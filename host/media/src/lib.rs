//! Media legs for BYOC: RTMP and WHIP ingest, RTMP and WHEP egress, MPEG-TS segmenting.

mod error;
mod ffmpeg;
mod flv;
pub mod rtmp;
pub mod ts;

pub use error::MediaError;
pub use rtmp::{PublishRequest, PushAudio, PushConfig, PushStats, RtmpAuthorizer, RtmpConfig, RtmpPush, RtmpServer};
pub use ts::{SegmenterConfig, TsSegmenter};
