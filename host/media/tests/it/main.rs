//! byoc-media against real peers: ffmpeg and aiortc publishers and players, RTMP and WebRTC servers on
//! loopback, and the attacks the media servers must refuse.
//!
//! One test binary for the crate; each module is one subject.

mod attack;
mod common;
mod differential;
mod rtmp_ingest;
mod rtmp_play;
mod rtmp_push;
mod segmenter_ffmpeg;
mod ts_mux_ffmpeg;
mod whep_egress;
mod whip_ingest;
