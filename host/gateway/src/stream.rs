//! The gateway's stream and batch routes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use byoc_payment::job::JobRequest;
use byoc_trickle::{ClientError, HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::discovery::{Candidate, discover};
use super::{Gateway, Refusal, check_api_key, refuse, webhook};
use byoc_protocol::headers;
use byoc_protocol::{JobParameters, OrchestratorFilter};

/// One stream as the gateway runs it.
pub(crate) struct GwStream {
    id: String,
    secret: String,
    capability: String,
    /// The job's `parameters`, re-sent on every (re)start.
    parameters: String,
    timeout_seconds: i64,
    /// The orchestrator currently serving the stream.
    att: Mutex<Arc<Attachment>>,
    /// Orchestrators that failed this stream (not tried again).
    failed: Mutex<Vec<String>>,
    /// When the stream last moved to another orchestrator.
    swaps: Mutex<Vec<Instant>>,
    params: Mutex<Value>,
    last_status: Mutex<Value>,
    /// Why the stream is looking for another orchestrator, while it is (status `reconnecting`).
    reconnecting: Mutex<Option<&'static str>>,
    events: Feed,
    data: Feed,
    cancel: CancellationToken,
    started_ms: u128,
    /// Output segments for the gateway's own egress legs (see `legs::output`).
    output: std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    /// The output as WebRTC viewers get it (audio in Opus), started with the first of them.
    webrtc_output: std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    /// The WHIP publisher's session, if one is connected (one at a time).
    pub(crate) whip_session: tokio::sync::Mutex<Option<byoc_media::SessionId>>,
}

/// Messages for SSE readers: live ones, plus the last few for readers that connect late (a
/// client usually opens its event stream right after `start`, when the first events may
/// already have gone by).
pub(crate) struct Feed {
    history: Mutex<std::collections::VecDeque<Arc<str>>>,
    keep: usize,
    live: broadcast::Sender<Arc<str>>,
}

impl Feed {
    fn new(keep: usize) -> Self {
        Feed { history: Mutex::new(std::collections::VecDeque::new()), keep, live: broadcast::channel(64).0 }
    }

    fn send(&self, msg: Arc<str>) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == self.keep {
            h.pop_front();
        }
        h.push_back(msg.clone());
        // Sent under the lock, so a reader subscribing concurrently sees it exactly once.
        let _ = self.live.send(msg);
    }

    fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        (h.iter().cloned().collect(), self.live.subscribe())
    }
}

/// The stream as attached to one orchestrator; its legs end with `cancel`.
struct Attachment {
    orchestrator: String,
    /// Who the orchestrator's tickets pay (priced capabilities only).
    recipient: Option<byoc_payment::Address>,
    /// The stream's own balance there, as last reported, when it pays from one (opt-in,
    /// `per_stream_balance`); `None`: it pays from the gateway's shared balance.
    own_balance: Mutex<Option<i64>>,
    urls: OrchUrls,
    cancel: CancellationToken,
    /// Set by the first leg that notices the orchestrator lost the stream.
    lost: std::sync::atomic::AtomicBool,
    /// When the last event arrived (or the attachment started).
    last_event: Mutex<Instant>,
}

/// At most this many moves to another orchestrator within [`SWAP_WINDOW`]; beyond, the stream
/// ends (a stream that kills every orchestrator it lands on must not roam forever).
const MAX_SWAPS: usize = 3;
const SWAP_WINDOW: Duration = Duration::from_secs(60);

/// Pauses before each round of looking for another orchestrator for a lost stream: at once
/// among those that have not failed it, then among all of them again.
const REDISCOVERY_PAUSES: [Duration; 5] =
    [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8)];

