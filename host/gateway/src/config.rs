//! How a gateway runs: its settings and the bounds of its media legs.

use std::time::Duration;

use byoc_payment::SecretKey;

/// How a gateway runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Base URL clients reach this gateway at (used in the URLs `start` hands out).
    pub public_url: String,
    /// Orchestrators to use, in order of preference.
    pub orchestrators: Vec<String>,
    /// A refreshable list of more orchestrators: a file path or an `http(s)://` URL holding one
    /// URL per line (or a JSON array of URLs), read again at every discovery.
    pub orchestrator_list: Option<String>,
    /// The gateway's signing key (a fresh one is generated when none is given and there is no
    /// `signer`).
    pub key: Option<SecretKey>,
    /// A remote signer that signs the gateway's jobs and pays its tickets instead of `key`.
    pub signer: Option<crate::signer::RemoteSigner>,
    /// If set, `start` and batch requests need `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// If set, every `start` and batch request is first `POST`ed (as JSON, see `auth::webhook`) to this
    /// URL; anything but a 2xx answer refuses it.
    pub auth_webhook: Option<String>,
    /// Per-orchestrator timeout of a token request.
    pub token_timeout: Duration,
    /// Largest request body accepted on start/update/stop.
    pub max_body_bytes: usize,
    /// How often a keepalive goes out on the control channel.
    pub keepalive_every: Duration,
    /// A stream whose orchestrator sends no event (workers and plugins send heartbeats every
    /// 10 s) for this long is moved to another orchestrator; `None` never does.
    pub events_timeout: Option<Duration>,
    /// Priced mode: how often a running stream's balance is checked and topped up (go-livepeer:
    /// 50 s); `None` never pays after the start.
    pub payment_every: Option<Duration>,
    /// Pay when the balance with an orchestrator is below this many seconds of price (go-livepeer: 120).
    pub min_balance_secs: u64,
    /// Seconds of price bought by a top-up of a running stream (go-livepeer: 70).
    pub top_up_secs: u64,
    /// The gateway's own ingest (RTMP, WHIP) cuts segments at the first keyframe at least this long
    /// after the segment's start.
    pub segment_min_duration: Duration,
    /// How often WHIP publishers are asked for a keyframe (a PLI), i.e. how long WHIP segments are.
    pub keyframe_request_every: Duration,
    /// The gateway's own ingest hands on pieces spanning at least this much media time (fewer, larger
    /// trickle chunks and plugin calls); zero: frame by frame.
    pub piece_window: Duration,
    /// Bounds of the media legs (RTMP, WebRTC, ingest segments).
    pub media_limits: MediaLimits,
}

/// The bounds of the gateway's media legs; the defaults are byoc-media's, except the ingest segment
/// cap, which is sized for live video (a 2 s segment of 1080p60 at 20 Mbit/s is 5 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Largest ingest segment (RTMP and WHIP segments are cut there; an HTTP ingest body beyond it
    /// is cut off).
    pub max_ingest_segment_bytes: usize,
    /// Time from accepting an RTMP connection to its publish or play being accepted.
    pub rtmp_publish_deadline: Duration,
    /// Bytes per second an RTMP publisher must average (over 20 s); 0: no minimum.
    pub rtmp_min_publish_rate: u64,
    /// RTMP connections at once from one IP address.
    pub rtmp_max_connections_per_ip: usize,
    /// WebRTC sessions of one stream (pending and connected).
    pub webrtc_max_sessions_per_stream: usize,
    /// WebRTC sessions of one stream not yet connected.
    pub webrtc_max_pending_per_stream: usize,
    /// WebRTC sessions from one client IP address.
    pub webrtc_max_sessions_per_ip: usize,
    /// WebRTC sessions from one client IP address not yet connected.
    pub webrtc_max_pending_per_ip: usize,
    /// Time a WebRTC session has to complete ICE and DTLS.
    pub webrtc_connect_timeout: Duration,
}

impl Default for MediaLimits {
    fn default() -> Self {
        let (rtmp, webrtc) = (byoc_media::RtmpConfig::default(), byoc_media::WebRtcConfig::default());
        MediaLimits {
            max_ingest_segment_bytes: 16 << 20,
            rtmp_publish_deadline: rtmp.publish_deadline,
            rtmp_min_publish_rate: rtmp.min_publish_rate,
            rtmp_max_connections_per_ip: rtmp.max_connections_per_ip,
            webrtc_max_sessions_per_stream: webrtc.max_sessions_per_stream,
            webrtc_max_pending_per_stream: webrtc.max_pending_per_stream,
            webrtc_max_sessions_per_ip: webrtc.max_sessions_per_ip,
            webrtc_max_pending_per_ip: webrtc.max_pending_per_ip,
            webrtc_connect_timeout: webrtc.connect_timeout,
        }
    }
}

impl GatewayConfig {
    /// How the gateway's own ingest (RTMP, WHIP) is cut.
    pub(crate) fn segmenter(&self) -> byoc_media::SegmenterConfig {
        byoc_media::SegmenterConfig {
            min_duration: self.segment_min_duration,
            max_segment_bytes: self.media_limits.max_ingest_segment_bytes,
            piece_window: self.piece_window,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            public_url: "http://127.0.0.1:8937".into(),
            orchestrators: Vec::new(),
            orchestrator_list: None,
            key: None,
            signer: None,
            api_key: None,
            auth_webhook: None,
            token_timeout: Duration::from_secs(2),
            max_body_bytes: 10 << 20,
            keepalive_every: Duration::from_secs(10),
            events_timeout: Some(Duration::from_secs(30)),
            payment_every: Some(Duration::from_secs(50)),
            min_balance_secs: 120,
            top_up_secs: 70,
            segment_min_duration: Duration::from_secs(1),
            keyframe_request_every: Duration::from_secs(2),
            piece_window: Duration::from_millis(30),
            media_limits: MediaLimits::default(),
        }
    }
}
