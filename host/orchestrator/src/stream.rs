//! `/ai/stream/start|stop|update|payment`: streams on the orchestrator's trickle channels, with
//! the worker told to attach to them.
//!
//! A stream holds one capacity slot from a successful start until it ends, and it ends exactly
//! once, whatever ends it: the gateway's stop, the worker failing to start, the gateway going
//! quiet (no control keepalive), its channels being deleted, or node shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::Address;
use byoc_payment::job::JobRequest;
use byoc_protocol::JobParameters;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::channels::StreamChannels;
use super::{ApiError, Orchestrator, error, headers};
use crate::capacity::Reservation;
use crate::registry::{Backend, Capability, ReserveError};

/// What the orchestrator knows of a running stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub id: String,
    pub capability: String,
    pub sender: Option<Address>,
    pub channels: StreamChannels,
}

struct Entry {
    info: StreamInfo,
    capability: Arc<Capability>,
    /// Commands to a plugin session (`None` for external workers).
    plugin: Option<tokio::sync::mpsc::Sender<super::plugin_stream::Cmd>>,
    reservation: Mutex<Option<Reservation>>,
    cancel: CancellationToken,
    /// Cancelled by the stream's plugin session when it fails for good; the monitor then ends the stream.
    failed: CancellationToken,
    /// Who pays for the stream, on a priced capability.
    payer: Option<super::payments::Payer>,
}

#[derive(Default)]
pub(crate) struct Streams {
    map: Mutex<HashMap<String, Arc<Entry>>>,
    /// Streams this node ended lately, with why: a stop or update for one of them is 410, so that
    /// a gateway can tell "ended here" from "unknown here" (this node restarted).
    ended: Mutex<std::collections::VecDeque<Ended>>,
}

/// A stream this node ended.
struct Ended {
    id: String,
    why: String,
    /// When, in ms since the Unix epoch.
    at_ms: u64,
}

/// How many ended streams are remembered.
const REMEMBER_ENDED: usize = 4096;

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn list(&self) -> Vec<StreamInfo> {
        let mut v: Vec<StreamInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.lock().get(id).cloned()
    }

    fn ended(&self, id: &str, why: &str) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() == REMEMBER_ENDED {
            ended.pop_front();
        }
        ended.push_back(Ended { id: id.to_string(), why: why.to_string(), at_ms: byoc_protocol::now_ms() });
    }

    fn why_ended(&self, id: &str) -> Option<String> {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.iter().rev().find(|e| e.id == id).map(|e| e.why.clone())
    }

    /// When the stream `id` last ended here, if it is remembered.
    fn ended_at(&self, id: &str) -> Option<u64> {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.iter().rev().find(|e| e.id == id).map(|e| e.at_ms)
    }
}

#[derive(Deserialize)]
struct StreamRef {
    #[serde(default)]
    stream_id: String,
}

/// A request to the capability's external worker; `None` for a plugin.
fn worker_post(
    orch: &Orchestrator,
    cap: &Capability,
    route: &str,
    id: &str,
    timeout: Duration,
) -> Option<reqwest::RequestBuilder> {
    let Backend::Worker { url, token } = &cap.backend else { return None };
    let mut req = orch.http.post(format!("{url}{route}")).timeout(timeout).header(headers::STREAM_ID, id);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Some(req)
}

async fn read_body(orch: &Orchestrator, body: Body) -> Result<Bytes, ApiError> {
    byoc_protocol::read_limited(body, orch.config.max_body_bytes)
        .await
        .map_err(|m| ApiError(StatusCode::PAYLOAD_TOO_LARGE, m))
}

