//! The background work of an attached stream: control keepalives, events and data readers, payments,
//! and the events watchdog; each ends with the attachment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use byoc_payment::job::JobRequest;
use byoc_trickle::{ClientError, HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::failover::{end, lost};
use super::model::{Attachment, GwStream};
use byoc_protocol::headers;

/// Starts the legs of a stream on one orchestrator: control keepalives, events and data
/// readers. They end with the attachment; the orchestrator closing the events or control channel
/// (or becoming unreachable) moves the stream to another one.
pub(crate) fn spawn_legs(gw: &Arc<Gateway>, s: &Arc<GwStream>, att: Arc<Attachment>) {
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
pub(crate) async fn top_up(gw: &Arc<Gateway>, stream: &GwStream, att: &Attachment) -> Result<(), String> {
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
