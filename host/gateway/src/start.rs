//! `POST /process/stream/start`: checks the request, finds an orchestrator and starts the stream there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::JobRequest;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::discovery::{Candidate, discover};
use super::model::{Attachment, Feed, GwStream, OrchUrls};
use super::urls::{rtmp_destinations, stream_urls};
use super::watchers::spawn_legs;
use super::{Gateway, Refusal, check_api_key, refuse, webhook};
use byoc_protocol::JobParameters;
use byoc_protocol::headers;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StartRequest {
    #[serde(default)]
    pub(crate) stream_name: String,
    #[serde(default)]
    pub(crate) stream_id: String,
    #[serde(default)]
    pub(crate) rtmp_output: String,
    /// go-livepeer clients send a string holding a JSON object; an object is accepted too.
    #[serde(default)]
    pub(crate) params: Value,
}

pub(crate) fn valid_id_part(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub(crate) async fn read_body(gw: &Gateway, body: Body) -> Result<Bytes, Refusal> {
    byoc_protocol::read_limited(body, gw.config.max_body_bytes)
        .await
        .map_err(|m| refuse(StatusCode::PAYLOAD_TOO_LARGE, m))
}

pub(crate) fn job_from(h: &HeaderMap) -> Result<JobRequest, Refusal> {
    let v = h
        .get(headers::LIVEPEER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "missing Livepeer job header"))?;
    let job = JobRequest::from_header(v).map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("invalid job: {e}")))?;
    byoc_protocol::check_timeout(&job).map_err(|m| refuse(StatusCode::BAD_REQUEST, m))?;
    Ok(job)
}

