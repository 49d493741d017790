//! A connection's future that wakes itself while it is being polled is polled again at once, rather
//! than through the runtime.
//!
//! hyper's HTTP/1 connection does that for every chunk of a request body it reads: it hands the chunk
//! to the body channel, which wakes the handler reading it, and the handler runs inside the
//! connection's own task. tokio's multi-threaded scheduler takes a wake-up of the running task as a
//! yield: it queues the task again and, since the worker now has more than one task ready, wakes an
//! idle worker thread to steal it (a futex call and a thread wake-up). For a trickle publisher that
//! is one wasted round through the scheduler per chunk; for media moving piece by piece, one per
//! piece. `Unyielding` answers such a wake-up inside the same poll.
//!
//! How many polls again: while it keeps waking itself, for up to [`BUDGET`] of polls again and at
//! most [`REPOLLS`] of them (the first always). In a burst (a publisher's chunks arriving back to
//! back) each poll again reads the next chunk, so the tasks this one woke (the subscribers of the
//! chunk it handed over) get what arrived meanwhile in one write instead of one write per chunk;
//! they wait at most the budget for it, and so does every other task on this worker. Measured with
//! the trickle bench (2026-12-05, each server on a core of its own): the server's CPU per GiB with
//! one subscriber fell from 360–420 ms to about 317 ms, and the first-byte p99 with a pipelined
//! publisher stayed at 88–334 µs (one poll again: 94–292 µs). More than 16 polls or 40 µs bought
//! nothing more. A wake-up once the budget is spent goes to the runtime as before, so a future
//! that yields on purpose by waking itself (hyper after 16 rounds of reading) still yields, a little
//! later. tokio's own yields (a task out of its cooperative budget, `yield_now`) are not seen here
//! at all: tokio holds those wake-ups until the task's poll has returned, so they yield at once
//! (seen with a task draining a tokio channel: only the runtime polls it again, with a new budget).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// At most this many polls again within one poll of the task.
pub const REPOLLS: usize = 16;

/// Polls again after the first only while the polls again so far have taken less than this.
pub const BUDGET: Duration = Duration::from_micros(40);

/// `inner`, polled so that its wake-ups during a poll are answered in the same poll.
pub struct Unyielding<F> {
    inner: Pin<Box<F>>,
    flags: Arc<Flags>,
    /// The waker the inner future sees: the same one at every poll, so `will_wake` holds.
    own: Waker,
}

struct Flags {
    /// The inner future is being polled.
    polling: AtomicBool,
    /// It was woken since its last poll began.
    woken: AtomicBool,
    /// The task's own waker, for wake-ups between polls.
    task: Mutex<Option<Waker>>,
}

impl Wake for Flags {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted first, then `polling` read (both SeqCst, as is the poll's side): either the poll
        // sees the note after it clears `polling`, or this sees `polling` cleared and wakes the task.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(task) = task {
                task.wake();
            }
        }
    }
}

impl<F: Future> Unyielding<F> {
    pub fn new(inner: F) -> Unyielding<F> {
        let flags =
            Arc::new(Flags { polling: AtomicBool::new(false), woken: AtomicBool::new(false), task: Mutex::new(None) });
        let own = Waker::from(flags.clone());
        Unyielding { inner: Box::pin(inner), flags, own }
    }
}

impl<F: Future> Future for Unyielding<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut task = this.flags.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut own = Context::from_waker(&this.own);
        // Read the clock only once the connection has woken itself: most polls end without.
        let mut again_since = None;
        for round in 0..=REPOLLS {
            if round == 1 {
                again_since = Some(Instant::now());
            } else if again_since.is_some_and(|t| t.elapsed() >= BUDGET) {
                break;
            }
            this.flags.woken.store(false, Ordering::SeqCst);
            this.flags.polling.store(true, Ordering::SeqCst);
            let polled = this.inner.as_mut().poll(&mut own);
            this.flags.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() {
                return polled;
            }
            if !this.flags.woken.swap(false, Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        // Woken in every one of them: let the runtime run something else first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wake-ups that reach the task.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Ready after `n` polls; wakes itself during each poll before that (as hyper does when it hands
    /// a body chunk to a handler in its own task).
    struct SelfWaking {
        polls: usize,
        n: usize,
        /// How long each poll takes.
        spin: Duration,
    }

    impl Future for SelfWaking {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            let until = Instant::now() + self.spin;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            if self.polls >= self.n {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn poll_once<F: Future>(f: &mut Pin<Box<Unyielding<F>>>, task: &Arc<Count>) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        f.as_mut().poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_wake_up_during_a_poll_is_answered_in_that_poll_without_the_runtime() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        // The first poll again is made whatever the time (the later ones within the budget).
        let mut f = Box::pin(Unyielding::new(SelfWaking { polls: 0, n: 2, spin: Duration::ZERO }));
        assert_eq!(poll_once(&mut f, &task), Poll::Ready(2));
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "no wake-up reached the task");
    }

    #[test]
    fn polls_again_stop_once_the_budget_is_spent() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        // Each poll takes longer than the whole budget: the first poll again is still made, no
        // third poll is, and the task is woken through the runtime.
        let spin = BUDGET + Duration::from_micros(10);
        let mut f = Box::pin(Unyielding::new(SelfWaking { polls: 0, n: usize::MAX, spin }));
        assert_eq!(poll_once(&mut f, &task), Poll::Pending);
        assert_eq!(f.inner.polls, 2);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the yield reached the task");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_still_yields_to_the_runtime() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let mut f = Box::pin(Unyielding::new(SelfWaking { polls: 0, n: usize::MAX, spin: Duration::ZERO }));
        assert_eq!(poll_once(&mut f, &task), Poll::Pending);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the yield reached the task");
        // However fast the polls, never more than the cap (fewer if the machine stalled this one).
        assert!((2..=REPOLLS + 1).contains(&f.inner.polls), "{} polls", f.inner.polls);
    }

    #[test]
    fn a_wake_up_between_polls_reaches_the_task() {
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let mut f = Box::pin(Unyielding::new(rx));
        assert!(poll_once(&mut f, &task).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        let sender = std::thread::spawn(move || tx.send(7));
        sender.join().unwrap().unwrap();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "woken from another thread");
        assert!(matches!(poll_once(&mut f, &task), Poll::Ready(Ok(7))));
    }
}
