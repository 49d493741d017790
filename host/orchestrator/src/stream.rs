//! `/ai/stream/start|stop|update|payment`: streams on the orchestrator's trickle channels, served
//! by the capability's backend (a plugin session attached to them, or a worker told to attach).
//!
//! A stream ends exactly once (see [`crate::streams`]), whatever ends it: the gateway's stop, the
//! backend failing to start, the gateway going quiet (no control keepalive), its channels being
//! deleted, its plugin session failing for good, an exhausted balance, or node shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::JobRequest;
use byoc_protocol::{JobParameters, headers};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::backend::StreamStart;
use crate::channels::{self, StreamChannels};
use crate::error::ApiError;
use crate::orchestrator::{Orchestrator, VerifiedJob, job_timeout};
use crate::payments::{self, Payer};
use crate::registry::Reserved;
use crate::streams::{EndReason, Entry, StreamInfo};

/// The `request` of a stop, update or payment job.
#[derive(Deserialize)]
struct StreamRef {
    #[serde(default)]
    stream_id: String,
}

impl StreamRef {
    /// The stream a job's `request` names, if any.
    fn named_in(job: &JobRequest) -> Option<String> {
        serde_json::from_str::<StreamRef>(&job.request).ok().map(|r| r.stream_id).filter(|id| !id.is_empty())
    }
}

/// Reads a start, stop or update body (413 past `max_body_bytes`).
async fn read_body(orch: &Orchestrator, body: Body) -> Result<Bytes, ApiError> {
    byoc_protocol::read_limited(body, orch.config.max_body_bytes)
        .await
        .map_err(|m| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m))
}

/// Debits a priced stream as it runs; one whose balance stays negative for the grace period is
/// stopped (an `insufficient_balance` event first tells the gateway why).
fn spawn_debits(orch: &Arc<Orchestrator>, entry: &Arc<Entry>) {
    let (Some(payments), Some(payer)) = (&orch.payments, entry.payer.clone()) else { return };
    let (every, grace) = (payments.settings.debit_every, payments.settings.grace);
    let weak = Arc::downgrade(orch);
    let (id, events, ended) = (entry.info.id.clone(), entry.info.channels.events.clone(), entry.life.ended.clone());
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        let mut overdrawn_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = ended.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let Some(orch) = weak.upgrade() else { return };
            let Some(payments) = &orch.payments else { return };
            let now = tokio::time::Instant::now();
            let cost = payments::cost_of(&payer.price, now - last);
            last = now;
            let left = payments.debit(&payer.key, &cost);
            if !left.is_negative() {
                overdrawn_since = None;
                continue;
            }
            let since = *overdrawn_since.get_or_insert(now);
            if now - since < grace {
                continue;
            }
            tracing::info!(stream_id = %id, sender = %payer.sender, balance = %left, "balance exhausted, stopping the stream");
            metrics::counter!("byoc_orchestrator_streams_unpaid_total").increment(1);
            if let Ok(events) = byoc_trickle::LocalPublisher::new(&orch.trickle, &events) {
                let event = serde_json::json!({"type": "insufficient_balance", "balance": left.to_string()});
                if let Ok(mut seg) = events.next_segment() {
                    let _ = seg.write(Bytes::from(event.to_string()));
                    seg.finish();
                }
            }
            // A moment for the gateway's reader to take the event before the channels go.
            tokio::time::sleep(Duration::from_millis(250)).await;
            orch.streams.end(&id, EndReason::InsufficientBalance).await;
            payments.close_stream_balance(&payer.key);
            return;
        }
        // The stream ended: charge the time since the last debit.
        if let Some(orch) = weak.upgrade()
            && let Some(payments) = &orch.payments
        {
            payments.debit(&payer.key, &payments::cost_of(&payer.price, last.elapsed()));
            payments.close_stream_balance(&payer.key);
        }
    });
}

/// Ends the stream when its gateway goes quiet, its control channel disappears or its plugin
/// session fails for good.
fn spawn_monitor(orch: &Arc<Orchestrator>, entry: &Arc<Entry>) {
    let weak = Arc::downgrade(orch);
    let (id, control) = (entry.info.id.clone(), entry.info.channels.control.clone());
    let life = entry.life.clone();
    let idle_limit = orch.config.stream_idle_timeout;
    let every = (idle_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    tokio::spawn(async move {
        loop {
            let plugin_failed = tokio::select! {
                _ = life.ended.cancelled() => return,
                _ = life.failed.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let Some(orch) = weak.upgrade() else { return };
            let why = if plugin_failed {
                EndReason::PluginFailed
            } else {
                match orch.trickle.idle_for(&control) {
                    None => EndReason::ControlClosed,
                    Some(idle) if idle >= idle_limit => EndReason::GatewayQuiet,
                    Some(_) => continue,
                }
            };
            orch.streams.end(&id, why).await;
            return;
        }
    });
}

/// The stream id of a start: the job's id, which must make valid channel names.
fn stream_id(job: &JobRequest) -> Result<String, ApiError> {
    let id = job.id.clone();
    if id.is_empty() || byoc_trickle::ChannelName::new(&format!("{id}-control")).is_err() {
        return Err(ApiError::bad_request("invalid stream id (the job's id)"));
    }
    Ok(id)
}

/// A start body: a JSON object (none is `{}`).
fn start_body(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(if body.is_empty() { b"{}" } else { body }) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_request("Invalid JSON body")),
    }
}

