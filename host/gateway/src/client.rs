//! The gateway's one way of talking to orchestrators: tokens (discovery), and signed jobs `POST`ed to
//! an orchestrator route with the `Livepeer` header, an optional payment, a timeout, and answers read
//! up to a bound. Every start, update, stop, payment and batch job goes through [`OrchestratorClient`].

use std::time::Duration;

use axum::body::Bytes;
use byoc_payment::job::{EthAddressCredential, JobRequest};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::discovery::{Candidate, OrchestratorFilter, Token, discover, fetch_token};
use crate::error::ApiError;
use crate::signer::Signing;
use byoc_protocol::headers;

pub(crate) use crate::answer::{answer_body, refusal_text};

/// The HTTP client and the signer (own key or remote) the gateway's jobs go out with.
pub(crate) struct OrchestratorClient {
    http: reqwest::Client,
    signing: Signing,
}

/// A job on its way to an orchestrator route (`url`); it is signed on sending.
pub(crate) struct JobPost {
    /// The route's full URL.
    pub(crate) url: String,
    /// The job, unsigned.
    pub(crate) job: JobRequest,
    /// How long the orchestrator may take to answer.
    pub(crate) timeout: Duration,
    /// The body's `Content-Type`, if any.
    pub(crate) content_type: Option<HeaderValue>,
    /// A `Livepeer-Payment` header, if the job pays.
    pub(crate) payment: Option<String>,
    /// The request body.
    pub(crate) body: Bytes,
}

impl JobPost {
    /// A job for `url` with no body, no payment and this `timeout`.
    pub(crate) fn new(url: String, job: JobRequest, timeout: Duration) -> JobPost {
        JobPost { url, job, timeout, content_type: None, payment: None, body: Bytes::new() }
    }

    /// With a JSON body.
    pub(crate) fn json(self, body: impl Into<Bytes>) -> JobPost {
        JobPost { content_type: Some(HeaderValue::from_static("application/json")), body: body.into(), ..self }
    }
}

/// Why a job did not reach its orchestrator.
#[derive(Debug)]
pub(crate) enum PostError {
    /// The job could not be signed (the client's answer says why).
    Sign(ApiError),
    /// The orchestrator could not be reached (or did not answer in time).
    Unreachable(reqwest::Error),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Sign(_) => f.write_str("could not sign the job"),
            PostError::Unreachable(e) => e.fmt(f),
        }
    }
}

impl From<PostError> for ApiError {
    fn from(e: PostError) -> ApiError {
        match e {
            PostError::Sign(e) => e,
            PostError::Unreachable(e) => ApiError::unreachable(e),
        }
    }
}

/// A job about the stream `id` (its `request` is `{"stream_id": id}`).
pub(crate) fn stream_job(id: &str, capability: &str, parameters: &str, timeout_seconds: i64) -> JobRequest {
    JobRequest {
        id: id.to_string(),
        request: json!({ "stream_id": id }).to_string(),
        parameters: parameters.to_string(),
        capability: capability.to_string(),
        timeout_seconds,
        ..JobRequest::default()
    }
}

/// How long an orchestrator may take over a job with this `timeout_seconds` (bounded to 1 s..1 h),
/// plus 5 s for the way there and back.
pub(crate) fn answer_timeout(timeout_seconds: i64) -> Duration {
    Duration::from_secs(timeout_seconds.clamp(1, 3600).unsigned_abs() + 5)
}

impl OrchestratorClient {
    /// A client signing as `signing` says.
    pub(crate) fn new(signing: Signing) -> Result<OrchestratorClient, reqwest::Error> {
        let http = byoc_trickle::http_client_builder().connect_timeout(Duration::from_secs(5)).build()?;
        Ok(OrchestratorClient { http, signing })
    }

    /// The HTTP client (also for the trickle channels, the orchestrator list and the auth webhook).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Who signs and pays.
    pub(crate) fn signing(&self) -> &Signing {
        &self.signing
    }

    /// The credential token requests carry.
    pub(crate) fn credential(&self) -> Result<EthAddressCredential, ApiError> {
        self.signing.credential().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
    }

    /// Signs a job, stamped with the time (`request.issued_at`) so that an orchestrator can
    /// refuse it once stale, or replayed after its stream ended. A remote signer that cannot sign
    /// makes this a 502.
    pub(crate) async fn sign(&self, mut job: JobRequest) -> Result<String, ApiError> {
        job.stamp_issued_at(byoc_protocol::now_ms()).map_err(|e| ApiError::bad_request(format!("invalid job: {e}")))?;
        let status = match self.signing {
            Signing::Local(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Signing::Remote(_) => StatusCode::BAD_GATEWAY,
        };
        self.signing.sign(&mut job).await.map_err(|e| ApiError::new(status, format!("could not sign the job: {e}")))?;
        Ok(job.to_header())
    }

    /// Signs `post.job` and sends it; any answer is returned (its status is the caller's to judge).
    pub(crate) async fn post(&self, post: JobPost) -> Result<reqwest::Response, PostError> {
        let signed = self.sign(post.job).await.map_err(PostError::Sign)?;
        let mut req = self.http.post(post.url).header(headers::LIVEPEER, signed).timeout(post.timeout).body(post.body);
        if let Some(ct) = post.content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(p) = post.payment {
            req = req.header(headers::PAYMENT, p);
        }
        req.send().await.map_err(PostError::Unreachable)
    }

    /// A token from each orchestrator of `pool` that `filter` lets through, in parallel: those with
    /// room for `capability`, and why the others were skipped.
    pub(crate) async fn discover(
        &self,
        pool: &[String],
        filter: &OrchestratorFilter,
        capability: &str,
        timeout: Duration,
    ) -> Result<(Vec<Candidate>, Vec<String>), ApiError> {
        let credential = self.credential()?;
        Ok(discover(&self.http, pool, filter, capability, &credential, timeout).await)
    }

    /// A fresh token from one orchestrator.
    pub(crate) async fn token(&self, orchestrator: &str, capability: &str, timeout: Duration) -> Result<Token, String> {
        let credential = self.credential().map_err(|_| "no credential".to_string())?.to_header();
        fetch_token(&self.http, orchestrator, &credential, capability, timeout).await
    }
}