pub(crate) fn header_url(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// The channel URLs an orchestrator handed out, refused unless they point at that orchestrator's
/// own trickle server (go-livepeer follows whatever URL it is given).
pub(crate) fn channel_urls(orch: &str, h: &HeaderMap) -> Result<OrchUrls, String> {
    let prefix = format!("{orch}/ai/trickle/");
    let check = |name: &str| -> Result<Option<String>, String> {
        match header_url(h, name) {
            Some(u) if u.starts_with(&prefix) => Ok(Some(u)),
            Some(u) => Err(format!("{name} {u} is not on the orchestrator")),
            None => Ok(None),
        }
    };
    Ok(OrchUrls {
        own_balance: None,
        publish: check(headers::PUBLISH_URL)?,
        subscribe: check(headers::SUBSCRIBE_URL)?,
        control: check(headers::CONTROL_URL)?.ok_or("no X-Control-Url")?,
        events: check(headers::EVENTS_URL)?.ok_or("no X-Events-Url")?,
        data: check(headers::DATA_URL)?,
    })
}

pub(crate) async fn start(State(gw): State<Arc<Gateway>>, h: HeaderMap, body: Body) -> Response {
    match start_inner(gw, h, body).await {
        Ok(r) | Err(r) => r,
    }
    .into_response()
}

pub(crate) fn boxed(r: Response) -> Box<Response> {
    Box::new(r)
}

pub(crate) async fn start_inner(gw: Arc<Gateway>, h: HeaderMap, body: Body) -> Result<Box<Response>, Refusal> {
    check_api_key(&gw, &h)?;
    let job = job_from(&h)?;
    let body = read_body(&gw, body).await?;
    let req: StartRequest = if body.is_empty() {
        StartRequest::default()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => serde_json::from_value(v)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("invalid JSON request body: {e}")))?,
            Ok(_) => return Err(refuse(StatusCode::BAD_REQUEST, "the request body must be a JSON object")),
            Err(e) => return Err(refuse(StatusCode::BAD_REQUEST, format!("invalid JSON request body: {e}"))),
        }
    };
    let params = match &req.params {
        Value::Null => json!({}),
        Value::String(s) if s.trim().is_empty() => json!({}),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(refuse(StatusCode::BAD_REQUEST, "invalid model params: must be a JSON object")),
        },
        v @ Value::Object(_) => v.clone(),
        _ => return Err(refuse(StatusCode::BAD_REQUEST, "invalid model params: must be a JSON object")),
    };
    let jp = JobParameters::parse(&job.parameters).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))?;
    let base = if req.stream_id.is_empty() { byoc_payment::random_hex(8) } else { req.stream_id.clone() };
    let id = if req.stream_name.is_empty() { base.clone() } else { format!("{}-{base}", req.stream_name) };
    if !valid_id_part(&base) || (!req.stream_name.is_empty() && !valid_id_part(&req.stream_name)) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "stream_name and stream_id may use letters, digits, '-', '_' and '.' (at most 64 each; not '.' or '..')",
        ));
    }
    if gw.lock().contains_key(&id) {
        return Err(refuse(StatusCode::CONFLICT, format!("stream already exists: {id}")));
    }
    let query = json!({"kind": "stream", "capability": job.capability, "stream_id": id, "params": params,
        "parameters": job.parameters, "request": job.request});
    webhook(&gw, &h, query).await?;
    let rtmp_outputs = rtmp_destinations(&req.rtmp_output)?;
    let credential = gw.credential()?;
    let (candidates, mut reasons) =
        discover(&gw.http, &gw.pool().await, &jp.orchestrators, &job.capability, &credential, gw.config.token_timeout)
            .await;
    for cand in candidates {
        let urls = match start_on(&gw, &cand, &id, &job.capability, &job.parameters, job.timeout_seconds, &params).await
        {
            Ok(u) => u,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        let cancel = CancellationToken::new();
        let att = Attachment::new(&cand, urls, cancel.child_token());
        att.set_own_balance(&job.parameters);
        let stream = Arc::new(GwStream {
            id: id.clone(),
            secret: byoc_payment::random_hex(16),
            capability: job.capability.clone(),
            parameters: job.parameters.clone(),
            timeout_seconds: job.timeout_seconds,
            att: Mutex::new(att.clone()),
            failed: Mutex::new(Vec::new()),
            swaps: Mutex::new(Vec::new()),
            params: Mutex::new(params.clone()),
            last_status: Mutex::new(Value::Null),
            reconnecting: Mutex::new(None),
            events: Feed::new(32),
            data: Feed::new(5),
            cancel,
            started_ms: byoc_protocol::now_ms(),
            output: std::sync::OnceLock::new(),
            webrtc_output: std::sync::OnceLock::new(),
            whip_session: tokio::sync::Mutex::new(None),
        });
        gw.lock().insert(id.clone(), stream.clone());
        spawn_legs(&gw, &stream, att);
        if jp.enable_video_egress {
            for destination in &rtmp_outputs {
                super::rtmp::push_output(&stream, destination.clone());
            }
        }
        tracing::info!(stream_id = %id, orchestrator = %cand.url, capability = %job.capability, "stream started");
        metrics::counter!("byoc_gateway_streams_started_total", "capability" => job.capability.clone()).increment(1);
        metrics::gauge!("byoc_gateway_streams_active").increment(1.0);
        return Ok(boxed(Json(stream_urls(&gw, &stream, &jp, &rtmp_outputs)).into_response()));
    }
    let body = json!({ "error": format!("no orchestrator accepted the stream for capability {}", job.capability), "reasons": reasons });
    metrics::counter!("byoc_gateway_errors_total", "kind" => "no_orchestrator").increment(1);
    Err(boxed((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()))
}

/// Starts the stream on one orchestrator; returns its channel URLs, or why it refused.
pub(crate) async fn start_on(
    gw: &Gateway,
    cand: &Candidate,
    id: &str,
    capability: &str,
    parameters: &str,
    timeout_seconds: i64,
    params: &Value,
) -> Result<OrchUrls, String> {
    let orch = cand.url.as_str();
    let signed = gw
        .sign(JobRequest {
            id: id.to_string(),
            request: json!({ "stream_id": id }).to_string(),
            parameters: parameters.to_string(),
            capability: capability.to_string(),
            timeout_seconds,
            ..JobRequest::default()
        })
        .map_err(|_| format!("{orch}: could not sign the job"))?;
    // Priced: pay for the job's timeout when the balance is low, as go-livepeer does; a stream
    // with a balance of its own starts from nothing there.
    let own = serde_json::from_str::<JobParameters>(parameters).is_ok_and(|p| p.per_stream_balance).then_some(0);
    let payment = super::payments::payment_for(gw, &cand.token, capability, timeout_seconds.max(1).unsigned_abs(), own)
        .map_err(|e| format!("{orch}: cannot pay: {e}"))?;
    let mut req = gw
        .http
        .post(format!("{orch}/ai/stream/start"))
        .header(headers::LIVEPEER, signed)
        .header(http::header::CONTENT_TYPE, "application/json")
        .timeout(Duration::from_secs(timeout_seconds.clamp(1, 3600).unsigned_abs() + 5))
        .body(json!({ "params": params }).to_string());
    if let Some(p) = payment {
        req = req.header(headers::PAYMENT, p);
    }
    let resp = req.send().await.map_err(|e| format!("{orch}: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("{orch}: {status} {}", text.trim()));
    }
    let mut urls = channel_urls(orch, resp.headers()).map_err(|e| format!("{orch}: {e}"))?;
    urls.own_balance = resp.headers().get(headers::BALANCE).and_then(|v| v.to_str().ok()?.parse().ok());
    Ok(urls)
}
