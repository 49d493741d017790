//! Where a channel's readers are, so that a publisher can stay within reach of the slowest one
//! (`GET {ch}/next?wait_reader=SEQ` and the `Lp-Trickle-Slowest-Reader` header).
//!
//! Readers have no identity on the wire: each is a run of `GET {ch}/{seq}` requests. A reader is
//! therefore seen through its requests:
//! - a request being answered (waiting for its segment or streaming it) is a reader *at* that seq;
//! - a reader that has just read seq N whole is expected at N+1 for [`GRACE`] (the time to ask
//!   again), unless a request for N+1 is already in flight that no earlier reader accounts for
//!   (the preconnected `GET` of pytrickle, go-livepeer's client and ours), which is then its own;
//! - a request for N+1 that arrives while a reader is expected there is that reader, come back.
//!
//! With several readers on one seq the matching is by count, not by reader, which is exact for the
//! question asked: the lowest seq any reader still needs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::seq::Seq;

/// How long a reader that finished a segment is expected at the next one.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// Most readers expected between two requests, per channel; beyond it the oldest expectation is
/// forgotten (a client re-reading one segment in a loop must not grow the book).
const MAX_BETWEEN: usize = 1024;

/// A channel's readers.
#[derive(Default)]
pub(crate) struct Readers {
    book: Mutex<Book>,
    /// Woken whenever the slowest reader may have moved.
    moved: Notify,
}

#[derive(Default)]
struct Book {
    /// Requests being answered, by seq.
    reading: BTreeMap<u64, Reading>,
    /// Readers between two requests: the seq each is expected at, and until when; oldest first
    /// (every expectation lasts [`GRACE`], so the order of arrival is the order of expiry).
    between: VecDeque<(u64, Instant)>,
}

#[derive(Default)]
struct Reading {
    requests: u32,
    /// Of those, the ones no earlier reader accounts for (new readers, or preconnected requests).
    unclaimed: u32,
}

impl Book {
    fn forget_expired(&mut self, now: Instant) {
        let expired = self.between.iter().take_while(|(_, until)| *until <= now).count();
        self.between.drain(..expired);
    }

    fn expect(&mut self, seq: u64, until: Instant) {
        if self.between.len() >= MAX_BETWEEN {
            self.between.pop_front();
        }
        self.between.push_back((seq, until));
    }

    /// Takes the expectation of a reader at `seq`, if there is one.
    fn take_expected(&mut self, seq: u64) -> bool {
        let found = self.between.iter().position(|(s, _)| *s == seq);
        found.and_then(|i| self.between.remove(i)).is_some()
    }

