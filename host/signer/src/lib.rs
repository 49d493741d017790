//! `byoc signer`: a remote signer as go-livepeer's, for clients such as the official Python SDK
//! (`livepeer-gateway`) that hold no key of their own. It holds the paying key and never shows it
//! (not in logs, errors or responses), and serves:
//!
//! - `POST /sign-orchestrator-info`: the signer's address and its signature of the address text, for
//!   the orchestrator's `GetOrchestrator`;
//! - `POST /sign-byoc-job`: the sender and signature of a BYOC job (`request + parameters`);
//! - `POST /generate-live-payment`: a `Livepeer-Payment` of fresh tickets and `Livepeer-Segment`
//!   credentials for an `OrchestratorInfo`, with a session state signed by the signer (replays,
//!   states of other signers and of other orchestrators are refused; ticket nonces never repeat);
//! - `GET /discover-orchestrators`: the orchestrators of its own sources, filtered by capability.
//!
//! Every route needs the API key when one is set ([`SignerConfig::api_key`]); every map is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use byoc_net::LogThrottle;
use byoc_payment::{Address, Price, SecretKey};
use http::StatusCode;

mod discovery;
mod error;
mod payment;
mod sign;
pub mod state;
mod webhook;

pub use error::{ApiError, PRICE_TOO_HIGH};
pub use state::{PaymentState, SignedState};

/// The most tickets one payment may carry (go-livepeer's remote signer refuses more).
pub const MAX_TICKETS_PER_PAYMENT: u32 = 100;

/// What the signer does and with which key.
pub struct SignerConfig {
    /// The paying key: it signs jobs, tickets, segment credentials and states.
    pub key: SecretKey,
    /// Callers must send `Authorization: Bearer <api_key>`; `None`: anyone who can connect may call
    /// (the CLI allows that on a loopback address only).
    pub api_key: Option<String>,
    /// Seconds of the price a first payment (no state) covers: orchestrators want this much
    /// balance before a job starts.
    pub opening_seconds: u64,
    /// Most tickets per payment.
    pub max_tickets: u32,
    /// A ceiling on every price, wei per second.
    pub max_price: Option<Price>,
    /// Ceilings per BYOC capability, wei per second (over the global one for that capability).
    pub max_price_per_capability: HashMap<String, Price>,
    /// The auth webhook asked before a payment is made.
    pub webhook: Option<WebhookConfig>,
    /// Orchestrator URLs `/discover-orchestrators` lists (each polled at `GET {url}/capabilities`).
    pub orchestrators: Vec<String>,
    /// How often the orchestrators are polled.
    pub discovery_interval: Duration,
    /// Most entries of each map: sessions (for replays) and ticket nonces.
    pub max_entries: usize,
    /// Most bytes of a request body.
    pub max_body_bytes: usize,
}

impl SignerConfig {
    /// Defaults around `key`: no API key, 60 s opening payments, 100 tickets, no ceilings, no
    /// webhook, no orchestrators.
    pub fn new(key: SecretKey) -> SignerConfig {
        SignerConfig {
            key,
            api_key: None,
            opening_seconds: 60,
            max_tickets: MAX_TICKETS_PER_PAYMENT,
            max_price: None,
            max_price_per_capability: HashMap::new(),
            webhook: None,
            orchestrators: Vec::new(),
            discovery_interval: Duration::from_secs(60),
            max_entries: 100_000,
            max_body_bytes: 512 * 1024,
        }
    }
}

/// The auth webhook (go-livepeer's `-remoteSignerWebhookUrl`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where `POST {headers, state}` goes.
    pub url: String,
    /// Headers sent with it (e.g. its own `Authorization`).
    pub headers: Vec<(String, String)>,
    /// How long it may take.
    pub timeout: Duration,
}

/// Why a signer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The HTTP client (webhook, discovery) could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
}

/// The signer's state: its key, the bounded session and nonce maps, the discovery snapshot.
pub struct Signer {
    config: SignerConfig,
    address: Address,
    /// The last sequence number issued per state id.
    sessions: Mutex<state::Bounded<String, u64>>,
    /// The last ticket nonce used per recipient random hash.
    nonces: Mutex<state::Bounded<[u8; 32], u32>>,
    discovery: discovery::Snapshot,
    http: reqwest::Client,
    throttle: LogThrottle,
}

impl Signer {
    /// A signer with `config`.
    pub fn new(config: SignerConfig) -> Result<Arc<Signer>, SignerError> {
        if config.opening_seconds == 0 || config.max_tickets == 0 || config.max_entries == 0 {
            return Err(SignerError::Config("opening seconds, max tickets and max entries must be at least 1".into()));
        }
        let http = byoc_trickle::http_client_builder().connect_timeout(Duration::from_secs(5)).build()?;
        // Params expire within an hour of being issued; a session idle that long is over.
        let hour = Duration::from_secs(3600);
        Ok(Arc::new(Signer {
            address: config.key.address(),
            sessions: Mutex::new(state::Bounded::new(config.max_entries, hour)),
            nonces: Mutex::new(state::Bounded::new(config.max_entries, hour)),
            discovery: discovery::Snapshot::default(),
            http,
            throttle: LogThrottle::new(),
            config,
        }))
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Polls the configured orchestrators every [`SignerConfig::discovery_interval`] until `cancel`.
    pub fn spawn_discovery(
        self: &Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { discovery::run(me, cancel).await })
    }

    /// The ceiling for `capability` (its own, else the global one).
    fn ceiling(&self, capability: Option<&str>) -> Option<Price> {
        capability.and_then(|c| self.config.max_price_per_capability.get(c).copied()).or(self.config.max_price)
    }

    /// Counts and logs (throttled) a refusal on `route`.
    fn refused(&self, route: &'static str, e: &ApiError) {
        metrics::counter!("byoc_signer_refused_total", "route" => route, "reason" => e.reason).increment(1);
        if let Some(held) = self.throttle.allow() {
            tracing::info!(route, status = e.status.as_u16(), error = %e.message, held, "signer request refused");
        }
    }
}

/// The signer's routes, each behind the API key, bodies limited.
pub fn router(signer: Arc<Signer>) -> Router {
    let limit = signer.config.max_body_bytes;
    Router::new()
        .route("/sign-orchestrator-info", post(sign::orchestrator_info))
        .route("/sign-byoc-job", post(sign::byoc_job))
        .route("/generate-live-payment", post(payment::generate))
        .route("/discover-orchestrators", get(discovery::list))
        .route("/metrics", get(|| byoc_protocol::telemetry::metrics(byoc_protocol::telemetry::Node::Signer)))
        .layer(middleware::from_fn_with_state(signer.clone(), require_key))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(signer)
}

/// Refuses (401) a request without the API key, compared in constant time.
async fn require_key(State(signer): State<Arc<Signer>>, req: Request, next: Next) -> Response {
    if let Some(key) = &signer.config.api_key {
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !byoc_protocol::same_secret(given.as_bytes(), key.as_bytes()) {
            let e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth",
                "this signer needs its API key (Authorization: Bearer …)",
            );
            signer.refused("auth", &e);
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests;