/// Removes a stream: exactly once, whoever calls it. Frees its slot, closes its channels and
/// stops its monitor. Returns the entry if this call removed it.
fn remove(orch: &Orchestrator, id: &str, why: &str) -> Option<Arc<Entry>> {
    let entry = orch.streams.lock().remove(id)?;
    orch.streams.ended(id, why);
    entry.cancel.cancel();
    for ch in entry.info.channels.names() {
        let _ = orch.trickle.delete_channel(&ch);
    }
    drop(entry.reservation.lock().unwrap_or_else(|e| e.into_inner()).take());
    metrics::gauge!("byoc_orchestrator_streams_active").decrement(1.0);
    metrics::counter!("byoc_orchestrator_streams_ended_total", "reason" => why.to_string()).increment(1);
    tracing::info!(stream_id = %id, capability = %entry.info.capability, reason = why, "stream ended");
    Some(entry)
}

/// Tells the worker a stream is over (best effort) after removing it.
async fn end_and_tell_worker(orch: &Orchestrator, id: &str, why: &str) {
    if let Some(entry) = remove(orch, id, why)
        && let Some(req) = worker_post(orch, &entry.capability, "/stream/stop", id, Duration::from_secs(10))
        && let Err(e) = req.body(why.to_string()).send().await
    {
        tracing::debug!(stream_id = %id, error = %e, "worker stop failed");
    }
}

pub(crate) async fn stop_all(orch: &Arc<Orchestrator>) {
    let ids: Vec<String> = orch.streams.lock().keys().cloned().collect();
    for id in ids {
        end_and_tell_worker(orch, &id, "orchestrator shutting down").await;
    }
}

/// Debits a priced stream as it runs; one whose balance stays negative for the grace period is
/// stopped (an `insufficient_balance` event first tells the gateway why).
fn spawn_debits(orch: &Arc<Orchestrator>, entry: &Arc<Entry>) {
    let (Some(payments), Some(payer)) = (&orch.payments, entry.payer.clone()) else { return };
    let (every, grace) = (payments.settings.debit_every, payments.settings.grace);
    let weak = Arc::downgrade(orch);
    let (id, events, cancel) = (entry.info.id.clone(), entry.info.channels.events.clone(), entry.cancel.clone());
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        let mut overdrawn_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let Some(orch) = weak.upgrade() else { return };
            let Some(payments) = &orch.payments else { return };
            let now = tokio::time::Instant::now();
            let cost = super::payments::cost_of(&payer.price, now - last);
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
            end_and_tell_worker(&orch, &id, "insufficient balance").await;
            payments.close_stream_balance(&payer.key);
            return;
        }
        // The stream ended: charge the time since the last debit.
        if let Some(orch) = weak.upgrade()
            && let Some(payments) = &orch.payments
        {
            payments.debit(&payer.key, &super::payments::cost_of(&payer.price, last.elapsed()));
            payments.close_stream_balance(&payer.key);
        }
    });
}

