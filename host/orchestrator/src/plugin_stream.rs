//! A stream served by a WebAssembly plugin in this process: the session is attached to the
//! stream's trickle channels in-process (local subscribers and publishers, no HTTP hop).
//!
//! Tasks, all ended by the stream's cancellation token:
//! - input: reads the input channel segment by segment, chunk by chunk, into the session's command
//!   queue;
//! - control: reads the control channel (keepalives dropped) into the same queue;
//! - driver: owns the session, applies commands in order, applies the failure policy;
//! - outputs: writes the session's output to the output, data and events channels.

use std::sync::Arc;

use byoc_runtime::{CallError, FailurePolicy, Output, Outputs, Session};
use byoc_trickle::{LocalPublisher, LocalSegmentWriter, LocalSubscriber, Seq, SeqRequest};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Orchestrator;
use super::channels::StreamChannels;

/// Commands queued for the session; bounded so a slow plugin slows its input reader.
pub(crate) const COMMAND_QUEUE: usize = 64;

/// What the session is asked to do, in order.
#[derive(Debug)]
pub(crate) enum Cmd {
    Start(u64),
    Chunk(Bytes),
    End,
    Control(String),
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    orch: &Arc<Orchestrator>,
    id: &str,
    channels: &StreamChannels,
    session: Session,
    outputs: Outputs,
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Cmd>,
    cancel: CancellationToken,
    failed: CancellationToken,
) {
    let store = orch.trickle.clone();
    if let Some(input) = &channels.input {
        let (store, input, tx, cancel) = (store.clone(), input.clone(), tx.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut sub = LocalSubscriber::new(&store, &input, SeqRequest::At(Seq(0)));
            loop {
                let seg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    s = sub.next_segment() => s,
                };
                let Ok(Some(mut seg)) = seg else { return };
                if tx.send(Cmd::Start(seg.seq().0)).await.is_err() {
                    return;
                }
                loop {
                    let chunk = tokio::select! {
                        _ = cancel.cancelled() => return,
                        c = seg.next_chunk() => c,
                    };
                    match chunk {
                        Ok(Some(c)) => {
                            if tx.send(Cmd::Chunk(c)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        // A cut-off input segment is not handed on as whole: the plugin
                        // gets its end, and the next segment starts afresh.
                        Err(_) => break,
                    }
                }
                if tx.send(Cmd::End).await.is_err() {
                    return;
                }
            }
        });
    }
    {
        let (store, control, cancel) = (store.clone(), channels.control.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut sub = LocalSubscriber::new(&store, &control, SeqRequest::At(Seq(0)));
            loop {
                let seg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    s = sub.next_segment() => s,
                };
                let Ok(Some(seg)) = seg else { return };
                let Ok(body) = seg.read_all().await else { continue };
                let text = String::from_utf8_lossy(&body);
                // Usually one JSON message per segment, but racing publishers may have put several.
                let msgs = byoc_protocol::messages::json_values(&text).unwrap_or_else(|| vec![text.trim()]);
                for msg in msgs {
                    let keepalive =
                        serde_json::from_str::<serde_json::Value>(msg).is_ok_and(|v| v == json!({"keep": "alive"}));
                    if msg.is_empty() || keepalive {
                        continue;
                    }
                    if tx.send(Cmd::Control(msg.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    let events = LocalPublisher::new(&store, &channels.events).ok();
    publish_text(events.as_ref(), &json!({"type": "stream_started", "plugin": session.plugin_name()}).to_string());
    // A heartbeat on the events channel (as pytrickle workers send) lets a gateway tell a live
    // stream from a dead one even when the plugin itself is quiet.
    if let Some(events) = events.clone() {
        let (cancel, every) = (cancel.clone(), orch.config.heartbeat_every);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let beat = json!({"event": {"type": "heartbeat"}, "queue_event_type": "stream_heartbeat"});
                publish_text(Some(&events), &beat.to_string());
            }
        });
    }
    tokio::spawn(drive(id.to_string(), session, rx, cancel.clone(), failed, events.clone()));
    let out = channels.output.as_ref().and_then(|name| LocalPublisher::new(&store, name).ok());
    let data = channels.data.as_ref().and_then(|name| LocalPublisher::new(&store, name).ok());
    tokio::spawn(write_outputs(outputs, out, data, events, cancel, id.to_string()));
}

fn publish_text(publisher: Option<&LocalPublisher>, text: &str) {
    let Some(p) = publisher else { return };
    if let Ok(mut seg) = p.next_segment()
        && seg.write(Bytes::copy_from_slice(text.as_bytes())).is_ok()
    {
        seg.finish();
    }
}

/// Owns the session: applies commands in order and the plugin's failure policy.
async fn drive(
    id: String,
    mut session: Session,
    mut rx: mpsc::Receiver<Cmd>,
    cancel: CancellationToken,
    failed: CancellationToken,
    events: Option<LocalPublisher>,
) {
    // After a restart, chunks of the segment that was cut short are skipped up to the next start.
    let mut skipping = false;
    loop {
        let cmd = tokio::select! {
            _ = cancel.cancelled() => break,
            c = rx.recv() => c,
        };
        let Some(cmd) = cmd else { break };
        let began = std::time::Instant::now();
        let (call, result) = match cmd {
            Cmd::Start(seq) => {
                skipping = false;
                ("segment_start", session.on_segment_start(seq).await)
            }
            Cmd::Chunk(_) | Cmd::End if skipping => continue,
            Cmd::Chunk(c) => ("chunk", session.on_chunk(&c).await),
            Cmd::End => ("segment_end", session.on_segment_end().await),
            Cmd::Control(text) => ("control", session.on_control(&text).await),
        };
        byoc_protocol::telemetry::plugin_call(call, began);
        let Err(e) = result else { continue };
        let report = json!({"type": "error", "kind": e.kind(), "message": e.to_string(), "fatal": e.is_failure()});
        publish_text(events.as_ref(), &report.to_string());
        if !e.is_failure() {
            continue; // The plugin refused one call; the session goes on.
        }
        tracing::warn!(stream_id = %id, kind = e.kind(), error = %e, "plugin session failed");
        metrics::counter!("byoc_plugin_failures_total", "kind" => e.kind()).increment(1);
        let restarted = session.failure_policy() == FailurePolicy::RestartSession && {
            let r = tokio::select! {
                _ = cancel.cancelled() => Err(CallError::Closed),
                r = session.restart() => r,
            };
            r.is_ok()
        };
        if restarted {
            skipping = true;
            publish_text(
                events.as_ref(),
                &json!({"type": "plugin_restarted", "restarts": session.restarts()}).to_string(),
            );
            continue;
        }
        // The stream's monitor ends it (one place ends streams).
        failed.cancel();
        return;
    }
    let _ = session.close().await;
}

/// Publishes what the session produces.
async fn write_outputs(
    mut outputs: Outputs,
    out: Option<LocalPublisher>,
    data: Option<LocalPublisher>,
    events: Option<LocalPublisher>,
    cancel: CancellationToken,
    id: String,
) {
    let mut segment: Option<LocalSegmentWriter> = None;
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            o = outputs.recv() => o,
        };
        let Some(output) = next else { return };
        match output {
            Output::SegmentStart { seq } => {
                segment = out.as_ref().and_then(|p| p.segment(Seq(seq)).ok());
            }
            Output::SegmentChunk(bytes) => {
                if let Some(w) = segment.as_mut()
                    && w.write(bytes).is_err()
                {
                    segment = None;
                }
            }
            Output::SegmentEnd => {
                if let Some(w) = segment.take() {
                    w.finish();
                }
            }
            Output::Data(line) => {
                let mut text = line;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                publish_text(data.as_ref(), &text);
            }
            Output::Event(json) => publish_text(events.as_ref(), &json),
            Output::Log { level, msg } => tracing::info!(stream_id = %id, ?level, "plugin: {msg}"),
        }
    }
}
