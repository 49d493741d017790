//! The store-wide byte budget for buffered segments.
//!
//! Every byte a segment buffers (visible chunks and bodies queued behind another publisher) is
//! charged here when it is appended, plus [`CHUNK_COST`] per chunk for its bookkeeping, and
//! credited back exactly once: when the segment is freed (it left its window or channel and its
//! last reader let go), when a queued body is given up, or when the segment is dropped to make
//! room. A segment evicted from its window but still held by a slow reader keeps its bytes in
//! memory, so it stays charged until that reader lets go (or it is dropped).
//!
//! When a chunk does not fit, the oldest segments that have ended (complete or aborted) and
//! still hold bytes are dropped, across all channels, oldest first (in the order their first
//! byte arrived); segments still being written are never dropped. If even that cannot make room,
//! the chunk is refused and its publisher gets an error.
//!
//! Lock order: a segment's state lock is never held while the ledger lock is taken; the ledger
//! lock may be held while a segment's state is read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

/// What the budget charges per chunk on top of its bytes: the `Bytes` handle kept for it. A
/// publisher sending one-byte chunks must not buffer thirty times its budget.
pub(crate) const CHUNK_COST: usize = size_of::<Bytes>();

/// Attempts at making room for one chunk before refusing it (each drops at least one segment;
/// the bound only matters when other publishers keep refilling the room).
const MAKE_ROOM_ATTEMPTS: usize = 8;

/// Default budget when physical memory cannot be read: 1 GiB.
pub(crate) const FALLBACK_BUDGET: usize = 1 << 30;

/// What the budget needs of a segment that holds charged bytes (a trickle segment; the budget
/// names no segment type, so that `segment` uses `memory` and not the other way round).
pub(crate) trait Holder: Send + Sync {
    /// The bytes dropping it would free, if it may be dropped: it has ended and holds bytes.
    fn droppable_bytes(&self) -> Option<usize>;
    /// Drops an ended segment's bytes to make room in the budget; its readers get an error.
    fn drop_for_memory(&self);
}

/// The byte budget shared by every segment of one store.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    ledger: Mutex<Ledger>,
    dropped: AtomicU64,
    next_order: AtomicU64,
}

#[derive(Debug, Default)]
struct Ledger {
    used: usize,
    /// Segments holding charged bytes, by the order their first byte arrived (oldest first).
    holders: BTreeMap<u64, Weak<dyn Holder>>,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            ledger: Mutex::new(Ledger::default()),
            dropped: AtomicU64::new(0),
            next_order: AtomicU64::new(1),
        })
    }

    #[cfg(test)]
    pub(crate) fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is updated in single statements; a panic elsewhere cannot leave it halfway.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.lock().used
    }

    /// Segments dropped so far to make room.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A fresh position in the oldest-first order.
    pub(crate) fn next_order(&self) -> u64 {
        self.next_order.fetch_add(1, Ordering::Relaxed)
    }

    /// Charges `n` bytes, dropping the oldest ended segments if that is what it takes. Returns
    /// false (and charges nothing, drops nothing) if they cannot fit.
    pub(crate) fn reserve(&self, n: usize) -> bool {
        for _ in 0..MAKE_ROOM_ATTEMPTS {
            // Segments upgraded under the ledger lock are dropped only after it is released:
            // dropping the last handle of a segment credits the ledger.
            let mut seen: Vec<Arc<dyn Holder>> = Vec::new();
            let victims = {
                let mut l = self.lock();
                match l.used.checked_add(n) {
                    Some(total) if total <= self.limit => {
                        l.used = total;
                        metrics::gauge!("byoc_trickle_buffered_bytes").set(total as f64);
                        return true;
                    }
                    _ if n > self.limit => return false,
                    _ => {}
                }
                let need = l.used.saturating_add(n).saturating_sub(self.limit);
                let mut freed = 0usize;
                let mut victims = Vec::new();
                for seg in l.holders.values().filter_map(Weak::upgrade) {
                    match seg.droppable_bytes() {
                        Some(bytes) if freed < need => {
                            freed = freed.saturating_add(bytes);
                            victims.push(seg);
                        }
                        _ => seen.push(seg),
                    }
                    if freed >= need {
                        break;
                    }
                }
                // Drop nothing unless it makes room: a publisher that cannot fit must not cost
                // other streams their segments.
                if freed < need {
                    victims.clear();
                }
                victims
            };
            drop(seen);
            if victims.is_empty() {
                return false;
            }
            for seg in victims {
                seg.drop_for_memory();
            }
        }
        false
    }

    /// Records that a segment holds charged bytes (it becomes a candidate for dropping).
    pub(crate) fn register(&self, order: u64, seg: Weak<dyn Holder>) {
        self.lock().holders.insert(order, seg);
    }

    /// Credits `n` bytes back, and forgets the segment registered as `forget`.
    pub(crate) fn release(&self, n: usize, forget: Option<u64>) {
        let mut l = self.lock();
        l.used = l.used.saturating_sub(n);
        if let Some(order) = forget {
            l.holders.remove(&order);
        }
        metrics::gauge!("byoc_trickle_buffered_bytes").set(l.used as f64);
    }

    /// Counts one segment dropped to make room.
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("byoc_trickle_segments_dropped_for_memory_total").increment(1);
        static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
        if let Some(held_back) = LOG.allow() {
            tracing::warn!(held_back, "trickle: a finished segment was dropped to stay within the memory bound");
        }
    }
}

/// The default budget: a quarter of the memory this process may use (physical memory, or the
/// cgroup limit when lower), or [`FALLBACK_BUDGET`] when neither can be read.
pub(crate) fn default_budget() -> usize {
    let physical = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| mem_total(&s));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let total = match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    };
    total.and_then(|t| usize::try_from(t / 4).ok()).filter(|&b| b > 0).unwrap_or(FALLBACK_BUDGET)
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        let text = "MemTotal:       16336412 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(16336412 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
        assert_eq!(mem_total("MemTotal: 18446744073709551615 kB\n"), None);
        assert!(default_budget() > 0);
    }
}