impl Attachment {
    /// Keeps the stream's own balance only if the job asked for one.
    fn set_own_balance(&self, parameters: &str) {
        let own = serde_json::from_str::<JobParameters>(parameters).is_ok_and(|p| p.per_stream_balance);
        if !own {
            *self.own_balance.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    fn own_balance(&self) -> Option<i64> {
        *self.own_balance.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new(cand: &Candidate, urls: OrchUrls, cancel: CancellationToken) -> Arc<Attachment> {
        Arc::new(Attachment {
            orchestrator: cand.url.clone(),
            recipient: super::payments::recipient(&cand.token),
            own_balance: Mutex::new(urls.own_balance),
            urls,
            cancel,
            lost: Default::default(),
            last_event: Mutex::new(Instant::now()),
        })
    }
}

impl GwStream {
    fn att(&self) -> Arc<Attachment> {
        self.att.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the stream has ended.
    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The input channel on the orchestrator serving the stream now, if ingress is enabled.
    pub(crate) fn input_url(&self) -> Option<String> {
        self.att().urls.publish.clone()
    }

    /// The output channel on the orchestrator serving the stream now, if egress is enabled.
    pub(crate) fn output_url(&self) -> Option<String> {
        self.att().urls.subscribe.clone()
    }

    /// Whether `secret` is this stream's (constant time).
    pub(crate) fn has_secret(&self, secret: &str) -> bool {
        byoc_protocol::same_secret(secret.as_bytes(), self.secret.as_bytes())
    }

    /// The output fan-out, and whether it existed already.
    pub(crate) fn output_sender(&self, queue: usize) -> (broadcast::Sender<byoc_media::Piece>, bool) {
        fan_out(&self.output, queue)
    }

    /// The fan-out of the output as WebRTC viewers get it, and whether it existed already.
    pub(crate) fn webrtc_output_sender(&self, queue: usize) -> (broadcast::Sender<byoc_media::Piece>, bool) {
        fan_out(&self.webrtc_output, queue)
    }
}

/// The sender in `cell` (made with room for `queue` pieces on first use), and whether it existed.
fn fan_out(
    cell: &std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    queue: usize,
) -> (broadcast::Sender<byoc_media::Piece>, bool) {
    let mut created = false;
    let tx = cell.get_or_init(|| {
        created = true;
        broadcast::channel(queue).0
    });
    (tx.clone(), !created)
}

#[derive(Debug, Clone)]
struct OrchUrls {
    /// `Livepeer-Balance` of the start answer (the stream's own balance, if it has one).
    own_balance: Option<i64>,
    publish: Option<String>,
    subscribe: Option<String>,
    control: String,
    events: String,
    data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct StartRequest {
    #[serde(default)]
    stream_name: String,
    #[serde(default)]
    stream_id: String,
    #[serde(default)]
    rtmp_output: String,
    /// go-livepeer clients send a string holding a JSON object; an object is accepted too.
    #[serde(default)]
    params: Value,
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn valid_id_part(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

async fn read_body(gw: &Gateway, body: Body) -> Result<Bytes, Refusal> {
    byoc_protocol::read_limited(body, gw.config.max_body_bytes)
        .await
        .map_err(|m| refuse(StatusCode::PAYLOAD_TOO_LARGE, m))
}

fn job_from(h: &HeaderMap) -> Result<JobRequest, Refusal> {
    let v = h
        .get(headers::LIVEPEER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "missing Livepeer job header"))?;
    let job = JobRequest::from_header(v).map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("invalid job: {e}")))?;
    byoc_protocol::check_timeout(&job).map_err(|m| refuse(StatusCode::BAD_REQUEST, m))?;
    Ok(job)
}

fn header_url(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// The channel URLs an orchestrator handed out, refused unless they point at that orchestrator's
/// own trickle server (go-livepeer follows whatever URL it is given).
fn channel_urls(orch: &str, h: &HeaderMap) -> Result<OrchUrls, String> {
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

pub(super) async fn start(State(gw): State<Arc<Gateway>>, h: HeaderMap, body: Body) -> Response {
    match start_inner(gw, h, body).await {
        Ok(r) | Err(r) => r,
    }
    .into_response()
}

fn boxed(r: Response) -> Box<Response> {
    Box::new(r)
}

async fn start_inner(gw: Arc<Gateway>, h: HeaderMap, body: Body) -> Result<Box<Response>, Refusal> {
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
            started_ms: now_ms(),
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
async fn start_on(
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

/// The current orchestrator lost the stream (it closed the channels, died or refused the
/// control channel): move the stream to the next orchestrator with the latest params, or end it
/// when none is left or it has moved too often.
async fn lost(gw: Arc<Gateway>, stream: Arc<GwStream>, att: Arc<Attachment>, why: &'static str) {
    // Several legs notice the same loss; only the first acts.
    if stream.cancel.is_cancelled() || att.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    att.cancel.cancel();
    *stream.reconnecting.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    tracing::warn!(stream_id = %stream.id, orchestrator = %att.orchestrator, reason = why, "orchestrator lost the stream");
    // No answer, or "unknown stream" (404): it went down and may come back (or is back, restarted);
    // any other answer (e.g. 410, it ended the stream itself): it let the stream go.
    let may_return =
        tell_stop(&gw, &stream, &att.orchestrator, why).await.is_none_or(|r| r.status() == StatusCode::NOT_FOUND);
    stream.failed.lock().unwrap_or_else(|e| e.into_inner()).push(att.orchestrator.clone());
    let recent = {
        let mut swaps = stream.swaps.lock().unwrap_or_else(|e| e.into_inner());
        swaps.retain(|t| t.elapsed() < SWAP_WINDOW);
        swaps.push(Instant::now());
        swaps.len()
    };
    if recent > MAX_SWAPS {
        end(&gw, &stream.id, "too many orchestrator swaps", false).await;
        return;
    }
    let Ok(credential) = gw.credential() else { return };
    let wanted = serde_json::from_str::<JobParameters>(&stream.parameters).map(|p| p.orchestrators).unwrap_or_default();
    // First the orchestrators that have not failed this stream; then, if the one that lost it was
    // down, it is asked again after a pause (it may restart), a bounded number of times.
    let rounds = if may_return { REDISCOVERY_PAUSES.len() } else { 1 };
    for (round, pause) in REDISCOVERY_PAUSES.iter().take(rounds).enumerate() {
        tokio::select! {
            _ = stream.cancel.cancelled() => return,
            _ = tokio::time::sleep(*pause) => {}
        }
        let mut exclude = stream.failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if round > 0 {
            exclude.retain(|u| *u != att.orchestrator);
        }
        let filter = OrchestratorFilter { exclude, ..wanted.clone() };
        let (candidates, _) =
            discover(&gw.http, &gw.pool().await, &filter, &stream.capability, &credential, gw.config.token_timeout)
                .await;
        let params = stream.params.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for cand in candidates {
            if stream.cancel.is_cancelled() {
                return;
            }
            match start_on(
                &gw,
                &cand,
                &stream.id,
                &stream.capability,
                &stream.parameters,
                stream.timeout_seconds,
                &params,
            )
            .await
            {
                Ok(urls) => {
                    let next = Attachment::new(&cand, urls, stream.cancel.child_token());
                    next.set_own_balance(&stream.parameters);
                    *stream.att.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
                    *stream.reconnecting.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    tracing::info!(stream_id = %stream.id, from = %att.orchestrator, to = %cand.url, "stream moved to another orchestrator");
                    metrics::counter!("byoc_gateway_orchestrator_swaps_total").increment(1);
                    stream.events.send(Arc::from(
                        json!({"type": "orchestrator_swap", "from": att.orchestrator, "to": cand.url, "reason": why})
                            .to_string(),
                    ));
                    spawn_legs(&gw, &stream, next);
                    return;
                }
                Err(e) => {
                    tracing::info!(stream_id = %stream.id, reason = %e, "orchestrator refused the moved stream");
                    stream.failed.lock().unwrap_or_else(|e| e.into_inner()).push(cand.url.clone());
                }
            }
        }
    }
    end(&gw, &stream.id, "all orchestrators exhausted", false).await;
}

/// Most `rtmp_output` destinations one stream may push to.
const MAX_RTMP_OUTPUTS: usize = 8;

/// The client's `rtmp_output`: one `rtmp://` or `rtmps://` URL, or several separated by commas.
fn rtmp_destinations(rtmp_output: &str) -> Result<Vec<String>, Refusal> {
    let out: Vec<String> = rtmp_output.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
    if out.iter().any(|d| !(d.starts_with("rtmp://") || d.starts_with("rtmps://"))) {
        return Err(refuse(StatusCode::BAD_REQUEST, "rtmp_output must be rtmp:// or rtmps:// URLs (comma-separated)"));
    }
    if out.len() > MAX_RTMP_OUTPUTS {
        return Err(refuse(StatusCode::BAD_REQUEST, format!("at most {MAX_RTMP_OUTPUTS} rtmp_output destinations")));
    }
    Ok(out)
}

/// What start answers. `rtmp_output_url` lists, comma-separated as go-livepeer does, where the output
/// goes over RTMP: the client's own `rtmp_output` destinations (pushed to) and the gateway's play URL.
fn stream_urls(gw: &Gateway, s: &GwStream, jp: &JobParameters, rtmp_outputs: &[String]) -> Value {
    let base = format!("{}/process/stream/{}", gw.config.public_url.trim_end_matches('/'), s.id);
    let url = |route: &str| format!("{base}/{route}?token={}", s.secret);
    let when = |on: bool, u: String| if on { u } else { String::new() };
    json!({
        "stream_id": s.id,
        "stream_secret": s.secret,
        "whip_url": when(jp.enable_video_ingress, super::webrtc::url(gw, &base, "whip", &s.secret).unwrap_or_default()),
        "whep_url": when(jp.enable_video_egress, super::webrtc::url(gw, &base, "whep", &s.secret).unwrap_or_default()),
        "rtmp_url": if jp.enable_video_ingress { super::rtmp::ingest_url(gw, &s.id, &s.secret).unwrap_or_default() } else { String::new() },
        "rtmp_output_url": if jp.enable_video_egress {
            rtmp_outputs.iter().cloned().chain(super::rtmp::play_url(gw, &s.id, &s.secret)).collect::<Vec<_>>().join(",")
        } else {
            String::new()
        },
        "player_url": when(
            jp.enable_video_ingress || jp.enable_video_egress,
            super::webrtc::player_url(gw, &base, &s.secret).unwrap_or_default()
        ),
        "update_url": url("update"),
        "status_url": url("status"),
        "stop_url": url("stop"),
        "data_url": when(jp.enable_data_output, url("data")),
        "events_url": url("events"),
        "ingest_url": when(jp.enable_video_ingress, format!("{base}/ingest")),
        "egress_url": when(jp.enable_video_egress, format!("{base}/egress")),
    })
}

/// Starts the legs of a stream on one orchestrator: control keepalives, events and data
/// readers. They end with the attachment; the orchestrator closing the events or control channel
/// (or becoming unreachable) moves the stream to another one.
fn spawn_legs(gw: &Arc<Gateway>, s: &Arc<GwStream>, att: Arc<Attachment>) {
    let (weak, stream, a, every) = (Arc::downgrade(gw), s.clone(), att.clone(), gw.config.keepalive_every);
    tokio::spawn(async move {
        let Ok(mut control) = HttpPublisher::new(&a.urls.control, "application/json") else { return };
        loop {
            let mut seg = control.next_segment();
            if seg.write(Bytes::from_static(br#"{"keep":"alive"}"#)).is_err() {
                break;
            }
            let sent = tokio::select! {
                _ = a.cancel.cancelled() => return,
                r = seg.finish() => r,
            };
            if let Err(ClientError::NotFound | ClientError::Closed) = sent {
                break;
            }
            tokio::select! {
                _ = a.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
        if let Some(gw) = weak.upgrade() {
            lost(gw, stream, a, "control channel closed").await;
        }
    });
    let (weak, stream, a) = (Arc::downgrade(gw), s.clone(), att.clone());
    tokio::spawn(async move {
        let mut unpaid = false;
        read_channel(&a.urls.events, &a.cancel, |text| {
            *a.last_event.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            for text in byoc_protocol::messages::messages(text) {
                let event = serde_json::from_str::<Value>(text).ok();
                // pytrickle wraps events as {"event": {...}, "queue_event_type": ...}.
                let inner = event.as_ref().map(|e| e.get("event").unwrap_or(e));
                let kind = inner.and_then(|i| i.get("type")).and_then(Value::as_str);
                if let (Some(inner), Some("status")) = (inner, kind) {
                    *stream.last_status.lock().unwrap_or_else(|e| e.into_inner()) = inner.clone();
                }
                unpaid |= kind == Some("insufficient_balance");
                stream.events.send(Arc::from(text));
            }
        })
        .await;
        if let Some(gw) = weak.upgrade() {
            if unpaid {
                // Stopped for want of payment: another orchestrator would not be paid either.
                end(&gw, &stream.id, "the orchestrator stopped it: insufficient balance", false).await;
            } else {
                lost(gw, stream, a, "events channel ended").await;
            }
        }
    });
    if let (Some(every), Some(_)) = (gw.config.payment_every, att.recipient) {
        let (weak, stream, a) = (Arc::downgrade(gw), s.clone(), att.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = a.cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Some(gw) = weak.upgrade() else { return };
                if let Err(e) = top_up(&gw, &stream, &a).await {
                    tracing::warn!(stream_id = %stream.id, orchestrator = %a.orchestrator, error = %e, "payment failed");
                }
            }
        });
    }
    if let Some(limit) = gw.config.events_timeout {
        let (weak, stream, a) = (Arc::downgrade(gw), s.clone(), att.clone());
        tokio::spawn(async move {
            let every = (limit / 4).max(Duration::from_millis(10));
            loop {
                tokio::select! {
                    _ = a.cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let quiet = a.last_event.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
                if quiet >= limit {
                    break;
                }
            }
            if let Some(gw) = weak.upgrade() {
                lost(gw, stream, a, "no events from the orchestrator").await;
            }
        });
    }
    if let Some(data_url) = att.urls.data.clone() {
        let stream = s.clone();
        tokio::spawn(async move {
            read_channel(&data_url, &att.cancel, |text| {
                for line in byoc_protocol::messages::messages(text) {
                    stream.data.send(Arc::from(line));
                }
            })
            .await;
        });
    }
}

/// Keeps a priced stream paid: a fresh token from its orchestrator, and tickets for
/// `top_up_secs` of price when the balance is below `min_balance_secs` of it.
async fn top_up(gw: &Arc<Gateway>, stream: &GwStream, att: &Attachment) -> Result<(), String> {
    let credential = gw.credential().map_err(|_| "no credential".to_string())?.to_header();
    let token = super::discovery::fetch_token(
        &gw.http,
        &att.orchestrator,
        &credential,
        &stream.capability,
        gw.config.token_timeout,
    )
    .await?;
    let own = att.own_balance();
    let Some(payment) = super::payments::payment_for(gw, &token, &stream.capability, gw.config.top_up_secs, own)?
    else {
        return Ok(());
    };
    let signed = gw
        .sign(JobRequest {
            id: stream.id.clone(),
            request: json!({ "stream_id": stream.id }).to_string(),
            parameters: "{}".into(),
            capability: stream.capability.clone(),
            timeout_seconds: i64::try_from(gw.config.top_up_secs).unwrap_or(70),
            ..JobRequest::default()
        })
        .map_err(|_| "could not sign".to_string())?;
    let resp = gw
        .http
        .post(format!("{}/ai/stream/payment", att.orchestrator))
        .header(headers::LIVEPEER, signed)
        .header(headers::PAYMENT, payment)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(format!("{status}: {}", resp.text().await.unwrap_or_default().trim()));
    }
    let reported = resp.headers().get(headers::BALANCE).and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
    match (own, att.recipient, reported) {
        (Some(_), _, Some(b)) => *att.own_balance.lock().unwrap_or_else(|e| e.into_inner()) = Some(b),
        (None, Some(recipient), Some(b)) => super::payments::sync(&gw.ledger, &recipient, &stream.capability, b),
        _ => {}
    }
    Ok(())
}

/// Reads a message channel from its start until it ends or `cancel` fires.
async fn read_channel(url: &str, cancel: &CancellationToken, mut each: impl FnMut(&str)) {
    let Ok(mut sub) =
        HttpSubscriber::new(url, SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() })
    else {
        return;
    };
    loop {
        let seg = tokio::select! {
            _ = cancel.cancelled() => return,
            s = sub.next_segment() => s,
        };
        let Ok(Some(seg)) = seg else { return };
        let body = tokio::select! {
            _ = cancel.cancelled() => return,
            b = seg.read_all() => b,
        };
        if let Ok(b) = body {
            each(&String::from_utf8_lossy(&b));
        }
    }
}

/// Ends a stream once: its legs stop, it leaves the table and, if asked, the orchestrator is
/// told. Returns the orchestrator's answer to the stop, if any.
pub(crate) async fn end(gw: &Arc<Gateway>, id: &str, why: &str, tell: bool) -> Option<reqwest::Response> {
    let stream = gw.lock().remove(id)?;
    gw.ended.remember(id, &stream.secret, why);
    stream.cancel.cancel();
    metrics::gauge!("byoc_gateway_streams_active").decrement(1.0);
    let orchestrator = stream.att().orchestrator.clone();
    tracing::info!(stream_id = %id, orchestrator = %orchestrator, reason = why, "stream ended");
    if !tell {
        return None;
    }
    tell_stop(gw, &stream, &orchestrator, why).await
}

/// Sends a signed `/ai/stream/stop` (best effort).
async fn tell_stop(gw: &Gateway, stream: &GwStream, orchestrator: &str, why: &str) -> Option<reqwest::Response> {
    let signed = gw
        .sign(JobRequest {
            id: stream.id.clone(),
            request: json!({ "stream_id": stream.id }).to_string(),
            capability: stream.capability.clone(),
            timeout_seconds: 10,
            ..JobRequest::default()
        })
        .ok()?;
    gw.http
        .post(format!("{orchestrator}/ai/stream/stop"))
        .header(headers::LIVEPEER, signed)
        .timeout(Duration::from_secs(10))
        .body(why.to_string())
        .send()
        .await
        .ok()
}

/// The stream, if the request carries its secret (`Authorization: Bearer` or `?token=`).
/// A stream that ended lately stays answerable (410 with why) to whoever holds its secret.
pub(crate) fn authorized(gw: &Gateway, id: &str, h: &HeaderMap, query: Option<&str>) -> Result<Arc<GwStream>, Refusal> {
    let bearer =
        h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let Some(stream) = gw.lock().get(id).cloned() else {
        return Err(match bearer.or(token).and_then(|given| gw.ended.why(id, given)) {
            Some(why) => refuse(StatusCode::GONE, format!("stream ended: {why}")),
            None => refuse(StatusCode::NOT_FOUND, "Stream not found"),
        });
    };
    match bearer.or(token) {
        Some(given) if byoc_protocol::same_secret(given.as_bytes(), stream.secret.as_bytes()) => Ok(stream),
        Some(_) => Err(refuse(StatusCode::FORBIDDEN, "wrong stream secret")),
        None => {
            Err(refuse(StatusCode::UNAUTHORIZED, "this stream's secret is required (Authorization: Bearer or ?token=)"))
        }
    }
}

macro_rules! try_or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

pub(super) async fn stop(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    match end(&gw, &id, "stopped by the client", true).await {
        Some(resp) => {
            let body = resp.bytes().await.unwrap_or_default();
            (StatusCode::OK, body).into_response()
        }
        None => StatusCode::OK.into_response(),
    }
}

pub(super) async fn update(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Body,
) -> Response {
    let stream = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    let body = try_or_respond!(read_body(&gw, body).await);
    // Forwarded verbatim, as go-livepeer does; a JSON object is also remembered as the stream's
    // params (re-sent if the stream moves to another orchestrator).
    let params = serde_json::from_slice::<Value>(&body).ok().filter(Value::is_object);
    let signed = try_or_respond!(gw.sign(JobRequest {
        id: id.clone(),
        request: json!({ "stream_id": id }).to_string(),
        parameters: "{}".into(),
        capability: stream.capability.clone(),
        timeout_seconds: stream.timeout_seconds,
        ..JobRequest::default()
    }));
    let resp = gw
        .http
        .post(format!("{}/ai/stream/update", stream.att().orchestrator))
        .header(headers::LIVEPEER, signed)
        .header(http::header::CONTENT_TYPE, "application/json")
        .timeout(Duration::from_secs(stream.timeout_seconds.clamp(1, 3600).unsigned_abs() + 5))
        .body(body)
        .send()
        .await;
    match resp {
        Ok(r) => {
            if let (true, Some(p)) = (r.status().is_success(), params) {
                *stream.params.lock().unwrap_or_else(|e| e.into_inner()) = p;
            }
            let status = r.status();
            (status, r.bytes().await.unwrap_or_default()).into_response()
        }
        Err(e) => {
            metrics::counter!("byoc_gateway_errors_total", "kind" => "orchestrator_unreachable").increment(1);
            super::error(StatusCode::BAD_GATEWAY, format!("orchestrator unreachable: {e}"))
        }
    }
}

pub(super) async fn status(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let s = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    let params = s.params.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let last = s.last_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let att = s.att();
    let balance = match (att.own_balance(), att.recipient) {
        (Some(own), Some(_)) => Some(own.to_string()),
        (None, Some(r)) => Some(super::payments::balance(&gw.ledger, &r, &s.capability).to_string()),
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
        "started_at_ms": u64::try_from(s.started_ms).unwrap_or(u64::MAX),
        "params": params,
        "last_status": last,
    }))
    .into_response()
}

fn sse(s: &GwStream, feed: &Feed) -> Response {
    let (recent, rx) = feed.subscribe();
    let cancel = s.cancel.clone();
    let recent = futures_util::stream::iter(
        recent.into_iter().map(|text| Ok::<Event, Infallible>(Event::default().data(text.as_ref()))),
    );
    let live = futures_util::stream::unfold((rx, cancel), |(mut rx, cancel)| async move {
        loop {
            let msg = tokio::select! {
                _ = cancel.cancelled() => return None,
                m = rx.recv() => m,
            };
            match msg {
                Ok(text) => return Some((Ok::<Event, Infallible>(Event::default().data(text.as_ref())), (rx, cancel))),
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

pub(super) async fn data(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let s = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    if s.att().urls.data.is_none() {
        return super::error(StatusCode::SERVICE_UNAVAILABLE, "Stream data not available");
    }
    sse(&s, &s.data)
}

pub(super) async fn events(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let s = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    sse(&s, &s.events)
}

/// Copies a trickle answer (status, `Lp-Trickle-*` and `Content-Type`, streamed body).
fn relay_trickle(resp: reqwest::Response) -> Response {
    let mut out = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        let n = name.as_str();
        if n.starts_with("lp-trickle-") || n == "content-type" {
            out = out.header(name, value);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|e| super::error(StatusCode::BAD_GATEWAY, e.to_string()))
}

/// `POST /process/stream/{id}/ingest/{seq}`: a trickle publish of one MPEG-TS segment, relayed
/// to the orchestrator's input channel.
pub(super) async fn ingest(
    State(gw): State<Arc<Gateway>>,
    Path((id, seq)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Body,
) -> Response {
    let s = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    let att = s.att();
    let Some(url) = &att.urls.publish else {
        return super::error(StatusCode::CONFLICT, "video ingress is not enabled for this stream");
    };
    if seq.parse::<SeqRequest>().is_err() {
        return super::error(StatusCode::BAD_REQUEST, "invalid seq");
    }
    // Live video segments are a few MiB: a bigger body is cut off at the cap (the orchestrator
    // then sees an aborted segment), so one client cannot park 64 MiB segments in its window.
    let max = gw.config.media_limits.max_ingest_segment_bytes;
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capped = {
        let (cut, mut seen) = (cut.clone(), 0usize);
        body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            seen = seen.saturating_add(chunk.len());
            if seen > max {
                cut.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(std::io::Error::other("ingest segment over the cap"));
            }
            Ok(chunk)
        })
    };
    let mut req = gw.http.post(format!("{url}/{seq}")).body(reqwest::Body::wrap_stream(capped));
    req = req.header(http::header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    match req.send().await {
        Ok(r) => {
            if r.status().is_success() {
                metrics::counter!("byoc_gateway_segments_in_total").increment(1);
            }
            relay_trickle(r)
        }
        Err(_) if cut.load(std::sync::atomic::Ordering::SeqCst) => {
            super::error(StatusCode::PAYLOAD_TOO_LARGE, format!("ingest segment over {max} bytes: cut off"))
        }
        Err(e) => {
            metrics::counter!("byoc_gateway_errors_total", "kind" => "orchestrator_unreachable").increment(1);
            super::error(StatusCode::BAD_GATEWAY, format!("orchestrator unreachable: {e}"))
        }
    }
}

/// `GET /process/stream/{id}/egress/{seq}`: a trickle subscribe to the output channel (`-1`,
/// `-2`, a seq, or `next`), relayed from the orchestrator.
pub(super) async fn egress(
    State(gw): State<Arc<Gateway>>,
    Path((id, seq)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let s = try_or_respond!(authorized(&gw, &id, &h, q.as_deref()));
    let att = s.att();
    let Some(url) = &att.urls.subscribe else {
        return super::error(StatusCode::CONFLICT, "video egress is not enabled for this stream");
    };
    if seq != "next" && seq.parse::<SeqRequest>().is_err() {
        return super::error(StatusCode::BAD_REQUEST, "invalid seq");
    }
    match gw.http.get(format!("{url}/{seq}")).send().await {
        Ok(r) => {
            if r.status().is_success() {
                metrics::counter!("byoc_gateway_segments_out_total").increment(1);
            }
            relay_trickle(r)
        }
        Err(e) => {
            metrics::counter!("byoc_gateway_errors_total", "kind" => "orchestrator_unreachable").increment(1);
            super::error(StatusCode::BAD_GATEWAY, format!("orchestrator unreachable: {e}"))
        }
    }
}

/// `POST /process/request/{path}`: a batch job, tried on each orchestrator in turn. A 4xx is the
/// client's answer; a 5xx or a transport error moves on; all failing is a 503 with the reasons
/// (go-livepeer answers an empty 200).
pub(super) async fn batch(State(gw): State<Arc<Gateway>>, uri: http::Uri, h: HeaderMap, body: Body) -> Response {
    try_or_respond!(check_api_key(&gw, &h));
    let route = try_or_respond!(
        byoc_protocol::BatchPath::from_request_path(uri.path()).map_err(|m| refuse(StatusCode::BAD_REQUEST, m))
    );
    let path = route.decoded();
    let job = try_or_respond!(job_from(&h));
    let body = try_or_respond!(read_body(&gw, body).await);
    let filter = serde_json::from_str::<JobParameters>(&job.parameters).map(|p| p.orchestrators).unwrap_or_default();
    let query = json!({"kind": "batch", "capability": job.capability, "path": path,
        "parameters": job.parameters, "request": job.request});
    try_or_respond!(webhook(&gw, &h, query).await);
    let credential = try_or_respond!(gw.credential());
    let (candidates, mut reasons) =
        discover(&gw.http, &gw.pool().await, &filter, &job.capability, &credential, gw.config.token_timeout).await;
    for cand in candidates {
        let signed = try_or_respond!(gw.sign(JobRequest { capability_url: String::new(), ..job.clone() }));
        let mut req = gw
            .http
            .post(format!("{}/process/request/{}", cand.url, route.encoded()))
            .header(headers::LIVEPEER, signed)
            .timeout(Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs() + 5))
            .body(body.clone());
        if let Some(ct) = h.get(http::header::CONTENT_TYPE) {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        match req.send().await {
            Ok(r) if r.status().is_server_error() => {
                let status = r.status();
                reasons.push(format!("{}: {status} {}", cand.url, r.text().await.unwrap_or_default().trim()));
            }
            Ok(r) => {
                let mut out = Response::builder().status(r.status()).header("X-Orchestrator-Url", cand.url.as_str());
                for name in ["content-type", "x-metadata", "livepeer-balance"] {
                    if let Some(v) = r.headers().get(name) {
                        out = out.header(name, v);
                    }
                }
                return out
                    .body(Body::from_stream(r.bytes_stream()))
                    .unwrap_or_else(|e| super::error(StatusCode::BAD_GATEWAY, e.to_string()));
            }
            Err(e) => reasons.push(format!("{}: {e}", cand.url)),
        }
    }
    let body = json!({ "error": format!("no orchestrator completed the job for capability {}", job.capability), "reasons": reasons });
    metrics::counter!("byoc_gateway_errors_total", "kind" => "no_orchestrator").increment(1);
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
