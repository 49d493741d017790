//! byoc-frames' pipeline against real media: ffmpeg makes H.264 + AAC segments, the pipeline decodes
//! them for a "plugin" task and encodes what it returns, ffprobe/ffmpeg read the output back.
//!
//! One test binary for the crate; each module is one subject.

mod common;
mod garbage;
mod identity;
mod needs;
mod segments;
mod slow;
