//! What the two plugin drivers share (byte-level sessions in `plugin`, frame sessions in
//! `frames`): the command queue, feeding input segments, publishing on a channel, the plugin's
//! timer, and the failure policy.

use std::time::Duration;

use byoc_runtime::{CallError, FailurePolicy, Session};
use byoc_trickle::{LocalPublisher, LocalSegmentReader, LocalSubscriber};
use bytes::Bytes;
use serde_json::json;
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

/// Where a frame stream's input goes (its pipeline's decoder; a byte-level session reads its
/// [`Input`] itself).
pub(super) trait InputSink {
    /// A segment starts; false once the receiver is gone.
    async fn start(&self, seq: u64) -> bool;
    /// The segment's next bytes; false once the receiver is gone.
    async fn chunk(&self, bytes: Bytes) -> bool;
    /// The segment is complete (or was cut off); false once the receiver is gone.
    async fn end(&self) -> bool;
}

/// A stream's input channel, read segment by segment, chunk by chunk.
pub(super) struct Input {
    sub: LocalSubscriber,
    /// The segment being read.
    seg: Option<LocalSegmentReader>,
}

impl Input {
    pub(super) fn new(sub: LocalSubscriber) -> Input {
        Input { sub, seg: None }
    }

    /// What the input has next: a segment's start, its next bytes, or its end; `None` once the
    /// channel has ended. A cut-off segment ends like a complete one (the plugin gets its end,
    /// and the next segment starts afresh).
    pub(super) async fn next(&mut self) -> Option<Cmd> {
        match &mut self.seg {
            None => {
                let seg = self.sub.next_segment().await.ok().flatten()?;
                let seq = seg.seq().0;
                self.seg = Some(seg);
                Some(Cmd::Start(seq))
            }
            Some(seg) => match seg.next_chunk().await {
                Ok(Some(bytes)) => Some(Cmd::Chunk(bytes)),
                Ok(None) | Err(_) => {
                    self.seg = None;
                    Some(Cmd::End)
                }
            },
        }
    }
}

/// Feeds the input channel to `to`, segment by segment, chunk by chunk, until the channel or
/// the stream ends.
pub(super) async fn read_input(sub: LocalSubscriber, to: &impl InputSink, ended: &CancellationToken) {
    let mut input = Input::new(sub);
    loop {
        let next = tokio::select! {
            _ = ended.cancelled() => return,
            next = input.next() => next,
        };
        let delivered = match next {
            None => return,
            Some(Cmd::Start(seq)) => to.start(seq).await,
            Some(Cmd::Chunk(bytes)) => to.chunk(bytes).await,
            Some(Cmd::End) => to.end().await,
            Some(Cmd::Control(_)) => true,
        };
        if !delivered {
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
