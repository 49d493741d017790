//! The streams running on this node, and those it ended lately.
//!
//! A stream holds one capacity slot from a successful start until it ends, and it ends exactly
//! once, whatever ends it: [`Streams::remove`] takes it out of the map, and only the call that did
//! cancels its tasks, deletes its channels and frees its slot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use byoc_payment::Address;
use byoc_trickle::TrickleStore;
use serde::Serialize;

use crate::backend::{StreamBackend, StreamLife};
use crate::capacity::Reservation;
use crate::channels::StreamChannels;
use crate::payments::Payer;

/// What the orchestrator knows of a running stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    /// The stream's id (the start job's id).
    pub id: String,
    /// The capability serving it.
    pub capability: String,
    /// Who started it (signed jobs only); only they may stop, update or pay for it.
    pub sender: Option<Address>,
    /// Its trickle channels.
    pub channels: StreamChannels,
}

/// A running stream.
pub(crate) struct Entry {
    pub(crate) info: StreamInfo,
    /// Its connection to the plugin or worker serving it.
    pub(crate) backend: StreamBackend,
    /// Its cancellation tokens.
    pub(crate) life: StreamLife,
    /// Who pays for the stream, on a priced capability.
    pub(crate) payer: Option<Payer>,
    reservation: Mutex<Option<Reservation>>,
}

impl Entry {
    /// A stream holding `reservation` until it ends.
    pub(crate) fn new(
        info: StreamInfo,
        backend: StreamBackend,
        reservation: Reservation,
        payer: Option<Payer>,
    ) -> Entry {
        Entry { info, backend, life: StreamLife::default(), payer, reservation: Mutex::new(Some(reservation)) }
    }

    /// Frees the stream's slot (once: later calls do nothing).
    fn free_slot(&self) {
        drop(self.reservation.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// Why a stream ended here: the words a 410 and the logs give, and the bounded label of
/// `byoc_orchestrator_streams_ended_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// Its gateway stopped it.
    Stopped,
    /// Priced mode: its balance ran out.
    InsufficientBalance,
    /// Its plugin session failed for good.
    PluginFailed,
    /// Its control channel is gone.
    ControlClosed,
    /// Its gateway sent no control keepalive for the idle timeout.
    GatewayQuiet,
    /// This node is shutting down.
    ShuttingDown,
    /// It never started: why.
    StartFailed(&'static str),
}

impl EndReason {
    /// In words.
    pub(crate) fn text(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped by the gateway",
            EndReason::InsufficientBalance => "insufficient balance",
            EndReason::PluginFailed => "the plugin failed",
            EndReason::ControlClosed => "control channel closed",
            EndReason::GatewayQuiet => "gateway went quiet (no control keepalive)",
            EndReason::ShuttingDown => "orchestrator shutting down",
            EndReason::StartFailed(why) => why,
        }
    }

    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::InsufficientBalance => "insufficient_balance",
            EndReason::PluginFailed => "plugin_failed",
            EndReason::ControlClosed => "control_closed",
            EndReason::GatewayQuiet => "gateway_quiet",
            EndReason::ShuttingDown => "shutdown",
            EndReason::StartFailed(_) => "start_failed",
        }
    }
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

/// The streams of a node.
pub(crate) struct Streams {
    map: Mutex<HashMap<String, Arc<Entry>>>,
    /// Streams this node ended lately, with why: a stop or update for one of them is 410, so that
    /// a gateway can tell "ended here" from "unknown here" (this node restarted).
    ended: Mutex<VecDeque<Ended>>,
    /// Where their channels are.
    trickle: TrickleStore,
}

impl Streams {
    /// No streams yet; their channels will be on `trickle`.
    pub(crate) fn new(trickle: TrickleStore) -> Streams {
        Streams { map: Mutex::default(), ended: Mutex::default(), trickle }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ended_lock(&self) -> MutexGuard<'_, VecDeque<Ended>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every running stream, by id.
    pub(crate) fn list(&self) -> Vec<StreamInfo> {
        let mut v: Vec<StreamInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The running stream `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.lock().get(id).cloned()
    }

    /// Adds a stream; `false` (and nothing changes) when its id is taken.
    pub(crate) fn insert(&self, entry: Arc<Entry>) -> bool {
        let mut map = self.lock();
        if map.contains_key(&entry.info.id) {
            return false;
        }
        map.insert(entry.info.id.clone(), entry);
        true
    }

    fn remember(&self, id: &str, why: EndReason) {
        let mut ended = self.ended_lock();
        if ended.len() == REMEMBER_ENDED {
            ended.pop_front();
        }
        ended.push_back(Ended { id: id.to_string(), why: why.text().to_string(), at_ms: byoc_protocol::now_ms() });
    }

    /// Why the stream `id` last ended here, if it is remembered.
    pub(crate) fn why_ended(&self, id: &str) -> Option<String> {
        self.ended_lock().iter().rev().find(|e| e.id == id).map(|e| e.why.clone())
    }

    /// When the stream `id` last ended here, if it is remembered.
    pub(crate) fn ended_at(&self, id: &str) -> Option<u64> {
        self.ended_lock().iter().rev().find(|e| e.id == id).map(|e| e.at_ms)
    }

    /// Removes a stream: exactly once, whoever calls it. Frees its slot, closes its channels and
    /// ends its tasks. Returns the entry if this call removed it.
    pub(crate) fn remove(&self, id: &str, why: EndReason) -> Option<Arc<Entry>> {
        let entry = self.lock().remove(id)?;
        self.remember(id, why);
        entry.life.ended.cancel();
        for ch in entry.info.channels.names() {
            let _ = self.trickle.delete_channel(&ch);
        }
        entry.free_slot();
        metrics::gauge!("byoc_orchestrator_streams_active").decrement(1.0);
        metrics::counter!("byoc_orchestrator_streams_ended_total", "reason" => why.label()).increment(1);
        tracing::info!(stream_id = %id, capability = %entry.info.capability, reason = why.text(), "stream ended");
        Some(entry)
    }

    /// Removes a stream whose channels were being created when `failed` could not be: the
    /// channels before it are its own and go; `failed` and those after it are left alone.
    pub(crate) fn remove_created(&self, id: &str, failed: &str, why: EndReason) {
        let Some(entry) = self.lock().remove(id) else { return };
        for name in entry.info.channels.names().iter().take_while(|n| n.as_str() != failed) {
            let _ = self.trickle.delete_channel(name);
        }
        self.remember(id, why);
        entry.life.ended.cancel();
        entry.free_slot();
        tracing::info!(stream_id = %id, reason = why.text(), "stream not started");
    }

    /// Removes a stream and tells its backend why (best effort).
    pub(crate) async fn end(&self, id: &str, why: EndReason) {
        if let Some(entry) = self.remove(id, why) {
            entry.backend.end(why.text()).await;
        }
    }

    /// Ends every stream (node shutdown).
    pub(crate) async fn end_all(&self, why: EndReason) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            self.end(&id, why).await;
        }
    }
}
