//! Where a stream runs: starting it on an orchestrator and attaching it there (its watchers, and what
//! is done about a loss they report), moving it to the next orchestrator when one loses it, and
//! ending it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::client::{JobPost, answer_timeout, refusal_text, stream_job};
use crate::discovery::Candidate;
use crate::model::{Attachment, GwStream, Loss, MAX_SWAPS, OrchUrls, REDISCOVERY_PAUSES, SWAP_WINDOW};
use crate::state::Gateway;
use crate::watchers::spawn_watchers;
use byoc_protocol::headers;
use byoc_protocol::{JobParameters, OrchestratorFilter};

/// Attaches the stream to the orchestrator of `att`: starts its watchers, and acts on the first loss
/// they report (the stream moves on, or ends when it was not paid for).
pub(crate) fn attach(gw: &Arc<Gateway>, stream: &Arc<GwStream>, att: Arc<Attachment>) {
    let mut losses = spawn_watchers(gw, stream, &att);
    let (weak, stream) = (Arc::downgrade(gw), stream.clone());
    tokio::spawn(async move {
        let mut moving = false;
        while let Some(loss) = losses.recv().await {
            let Some(gw) = weak.upgrade() else { return };
            match loss {
                Loss::Unpaid => {
                    // Stopped for want of payment: another orchestrator would not be paid either.
                    end(&gw, &stream.id, "the orchestrator stopped it: insufficient balance", false).await;
                    return;
                }
                // Several watchers notice the same loss; only the first acts.
                Loss::Lost(why) if !moving => {
                    moving = true;
                    tokio::spawn(lost(gw, stream.clone(), att.clone(), why));
                }
                Loss::Lost(_) => {}
            }
        }
    });
}

/// The current orchestrator lost the stream (it closed the channels, died or refused the
/// control channel): move the stream to the next orchestrator with the latest params, or end it
/// when none is left or it has moved too often.
async fn lost(gw: Arc<Gateway>, stream: Arc<GwStream>, att: Arc<Attachment>, why: &'static str) {
    if stream.cancel.is_cancelled() {
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
        let Ok((candidates, _)) = gw.discover(&filter, &stream.capability).await else { return };
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
                    attach(&gw, &stream, next);
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

/// Ends a stream once: its watchers and media stop, it leaves the table and, if asked, the orchestrator is
/// told. Returns the orchestrator's answer to the stop, if any.
pub(crate) async fn end(gw: &Arc<Gateway>, id: &str, why: &str, tell: bool) -> Option<reqwest::Response> {
    let stream = gw.lock().remove(id)?;
    gw.ended.remember(id, &stream.secret, &stream.viewer, why);
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
pub(crate) async fn tell_stop(
    gw: &Gateway,
    stream: &GwStream,
    orchestrator: &str,
    why: &str,
) -> Option<reqwest::Response> {
    let job = stream_job(&stream.id, &stream.capability, "", 10);
    let post = JobPost::new(format!("{orchestrator}/ai/stream/stop"), job, Duration::from_secs(10));
    gw.client.post(JobPost { body: Bytes::from(why.to_string()), ..post }).await.ok()
}

impl Gateway {
    /// Stops every stream (gateway shutdown).
    pub async fn shutdown(self: &Arc<Self>) {
        for id in self.stream_ids() {
            end(self, &id, "gateway shutting down", true).await;
        }
    }
}

/// Why an orchestrator did not take a stream.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The orchestrator's answer, when it answered with one (not reached, bad URLs: none).
    pub(crate) status: Option<StatusCode>,
    /// What happened, naming the orchestrator.
    pub(crate) reason: String,
}

impl Refusal {
    fn other(reason: String) -> Refusal {
        Refusal { status: None, reason }
    }

    /// The orchestrator refused the request itself (400, 422: bad params, or params beyond its
    /// limits), not for want of capacity, payment or health.
    pub(crate) fn of_the_request(&self) -> bool {
        matches!(self.status, Some(StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
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
) -> Result<OrchUrls, Refusal> {
    let orch = cand.url.as_str();
    // Priced: pay for the job's timeout when the balance is low, as go-livepeer does; a stream
    // with a balance of its own starts from nothing there.
    let own = serde_json::from_str::<JobParameters>(parameters).is_ok_and(|p| p.per_stream_balance).then_some(0);
    let payment = crate::payments::payment_for(gw, &cand.token, capability, timeout_seconds.max(1).unsigned_abs(), own)
        .await
        .map_err(|e| Refusal::other(format!("{orch}: cannot pay: {e}")))?;
    let job = stream_job(id, capability, parameters, timeout_seconds);
    let post = JobPost::new(format!("{orch}/ai/stream/start"), job, answer_timeout(timeout_seconds))
        .json(json!({ "params": params }).to_string());
    let resp = gw.client.post(JobPost { payment, ..post }).await.map_err(|e| Refusal::other(format!("{orch}: {e}")))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(Refusal { status: Some(status), reason: format!("{orch}: {}", refusal_text(resp).await) });
    }
    let mut urls = channel_urls(orch, resp.headers()).map_err(|e| Refusal::other(format!("{orch}: {e}")))?;
    urls.own_balance = resp.headers().get(headers::BALANCE).and_then(|v| v.to_str().ok()?.parse().ok());
    Ok(urls)
}

fn header_url(h: &HeaderMap, name: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn channel_urls_must_be_on_the_orchestrators_own_trickle_server() {
        let orch = "http://o:1";
        let h = headers(&[
            ("x-control-url", "http://o:1/ai/trickle/s-control"),
            ("x-events-url", "http://o:1/ai/trickle/s-events"),
            ("x-publish-url", "http://o:1/ai/trickle/s-in"),
        ]);
        let urls = channel_urls(orch, &h).unwrap();
        assert_eq!(urls.control, "http://o:1/ai/trickle/s-control");
        assert_eq!(urls.publish.as_deref(), Some("http://o:1/ai/trickle/s-in"));
        assert_eq!((urls.subscribe, urls.data), (None, None));

        let elsewhere = headers(&[
            ("x-control-url", "http://o:1/ai/trickle/s-control"),
            ("x-events-url", "http://victim:1/ai/trickle/s-events"),
        ]);
        assert!(channel_urls(orch, &elsewhere).unwrap_err().contains("is not on the orchestrator"));
        let no_control = headers(&[("x-events-url", "http://o:1/ai/trickle/s-events")]);
        assert_eq!(channel_urls(orch, &no_control).unwrap_err(), "no X-Control-Url");
    }
}
