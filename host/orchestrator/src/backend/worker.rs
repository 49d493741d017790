//! External HTTP workers (go-livepeer's BYOC worker protocol, as pytrickle serves it): streams
//! are started, updated and stopped with `POST /stream/start|params|stop`, batch jobs forwarded
//! to `POST /{path}`, every request with the worker's bearer token.

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use byoc_protocol::headers;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::call::{BackendError, BatchAnswer, BatchJob, StreamStart};
use crate::channels;
use crate::error::ApiError;

/// How long a worker has to answer a stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// An external worker: where it is and the token it expects.
#[derive(Clone)]
pub struct Worker {
    url: String,
    token: Option<String>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Worker").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Worker {
    /// The worker at `url` (an absolute http(s) URL), expecting `token` if any.
    pub(crate) fn new(url: &str, token: Option<String>) -> Worker {
        Worker { url: url.trim_end_matches('/').to_string(), token }
    }

    /// Whether `token` is the one this worker registered with (compared in constant time).
    pub(crate) fn has_token(&self, token: Option<&str>) -> bool {
        byoc_protocol::same_secret(
            self.token.as_deref().unwrap_or_default().as_bytes(),
            token.unwrap_or_default().as_bytes(),
        )
    }

    /// A `POST {url}{path}` with the worker's token: how every request reaches a worker.
    fn post(&self, http: &reqwest::Client, path: &str, timeout: Duration) -> reqwest::RequestBuilder {
        let req = http.post(format!("{}{path}", self.url)).timeout(timeout);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// A stream `id`'s connection to this worker.
    pub(crate) fn stream(&self, http: &reqwest::Client, id: &str) -> WorkerStream {
        WorkerStream { worker: self.clone(), http: http.clone(), id: id.to_string() }
    }

    /// Forwards a batch job, the answer streamed back as it comes.
    pub(crate) async fn batch(&self, http: &reqwest::Client, job: BatchJob<'_>) -> Result<BatchAnswer, BackendError> {
        let mut req = self
            .post(http, &format!("/{}", job.route.encoded()), job.timeout)
            .body(reqwest::Body::wrap_stream(job.body.into_data_stream()));
        if let Some(ct) = job.headers.get(http::header::CONTENT_TYPE) {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let sender = job.sender.as_ref().map(tracing::field::display);
        tracing::info!(capability = %job.capability, sender, path = %job.route.decoded(), "batch job");
        let label = byoc_protocol::telemetry::capability_label(job.capability);
        metrics::counter!("byoc_orchestrator_batch_jobs_total", "capability" => label).increment(1);
        let failed = |error: ApiError, worker_gone: bool| BackendError { error, why: "worker failed", worker_gone };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(failed(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "worker did not answer in time"), false));
            }
            Err(e) => {
                // A worker that cannot be reached must register again once it is back.
                if e.is_connect() {
                    tracing::warn!(capability = %job.capability, error = %e, "worker unreachable, capability removed");
                }
                return Err(failed(unreachable(&e), e.is_connect()));
            }
        };
        if resp.status() == StatusCode::UNAUTHORIZED {
            tracing::warn!(capability = %job.capability, "worker refused our token, capability removed");
            return Err(failed(ApiError::internal("Orchestrator worker auth token failed"), true));
        }
        let mut out = Response::builder().status(resp.status());
        for name in [http::header::CONTENT_TYPE.as_str(), headers::METADATA] {
            if let Some(v) = resp.headers().get(name) {
                out = out.header(name, v);
            }
        }
        let out = out
            .body(Body::from_stream(resp.bytes_stream()))
            .map_err(|e| failed(ApiError::internal(format!("response: {e}")), false))?;
        Ok(BatchAnswer::Streaming(out))
    }
}

/// The answer to a request that never reached the worker.
fn unreachable(e: &reqwest::Error) -> ApiError {
    ApiError::internal(format!("Error sending request to worker: {e}"))
}

/// A stream served by an external worker.
pub(crate) struct WorkerStream {
    worker: Worker,
    http: reqwest::Client,
    id: String,
}

impl WorkerStream {
    /// A `POST` about this stream (`X-Stream-Id`).
    fn post(&self, path: &str, timeout: Duration) -> reqwest::RequestBuilder {
        self.worker.post(&self.http, path, timeout).header(headers::STREAM_ID, &self.id)
    }

    /// `POST /stream/start`: the gateway's start body, with the URLs of the stream's channels.
    pub(crate) async fn start(&self, start: StreamStart<'_>) -> Result<(), BackendError> {
        let mut body = start.request;
        body.insert("gateway_request_id".into(), start.id.into());
        for ch in start.channels.announced() {
            body.insert(ch.worker_field.into(), channels::url(start.service_url, ch.name).into());
        }
        let req = self
            .post("/stream/start", start.timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::Value::Object(body).to_string());
        let resp = req.send().await.map_err(|e| BackendError {
            error: unreachable(&e),
            why: "worker unreachable at start",
            worker_gone: false,
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(BackendError {
                error: ApiError::internal("Orchestrator worker failure"),
                why: "worker refused our token",
                worker_gone: true,
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(BackendError {
                error: ApiError::new(status, text),
                why: "worker refused the stream",
                worker_gone: false,
            });
        }
        Ok(())
    }

    /// `POST /stream/params` with the gateway's update; the worker's answer is relayed.
    pub(crate) async fn update(&self, body: Bytes, timeout: Duration) -> Result<Response, ApiError> {
        let req = self.post("/stream/params", timeout).header(http::header::CONTENT_TYPE, "application/json");
        let resp = req.body(body).send().await.map_err(|e| unreachable(&e))?;
        Ok(relay(resp).await)
    }

    /// `POST /stream/stop` with the gateway's body; the worker's answer is relayed (200 if it
    /// gives none: the stream is over here either way).
    pub(crate) async fn stop(&self, body: Bytes, content_type: Option<&HeaderValue>) -> Response {
        let mut req = self.post("/stream/stop", STOP_TIMEOUT).body(body);
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        match req.send().await {
            Ok(resp) => relay(resp).await,
            Err(e) => {
                tracing::debug!(stream_id = %self.id, error = %e, "worker stop failed");
                StatusCode::OK.into_response()
            }
        }
    }

    /// `POST /stream/stop` with why the stream ended, best effort.
    pub(crate) async fn end(&self, why: &str) {
        if let Err(e) = self.post("/stream/stop", STOP_TIMEOUT).body(why.to_string()).send().await {
            tracing::debug!(stream_id = %self.id, error = %e, "worker stop failed");
        }
    }
}

/// The worker's answer as the client's: status, content type and body.
async fn relay(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let ct = resp.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = resp.bytes().await.unwrap_or_default();
    let mut out = (status, body).into_response();
    if let Some(ct) = ct {
        out.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_shows_its_url_never_its_token() {
        let w = Worker::new("http://w:1/", Some("sekrit".into()));
        let shown = format!("{w:?}");
        assert!(shown.contains("\"http://w:1\"") && !shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn a_worker_is_held_by_its_token() {
        let w = Worker::new("http://w:1", Some("a".into()));
        assert!(w.has_token(Some("a")));
        assert!(!w.has_token(Some("b")) && !w.has_token(None));
        assert!(Worker::new("http://w:1", None).has_token(None));
    }
}
