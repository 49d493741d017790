//! What the two plugin drivers share (byte-level sessions in `plugin`, frame sessions in
//! `frames`): the command queue, feeding input segments, publishing on a channel, the plugin's
//! timer, and the failure policy.

use std::time::Duration;

use byoc_runtime::{CallError, FailurePolicy, Session};
use byoc_trickle::{LocalPublisher, LocalSegmentReader, LocalSubscriber};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the session is asked to do, in order.
#[derive(Debug)]
pub(super) enum Cmd {
    Start(u64),
    Chunk(Bytes),
    End,
    Control(String),
}

/// The next segment of `sub`; `None` once the channel or the stream has ended.
pub(super) async fn next_segment(sub: &mut LocalSubscriber, ended: &CancellationToken) -> Option<LocalSegmentReader> {
    tokio::select! {
        _ = ended.cancelled() => None,
        s = sub.next_segment() => s.ok().flatten(),
    }
}

/// Where a stream's input goes: the byte-level session's queue, or a frame pipeline's decoder.
pub(super) trait InputSink {
    /// A segment starts; false once the receiver is gone.
    async fn start(&self, seq: u64) -> bool;
    /// The segment's next bytes; false once the receiver is gone.
    async fn chunk(&self, bytes: Bytes) -> bool;
    /// The segment is complete (or was cut off); false once the receiver is gone.
    async fn end(&self) -> bool;
}

impl InputSink for mpsc::Sender<Cmd> {
    async fn start(&self, seq: u64) -> bool {
        self.send(Cmd::Start(seq)).await.is_ok()
    }

    async fn chunk(&self, bytes: Bytes) -> bool {
        self.send(Cmd::Chunk(bytes)).await.is_ok()
    }

    async fn end(&self) -> bool {
        self.send(Cmd::End).await.is_ok()
    }
}

/// Feeds the input channel to `to`, segment by segment, chunk by chunk, until the channel or
/// the stream ends.
pub(super) async fn read_input(mut sub: LocalSubscriber, to: &impl InputSink, ended: &CancellationToken) {
    while let Some(mut seg) = next_segment(&mut sub, ended).await {
        if !to.start(seg.seq().0).await {
            return;
        }
        loop {
            let chunk = tokio::select! {
                _ = ended.cancelled() => return,
                c = seg.next_chunk() => c,
            };
            match chunk {
                Ok(Some(c)) => {
                    if !to.chunk(c).await {
                        return;
                    }
                }
                Ok(None) => break,
                // A cut-off input segment is not handed on as whole: the plugin
                // gets its end, and the next segment starts afresh.
                Err(_) => break,
            }
        }
        if !to.end().await {
            return;
        }
    }
}

/// Publishes one text segment on `publisher`, if any.
pub(super) fn publish_text(publisher: Option<&LocalPublisher>, text: &str) {
    let Some(p) = publisher else { return };
    if let Ok(mut seg) = p.next_segment()
        && seg.write(Bytes::copy_from_slice(text.as_bytes())).is_ok()
    {
        seg.finish();
    }
}

/// Where a session stands after a call failed.
pub(super) enum Recovery {
    /// The plugin refused one call; the session goes on.
    CarryOn,
    /// The session failed and was restarted on a fresh instance.
    Restarted,
    /// The session failed for good: the stream must end.
    Failed,
}

/// Reports a failed call on the events channel and applies the plugin's failure policy.
pub(super) async fn recover(
    id: &str,
    session: &mut Session,
    e: CallError,
    cancel: &CancellationToken,
    events: Option<&LocalPublisher>,
) -> Recovery {
    let report = json!({"type": "error", "kind": e.kind(), "message": e.to_string(), "fatal": e.is_failure()});
    publish_text(events, &report.to_string());
    if !e.is_failure() {
        return Recovery::CarryOn;
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
    if !restarted {
        return Recovery::Failed;
    }
    publish_text(events, &json!({"type": "plugin_restarted", "restarts": session.restarts()}).to_string());
    Recovery::Restarted
}

/// The plugin's timer: ticks at the interval the session last asked for (`host.set-tick`),
/// never while a call runs; ticks missed meanwhile are skipped, not made up.
#[derive(Default)]
pub(super) struct Ticker {
    every: Option<Duration>,
    interval: Option<tokio::time::Interval>,
}

impl Ticker {
    /// Follows the interval the session wants now.
    pub(super) fn follow(&mut self, wanted: Option<Duration>) {
        if wanted == self.every {
            return;
        }
        self.every = wanted;
        self.interval = wanted.map(|every| {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            interval
        });
    }

    /// The next tick; never, when no ticks are wanted.
    pub(super) async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}
