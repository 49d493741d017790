//! Media legs for BYOC: RTMP and WHIP ingest, RTMP and WHEP egress, MPEG-TS segmenting.

mod error;
pub mod ts;

pub use error::MediaError;
pub use ts::{SegmenterConfig, TsSegmenter};