/// Ends the stream when its gateway goes quiet, its control channel disappears or its plugin
/// session fails for good.
fn spawn_monitor(orch: &Arc<Orchestrator>, entry: &Arc<Entry>) {
    let weak = Arc::downgrade(orch);
    let (id, control, cancel) = (entry.info.id.clone(), entry.info.channels.control.clone(), entry.cancel.clone());
    let failed = entry.failed.clone();
    let idle_limit = orch.config.stream_idle_timeout;
    let every = (idle_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    tokio::spawn(async move {
        loop {
            let plugin_failed = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = failed.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let Some(orch) = weak.upgrade() else { return };
            if plugin_failed {
                end_and_tell_worker(&orch, &id, "the plugin failed").await;
                return;
            }
            let why = match orch.trickle.idle_for(&control) {
                None => "control channel closed",
                Some(idle) if idle >= idle_limit => "gateway went quiet (no control keepalive)",
                Some(_) => continue,
            };
            end_and_tell_worker(&orch, &id, why).await;
            return;
        }
    });
}

pub(super) async fn start(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Body) -> Response {
    let (job, sender) = match orch.job(&h) {
        Ok(j) => j,
        Err(r) => return r.into_response(),
    };
    let body = match read_body(&orch, body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let params = match JobParameters::parse(&job.parameters) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut worker_body = match serde_json::from_slice::<serde_json::Value>(if body.is_empty() { b"{}" } else { &body })
    {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid JSON body"),
    };
    let id = job.id.clone();
    if byoc_trickle::ChannelName::new(&format!("{id}-control")).is_err() || id.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid stream id (the job's id)");
    }
    if orch.streams.get(&id).is_some() {
        return error(StatusCode::CONFLICT, format!("stream already exists: {id}"));
    }
    if sender.is_some()
        && let Err(e) = check_signed_start(&orch, &job, &id)
    {
        return e.into_response();
    }
    let (cap, reservation) = match orch.registry.reserve(&job.capability) {
        Ok(v) => v,
        Err(e @ (ReserveError::Unknown(_) | ReserveError::Full(_))) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("No capacity available for capability: {e}"));
        }
    };
    // A priced capability: the job's tickets are credited and the balance must cover the minimum.
    let own = params.per_stream_balance.then_some(id.as_str());
    let payer = match super::payments::prepare(&orch, &h, sender, &cap, own).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let channels = StreamChannels::new(&id, &params);
    let plugin = cap.backend.plugin();
    if matches!(cap.backend, Backend::Plugin { .. }) && plugin.is_none() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the plugin is not loaded");
    }
    let (commands, command_rx) = match plugin {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::channel(super::plugin_stream::COMMAND_QUEUE);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let entry = Arc::new(Entry {
        plugin: commands.clone(),
        info: StreamInfo { id: id.clone(), capability: cap.name.clone(), sender, channels: channels.clone() },
        capability: cap.clone(),
        reservation: Mutex::new(Some(reservation)),
        cancel: CancellationToken::new(),
        failed: CancellationToken::new(),
        payer,
    });
    {
        let mut map = orch.streams.lock();
        if map.contains_key(&id) {
            // A concurrent start of the same id won the race. Never touch the running stream's channels (go-livepeer closes them here).
            return error(StatusCode::CONFLICT, format!("stream already exists: {id}"));
        }
        map.insert(id.clone(), entry.clone());
    }
    for ch in channels.announced() {
        // Fresh channels only: an existing one is never taken over (and never deleted by this
        // stream's end: the entry is removed with the channels it created so far).
        if orch.trickle.contains(ch.name) {
            remove_created(&orch, &id, &channels, ch.name, "channel name taken");
            return error(StatusCode::CONFLICT, "a channel of this stream already exists");
        }
        if let Err(e) = orch.trickle.create_channel(ch.name, ch.mime) {
            remove_created(&orch, &id, &channels, ch.name, "channel creation failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("could not create trickle channel {}: {e}", ch.name),
            );
        }
    }
    if let (Some(plugin), Some(tx), Some(rx)) = (plugin, commands, command_rx) {
        let params =
            worker_body.get("params").filter(|p| !p.is_null()).map_or_else(|| "{}".to_string(), |p| p.to_string());
        let (session, outputs) = match plugin.open_session(&params).await {
            Ok(v) => v,
            Err(e) => {
                remove(&orch, &id, "the plugin refused the stream");
                let status = match &e {
                    byoc_runtime::CallError::Plugin(pe) => {
                        StatusCode::from_u16(pe.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return error(status, format!("plugin refused the stream: {e}"));
            }
        };
        super::plugin_stream::spawn(
            &orch,
            &id,
            &channels,
            session,
            outputs,
            tx,
            rx,
            entry.cancel.clone(),
            entry.failed.clone(),
        );
        return started(&orch, &entry, &id, &cap.name, sender);
    }
    worker_body.insert("gateway_request_id".into(), id.clone().into());
    for ch in channels.announced() {
        worker_body.insert(ch.worker_field.into(), orch.channel_url(ch.name).into());
    }
    let timeout = Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs());
    let Some(req) = worker_post(&orch, &cap, "/stream/start", &id, timeout) else {
        remove(&orch, &id, "no worker");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "capability has no worker");
    };
    let req = req
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::Value::Object(worker_body).to_string());
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            remove(&orch, &id, "worker unreachable at start");
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("Error sending request to worker: {e}"));
        }
    };
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        remove(&orch, &id, "worker refused our token");
        orch.registry.forget(&cap);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Orchestrator worker failure");
    }
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        remove(&orch, &id, "worker refused the stream");
        return error(status, text);
    }
    started(&orch, &entry, &id, &cap.name, sender)
}

