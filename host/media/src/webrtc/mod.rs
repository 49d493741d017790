//! WHIP ingest and WHEP egress over `str0m`: ICE-lite, one UDP socket for every session.
//!
//! Ingest: periodic PLI, RTP H.264 + Opus muxed by [`TsMuxer`](crate::ts::TsMuxer) and cut by
//! [`TsSegmenter`](crate::TsSegmenter). Egress: TS segments demuxed by [`TsDemuxer`](crate::ts::TsDemuxer),
//! paced by DTS, written as H.264 and Opus.
//!
//! HTTP-agnostic: the gateway mounts `POST whip_url`/`whep_url` (`application/sdp`) on
//! [`WebRtcServer::whip_offer`]/[`WebRtcServer::whep_offer`] (answer 201, the SDP, and a `Location` naming
//! the [`SessionId`]) and `DELETE` on [`WebRtcServer::close`].

mod driver;
mod egress;
mod ingest;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::Piece;
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{MediaError, SegmenterConfig};
use driver::{Session, drive};
use egress::{Egress, Paced};
use ingest::Ingest;

/// Settings of a [`WebRtcServer`].
#[derive(Debug, Clone)]
pub struct WebRtcConfig {
    /// The UDP address every session shares.
    pub bind: SocketAddr,
    /// The address announced to peers as the only (host) candidate; defaults to the bound address, which
    /// must then not be unspecified (`0.0.0.0`).
    pub advertised: Option<SocketAddr>,
    /// How ingest is cut into segments.
    pub segmenter: SegmenterConfig,
    /// How often a keyframe is requested from publishers (segments can only start on one).
    pub pli_interval: Duration,
    /// Sessions served at once (pending and connected); more offers are refused.
    pub max_sessions: usize,
    /// Sessions of one stream at once (its publisher and viewers, pending and connected).
    pub max_sessions_per_stream: usize,
    /// Sessions of one stream not connected yet (offer answered, ICE and DTLS not done).
    pub max_pending_per_stream: usize,
    /// Sessions offered from one client address (IPv6: one /64) at once (pending and connected); offers
    /// whose address is unknown are not counted.
    pub max_sessions_per_ip: usize,
    /// Sessions offered from one client address (IPv6: one /64) that are not connected yet.
    pub max_pending_per_ip: usize,
    /// A session that is not connected (ICE and DTLS done) this long after its offer is dropped, which
    /// frees its slot.
    pub connect_timeout: Duration,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised: None,
            segmenter: SegmenterConfig::default(),
            pli_interval: Duration::from_secs(2),
            max_sessions: 256,
            max_sessions_per_stream: 64,
            max_pending_per_stream: 16,
            max_sessions_per_ip: 32,
            max_pending_per_ip: 8,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Names one WHIP/WHEP session (the resource a `Location` header points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = MediaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(SessionId).map_err(|_| MediaError::Protocol("bad session id".into()))
    }
}

/// Whose a session is: the caps per stream and per client address count sessions by it, and a session
/// is closed only through its own stream and leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    /// The caller's name of the stream the session belongs to.
    pub stream: String,
    /// The address of the client that made the offer, when known (the per-address caps need it).
    pub client: Option<IpAddr>,
}

/// The two kinds of session: WHIP ingest and WHEP egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The client publishes media to us (ingest).
    Whip,
    /// The client plays media from us (egress).
    Whep,
}

enum Role {
    Ingest(Box<Ingest>),
    Egress(Egress),
}

enum Command {
    /// Whether a session of this owner would be admitted now: the cap it would exceed, if any.
    Admit(SessionOwner, oneshot::Sender<Option<String>>),
    /// Adds a session unless that exceeds a cap (named in the error).
    Add(Box<Session>, oneshot::Sender<Result<(), String>>),
    Close(SessionId, String, Leg, oneshot::Sender<bool>),
    Keyframe(SessionId, oneshot::Sender<bool>),
    Count(oneshot::Sender<usize>),
}

