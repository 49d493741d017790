//! byoc-gateway: the only thing a client talks to. It finds an orchestrator for the capability,
//! signs the job, starts the stream there and moves the stream's legs: ingest and egress over
//! HTTP trickle endpoints, control (updates and keepalives), events and data as SSE.
//!
//! Unlike go-livepeer's gateway, `start` answers 200 only once an orchestrator has accepted the
//! stream (a rejection moves on to the next one; none left gives 503 with the reasons), and every
//! per-stream route needs the stream's own secret, handed out once by `start`.

/// The value of a `Result<_, Refusal>`, or the refusal answered at once.
macro_rules! try_or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

mod auth;
mod batch;
mod discovery;
mod failover;
mod handlers;
mod legs;
mod model;
mod payments;
mod rtmp;
mod start;
mod urls;
mod watchers;
mod webrtc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use byoc_payment::SecretKey;
use byoc_payment::job::{EthAddressCredential, JobRequest};
use http::StatusCode;

pub use discovery::{Candidate, OrchestratorFilter, Token, discover};
pub use rtmp::serve_rtmp;
pub use webrtc::serve_webrtc;

/// An error answer of the gateway API: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({"error": msg.into()}))).into_response()
}

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
    /// The gateway's signing key (a fresh one is generated when none is given).
    pub key: Option<SecretKey>,
    /// If set, `start` and batch requests need `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// If set, every `start` and batch request is first `POST`ed (as JSON, see [`webhook`]) to this
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
            media_limits: MediaLimits::default(),
        }
    }
}

/// The gateway's shared state.
pub struct Gateway {
    pub config: GatewayConfig,
    key: SecretKey,
    http: reqwest::Client,
    streams: Mutex<HashMap<String, Arc<model::GwStream>>>,
    ledger: byoc_payment::Ledger,
    /// `host:port` of the RTMP ingest server, once it serves.
    rtmp_public: std::sync::OnceLock<String>,
    /// The WHIP/WHEP media server, once it serves.
    webrtc: std::sync::OnceLock<byoc_media::WebRtcServer>,
    /// Streams that ended lately, for a 410 with the reason.
    ended: Ended,
}

/// Streams that ended lately: (id, secret, why), the newest last. Only a request carrying the
/// stream's own secret learns that it ended and why; anyone else gets the 404 of an unknown id.
#[derive(Default)]
pub(crate) struct Ended(Mutex<std::collections::VecDeque<(String, String, String)>>);

/// How many ended streams the gateway remembers.
const REMEMBER_ENDED: usize = 4096;

impl Ended {
    fn remember(&self, id: &str, secret: &str, why: &str) {
        let mut ended = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() == REMEMBER_ENDED {
            ended.pop_front();
        }
        ended.push_back((id.to_string(), secret.to_string(), why.to_string()));
    }

    /// Why the stream `id` ended, if it did lately and `secret` is its own.
    fn why(&self, id: &str, secret: &str) -> Option<String> {
        let ended = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (_, own, why) = ended.iter().rev().find(|(i, _, _)| i == id)?;
        byoc_protocol::same_secret(secret.as_bytes(), own.as_bytes()).then(|| why.clone())
    }
}

impl Gateway {
    pub fn new(mut config: GatewayConfig) -> Result<Arc<Self>, reqwest::Error> {
        let key = config.key.take().unwrap_or_else(SecretKey::generate);
        tracing::info!(address = %key.address(), "gateway key");
        let http = byoc_trickle::http_client_builder().connect_timeout(Duration::from_secs(5)).build()?;
        Ok(Arc::new(Gateway {
            config,
            key,
            http,
            streams: Mutex::new(HashMap::new()),
            ledger: Default::default(),
            rtmp_public: Default::default(),
            webrtc: Default::default(),
            ended: Default::default(),
        }))
    }

    fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The gateway's address (the `sender` of its jobs).
    pub fn address(&self) -> byoc_payment::Address {
        self.key.address()
    }