/// A signed start names its stream in what is signed (`request.stream_id` = the job's unsigned `id`),
/// and a start signed before that stream last ended here is a replay.
fn check_signed_start(orch: &Orchestrator, job: &JobRequest, id: &str) -> Result<(), ApiError> {
    match job.request_stream_id() {
        Some(named) if named != id => {
            return Err(ApiError(StatusCode::BAD_REQUEST, "request.stream_id must be the job's id".into()));
        }
        None if !orch.config.accept_unstamped_jobs => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "a signed start must name its stream in request.stream_id".into(),
            ));
        }
        _ => {}
    }
    if let Some(ended) = orch.streams.ended_at(id)
        && job.issued_at().is_none_or(|issued| issued <= ended)
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("stream {id} ended here after this start was signed (a replay); sign a new start"),
        ));
    }
    Ok(())
}

/// Removes a stream whose channels were being created when `failed` could not be: the channels
/// before it are its own and go; `failed` and those after it are left alone.
fn remove_created(orch: &Orchestrator, id: &str, channels: &StreamChannels, failed: &str, why: &str) {
    let Some(entry) = orch.streams.lock().remove(id) else { return };
    for name in channels.names().iter().take_while(|n| n.as_str() != failed) {
        let _ = orch.trickle.delete_channel(name);
    }
    orch.streams.ended(id, why);
    entry.cancel.cancel();
    drop(entry.reservation.lock().unwrap_or_else(|e| e.into_inner()).take());
    tracing::info!(stream_id = %id, reason = why, "stream not started");
}

/// The stream is running: watch it and tell the gateway where its channels are.
fn started_metrics(capability: &str) {
    metrics::gauge!("byoc_orchestrator_streams_active").increment(1.0);
    metrics::counter!("byoc_orchestrator_streams_started_total", "capability" => capability.to_string()).increment(1);
}

fn started(orch: &Arc<Orchestrator>, entry: &Arc<Entry>, id: &str, cap: &str, sender: Option<Address>) -> Response {
    spawn_monitor(orch, entry);
    spawn_debits(orch, entry);
    started_metrics(cap);
    tracing::info!(stream_id = %id, capability = %cap, sender = ?sender, "stream started");
    let mut out = StatusCode::OK.into_response();
    for ch in entry.info.channels.announced() {
        if let Ok(v) = HeaderValue::from_str(&orch.channel_url(ch.name)) {
            out.headers_mut().insert(ch.header, v);
        }
    }
    let balance = match (&orch.payments, &entry.payer) {
        (Some(p), Some(payer)) => p.balance_of(&payer.key),
        _ => byoc_payment::Balance::zero(),
    };
    out.headers_mut().insert(headers::BALANCE, super::payments::balance_header(&balance));
    out
}

/// Finds the stream a stop/update/payment job is about, checking that its sender is the one
/// that started it.
fn owned_stream(orch: &Orchestrator, job: &JobRequest, sender: Option<Address>) -> Result<Arc<Entry>, ApiError> {
    let id = match serde_json::from_str::<StreamRef>(&job.request) {
        Ok(r) if !r.stream_id.is_empty() => r.stream_id,
        _ => return Err(ApiError(StatusCode::BAD_REQUEST, "request must be a JSON object with stream_id".into())),
    };
    let entry = orch.streams.get(&id).ok_or_else(|| match orch.streams.why_ended(&id) {
        Some(why) => ApiError(StatusCode::GONE, format!("stream ended: {why}")),
        None => ApiError(StatusCode::NOT_FOUND, "Stream not found".into()),
    })?;
    if entry.info.sender.is_some() && entry.info.sender != sender {
        return Err(ApiError(StatusCode::FORBIDDEN, "stream was started by another sender".into()));
    }
    Ok(entry)
}

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

