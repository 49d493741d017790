//! Media legs for BYOC: the gateway's RTMP and WebRTC ingest and egress, and MPEG-TS segmenting.
//!
//! The gateway works in whole MPEG-TS segments (`bytes::Bytes`, each self-contained: PAT/PMT first, then
//! packets from a keyframe). This crate turns what clients send into such segments and segments back into
//! what viewers pull (RTMP play, WHEP) or what is pushed out (RTMP). Only this crate names the RTMP and
//! WebRTC libraries (`rml_rtmp`, `str0m`) and runs `ffmpeg`; callers see:
//!
//! - [`TsSegmenter`]: sans-IO; `push(&[u8]) -> Vec<Bytes>`, `finish() -> Option<Bytes>`, or
//!   `pump(AsyncRead, &mpsc::Sender<Bytes>)`. Cuts a continuous TS at H.264/HEVC keyframes at least
//!   [`SegmenterConfig::min_duration`] apart (by PTS), re-emitting PAT/PMT at the head of each segment.
//! - [`RtmpServer::bind`]`(addr, RtmpConfig, authorizer)`: RTMP ingest. For each publish to
//!   `rtmp://host:port/{app}/{stream_key}` the [`RtmpAuthorizer`] returns `Some(mpsc::Sender<Bytes>)` to
//!   accept (segments flow there; the channel closes after the last partial segment when the publisher
//!   leaves; dropping the receiver disconnects the publisher) or `None` to reject. A key already
//!   publishing is rejected without asking. FLV is remuxed to TS by a child `ffmpeg -c copy`.
//! - [`RtmpServer::bind_with_play`]`(addr, RtmpConfig, authorizer, play_authorizer)`: the same, plus RTMP
//!   play of `rtmp://host:port/{app}/{stream_key}`. The [`RtmpPlayAuthorizer`] is asked for every viewer
//!   and returns `Some(broadcast::Receiver<Bytes>)` of segments to accept (H.264, AAC or Opus) or `None` to
//!   reject. Viewers of one `(app, stream_key)` share one pipeline, started by the first with its receiver
//!   (later receivers are dropped): a child `ffmpeg` (`-c:v copy -c:a aac -f flv`) whose FLV is split into
//!   tags. Metadata, sequence headers and the current GOP are kept, so a late viewer starts at a keyframe;
//!   a slow viewer's full queue ([`RtmpConfig::play_queue_tags`]) skips it to the next keyframe. The
//!   pipeline ends with the segment channel (viewers get `NetStream.Play.Complete` and are disconnected)
//!   or with its last viewer. `bind` refuses every play.
//! - [`RtmpPush::spawn`]`(url, PushConfig)`: RTMP egress. `push(Bytes)` never waits (a full queue drops
//!   its oldest segment); ffmpeg (`-c:v copy -c:a aac -f flv`) is restarted with backoff when it dies;
//!   `close()` sends what is queued and ends the FLV stream, all within a timeout.
//! - [`WebRtcServer::bind`]`(WebRtcConfig)`: WHIP ingest and WHEP egress over `str0m` (ICE-lite, one UDP
//!   socket for all sessions, advertised address configurable).
//!   `whip_offer(sdp, mpsc::Sender<Bytes>) -> (SessionId, answer_sdp)`: RTP H.264 + Opus are muxed by our
//!   own TS muxer and cut by [`TsSegmenter`] into the channel (PLI every
//!   [`WebRtcConfig::pli_interval`] so that there are keyframes to cut at).
//!   `whep_offer(sdp, mpsc::Receiver<Bytes>) -> (SessionId, answer_sdp)`: segments are demuxed and sent
//!   as H.264 + Opus, paced by their timestamps, from the first segment after the viewer connects.
//!   `close(SessionId)` serves `DELETE`.
//! - [`ts::TsMuxer`] / [`ts::TsDemuxer`]: sans-IO H.264 + Opus MPEG-TS mux and demux to access units, in
//!   ffmpeg's Opus layout; the building blocks for WHIP ingest (RTP → TS) and WHEP egress (TS → RTP).
//!
//! Every server, connection, pipeline, pump and child process has an owner: dropping [`RtmpServer`],
//! [`RtmpPush`] or [`WebRtcServer`] stops their tasks and kills their ffmpeg processes.

mod error;
mod ffmpeg;
mod flv;
pub mod rtmp;
pub mod ts;
pub mod webrtc;

pub use error::MediaError;
pub use rtmp::{
    PlayRequest, PublishRequest, PushAudio, PushConfig, PushStats, RtmpAuthorizer, RtmpConfig, RtmpPlayAuthorizer,
    RtmpPush, RtmpServer,
};
pub use ts::{SegmenterConfig, TsSegmenter};
pub use webrtc::{SessionId, WebRtcConfig, WebRtcServer};
