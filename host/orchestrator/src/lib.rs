//! The orchestrator: capability registration, job tokens, batch jobs and streams, with its
//! trickle server under `/ai/trickle/`. Same paths, headers, JSON and status codes as
//! go-livepeer's BYOC orchestrator, minus its bugs (see the README).

mod batch;
mod capabilities;
mod capacity;
mod channels;
mod payments;
mod plugin_stream;
mod registry;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use byoc_payment::SecretKey;
use byoc_payment::job::{JobError, JobRequest, SignaturePolicy};
use byoc_trickle::TrickleStore;
use http::{HeaderMap, StatusCode};

pub use payments::PaymentSettings;

pub use capacity::{Capacity, CapacityError, Reservation};
pub use channels::StreamChannels;
pub use registry::{Capability, Price, Registry, WorkerRegistration};
pub use stream::StreamInfo;

/// Header names of the BYOC protocol (see `byoc-protocol`).
pub use byoc_protocol::headers;

/// How an orchestrator runs.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// The URL gateways and workers reach this node at (trickle URLs are built from it).
    pub service_url: String,
    /// Secret workers must present in `Authorization` to register.
    pub secret: Option<String>,
    /// Let workers register without a secret when none is configured (off by default).
    pub open_registration: bool,
    /// Accept unsigned jobs (free mode, no keystore needed).
    pub signatures: SignaturePolicy,
    /// The node's own key, if any.
    pub key: Option<SecretKey>,
    /// Largest request body accepted on start/update/stop (go-livepeer: 10 MiB).
    pub max_body_bytes: usize,
    /// A stream whose control channel has seen no activity for this long is stopped (the
    /// gateway publishes a keepalive every 10 s).
    pub stream_idle_timeout: Duration,
    /// How often a plugin stream publishes a heartbeat event.
    pub heartbeat_every: Duration,
    /// Priced mode (used when the node has a key and a capability has a price).
    pub payments: PaymentSettings,
    /// A signed job must carry `request.issued_at` (ms since the Unix epoch) no older than this
    /// (and no more than [`CLOCK_SKEW`] ahead): a captured header is refused once stale.
    pub signed_job_max_age: Duration,
    /// Accept signed jobs without `issued_at`, and stream starts whose `request` names no
    /// `stream_id`, as go-livepeer's gateways send them. Such jobs can be replayed until their
    /// stream id is reused; off by default (on in `byoc dev`'s free mode).
    pub accept_unstamped_jobs: bool,
}

/// How far ahead of this node's clock a job's `issued_at` may be.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            service_url: "http://127.0.0.1:8935".into(),
            secret: None,
            open_registration: false,
            signatures: SignaturePolicy::Required,
            key: None,
            max_body_bytes: 10 << 20,
            stream_idle_timeout: Duration::from_secs(60),
            heartbeat_every: Duration::from_secs(10),
            payments: PaymentSettings::default(),
            signed_job_max_age: Duration::from_secs(120),
            accept_unstamped_jobs: false,
        }
    }
}

/// Why an orchestrator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("ticket store: {0}")]
    TicketStore(byoc_payment::StoreError),
}

/// The orchestrator's shared state.
pub struct Orchestrator {
    pub config: OrchestratorConfig,
    pub registry: Registry,
    pub trickle: TrickleStore,
    pub(crate) streams: stream::Streams,
    pub(crate) http: reqwest::Client,
    /// Priced mode; `None` without a node key (then priced capabilities cannot be paid for).
    pub(crate) payments: Option<payments::Payments>,
    /// The plugins offered here, if any (for `POST /plugins/reload`).
    plugins: std::sync::Mutex<Option<(Arc<byoc_runtime::Runtime>, u32)>>,
}

