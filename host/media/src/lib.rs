//! Media legs for BYOC: the gateway's RTMP and WebRTC ingest and egress, and MPEG-TS segmenting.
//!
//! The gateway works in MPEG-TS segments, each self-contained (PAT/PMT first, then packets from a
//! keyframe), moved in [`Piece`]s as soon as they are muxed: [`Piece::Start`] opens a segment and
//! [`Piece::More`] continues it, so a segment's first frames travel on while its last ones are still
//! being captured (a leg adds a frame or two of delay, not a segment). A consumer that joins late or
//! loses pieces goes on at the next start ([`StartGate`]). This crate turns what clients send into such
//! pieces and pieces back into what viewers pull (RTMP play, WHEP) or what is pushed out (RTMP). Only
//! this crate names the RTMP and WebRTC libraries (`rml_rtmp`, `str0m`) and runs `ffmpeg`; callers see:
//!
//! - [`TsSegmenter`]: sans-IO; `push_pieces(&[u8]) -> Vec<Piece>`, `finish_pieces()` (whole segments:
//!   `push`, `finish`). Cuts a continuous TS at H.264/HEVC keyframes at least
//!   [`SegmenterConfig::min_duration`] apart (by PTS), re-emitting PAT/PMT at the head of each segment.
//! - [`RtmpServer::bind`]`(addr, RtmpConfig, authorizer)`: RTMP ingest. For each publish to
//!   `rtmp://host:port/{app}/{stream_key}` the [`RtmpAuthorizer`] returns `Some(mpsc::Sender<Piece>)` to
//!   accept (pieces flow there; the channel closes after the last partial segment when the publisher
//!   leaves; dropping the receiver disconnects the publisher) or `None` to reject. A key already
//!   publishing is rejected without asking. FLV is remuxed to TS in process (H.264 and AAC; a track in
//!   another codec is dropped, a publish with neither is disconnected). A full channel is waited for up
//!   to [`RtmpConfig::consumer_wait`], then the rest of the segment is dropped. Connections are capped
//!   on the server ([`RtmpConfig::max_connections`]) and per IP address
//!   ([`RtmpConfig::max_connections_per_ip`]; an IPv6 client is counted by its /64); one whose publish or play is not accepted within
//!   [`RtmpConfig::publish_deadline`] of its accept is closed however much it sends, and a publisher
//!   sending less than [`RtmpConfig::min_publish_rate`] bytes/s on average over each
//!   [`RtmpConfig::publish_rate_window`] is disconnected, so that trickled bytes hold no slot.
//! - [`RtmpServer::bind_with_play`]`(addr, RtmpConfig, authorizer, play_authorizer)`: the same, plus RTMP
//!   play of `rtmp://host:port/{app}/{stream_key}`. The [`RtmpPlayAuthorizer`] is asked for every viewer
//!   and returns `Some(broadcast::Receiver<Piece>)` of the output to accept (H.264, AAC or Opus) or `None`
//!   to reject. Viewers of one `(app, stream_key)` share one pipeline, started by the first with its receiver
//!   (later receivers are dropped): a child `ffmpeg` (`-c:v copy -c:a aac -f flv`) whose FLV is split into
//!   tags. Metadata, sequence headers and the current GOP are kept, so a late viewer starts at a keyframe;
//!   a slow viewer's full queue ([`RtmpConfig::play_queue_tags`]) skips it to the next keyframe. The
//!   pipeline ends with the segment channel (viewers get `NetStream.Play.Complete` and are disconnected)
//!   or with its last viewer. `bind` refuses every play.
//! - [`RtmpPush::spawn`]`(url, PushConfig)`: RTMP egress. `push(Piece)` never waits (a full queue drops
//!   its oldest segment whole); ffmpeg (`-c:v copy -c:a aac -tcp_nodelay 1 -f flv`) is restarted with backoff when it
//!   dies; `close()` sends what is queued and ends the FLV stream, all within a timeout.
//! - [`WebRtcServer::bind`]`(WebRtcConfig)`: WHIP ingest and WHEP egress over `str0m` (ICE-lite, one UDP
//!   socket for all sessions, advertised address configurable). Every offer names its [`SessionOwner`]
//!   (the caller's stream, and the client's IP address when known); an offer over a cap is refused with
//!   [`MediaError::Limit`] naming it: sessions on the server ([`WebRtcConfig::max_sessions`]), per stream
//!   and per client address (an IPv6 client by its /64), each counted in all and while pending (offer answered, ICE and DTLS not
//!   done: `max_{sessions,pending}_per_{stream,ip}`). A session not connected within
//!   [`WebRtcConfig::connect_timeout`] is dropped and its slot freed. An offer that cannot be parsed or
//!   accepted is a [`MediaError::Protocol`] saying only "invalid SDP offer" (the details go to the debug
//!   log).
//!   `whip_offer(sdp, mpsc::Sender<Piece>, owner) -> (SessionId, answer_sdp)`: RTP H.264 + Opus are muxed by our
//!   own TS muxer and cut by [`TsSegmenter`] into the channel (PLI every
//!   [`WebRtcConfig::pli_interval`] so that there are keyframes to cut at).
//!   `whep_offer(sdp, mpsc::Receiver<Piece>, owner) -> (SessionId, answer_sdp)`: pieces are demuxed as they
//!   arrive and sent as H.264 + Opus, paced by their timestamps, from the first segment start after the
//!   viewer connects. `viewer_keyframe_requests()` tells which viewers ask for a keyframe, and
//!   `request_keyframe(SessionId)` asks a WHIP publisher for one (and cuts the next segment there).
//!   `close(SessionId, stream, Leg)` serves `DELETE`: it ends a session only of that stream and leg
//!   ([`Leg::Whip`] or [`Leg::Whep`]).
//! - [`OpusTranscode::spawn`]`(ffmpeg, mpsc::Receiver<Piece>, mpsc::Sender<Piece>)`: the audio of a stream
//!   of pieces re-encoded to Opus by a child `ffmpeg` (video copied, cut again at the same keyframes), for
//!   WHEP viewers of AAC output; [`audio_needs_opus`] tells from a segment start whether it is needed.
//! - [`ts::TsMuxer`] / [`ts::TsDemuxer`]: sans-IO MPEG-TS mux (H.264 with Opus in ffmpeg's layout, or
//!   with AAC in ADTS) and demux to access units; the building blocks for WHIP ingest (RTP → TS), RTMP
//!   ingest (FLV → TS) and WHEP egress (TS → RTP).
//!
//! Every server, connection, pipeline, pump and child process has an owner: dropping [`RtmpServer`],
//! [`RtmpPush`] or [`WebRtcServer`] stops their tasks and kills their ffmpeg processes.

mod address;
mod avc;
mod error;
mod ffmpeg;
mod flv;
#[doc(hidden)]
pub mod fuzzing;
pub mod rtmp;
mod transcode;
pub mod ts;
pub mod webrtc;

pub use error::MediaError;
pub use rtmp::{
    PlayRequest, PublishRequest, PushAudio, PushConfig, PushStats, RtmpAuthorizer, RtmpConfig, RtmpPlayAuthorizer,
    RtmpPush, RtmpServer,
};
pub use transcode::{OpusTranscode, audio_needs_opus};
pub use ts::{Piece, SegmenterConfig, StartGate, TsSegmenter};
pub use webrtc::{Leg, SessionId, SessionOwner, WebRtcConfig, WebRtcServer};