fn already_exists(id: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("stream already exists: {id}"))
}

pub(crate) async fn start(
    State(orch): State<Arc<Orchestrator>>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let VerifiedJob { job, sender } = orch.job(&h)?;
    let body = read_body(&orch, body).await?;
    let params = JobParameters::parse(&job.parameters).map_err(ApiError::bad_request)?;
    let request = start_body(&body)?;
    let id = stream_id(&job)?;
    if orch.streams.get(&id).is_some() {
        return Err(already_exists(&id));
    }
    if sender.is_some() {
        check_signed_start(&orch, &job, &id)?;
    }
    let Reserved { capability: cap, reservation } = orch.reserve(&job.capability)?;
    // A priced capability: the job's tickets are credited and the balance must cover the minimum.
    let own = params.per_stream_balance.then_some(id.as_str());
    let payer = payments::prepare(orch.payments.as_ref(), &h, sender, &cap, own).await?;
    let channels = StreamChannels::new(&id, &params);
    let backend = cap.backend.stream(&orch.http, &id)?;
    let info = StreamInfo { id: id.clone(), capability: cap.name.clone(), sender, channels: channels.clone() };
    let entry = Arc::new(Entry::new(info, backend, reservation, payer));
    if !orch.streams.insert(entry.clone()) {
        // A concurrent start of the same id won the race. Never touch the running stream's
        // channels (go-livepeer closes them here).
        return Err(already_exists(&id));
    }
    for ch in channels.announced() {
        // Fresh channels only: an existing one is never taken over (and never deleted by this
        // stream's end: the entry is removed with the channels it created so far).
        if orch.trickle.contains(ch.name) {
            orch.streams.remove_created(&id, ch.name, EndReason::StartFailed("channel name taken"));
            return Err(ApiError::new(StatusCode::CONFLICT, "a channel of this stream already exists"));
        }
        if let Err(e) = orch.trickle.create_channel(ch.name, ch.mime) {
            orch.streams.remove_created(&id, ch.name, EndReason::StartFailed("channel creation failed"));
            return Err(ApiError::unavailable(format!("could not create trickle channel {}: {e}", ch.name)));
        }
    }
    let start = StreamStart {
        id: &id,
        channels: &channels,
        request,
        service_url: &orch.config.service_url,
        trickle: &orch.trickle,
        heartbeat_every: orch.config.heartbeat_every,
        timeout: job_timeout(&job),
        life: &entry.life,
        encode_limits: &orch.config.frame_encoding,
    };
    if let Err(e) = entry.backend.start(start).await {
        orch.streams.remove(&id, EndReason::StartFailed(e.why));
        return Err(orch.refused(&cap, e));
    }
    Ok(started(&orch, &entry))
}

/// A signed start names its stream in what is signed (`request.stream_id` = the job's unsigned `id`),
/// and a start signed before that stream last ended here is a replay.
fn check_signed_start(orch: &Orchestrator, job: &JobRequest, id: &str) -> Result<(), ApiError> {
    match job.request_stream_id() {
        Some(named) if named != id => {
            return Err(ApiError::bad_request("request.stream_id must be the job's id"));
        }
        None if !orch.config.accept_unstamped_jobs => {
            return Err(ApiError::bad_request("a signed start must name its stream in request.stream_id"));
        }
        _ => {}
    }
    if let Some(ended) = orch.streams.ended_at(id)
        && job.issued_at().is_none_or(|issued| issued <= ended)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("stream {id} ended here after this start was signed (a replay); sign a new start"),
        ));
    }
    Ok(())
}

/// The stream is running: watch it and tell the gateway where its channels are.
fn started(orch: &Arc<Orchestrator>, entry: &Arc<Entry>) -> Response {
    spawn_monitor(orch, entry);
    spawn_debits(orch, entry);
    let StreamInfo { id, capability, sender, channels } = &entry.info;
    metrics::gauge!("byoc_orchestrator_streams_active").increment(1.0);
    let label = byoc_protocol::telemetry::capability_label(capability);
    metrics::counter!("byoc_orchestrator_streams_started_total", "capability" => label).increment(1);
    let sender = sender.as_ref().map(tracing::field::display);
    tracing::info!(stream_id = %id, %capability, sender, "stream started");
    let mut out = StatusCode::OK.into_response();
    for ch in channels.announced() {
        if let Ok(v) = HeaderValue::from_str(&channels::url(&orch.config.service_url, ch.name)) {
            out.headers_mut().insert(ch.header, v);
        }
    }
    let balance = match (&orch.payments, &entry.payer) {
        (Some(p), Some(payer)) => p.balance_of(&payer.key),
        _ => byoc_payment::Balance::zero(),
    };
    out.headers_mut().insert(headers::BALANCE, payments::balance_header(&balance));
    out
}