    fn slowest(&self) -> Option<u64> {
        let reading = self.reading.keys().next().copied();
        let between = self.between.iter().map(|(s, _)| *s).min();
        match (reading, between) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Readers {
    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request for `seq` is being answered; the mark ends it when dropped.
    pub(crate) fn start(self: &Arc<Self>, seq: Seq) -> ReaderMark {
        let now = Instant::now();
        let mut book = self.lock();
        book.forget_expired(now);
        let returning = book.take_expected(seq.0);
        let r = book.reading.entry(seq.0).or_default();
        r.requests += 1;
        if !returning {
            r.unclaimed += 1;
        }
        drop(book);
        self.moved.notify_waiters();
        ReaderMark { readers: self.clone(), seq: seq.0, complete: false }
    }

    fn end(&self, seq: u64, complete: bool) {
        let now = Instant::now();
        let mut book = self.lock();
        if let Some(r) = book.reading.get_mut(&seq) {
            r.requests = r.requests.saturating_sub(1);
            r.unclaimed = r.unclaimed.min(r.requests);
            if r.requests == 0 {
                book.reading.remove(&seq);
            }
        }
        if complete {
            let next = seq.saturating_add(1);
            match book.reading.get_mut(&next) {
                Some(r) if r.unclaimed > 0 => r.unclaimed -= 1,
                _ => book.expect(next, now + GRACE),
            }
        }
        book.forget_expired(now);
        drop(book);
        self.moved.notify_waiters();
    }

    /// The lowest seq a reader is at or expected at; `None` without readers.
    pub(crate) fn slowest(&self) -> Option<Seq> {
        let mut book = self.lock();
        book.forget_expired(Instant::now());
        book.slowest().map(Seq)
    }

    /// Waits until no reader is behind `seq` (the slowest is at `seq` or later, or there is none),
    /// or until `limit` passes. Returns the slowest reader then.
    pub(crate) async fn wait_until_past(&self, seq: Seq, limit: Duration) -> Option<Seq> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.moved.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (slowest, next_expiry) = {
                let now = Instant::now();
                let mut book = self.lock();
                book.forget_expired(now);
                (book.slowest(), book.between.front().map(|(_, until)| *until))
            };
            let now = Instant::now();
            if slowest.is_none_or(|s| s >= seq.0) || now >= deadline {
                return slowest.map(Seq);
            }
            // An expectation running out moves the slowest reader without a notification.
            let wake = next_expiry.map_or(deadline, |t| t.min(deadline));
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }
}

/// One request being answered. Mark it [`complete`](Self::complete) when the whole segment was
/// delivered: its reader is then expected at the next seq.
pub(crate) struct ReaderMark {
    readers: Arc<Readers>,
    seq: u64,
    complete: bool,
}

impl ReaderMark {
    pub(crate) fn complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for ReaderMark {
    fn drop(&mut self) {
        self.readers.end(self.seq, self.complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers() -> Arc<Readers> {
        Arc::new(Readers::default())
    }

    #[tokio::test(start_paused = true)]
    async fn no_reader_no_slowest() {
        let r = readers();
        assert_eq!(r.slowest(), None);
        let mark = r.start(Seq(3));
        assert_eq!(r.slowest(), Some(Seq(3)));
        drop(mark);
        assert_eq!(r.slowest(), None, "an unfinished read leaves nothing behind");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_between_requests_is_expected_at_the_next_seq_for_the_grace() {
        let r = readers();
        let mut mark = r.start(Seq(0));
        mark.complete();
        drop(mark);
        assert_eq!(r.slowest(), Some(Seq(1)));
        // It comes back: the same reader, not a second one.
        let mut mark = r.start(Seq(1));
        assert_eq!(r.slowest(), Some(Seq(1)));
        mark.complete();
        drop(mark);
        assert_eq!(r.slowest(), Some(Seq(2)));
        tokio::time::advance(GRACE + Duration::from_millis(1)).await;
        assert_eq!(r.slowest(), None, "a reader that does not come back is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_preconnected_request_carries_its_reader_on() {
        let r = readers();
        let mut at0 = r.start(Seq(0));
        let at1 = r.start(Seq(1)); // preconnected
        at0.complete();
        drop(at0);
        assert_eq!(r.slowest(), Some(Seq(1)));
        drop(at1);
        // No expectation was left at 1 by the read of 0: the request for 1 was its continuation.
        assert_eq!(r.slowest(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slowest_of_two_readers_holds() {
        let r = readers();
        let slow = r.start(Seq(2));
        let mut fast = r.start(Seq(5));
        fast.complete();
        drop(fast);
        assert_eq!(r.slowest(), Some(Seq(2)));
        drop(slow);
        assert_eq!(r.slowest(), Some(Seq(6)));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_when_the_slowest_moves_or_expires_or_the_limit_passes() {
        let r = readers();
        let mut mark = r.start(Seq(0));
        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { r.wait_until_past(Seq(1), Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        mark.complete();
        drop(mark);
        assert_eq!(waiter.await.unwrap(), Some(Seq(1)));
        // Expected at 1; waiting for 2 ends when that expectation runs out.
        let began = Instant::now();
        assert_eq!(r.wait_until_past(Seq(2), Duration::from_secs(30)).await, None);
        assert!(began.elapsed() <= GRACE + Duration::from_millis(1));
        // A reader that never moves: the limit.
        let _stuck = r.start(Seq(0));
        let began = Instant::now();
        assert_eq!(r.wait_until_past(Seq(1), Duration::from_secs(2)).await, Some(Seq(0)));
        assert_eq!(began.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_are_bounded() {
        let r = readers();
        for _ in 0..(MAX_BETWEEN + 50) {
            let mut m = r.start(Seq(7));
            m.complete();
        }
        assert_eq!(r.lock().between.len(), MAX_BETWEEN);
        assert_eq!(r.slowest(), Some(Seq(8)));
    }
}
