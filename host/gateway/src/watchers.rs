//! The watchers of an attached stream, the background work that keeps it attached: control
//! keepalives, events and data readers, payments, and the events watchdog. Each ends with the
//! attachment; the first to notice that the orchestrator lost the stream reports a [`Loss`] (what to
//! do about it is `failover`'s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use byoc_trickle::{ClientError, HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::{JobPost, refusal_text, stream_job};
use crate::model::{Attachment, GwStream, Loss};
use crate::state::Gateway;
use byoc_protocol::headers;

/// Starts the watchers of a stream on one orchestrator: control keepalives, events and data
/// readers, payments and the events watchdog. They end with the attachment; the orchestrator
/// closing the events or control channel (or becoming unreachable, or quiet) is reported on the
/// returned channel, which closes once no watcher is left to report.
pub(crate) fn spawn_watchers(
    gw: &Arc<Gateway>,
    s: &Arc<GwStream>,
    att: &Arc<Attachment>,
) -> mpsc::UnboundedReceiver<Loss> {
    let (losses, reported) = mpsc::unbounded_channel();
    let (a, every, loss) = (att.clone(), gw.config.keepalive_every, losses.clone());
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
        let _ = loss.send(Loss::Lost("control channel closed"));
    });
    let (stream, a, loss) = (s.clone(), att.clone(), losses.clone());
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
        let _ = loss.send(if unpaid { Loss::Unpaid } else { Loss::Lost("events channel ended") });
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
        let (a, loss) = (att.clone(), losses);
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
            let _ = loss.send(Loss::Lost("no events from the orchestrator"));
        });
    }
    if let Some(data_url) = att.urls.data.clone() {
        let (stream, att) = (s.clone(), att.clone());
        tokio::spawn(async move {
            read_channel(&data_url, &att.cancel, |text| {
                for line in byoc_protocol::messages::messages(text) {
                    stream.data.send(Arc::from(line));
                }
            })
            .await;
        });
    }
    reported
}

/// Keeps a priced stream paid: a fresh token from its orchestrator, and tickets for
/// `top_up_secs` of price when the balance is below `min_balance_secs` of it.
pub(crate) async fn top_up(gw: &Gateway, stream: &GwStream, att: &Attachment) -> Result<(), String> {
    let token = gw.client.token(&att.orchestrator, &stream.capability, gw.config.token_timeout).await?;
    let own = att.own_balance();
    let Some(payment) =
        crate::payments::payment_for(gw, &token, &stream.capability, gw.config.top_up_secs, own).await?
    else {
        return Ok(());
    };
    let timeout_seconds = i64::try_from(gw.config.top_up_secs).unwrap_or(70);
    let job = stream_job(&stream.id, &stream.capability, "{}", timeout_seconds);
    let url = format!("{}/ai/stream/payment", att.orchestrator);
    let post = JobPost { payment: Some(payment), ..JobPost::new(url, job, Duration::from_secs(10)) };
    let resp = gw.client.post(post).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(refusal_text(resp).await);
    }
    let reported = resp.headers().get(headers::BALANCE).and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
    match (own, att.recipient, reported) {
        (Some(_), _, Some(b)) => *att.own_balance.lock().unwrap_or_else(|e| e.into_inner()) = Some(b),
        (None, Some(recipient), Some(b)) => crate::payments::sync(&gw.ledger, &recipient, &stream.capability, b),
        _ => {}
    }
    Ok(())
}

/// Reads a message channel from its start until it ends or `cancel` fires.
pub(crate) async fn read_channel(url: &str, cancel: &CancellationToken, mut each: impl FnMut(&str)) {
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