/// Finds the stream `id` a stop/update/payment job is about, checking that its sender is the
/// one that started it.
fn owned_stream(orch: &Orchestrator, id: &str, sender: Option<byoc_payment::Address>) -> Result<Arc<Entry>, ApiError> {
    let entry = orch.streams.get(id).ok_or_else(|| match orch.streams.why_ended(id) {
        Some(why) => ApiError::new(StatusCode::GONE, format!("stream ended: {why}")),
        None => ApiError::new(StatusCode::NOT_FOUND, "Stream not found"),
    })?;
    if entry.info.sender.is_some() && entry.info.sender != sender {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "stream was started by another sender"));
    }
    Ok(entry)
}

/// What a stop or update is about.
struct StreamRequest {
    job: JobRequest,
    body: Bytes,
    entry: Arc<Entry>,
}

/// The verified job, the body and the stream a stop or update is about.
async fn stream_request(orch: &Orchestrator, h: &HeaderMap, body: Body) -> Result<StreamRequest, ApiError> {
    let VerifiedJob { job, sender } = orch.job(h)?;
    let body = read_body(orch, body).await?;
    let id = StreamRef::named_in(&job)
        .ok_or_else(|| ApiError::bad_request("request must be a JSON object with stream_id"))?;
    let entry = owned_stream(orch, &id, sender)?;
    // Stop and update may carry tickets too (go-livepeer sends them through the same path).
    if let (Some(p), Some(sender)) = (&orch.payments, sender)
        && h.contains_key(headers::PAYMENT)
    {
        let key = entry.payer.as_ref().map_or_else(
            || byoc_payment::BalanceKey::shared(sender, entry.info.capability.clone()),
            |payer: &Payer| payer.key.clone(),
        );
        p.accept(h, &sender, &key).await?;
    }
    Ok(StreamRequest { job, body, entry })
}

pub(crate) async fn stop(
    State(orch): State<Arc<Orchestrator>>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let StreamRequest { body, entry, .. } = stream_request(&orch, &h, body).await?;
    // Remove first: the slot is freed even if the worker never answers.
    orch.streams.remove(&entry.info.id, EndReason::Stopped);
    Ok(entry.backend.stop(body, h.get(http::header::CONTENT_TYPE)).await)
}

pub(crate) async fn update(
    State(orch): State<Arc<Orchestrator>>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let StreamRequest { job, body, entry } = stream_request(&orch, &h, body).await?;
    entry.backend.update(body, job_timeout(&job)).await
}

/// `/ai/stream/payment`: the tickets are validated and credited to (sender, capability); the
/// answer carries the balance. A payment naming a stream must come from the sender that started
/// it. In free mode (or for a free capability) there is nothing to pay and the balance is 0.
pub(crate) async fn payment(State(orch): State<Arc<Orchestrator>>, h: HeaderMap) -> Result<Response, ApiError> {
    let VerifiedJob { job, sender } = orch.job(&h)?;
    let entry = match StreamRef::named_in(&job) {
        Some(id) => Some(owned_stream(&orch, &id, sender)?),
        None => None,
    };
    let balance = match (&orch.payments, sender) {
        (Some(p), Some(sender)) => {
            // A stream with a balance of its own is paid into it; anything else into the shared one.
            let key = entry.and_then(|e| e.payer.as_ref().map(|payer| payer.key.clone()));
            let key = key.unwrap_or_else(|| byoc_payment::BalanceKey::shared(sender, job.capability.clone()));
            p.accept(&h, &sender, &key).await?
        }
        _ => byoc_payment::Balance::zero(),
    };
    let mut out = StatusCode::OK.into_response();
    out.headers_mut().insert(headers::BALANCE, payments::balance_header(&balance));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_with(id: &str, request: &str) -> JobRequest {
        JobRequest { id: id.into(), request: request.into(), ..Default::default() }
    }

    #[test]
    fn a_stream_is_named_by_a_non_empty_stream_id_in_the_request() {
        assert_eq!(StreamRef::named_in(&job_with("x", r#"{"stream_id":"s1"}"#)).as_deref(), Some("s1"));
        assert_eq!(StreamRef::named_in(&job_with("x", r#"{"stream_id":""}"#)), None);
        assert_eq!(StreamRef::named_in(&job_with("x", "{}")), None);
        assert_eq!(StreamRef::named_in(&job_with("x", "not json")), None);
    }

    #[test]
    fn a_stream_id_must_make_channel_names() {
        assert_eq!(stream_id(&job_with("s1", "")).unwrap(), "s1");
        assert_eq!(stream_id(&job_with("", "")).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(stream_id(&job_with("a/b", "")).unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_start_body_is_a_json_object_or_nothing() {
        assert!(start_body(b"").unwrap().is_empty());
        assert_eq!(start_body(br#"{"params":{"a":1}}"#).unwrap()["params"]["a"], 1);
        assert_eq!(start_body(b"[1,2]").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(start_body(b"{nope").unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