/// The verified job, the body and the stream a stop or update is about.
async fn stream_request(
    orch: &Orchestrator,
    h: &HeaderMap,
    body: Body,
) -> Result<(JobRequest, Bytes, Arc<Entry>), ApiError> {
    let (job, sender) = orch.job(h)?;
    let body = read_body(orch, body).await?;
    let entry = owned_stream(orch, &job, sender)?;
    // Stop and update may carry tickets too (go-livepeer sends them through the same path).
    if let (Some(p), Some(sender)) = (&orch.payments, sender)
        && h.contains_key(headers::PAYMENT)
    {
        let key = entry.payer.as_ref().map_or_else(
            || byoc_payment::BalanceKey::shared(sender, entry.info.capability.clone()),
            |payer| payer.key.clone(),
        );
        p.accept(h, &sender, &key).await?;
    }
    Ok((job, body, entry))
}

pub(super) async fn stop(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Body) -> Response {
    let (_, body, entry) = match stream_request(&orch, &h, body).await {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let id = entry.info.id.clone();
    // Remove first: the slot is freed even if the worker never answers.
    remove(&orch, &id, "stopped by the gateway");
    let Some(req) = worker_post(&orch, &entry.capability, "/stream/stop", &id, Duration::from_secs(10)) else {
        // A plugin session is closed by its task when the stream is removed.
        return StatusCode::OK.into_response();
    };
    let mut req = req.body(body);
    if let Some(ct) = h.get(http::header::CONTENT_TYPE) {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    match req.send().await {
        Ok(resp) => relay(resp).await,
        Err(e) => {
            tracing::debug!(stream_id = %id, error = %e, "worker stop failed");
            StatusCode::OK.into_response()
        }
    }
}

pub(super) async fn update(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Body) -> Response {
    let (job, body, entry) = match stream_request(&orch, &h, body).await {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Some(commands) = &entry.plugin {
        // A plugin receives updates as control messages, like those on the control channel.
        let text = String::from_utf8_lossy(&body).into_owned();
        return match commands.send(super::plugin_stream::Cmd::Control(text)).await {
            Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "success"}))).into_response(),
            Err(_) => error(StatusCode::GONE, "the stream's plugin session has ended"),
        };
    }
    let timeout = Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs());
    let Some(req) = worker_post(&orch, &entry.capability, "/stream/params", &entry.info.id, timeout) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "capability has no worker");
    };
    let req = req.header(http::header::CONTENT_TYPE, "application/json").body(body);
    match req.send().await {
        Ok(resp) => relay(resp).await,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("Error sending request to worker: {e}")),
    }
}

/// `/ai/stream/payment`: the tickets are validated and credited to (sender, capability); the
/// answer carries the balance. A payment naming a stream must come from the sender that started
/// it. In free mode (or for a free capability) there is nothing to pay and the balance is 0.
pub(super) async fn payment(State(orch): State<Arc<Orchestrator>>, h: HeaderMap) -> Response {
    let (job, sender) = match orch.job(&h) {
        Ok(j) => j,
        Err(r) => return r.into_response(),
    };
    let names_stream = serde_json::from_str::<StreamRef>(&job.request).is_ok_and(|r| !r.stream_id.is_empty());
    let entry = if names_stream {
        match owned_stream(&orch, &job, sender) {
            Ok(e) => Some(e),
            Err(r) => return r.into_response(),
        }
    } else {
        None
    };
    let balance = match (&orch.payments, sender) {
        (Some(p), Some(sender)) => {
            // A stream with a balance of its own is paid into it; anything else into the shared one.
            let key = entry.and_then(|e| e.payer.as_ref().map(|payer| payer.key.clone()));
            let key = key.unwrap_or_else(|| byoc_payment::BalanceKey::shared(sender, job.capability.clone()));
            match p.accept(&h, &sender, &key).await {
                Ok(b) => b,
                Err(r) => return r.into_response(),
            }
        }
        _ => byoc_payment::Balance::zero(),
    };
    let mut out = StatusCode::OK.into_response();
    out.headers_mut().insert(headers::BALANCE, super::payments::balance_header(&balance));
    out
}