impl Orchestrator {
    /// A new orchestrator over `trickle` (which it serves under `/ai/trickle/`).
    pub fn new(config: OrchestratorConfig, trickle: TrickleStore) -> Result<Arc<Self>, OrchestratorError> {
        let http = byoc_trickle::http_client_builder().connect_timeout(Duration::from_secs(5)).build()?;
        if config.signatures == SignaturePolicy::AllowUnsigned {
            tracing::warn!(
                "free mode: unsigned jobs are accepted (no keystore needed); do not expose this node publicly"
            );
        }
        let payments = match &config.key {
            Some(k) => {
                Some(payments::Payments::new(k, config.payments.clone()).map_err(OrchestratorError::TicketStore)?)
            }
            None => None,
        };
        let orch = Arc::new(Orchestrator {
            payments,
            config,
            registry: Registry::new(),
            trickle,
            streams: stream::Streams::default(),
            http,
            plugins: std::sync::Mutex::new(None),
        });
        // Balances are saved every few seconds (winning tickets are saved at once).
        if orch.payments.is_some()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let weak = Arc::downgrade(&orch);
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let Some(orch) = weak.upgrade() else { return };
                    if let Some(p) = &orch.payments {
                        p.persist().await;
                    }
                }
            });
        }
        Ok(orch)
    }

    /// Offers every plugin of `runtime` as a capability (`default_capacity` when a plugin gives
    /// no hint) and remembers the runtime for `POST /plugins/reload`.
    pub fn offer_plugins(&self, runtime: &Arc<byoc_runtime::Runtime>, default_capacity: u32) -> Vec<String> {
        *self.plugins.lock().unwrap_or_else(|e| e.into_inner()) = Some((runtime.clone(), default_capacity));
        self.registry.register_plugins(runtime, default_capacity)
    }

    fn plugin_runtime(&self) -> Option<(Arc<byoc_runtime::Runtime>, u32)> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Currently running streams.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.streams.list()
    }

    /// Stops every stream (node shutdown): workers are told, channels closed, capacity freed.
    pub async fn shutdown(self: &Arc<Self>) {
        stream::stop_all(self).await;
        if let Some(p) = &self.payments {
            p.persist().await;
        }
    }

    fn channel_url(&self, name: &str) -> String {
        format!("{}/ai/trickle/{name}", self.config.service_url.trim_end_matches('/'))
    }

    /// Parses and verifies the `Livepeer` job header.
    fn job(&self, h: &HeaderMap) -> Result<(JobRequest, Option<byoc_payment::Address>), ApiError> {
        let value = h
            .get(headers::LIVEPEER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "missing Livepeer job header".into()))?;
        let job = JobRequest::from_header(value).map_err(job_error)?;
        byoc_protocol::check_timeout(&job).map_err(|m| ApiError(StatusCode::BAD_REQUEST, m.into()))?;
        let sender = job.verify(self.config.signatures).map_err(job_error)?;
        if sender.is_some() {
            self.check_fresh(&job)?;
        }
        // A payment is credited to the job's sender: an unsigned job's payment could only be
        // dropped, so it is refused rather than silently ignored.
        if sender.is_none() && self.payments.is_some() && h.contains_key(headers::PAYMENT) {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "a payment needs a signed job (the payer is its sender)".into(),
            ));
        }
        Ok((job, sender))
    }
}

impl Orchestrator {
    /// A signed job's `issued_at` must be recent (see [`OrchestratorConfig::signed_job_max_age`]).
    fn check_fresh(&self, job: &JobRequest) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError(StatusCode::BAD_REQUEST, m));
        let Some(issued) = job.issued_at() else {
            if self.config.accept_unstamped_jobs {
                return Ok(());
            }
            return bad("a signed job must carry request.issued_at (ms since the Unix epoch); \
                this orchestrator does not accept unstamped jobs (--accept-unstamped-jobs)"
                .into());
        };
        let now = byoc_protocol::now_ms();
        let max_age = u64::try_from(self.config.signed_job_max_age.as_millis()).unwrap_or(u64::MAX);
        let skew = u64::try_from(CLOCK_SKEW.as_millis()).unwrap_or(u64::MAX);
        if issued.saturating_add(max_age) < now {
            return bad(format!("job expired: issued {} s ago (at most {} s)", (now - issued) / 1000, max_age / 1000));
        }
        if issued > now.saturating_add(skew) {
            return bad("job issued in the future (check the sender's clock)".into());
        }
        Ok(())
    }
}

fn job_error(e: JobError) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("invalid job: {e}"))
}

/// A refusal: status and plain-text message.
#[derive(Debug)]
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// A plain-text error, as go-livepeer's `http.Error` writes them.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], m).into_response()
}

/// The orchestrator's routes, including its trickle server under `/ai/trickle`.
pub fn router(orch: Arc<Orchestrator>) -> Router {
    Router::new()
        .route("/capability/register", post(capabilities::register))
        .route("/capability/unregister", post(capabilities::unregister))
        .route("/process/token", get(capabilities::token))
        .route("/process/request/{*path}", post(batch::process))
        .route("/ai/stream/start", any(stream::start))
        .route("/ai/stream/stop", any(stream::stop))
        .route("/ai/stream/update", any(stream::update))
        .route("/ai/stream/payment", any(stream::payment))
        .route("/plugins/reload", post(capabilities::reload_plugins))
        .route("/metrics", get(metrics))
        .with_state(orch.clone())
        .nest("/ai/trickle", byoc_trickle::router(orch.trickle.clone()))
}

/// `GET /metrics`, with the capacity of every capability read at the time of the scrape.
async fn metrics(axum::extract::State(orch): axum::extract::State<Arc<Orchestrator>>) -> Response {
    for name in orch.registry.names() {
        if let Some(cap) = orch.registry.get(&name) {
            let (in_use, limit) = (f64::from(cap.capacity.in_use()), f64::from(cap.capacity.limit()));
            metrics::gauge!("byoc_capacity_in_use", "capability" => name.clone()).set(in_use);
            metrics::gauge!("byoc_capacity_limit", "capability" => name).set(limit);
        }
    }
    if let Some(p) = &orch.payments {
        for (capability, wei) in p.totals() {
            metrics::gauge!("byoc_orchestrator_balance_wei", "capability" => capability).set(wei);
        }
    }
    byoc_protocol::telemetry::metrics().await
}
