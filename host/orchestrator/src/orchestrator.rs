//! The orchestrator's shared state and configuration, and the checks every job goes through
//! (the `Livepeer` header: parsed, signature verified, fresh).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use byoc_payment::job::{JobError, JobRequest, SignaturePolicy};
use byoc_payment::proto::AuthToken;
use byoc_payment::{Address, SecretKey, segcreds};
use byoc_protocol::headers;
use byoc_trickle::TrickleStore;
use http::HeaderMap;

use crate::backend::BackendError;
use crate::error::ApiError;
use crate::payments::{PaymentSettings, Payments};
use crate::registry::{Capability, Registry, ReserveError, Reserved};
use crate::streams::{StreamInfo, Streams};

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
    /// Bounds on the encoder settings a frame plugin's stream may ask for in `params.encoder`
    /// (a stream asking beyond them is refused at start with 400).
    pub frame_encoding: byoc_frames::EncodeLimits,
    /// How long a session token handed out over gRPC (`OrchestratorInfo.auth_token`) is valid, and so
    /// the `Livepeer-Segment` credentials carrying it (go-livepeer: 30 minutes).
    pub auth_token_ttl: Duration,
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
            frame_encoding: byoc_frames::EncodeLimits::default(),
            auth_token_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// Why an orchestrator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The HTTP client (for workers) could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// Priced mode could not start (the ticket store, on-chain mode).
    #[error("{0}")]
    Payments(String),
}

/// The plugins this node offers, for `POST /plugins/reload`.
#[derive(Clone)]
pub(crate) struct OfferedPlugins {
    pub(crate) runtime: Arc<byoc_runtime::Runtime>,
    /// The capacity of a plugin that gives no hint.
    pub(crate) default_capacity: u32,
}

/// A job whose `Livepeer` header passed every check.
pub(crate) struct VerifiedJob {
    pub(crate) job: JobRequest,
    /// Who signed it (`None`: unsigned, in free mode).
    pub(crate) sender: Option<Address>,
}

