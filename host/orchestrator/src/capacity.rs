//! Exact capacity accounting: a reservation checks the limit atomically (no overcommit, whatever
//! the number of concurrent starts) and is released exactly once, when its [`Reservation`] is
//! dropped — on every path, including errors, panics unwinding and task cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The slots of one capability. Shared by re-registrations, so a worker re-registering while
/// streams run does not reset the count of slots in use.
#[derive(Debug)]
pub struct Capacity {
    limit: AtomicU32,
    in_use: AtomicU32,
}

/// No slot is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no capacity available ({in_use} of {limit} in use)")]
pub struct CapacityError {
    /// Slots in use when the reservation was refused.
    pub in_use: u32,
    /// The limit then.
    pub limit: u32,
}

impl Capacity {
    /// `limit` concurrent jobs.
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Capacity { limit: AtomicU32::new(limit), in_use: AtomicU32::new(0) })
    }

    /// Changes the limit; slots in use stay in use (and may exceed a lowered limit until they end).
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    /// How many jobs may run at once.
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::SeqCst)
    }

    /// How many slots are taken.
    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::SeqCst)
    }

    /// Free slots.
    pub fn available(&self) -> u32 {
        self.limit().saturating_sub(self.in_use())
    }

    /// Takes one slot if one is free.
    pub fn reserve(self: &Arc<Self>) -> Result<Reservation, CapacityError> {
        let limit = self.limit();
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .map(|_| Reservation { capacity: self.clone() })
            .map_err(|in_use| CapacityError { in_use, limit })
    }
}

/// One slot in use. Dropping it frees the slot; it cannot be freed twice.
#[derive(Debug)]
pub struct Reservation {
    capacity: Arc<Capacity>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Never below zero: each reservation incremented exactly once.
        let _ = self.capacity.in_use.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn never_overcommits_under_concurrent_reservations() {
        let cap = Capacity::new(7);
        let held: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..16).map(|_| s.spawn(|| (0..100).filter_map(|_| cap.reserve().ok()).collect::<Vec<_>>())).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(held.len(), 7);
        assert_eq!(cap.in_use(), 7);
        drop(held);
        assert_eq!(cap.in_use(), 0);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Start,
        Stop(usize),
        Fail(usize),
        Resize(u32),
    }

    proptest! {
        /// Thousands of random start/stop/fail sequences: in use never exceeds what was allowed
        /// at reservation time, and returns to zero when every job has ended.
        #[test]
        fn count_returns_to_zero(limit in 0u32..6, steps in proptest::collection::vec(
            prop_oneof![Just(Step::Start), any::<usize>().prop_map(Step::Stop), any::<usize>().prop_map(Step::Fail), (0u32..6).prop_map(Step::Resize)], 0..200)) {
            let cap = Capacity::new(limit);
            let mut live = Vec::new();
            for step in steps {
                match step {
                    Step::Start => match cap.reserve() {
                        Ok(r) => { prop_assert!(cap.in_use() <= cap.limit()); live.push(r); }
                        Err(e) => prop_assert!(e.in_use >= e.limit),
                    },
                    Step::Stop(i) | Step::Fail(i) => { if !live.is_empty() { let i = i % live.len(); drop(live.swap_remove(i)); } }
                    Step::Resize(l) => cap.set_limit(l),
                }
                prop_assert_eq!(cap.in_use() as usize, live.len());
            }
            drop(live);
            prop_assert_eq!(cap.in_use(), 0);
        }
    }
}
