//! The per-stream routes: stop, update, status, data and events (SSE), and trickle ingest/egress.
//! Each needs one of the stream's secrets: stop, update and ingest the control secret
//! (`ControlledStream`), the others the viewer token will do (`AuthorizedStream`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use byoc_trickle::SeqRequest;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{AuthorizedStream, ControlledStream};
use crate::client::{JobPost, answer_body, answer_timeout, stream_job};
use crate::error::ApiError;
use crate::failover::end;
use crate::model::{Feed, GwStream, Numbered};
use crate::request::read_body;
use crate::state::Gateway;

/// `POST /process/stream/{id}/stop`: ends the stream; answers what the orchestrator answered to the stop.
pub(crate) async fn stop(State(gw): State<Arc<Gateway>>, ControlledStream(s): ControlledStream) -> Response {
    match end(&gw, &s.id, "stopped by the client", true).await {
        Some(resp) => (StatusCode::OK, answer_body(resp).await).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// `POST /process/stream/{id}/update`: the body goes to the orchestrator serving the stream.
pub(crate) async fn update(
    State(gw): State<Arc<Gateway>>,
    ControlledStream(stream): ControlledStream,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&gw, body).await?;
    // Forwarded verbatim, as go-livepeer does; a JSON object is also remembered as the stream's
    // params (re-sent if the stream moves to another orchestrator), keeping what only a start sets.
    let params = serde_json::from_slice::<Value>(&body).ok().filter(Value::is_object);
    let job = stream_job(&stream.id, &stream.capability, "{}", stream.timeout_seconds);
    let url = format!("{}/ai/stream/update", stream.att().orchestrator);
    let r = gw.client.post(JobPost::new(url, job, answer_timeout(stream.timeout_seconds)).json(body)).await?;
    if let (true, Some(p)) = (r.status().is_success(), params) {
        let mut params = stream.params.lock().unwrap_or_else(|e| e.into_inner());
        *params = byoc_protocol::params::after_update(&params, p);
    }
    let status = r.status();
    Ok((status, answer_body(r).await).into_response())
}

/// `GET /process/stream/{id}/status`: where the stream runs and how it is.
pub(crate) async fn status(
    State(gw): State<Arc<Gateway>>,
    AuthorizedStream(s, access): AuthorizedStream,
) -> Json<Value> {
    let params = s.params.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let last = s.last_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let att = s.att();
    let balance = match (att.own_balance(), att.recipient) {
        (Some(own), Some(_)) => Some(own.to_string()),
        (None, Some(r)) => Some(crate::payments::balance(&gw.ledger, &r, &s.capability).to_string()),
        _ => None,
    };
    // While it moves, the orchestrator named is the one that lost it.
    let reconnecting = *s.reconnecting.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({
        "stream_id": s.id,
        "state": if reconnecting.is_some() { "reconnecting" } else { "running" },
        "reconnect_reason": reconnecting,
        "capability": s.capability,
        "orchestrator": s.att().orchestrator,
        "gateway_address": gw.address(),
        "balance": balance,
        "started_at_ms": s.started_ms,
        "access": access.name(),
        "params": params,
        "last_status": last,
    }))
}

