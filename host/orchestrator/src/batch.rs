//! `POST /process/request/{path}`: one batch job, forwarded to the capability's worker with the
//! response (plain or SSE) streamed back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::{Orchestrator, error, headers};
use crate::registry::{Backend, ReserveError};

pub(super) async fn process(
    State(orch): State<Arc<Orchestrator>>,
    uri: http::Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    // Checked before anything else: the route is forwarded to the worker, and must not reach
    // any of its other routes (its `/stream/*`, say) whatever the client wrote.
    let route = match byoc_protocol::BatchPath::from_request_path(uri.path()) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (job, sender) = match orch.job(&h) {
        Ok(j) => j,
        Err(r) => return r.into_response(),
    };
    let (cap, reservation) = match orch.registry.reserve(&job.capability) {
        Ok(v) => v,
        Err(e @ (ReserveError::Unknown(_) | ReserveError::Full(_))) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("No capacity available for capability: {e}"));
        }
    };
    // Priced: paid before (the job's tickets, the minimum balance), charged for its time after.
    let charge = match super::payments::prepare(&orch, &h, sender, &cap, None).await {
        Ok(payer) => Charge { orch: orch.clone(), payer, began: Instant::now() },
        Err(r) => return r.into_response(),
    };
    let (url, token) = match &cap.backend {
        Backend::Worker { url, token } => (url, token),
        Backend::Plugin { .. } => {
            let Some(plugin) = cap.backend.plugin() else {
                return error(StatusCode::SERVICE_UNAVAILABLE, "the plugin is not loaded");
            };
            let mut result = process_with_plugin(&orch, &plugin, &route, &h, body).await;
            drop(reservation);
            let balance = charge.finish();
            result.headers_mut().insert(headers::BALANCE, super::payments::balance_header(&balance));
            return result;
        }
    };
    let timeout = Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs());
    let mut req = orch
        .http
        .post(format!("{}/{}", url.trim_end_matches('/'), route.encoded()))
        .timeout(timeout)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    if let Some(ct) = h.get(http::header::CONTENT_TYPE) {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    tracing::info!(capability = %cap.name, sender = ?sender, path = %route.decoded(), "batch job");
    metrics::counter!("byoc_orchestrator_batch_jobs_total", "capability" => cap.name.clone()).increment(1);
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return error(StatusCode::GATEWAY_TIMEOUT, "worker did not answer in time"),
        Err(e) if e.is_connect() => {
            // A worker that cannot be reached must register again once it is back.
            orch.registry.forget(&cap);
            tracing::warn!(capability = %cap.name, error = %e, "worker unreachable, capability removed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("Error sending request to worker: {e}"));
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("Error sending request to worker: {e}")),
    };
    if resp.status() == StatusCode::UNAUTHORIZED {
        orch.registry.forget(&cap);
        tracing::warn!(capability = %cap.name, "worker refused our token, capability removed");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Orchestrator worker auth token failed");
    }
    let status = resp.status();
    let mut out = Response::builder().status(status);
    for name in [http::header::CONTENT_TYPE.as_str(), headers::METADATA] {
        if let Some(v) = resp.headers().get(name) {
            out = out.header(name, v);
        }
    }
    out = out.header(headers::BALANCE, super::payments::balance_header(&charge.balance_now()));
    // The slot stays reserved, and the time charged, until the whole answer has been streamed
    // (or the client left).
    let stream = resp.bytes_stream().map(move |chunk| {
        let _held = (&reservation, &charge);
        chunk
    });
    out.body(Body::from_stream(stream))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("response: {e}")))
}

/// Charges a batch job for its time, in whole seconds rounded up (as go-livepeer does), once:
/// when the job's answer is complete or abandoned.
struct Charge {
    orch: Arc<Orchestrator>,
    payer: Option<super::payments::Payer>,
    began: Instant,
}

impl Charge {
    fn cost(&self) -> Option<(&super::payments::Payer, byoc_payment::Balance)> {
        let payer = self.payer.as_ref()?;
        let secs = self.began.elapsed().as_secs_f64().ceil().max(1.0) as u64;
        Some((payer, super::payments::cost_of(&payer.price, Duration::from_secs(secs))))
    }

    /// The balance once this job is charged (not charged yet).
    fn balance_now(&self) -> byoc_payment::Balance {
        match (&self.orch.payments, self.cost()) {
            (Some(p), Some((payer, cost))) => &p.balance_of(&payer.key) - &cost,
            _ => byoc_payment::Balance::zero(),
        }
    }

    /// Charges now; returns the balance left.
    fn finish(mut self) -> byoc_payment::Balance {
        let left = self.charge();
        self.payer = None;
        left
    }

    fn charge(&self) -> byoc_payment::Balance {
        match (&self.orch.payments, self.cost()) {
            (Some(p), Some((payer, cost))) => p.debit(&payer.key, &cost),
            _ => byoc_payment::Balance::zero(),
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.charge();
    }
}

/// A batch job run by a plugin: one fresh instance, one `process` call.
async fn process_with_plugin(
    orch: &Orchestrator,
    plugin: &byoc_runtime::Plugin,
    route: &byoc_protocol::BatchPath,
    h: &HeaderMap,
    body: Body,
) -> Response {
    let body = match axum::body::to_bytes(body, orch.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let content_type = h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request = byoc_runtime::Request::new(route.decoded(), content_type, body);
    let began = std::time::Instant::now();
    let result = plugin.process(&request).await;
    byoc_protocol::telemetry::plugin_call("process", began);
    match result {
        Ok(resp) => plugin_response(resp),
        Err(byoc_runtime::CallError::Plugin(e)) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, e.to_string())
        }
        Err(e) => {
            tracing::warn!(plugin = %plugin.name(), kind = e.kind(), error = %e, "plugin batch call failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("plugin failed ({}): {e}", e.kind()))
        }
    }
}

fn plugin_response(resp: byoc_runtime::Response) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::builder().status(status).header(headers::BALANCE, "0");
    for hd in &resp.headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(hd.name.as_str()), HeaderValue::from_str(&hd.value)) {
            out = out.header(n, v);
        }
    }
    let body = match resp.body {
        byoc_runtime::ResponseBody::Bytes(b) => {
            if !resp.content_type.is_empty() {
                out = out.header(http::header::CONTENT_TYPE, resp.content_type.as_str());
            }
            Body::from(b)
        }
        byoc_runtime::ResponseBody::Events(events) => {
            out = out.header(http::header::CONTENT_TYPE, "text/event-stream");
            let mut text = String::new();
            for ev in events {
                if let Some(e) = &ev.event {
                    text.push_str(&format!("event: {e}\n"));
                }
                if let Some(id) = &ev.id {
                    text.push_str(&format!("id: {id}\n"));
                }
                for line in ev.data.split('\n') {
                    text.push_str(&format!("data: {line}\n"));
                }
                text.push('\n');
            }
            Body::from(text)
        }
    };
    out.body(body).unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("response: {e}")))
}