/// The WebRTC side of the gateway: one UDP socket, one driver task, any number of sessions. Dropping it
/// ends every session.
pub struct WebRtcServer {
    advertised: SocketAddr,
    segmenter: SegmenterConfig,
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    paced: mpsc::Sender<Paced>,
    /// WHEP sessions whose viewer asked for a keyframe (PLI or FIR).
    viewer_asks: broadcast::Sender<SessionId>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl WebRtcServer {
    /// Binds the UDP socket and starts the driver.
    pub async fn bind(config: WebRtcConfig) -> Result<WebRtcServer, MediaError> {
        let socket = UdpSocket::bind(config.bind).await?;
        let local_addr = socket.local_addr()?;
        let advertised = match config.advertised {
            Some(a) => a,
            None if local_addr.ip().is_unspecified() => {
                return Err(MediaError::Protocol("an advertised address is needed when binding 0.0.0.0".into()));
            }
            None => local_addr,
        };
        let (commands, rx) = mpsc::channel(64);
        let (paced, paced_rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let segmenter = config.segmenter.clone();
        let (viewer_asks, _) = broadcast::channel(64);
        let task = tokio::spawn(drive(socket, advertised, config, rx, paced_rx, viewer_asks.clone(), cancel.clone()));
        Ok(WebRtcServer { advertised, segmenter, local_addr, commands, paced, viewer_asks, cancel, task: Some(task) })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers a WHIP offer (SDP text). The published media goes to `segments` as it arrives, in
    /// [`Piece`]s of H.264 + Opus MPEG-TS segments (each starting on a keyframe); the channel closes when
    /// the session ends. While `segments` is full the rest of the segment is dropped (with a warning) and
    /// sending resumes at the next one; the session ends when its receiver is dropped.
    pub async fn whip_offer(
        &self,
        offer_sdp: &str,
        segments: mpsc::Sender<Piece>,
        owner: SessionOwner,
    ) -> Result<(SessionId, String), MediaError> {
        self.admit(&owner).await?;
        let offer = parse_offer(offer_sdp)?;
        let with_audio = offer_sdp.lines().any(|l| l.starts_with("m=audio"));
        let rtc = self.new_rtc()?;
        let id = SessionId(rand_id());
        let role = Role::Ingest(Box::new(Ingest::new(segments, self.segmenter.clone(), with_audio)));
        self.add(id, rtc, offer, role, owner).await
    }

    /// Answers a WHEP offer (SDP text, recvonly). The viewer is sent the media of `segments` (pieces of
    /// MPEG-TS segments, frames passed on as soon as their piece arrives) from the first segment that
    /// starts after it connected (each starts on a keyframe, so the picture starts clean), paced by
    /// timestamps; H.264 and Opus pass through. The session ends when `segments` closes. For many viewers
    /// of one stream, give each its own receiver (the gateway decides how a slow viewer skips).
    pub async fn whep_offer(
        &self,
        offer_sdp: &str,
        segments: mpsc::Receiver<Piece>,
        owner: SessionOwner,
    ) -> Result<(SessionId, String), MediaError> {
        self.admit(&owner).await?;
        let offer = parse_offer(offer_sdp)?;
        let rtc = self.new_rtc()?;
        let id = SessionId(rand_id());
        let role = Role::Egress(Egress::new(id, segments, self.paced.clone()));
        self.add(id, rtc, offer, role, owner).await
    }

    fn new_rtc(&self) -> Result<Rtc, MediaError> {
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .set_ice_lite(true)
            .build(Instant::now());
        let candidate =
            Candidate::host(self.advertised, "udp").map_err(|e| MediaError::Protocol(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        Ok(rtc)
    }

    async fn add(
        &self,
        id: SessionId,
        mut rtc: Rtc,
        offer: SdpOffer,
        role: Role,
        owner: SessionOwner,
    ) -> Result<(SessionId, String), MediaError> {
        // str0m 0.25 panics on some offers (a payload type mapped in two sections); such an offer is
        // refused like any other, and this `Rtc` is dropped.
        let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)));
        let answer = accepted.map_err(|_| invalid_offer())?.map_err(|e| {
            tracing::debug!(error = %e, "webrtc offer not acceptable");
            invalid_offer()
        })?;
        let now = Instant::now();
        let session = Session::new(id, rtc, role, owner, now);
        let (tx, accepted) = oneshot::channel();
        self.commands.send(Command::Add(Box::new(session), tx)).await.map_err(|_| MediaError::Closed)?;
        accepted.await.map_err(|_| MediaError::Closed)?.map_err(MediaError::Limit)?;
        Ok((id, answer.to_sdp_string()))
    }

    /// Refuses early (before the offer is parsed and a DTLS identity made) an offer that a cap refuses.
    async fn admit(&self, owner: &SessionOwner) -> Result<(), MediaError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Admit(owner.clone(), tx)).await.map_err(|_| MediaError::Closed)?;
        match rx.await.map_err(|_| MediaError::Closed)? {
            Some(cap) => Err(MediaError::Limit(cap)),
            None => Ok(()),
        }
    }

    /// Ends a session (WHIP/WHEP `DELETE`) of `stream` (its [`SessionOwner::stream`]) and `leg`; `false`
    /// when there is no such session.
    pub async fn close(&self, id: SessionId, stream: &str, leg: Leg) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(id, stream.to_string(), leg, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// For a WHIP session: asks its publisher for a keyframe now (at most one PLI per 500 ms) and starts
    /// the next segment there, even before the minimum duration, so that a viewer waiting for a segment
    /// start (a new WHEP viewer, or one that lost packets) gets one soon. `false` when there is no such
    /// publishing session.
    pub async fn request_keyframe(&self, id: SessionId) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Keyframe(id, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// The WHEP sessions whose viewers ask for a keyframe (PLI or FIR), as they ask. The output cannot
    /// be made to send one; the gateway can pass the request on to the stream's publisher.
    pub fn viewer_keyframe_requests(&self) -> broadcast::Receiver<SessionId> {
        self.viewer_asks.subscribe()
    }

    /// How many sessions are live.
    pub async fn sessions(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Count(tx)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Ends every session and waits for the driver to stop.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WebRtcServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The error of an offer that cannot be parsed or accepted. The parser's own message names memory
/// addresses and internals, so it goes to the debug log only.
fn invalid_offer() -> MediaError {
    MediaError::Protocol("invalid SDP offer".into())
}

fn parse_offer(sdp: &str) -> Result<SdpOffer, MediaError> {
    SdpOffer::from_sdp_string(sdp).map_err(|e| {
        tracing::debug!(error = %e, "webrtc offer unparsable");
        invalid_offer()
    })
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process and per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

#[cfg(test)]
mod tests;
