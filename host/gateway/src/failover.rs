//! Losing an orchestrator (moving the stream to the next one) and ending a stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use byoc_payment::job::JobRequest;
use http::StatusCode;
use serde_json::json;

use super::Gateway;
use super::discovery::discover;
use super::model::{Attachment, GwStream, MAX_SWAPS, REDISCOVERY_PAUSES, SWAP_WINDOW};
use super::start::start_on;
use super::watchers::spawn_legs;
use byoc_protocol::headers;
use byoc_protocol::{JobParameters, OrchestratorFilter};

/// The current orchestrator lost the stream (it closed the channels, died or refused the
/// control channel): move the stream to the next orchestrator with the latest params, or end it
/// when none is left or it has moved too often.
pub(crate) async fn lost(gw: Arc<Gateway>, stream: Arc<GwStream>, att: Arc<Attachment>, why: &'static str) {
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
pub(crate) async fn tell_stop(
    gw: &Gateway,
    stream: &GwStream,
    orchestrator: &str,
    why: &str,
) -> Option<reqwest::Response> {
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