/// An SSE answer of a feed: the messages it keeps, then the live ones, then an `end` event when
/// the stream ends. Each message carries its number as the event `id`; a reader reconnecting with
/// `Last-Event-ID: N` gets only the messages after N (a browser's `EventSource` sends it by itself,
/// so a reconnect shows no message twice).
pub(crate) fn sse(s: &GwStream, feed: &Feed, headers: &HeaderMap) -> Response {
    let after = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let (recent, rx) = feed.subscribe(after);
    let cancel = s.cancel.clone();
    let event = |(n, text): Numbered| Ok::<Event, Infallible>(Event::default().id(n.to_string()).data(text.as_ref()));
    let recent = futures_util::stream::iter(recent.into_iter().map(event));
    let live = futures_util::stream::unfold((rx, cancel), move |(mut rx, cancel)| async move {
        loop {
            let msg = tokio::select! {
                _ = cancel.cancelled() => return None,
                m = rx.recv() => m,
            };
            match msg {
                Ok((n, _)) if after.is_some_and(|a| n <= a) => continue,
                Ok(numbered) => return Some((event(numbered), (rx, cancel))),
                // A slow reader skips what it missed rather than ending.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let end = futures_util::stream::once(async {
        Ok::<Event, Infallible>(Event::default().event("end").data(r#"{"type":"stream_ended"}"#))
    });
    Sse::new(recent.chain(live).chain(end)).keep_alive(KeepAlive::default()).into_response()
}

/// `GET /process/stream/{id}/data`: the stream's data channel as SSE.
pub(crate) async fn data(AuthorizedStream(s, _): AuthorizedStream, headers: HeaderMap) -> Result<Response, ApiError> {
    if s.att().urls.data.is_none() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Stream data not available"));
    }
    Ok(sse(&s, &s.data, &headers))
}

/// `GET /process/stream/{id}/events`: the stream's events as SSE.
pub(crate) async fn events(AuthorizedStream(s, _): AuthorizedStream, headers: HeaderMap) -> Response {
    sse(&s, &s.events, &headers)
}

/// Copies a trickle answer (status, `Lp-Trickle-*` and `Content-Type`, streamed body).
pub(crate) fn relay_trickle(resp: reqwest::Response) -> Response {
    let mut out = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        let n = name.as_str();
        if n.starts_with("lp-trickle-") || n == "content-type" {
            out = out.header(name, value);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

/// `POST /process/stream/{id}/ingest/{seq}`: a trickle publish of one MPEG-TS segment, relayed
/// to the orchestrator's input channel.
pub(crate) async fn ingest(
    State(gw): State<Arc<Gateway>>,
    ControlledStream(s): ControlledStream,
    Path((_, seq)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let att = s.att();
    let Some(url) = &att.urls.publish else {
        return Err(ApiError::new(StatusCode::CONFLICT, "video ingress is not enabled for this stream"));
    };
    if seq.parse::<SeqRequest>().is_err() {
        return Err(ApiError::bad_request("invalid seq"));
    }
    // Live video segments are a few MiB: a bigger body is cut off at the cap (the orchestrator
    // then sees an aborted segment), so one client cannot park 64 MiB segments in its window.
    let max = gw.config.media_limits.max_ingest_segment_bytes;
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The client's own upload failing (it went away mid-body) is not the orchestrator's doing.
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capped = {
        let (cut, broken, mut seen) = (cut.clone(), broken.clone(), 0usize);
        body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| {
                broken.store(true, std::sync::atomic::Ordering::SeqCst);
                std::io::Error::other(e)
            })?;
            seen = seen.saturating_add(chunk.len());
            if seen > max {
                cut.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(std::io::Error::other("ingest segment over the cap"));
            }
            Ok(chunk)
        })
    };
    let mut req = gw.client.http().post(format!("{url}/{seq}")).body(reqwest::Body::wrap_stream(capped));
    req = req.header(http::header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    match req.send().await {
        Ok(r) => {
            if r.status().is_success() {
                metrics::counter!("byoc_gateway_segments_in_total").increment(1);
            }
            Ok(relay_trickle(r))
        }
        Err(_) if cut.load(std::sync::atomic::Ordering::SeqCst) => {
            Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("ingest segment over {max} bytes: cut off")))
        }
        Err(_) if broken.load(std::sync::atomic::Ordering::SeqCst) => {
            Err(ApiError::bad_request("the upload ended before its body was complete"))
        }
        Err(e) => Err(ApiError::unreachable(e)),
    }
}

/// `GET /process/stream/{id}/egress/{seq}`: a trickle subscribe to the output channel (`-1`,
/// `-2`, a seq, or `next`), relayed from the orchestrator.
pub(crate) async fn egress(
    State(gw): State<Arc<Gateway>>,
    AuthorizedStream(s, _): AuthorizedStream,
    Path((_, seq)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let att = s.att();
    let Some(url) = &att.urls.subscribe else {
        return Err(ApiError::new(StatusCode::CONFLICT, "video egress is not enabled for this stream"));
    };
    if seq != "next" && seq.parse::<SeqRequest>().is_err() {
        return Err(ApiError::bad_request("invalid seq"));
    }
    let r = gw.client.http().get(format!("{url}/{seq}")).send().await.map_err(ApiError::unreachable)?;
    if r.status().is_success() {
        metrics::counter!("byoc_gateway_segments_out_total").increment(1);
    }
    Ok(relay_trickle(r))
}