/// The orchestrator's shared state.
pub struct Orchestrator {
    /// How it runs.
    pub config: OrchestratorConfig,
    /// The capabilities it offers.
    pub registry: Registry,
    /// Its trickle channels (served under `/ai/trickle/`).
    pub trickle: TrickleStore,
    pub(crate) streams: Streams,
    pub(crate) http: reqwest::Client,
    /// Priced mode; `None` without a node key (then priced capabilities cannot be paid for).
    pub(crate) payments: Option<Payments>,
    /// The plugins offered here, if any (for `POST /plugins/reload`).
    plugins: Mutex<Option<OfferedPlugins>>,
    /// The key of the session tokens handed out over gRPC (and checked in `Livepeer-Segment`):
    /// random per process, so a restart voids the tokens handed out before it.
    session_secret: String,
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
            Some(k) => Some(Payments::new(k, config.payments.clone()).map_err(OrchestratorError::Payments)?),
            None => None,
        };
        let orch = Arc::new(Orchestrator {
            payments,
            config,
            registry: Registry::new(),
            streams: Streams::new(trickle.clone()),
            trickle,
            http,
            plugins: Mutex::new(None),
            session_secret: byoc_payment::random_hex(32),
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
        *self.plugins.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(OfferedPlugins { runtime: runtime.clone(), default_capacity });
        self.registry.register_plugins(runtime, default_capacity)
    }

    /// The plugins offered here, if any.
    pub(crate) fn offered_plugins(&self) -> Option<OfferedPlugins> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Currently running streams.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.streams.list()
    }

    /// Stops every stream (node shutdown): workers are told, channels closed, capacity freed.
    pub async fn shutdown(self: &Arc<Self>) {
        self.streams.end_all(crate::streams::EndReason::ShuttingDown).await;
        if let Some(p) = &self.payments {
            p.persist().await;
        }
    }

    /// Parses and verifies the `Livepeer` job header.
    pub(crate) fn job(&self, h: &HeaderMap) -> Result<VerifiedJob, ApiError> {
        let value = h
            .get(headers::LIVEPEER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::bad_request("missing Livepeer job header"))?;
        let job = JobRequest::from_header(value).map_err(job_error)?;
        byoc_protocol::check_timeout(&job).map_err(ApiError::bad_request)?;
        let sender = job.verify(self.config.signatures).map_err(job_error)?;
        if sender.is_some() {
            self.check_fresh(&job)?;
        }
        self.check_segment(h, sender)?;
        // A payment is credited to the job's sender: an unsigned job's payment could only be
        // dropped, so it is refused rather than silently ignored.
        if sender.is_none() && self.payments.is_some() && h.contains_key(headers::PAYMENT) {
            return Err(ApiError::bad_request("a payment needs a signed job (the payer is its sender)"));
        }
        Ok(VerifiedJob { job, sender })
    }

    /// The session token for `session_id` valid until `expiration` (Unix seconds).
    pub(crate) fn auth_token(&self, session_id: &str, expiration: i64) -> AuthToken {
        segcreds::auth_token(self.session_secret.as_bytes(), session_id, expiration)
    }

    /// Checks a request's `Livepeer-Segment`, if it has one: signed by the job's `sender`, carrying an
    /// unexpired session token of this node's (400 naming why not). None: nothing to check (go-livepeer's
    /// BYOC routes do not require it).
    pub(crate) fn check_segment(&self, h: &HeaderMap, sender: Option<Address>) -> Result<(), ApiError> {
        let Some(value) = h.get(headers::SEGMENT) else { return Ok(()) };
        let refused = |m: &dyn std::fmt::Display| ApiError::bad_request(format!("invalid Livepeer-Segment: {m}"));
        let value = value.to_str().map_err(|e| refused(&e))?;
        let sender = sender.ok_or_else(|| refused(&"segment credentials need a signed job (the sender signs them)"))?;
        let now = i64::try_from(byoc_protocol::now_ms() / 1000).unwrap_or(i64::MAX);
        segcreds::verify_seg_creds(value, &sender, self.session_secret.as_bytes(), now).map_err(|e| refused(&e))?;
        Ok(())
    }

    /// The price a job pays for `cap` here, in the wire form: nothing without a key (free mode), whatever
    /// the announced price.
    pub(crate) fn charged_price(&self, cap: &Capability) -> byoc_payment::Price {
        match &self.payments {
            Some(_) => crate::payments::price_of(cap),
            None => byoc_payment::Price { price_per_unit: 0, pixels_per_unit: 1 },
        }
    }

    /// Takes a slot of a job's capability (503 if unknown or full).
    pub(crate) fn reserve(&self, capability: &str) -> Result<Reserved, ApiError> {
        self.registry.reserve(capability).map_err(|e @ (ReserveError::Unknown(_) | ReserveError::Full(_))| {
            ApiError::unavailable(format!("No capacity available for capability: {e}"))
        })
    }

    /// A backend's refusal as the client's; a worker that is gone loses its registration.
    pub(crate) fn refused(&self, cap: &Arc<Capability>, e: BackendError) -> ApiError {
        if e.worker_gone {
            self.registry.forget(cap);
        }
        e.error
    }

    /// A signed job's `issued_at` must be recent (see [`OrchestratorConfig::signed_job_max_age`]).
    fn check_fresh(&self, job: &JobRequest) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::bad_request(m));
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
    ApiError::bad_request(format!("invalid job: {e}"))
}

/// How long a job may take: its `timeout_seconds`, within 1 s and an hour.
pub(crate) fn job_timeout(job: &JobRequest) -> Duration {
    Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_timeout_is_between_a_second_and_an_hour() {
        let with = |timeout_seconds| JobRequest { timeout_seconds, ..Default::default() };
        assert_eq!(job_timeout(&with(0)), Duration::from_secs(1));
        assert_eq!(job_timeout(&with(-5)), Duration::from_secs(1));
        assert_eq!(job_timeout(&with(10)), Duration::from_secs(10));
        assert_eq!(job_timeout(&with(1_000_000)), Duration::from_secs(3600));
    }
}