    /// Ids of the running streams.
    pub fn stream_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<model::GwStream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn credential(&self) -> Result<EthAddressCredential, Refusal> {
        EthAddressCredential::new(&self.key).map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// Signs a job, stamped with the time (`request.issued_at`) so that an orchestrator can
    /// refuse it once stale, or replayed after its stream ended.
    fn sign(&self, mut job: JobRequest) -> Result<String, Refusal> {
        job.stamp_issued_at(byoc_protocol::now_ms())
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("invalid job: {e}")))?;
        job.sign(&self.key).map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(job.to_header())
    }

    /// The orchestrators to ask: the configured ones, then those of the refreshable list (an
    /// unreadable list is logged and skipped: the configured ones still serve).
    pub(crate) async fn pool(&self) -> Vec<String> {
        let mut pool = self.config.orchestrators.clone();
        let Some(source) = &self.config.orchestrator_list else { return pool };
        let text = if source.starts_with("http://") || source.starts_with("https://") {
            match self.http.get(source).timeout(self.config.token_timeout).send().await {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                Ok(r) => {
                    tracing::warn!(list = %source, status = %r.status(), "orchestrator list unavailable");
                    String::new()
                }
                Err(e) => {
                    tracing::warn!(list = %source, error = %e, "orchestrator list unavailable");
                    String::new()
                }
            }
        } else {
            tokio::fs::read_to_string(source).await.unwrap_or_else(|e| {
                tracing::warn!(list = %source, error = %e, "orchestrator list unreadable");
                String::new()
            })
        };
        let listed: Vec<String> = match serde_json::from_str::<Vec<String>>(&text) {
            Ok(v) => v,
            Err(_) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        };
        for url in listed {
            if (url.starts_with("http://") || url.starts_with("https://")) && !pool.contains(&url) {
                pool.push(url);
            }
        }
        pool
    }

    /// Stops every stream (gateway shutdown).
    pub async fn shutdown(self: &Arc<Self>) {
        let ids = self.stream_ids();
        for id in ids {
            failover::end(self, &id, "gateway shutting down", true).await;
        }
    }
}

/// The OpenAPI description of this API (kept true by `tests/openapi.rs`).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A refusal, boxed so that `Result`s stay small.
pub(crate) type Refusal = Box<Response>;

pub(crate) fn refuse(status: StatusCode, msg: impl Into<String>) -> Refusal {
    Box::new(error(status, msg))
}

fn check_api_key(gw: &Gateway, h: &http::HeaderMap) -> Result<(), Refusal> {
    let Some(expected) = &gw.config.api_key else { return Ok(()) };
    let given = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if byoc_protocol::same_secret(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(StatusCode::UNAUTHORIZED, "invalid API key"))
    }
}

/// Asks the operator's auth webhook whether a start or batch request may go on. The webhook gets
/// `{"kind": "stream"|"batch", "capability", "stream_id", "path", "params", "parameters",
/// "request", "authorization"}` (`authorization`: the client's `Authorization` header, so the
/// webhook can check its own tokens) and answers 2xx to allow; any other status refuses with 403
/// and the webhook's text; an unreachable webhook refuses with 503.
pub(crate) async fn webhook(gw: &Gateway, h: &http::HeaderMap, mut query: serde_json::Value) -> Result<(), Refusal> {
    let Some(url) = &gw.config.auth_webhook else { return Ok(()) };
    if let Some(o) = query.as_object_mut() {
        let auth = h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        o.insert("authorization".into(), auth.into());
    }
    let resp = gw
        .http
        .post(url)
        .timeout(Duration::from_secs(5))
        .json(&query)
        .send()
        .await
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, format!("auth webhook unreachable: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(200).collect();
    metrics::counter!("byoc_gateway_errors_total", "kind" => "webhook_refused").increment(1);
    Err(refuse(StatusCode::FORBIDDEN, format!("refused by the auth webhook ({status}): {text}")))
}

/// The gateway's routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/process/stream/start", post(start::start))
        .route("/process/stream/{id}/update", post(handlers::update))
        .route("/process/stream/{id}/stop", post(handlers::stop))
        .route("/process/stream/{id}/status", get(handlers::status))
        .route("/process/stream/{id}/data", get(handlers::data))
        .route("/process/stream/{id}/events", get(handlers::events))
        .route("/process/stream/{id}/ingest/{seq}", post(handlers::ingest))
        .route("/process/stream/{id}/egress/{seq}", get(handlers::egress))
        .route("/process/stream/{id}/whip", post(webrtc::whip))
        .route("/process/stream/{id}/whep", post(webrtc::whep))
        .route("/process/stream/{id}/player", get(webrtc::player))
        .route("/process/stream/{id}/whip/{session}", delete(webrtc::end_session))
        .route("/process/stream/{id}/whep/{session}", delete(webrtc::end_session))
        .route("/process/request/{*path}", post(batch::batch))
        .route("/metrics", get(byoc_protocol::telemetry::metrics))
        .route("/openapi.json", get(openapi))
        .with_state(gw)
}
