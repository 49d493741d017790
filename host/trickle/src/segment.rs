//! One segment's bytes, shared by its writer and any number of readers.
//!
//! Bytes are kept as the `Bytes` chunks they arrived in (no copy on write); readers hold a cursor
//! into the chunk list and are woken through a `watch` channel when chunks arrive or the segment
//! ends. A segment ends either *complete* (readers see a normal end of body) or *aborted*
//! (readers see an error): a reader never mistakes a cut-off segment for a whole one. A segment
//! *dropped* for memory has given its bytes back to the store's budget (see `memory.rs`); its
//! readers see an error, like those of an aborted one.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::memory::{CHUNK_COST, Holder, MemoryBudget};
use crate::seq::Seq;

/// How a segment ended, if it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Open,
    Complete,
    Aborted,
    /// Its bytes were dropped to keep the store within its memory budget.
    Dropped,
}

#[derive(Debug)]
pub(crate) struct State {
    chunks: Vec<Bytes>,
    len: usize,
    end: End,
    /// The publisher whose bytes readers are seeing (0: none).
    writer: u64,
    /// Publishers of the same seq that sent bytes while `writer` was streaming, in the order
    /// their first byte arrived. Their bodies follow `writer`'s, whole and in that order.
    queued: Vec<Queued>,
    /// Publishers attached to this seq that have not sent a byte (e.g. idle preconnections).
    idle: Vec<u64>,
    /// Bytes charged to the store's budget for this segment: every chunk in `chunks` and in
    /// `queued`, each its length plus [`CHUNK_COST`].
    charged: usize,
    /// Position in the budget's oldest-first order, given with the first charged byte (0: none).
    order: u64,
}

/// What a body of chunks is charged.
fn cost(len: usize, chunks: usize) -> usize {
    len.saturating_add(chunks.saturating_mul(CHUNK_COST))
}

#[derive(Debug)]
struct Queued {
    id: u64,
    chunks: Vec<Bytes>,
    len: usize,
    done: bool,
}

impl State {
    fn pending_len(&self) -> usize {
        self.queued.iter().map(|q| q.len).sum()
    }

    /// Gives up queued bodies (those `drop` picks) and uncharges them. Returns the bytes freed.
    fn remove_queued(&mut self, mut drop: impl FnMut(&Queued) -> bool) -> usize {
        let mut freed = 0;
        self.queued.retain(|q| {
            let gone = drop(q);
            if gone {
                freed += cost(q.len, q.chunks.len());
            }
            !gone
        });
        self.charged = self.charged.saturating_sub(freed);
        freed
    }

    /// The current writer finished: readers get the queued bodies next, in order, and the segment
    /// completes once no publisher with bytes is left.
    fn hand_over(&mut self) {
        self.writer = 0;
        while !self.queued.is_empty() {
            let q = self.queued.remove(0);
            self.len += q.len;
            self.chunks.extend(q.chunks);
            if !q.done {
                self.writer = q.id;
                return;
            }
        }
        self.end = End::Complete;
    }
}

/// Why bytes could not be appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// The segment already ended (closed by a reset, a delete, eviction or channel close).
    Ended,
    /// The segment (with every body queued for it) would exceed the size cap. If this writer's
    /// bytes were visible the segment has been aborted; a queued body is simply dropped.
    TooLarge,
    /// The store's memory budget has no room for the chunk, even after dropping every ended
    /// segment it could. Handled like `TooLarge`.
    OverBudget,
}

static NEXT_WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One segment. Several publishers may `POST` the same seq (pytrickle's publisher does so when two
/// messages race, go-livepeer's server appends them): the first to send a byte streams to readers,
/// the others' bodies are kept whole and follow it, so readers never see interleaved bytes and no
/// message is dropped.
#[derive(Debug)]
pub(crate) struct Segment {
    seq: Seq,
    state: watch::Sender<State>,
    budget: Arc<MemoryBudget>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        let (charged, order) = {
            let s = self.state.borrow();
            (s.charged, s.order)
        };
        if charged > 0 || order != 0 {
            self.budget.release(charged, (order != 0).then_some(order));
        }
    }
}

impl Segment {
    pub(crate) fn new(seq: Seq, budget: Arc<MemoryBudget>) -> Self {
        let (state, _) = watch::channel(State {
            chunks: Vec::new(),
            len: 0,
            end: End::Open,
            writer: 0,
            queued: Vec::new(),
            idle: Vec::new(),
            charged: 0,
            order: 0,
        });
        Segment { seq, state, budget }
    }

    pub(crate) fn seq(&self) -> Seq {
        self.seq
    }

    pub(crate) fn len(&self) -> usize {
        self.state.borrow().len
    }

    /// Some publisher is attached (streaming, queued or idle).
    pub(crate) fn has_writer(&self) -> bool {
        let s = self.state.borrow();
        s.writer != 0 || !s.queued.is_empty() || !s.idle.is_empty()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.borrow().end == End::Open
    }

    /// Its bytes were dropped for memory: a new reader is told it is gone (470).
    pub(crate) fn is_dropped(&self) -> bool {
        self.state.borrow().end == End::Dropped
    }

    /// Bytes this segment buffers, counted from its chunks (what `charged` must equal).
    #[cfg(test)]
    pub(crate) fn buffered_cost(&self) -> usize {
        let s = self.state.borrow();
        let queued: usize = s.queued.iter().map(|q| cost(q.chunks.iter().map(Bytes::len).sum(), q.chunks.len())).sum();
        cost(s.chunks.iter().map(Bytes::len).sum(), s.chunks.len()) + queued
    }

    /// True when nothing was ever written and nothing is attached: a placeholder created for a
    /// waiting reader (or left by a publisher that went away before its first byte).
    #[cfg(test)]
    pub(crate) fn is_bare(&self) -> bool {
        let s = self.state.borrow();
        s.end == End::Open && s.writer == 0 && s.len == 0 && s.idle.is_empty()
    }

    /// Attaches a publisher; it streams to readers once it sends the segment's first byte, or
    /// after the publishers ahead of it have finished. Returns its id.
    pub(crate) fn attach_writer(&self) -> u64 {
        let id = NEXT_WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.send_modify(|s| s.idle.push(id));
        id
    }

    /// Appends one chunk from publisher `id`, charging it to the store's memory budget.
    pub(crate) fn append(self: &Arc<Self>, id: u64, chunk: Bytes, cap: usize) -> Result<(), AppendError> {
        if chunk.is_empty() {
            return if self.is_open() { Ok(()) } else { Err(AppendError::Ended) };
        }
        let charge = cost(chunk.len(), 1);
        // A chunk the size cap refuses anyway must not make the budget drop other segments.
        let too_large_now = {
            let s = self.state.borrow();
            s.len.saturating_add(s.pending_len()).saturating_add(chunk.len()) > cap
        };
        let fits = !too_large_now && self.budget.reserve(charge);
        let mut result = Ok(());
        let mut freed = 0;
        let mut new_order = None;
        self.state.send_if_modified(|s| {
            if s.end != End::Open {
                result = Err(AppendError::Ended);
                return false;
            }
            let too_large = too_large_now || s.len.saturating_add(s.pending_len()).saturating_add(chunk.len()) > cap;
            let refusal = if too_large { AppendError::TooLarge } else { AppendError::OverBudget };
            let over = too_large || !fits;
            let mut charge_it = |s: &mut State| {
                s.charged += charge;
                if s.order == 0 {
                    s.order = self.budget.next_order();
                    new_order = Some(s.order);
                }
            };
            if s.writer != id && s.len == 0 {
                // Nothing is visible yet: the first publisher to send a byte streams; an idle one
                // that was ahead of it steps back.
                if let Some(i) = s.idle.iter().position(|&w| w == id) {
                    s.idle.remove(i);
                    if s.writer != 0 {
                        s.idle.push(s.writer);
                    }
                    s.writer = id;
                }
            }
            if s.writer == id {
                if over {
                    s.end = End::Aborted;
                    result = Err(refusal);
                    return true;
                }
                s.len += chunk.len();
                s.chunks.push(chunk);
                charge_it(s);
                return true;
            }
            if let Some(i) = s.idle.iter().position(|&w| w == id) {
                s.idle.remove(i);
                s.queued.push(Queued { id, chunks: Vec::new(), len: 0, done: false });
            }
            match s.queued.iter().position(|q| q.id == id) {
                Some(_) if over => {
                    freed += s.remove_queued(|q| q.id == id);
                    result = Err(refusal);
                }
                Some(i) => {
                    if let Some(q) = s.queued.get_mut(i) {
                        q.len += chunk.len();
                        q.chunks.push(chunk);
                    }
                    charge_it(s);
                }
                // Detached (a finished or abandoned publisher writing again): nothing to add to.
                None => result = Err(AppendError::Ended),
            }
            false
        });
        if fits && result.is_err() {
            freed += charge;
        }
        if let Some(order) = new_order {
            let holder: std::sync::Weak<Segment> = Arc::downgrade(self);
            self.budget.register(order, holder);
        }
        if freed > 0 {
            self.budget.release(freed, None);
        }
        result
    }

    /// Ends an open segment (a reset, a delete, eviction, channel close). Returns false if it had
    /// already ended.
    pub(crate) fn finish(&self, how: End) -> bool {
        self.state.send_if_modified(|s| {
            if s.end != End::Open {
                return false;
            }
            s.end = how;
            true
        })
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Publisher `id` reached the end of its body. Returns true if that completed the segment.
    pub(crate) fn finish_by(&self, id: u64) -> bool {
        let mut completed = false;
        self.state.send_if_modified(|s| {
            if s.end != End::Open {
                return false;
            }
            if s.writer == id {
                s.hand_over();
                completed = s.end == End::Complete;
                return true;
            }
            if s.writer == 0 && s.len == 0 && s.queued.is_empty() {
                // An empty body and nobody streaming: the segment is complete, and empty.
                s.idle.retain(|&w| w != id);
                s.end = End::Complete;
                completed = true;
                return true;
            }
            s.idle.retain(|&w| w != id);
            if let Some(q) = s.queued.iter_mut().find(|q| q.id == id) {
                q.done = true;
            }
            false
        });
        completed
    }

    /// Publisher `id` went away without finishing its body. Bytes readers have seen from it are
    /// cut off (the segment aborts); bytes it had queued are dropped; an idle one just leaves.
    pub(crate) fn abandon(&self, id: u64) {
        let mut freed = 0;
        self.state.send_if_modified(|s| {
            if s.writer == id {
                if s.end == End::Open && s.len > 0 {
                    s.end = End::Aborted;
                }
                s.writer = 0;
                return true;
            }
            s.idle.retain(|&w| w != id);
            freed = s.remove_queued(|q| q.id == id && !q.done);
            false
        });
        if freed > 0 {
            self.budget.release(freed, None);
        }
    }

    /// Waits until the segment has ended.
    pub(crate) async fn ended(&self) {
        let mut rx = self.state.subscribe();
        // `wait_for` only fails if the sender is dropped, which cannot happen while `self` lives.
        let _ = rx.wait_for(|s| s.end != End::Open).await;
    }
}

/// The segment was aborted: its publisher failed or exceeded the size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("segment aborted by its publisher")]
pub struct Aborted;

/// Most bytes [`Cursor::next`] copies to merge waiting chunks into one.
const MERGE_MAX: usize = 16 << 10;

/// A reader's position in one segment.
#[derive(Debug)]
pub(crate) struct Cursor {
    rx: watch::Receiver<State>,
    next: usize,
}

/// What a reader sees first: data, or the end of an empty segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum First {
    Data,
    Empty,
    Aborted,
}

impl Cursor {
    pub(crate) fn new(seg: &Segment) -> Self {
        Cursor { rx: seg.subscribe(), next: 0 }
    }

    /// Waits for the first byte or the end of the segment, without consuming anything.
    pub(crate) async fn first(&mut self) -> First {
        let r = self.rx.wait_for(|s| s.len > 0 || s.end != End::Open).await;
        match r {
            Ok(s) if s.len > 0 => First::Data,
            Ok(s) if s.end == End::Complete => First::Empty,
            _ => First::Aborted,
        }
    }

    /// Returns the bytes available after the cursor, waiting if there are none: small chunks
    /// waiting together are merged into one `Bytes` (so a late joiner gets a small segment in one
    /// piece, and a reader is not handed packet-sized pieces one by one), up to [`MERGE_MAX`]; a
    /// larger chunk is handed on as it is, never copied. `None` at the end of a complete segment.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, Aborted>> {
        loop {
            {
                let s = self.rx.borrow_and_update();
                let waiting = s.chunks.get(self.next..).unwrap_or_default();
                if !waiting.is_empty() {
                    let mut take = 1;
                    let mut len = waiting[0].len();
                    while let Some(c) = waiting.get(take)
                        && len + c.len() <= MERGE_MAX
                    {
                        len += c.len();
                        take += 1;
                    }
                    self.next += take;
                    return Some(Ok(merge(&waiting[..take])));
                }
                match s.end {
                    End::Complete => return None,
                    End::Aborted | End::Dropped => return Some(Err(Aborted)),
                    End::Open => {}
                }
            }
            if self.rx.changed().await.is_err() {
                return Some(Err(Aborted));
            }
        }
    }
}

fn merge(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [one] => one.clone(),
        many => {
            let mut out = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
            for c in many {
                out.extend_from_slice(c);
            }
            out.freeze()
        }
    }
}

impl Holder for Segment {
    /// The bytes dropping it would free, if it may be dropped: it has ended and holds bytes.
    fn droppable_bytes(&self) -> Option<usize> {
        let s = self.state.borrow();
        (s.end != End::Open && s.charged > 0).then_some(s.charged)
    }

    /// Drops an ended segment's bytes to make room in the budget; its readers get an error.
    fn drop_for_memory(&self) {
        let mut freed = (0, 0);
        self.state.send_if_modified(|s| {
            if s.end == End::Open || s.charged == 0 {
                return false;
            }
            freed = (s.charged, s.order);
            s.charged = 0;
            s.chunks = Vec::new();
            s.queued = Vec::new();
            s.end = End::Dropped;
            true
        });
        if freed.0 > 0 {
            self.budget.release(freed.0, Some(freed.1));
            self.budget.count_drop();
            tracing::debug!(seq = %self.seq, bytes = freed.0, "trickle segment dropped for memory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_reader_gets_everything_in_one_piece_then_live_bytes() {
        let seg = Arc::new(Segment::new(Seq(0), MemoryBudget::unlimited()));
        seg.append(0, Bytes::from_static(b"ab"), 100).unwrap();
        seg.append(0, Bytes::from_static(b"cd"), 100).unwrap();
        let mut c = Cursor::new(&seg);
        assert_eq!(c.first().await, First::Data);
        assert_eq!(c.next().await, Some(Ok(Bytes::from_static(b"abcd"))));
        seg.append(0, Bytes::from_static(b"e"), 100).unwrap();
        assert_eq!(c.next().await, Some(Ok(Bytes::from_static(b"e"))));
        seg.finish(End::Complete);
        assert_eq!(c.next().await, None);
    }

    /// The fan-out never copies large chunks: a reader that is behind gets them one by one, as
    /// they were published; small ones are merged up to the bound.
    #[tokio::test]
    async fn large_chunks_are_handed_on_uncopied_small_ones_merged_up_to_the_bound() {
        let seg = Arc::new(Segment::new(Seq(0), MemoryBudget::unlimited()));
        let big = Bytes::from(vec![7u8; 64 << 10]);
        seg.append(0, Bytes::from_static(b"ab"), 1 << 20).unwrap();
        seg.append(0, Bytes::from_static(b"cd"), 1 << 20).unwrap();
        seg.append(0, big.clone(), 1 << 20).unwrap();
        seg.append(0, big.clone(), 1 << 20).unwrap();
        for _ in 0..10 {
            seg.append(0, Bytes::from(vec![1u8; 4 << 10]), 1 << 20).unwrap();
        }
        seg.finish(End::Complete);
        let mut c = Cursor::new(&seg);
        assert_eq!(c.next().await, Some(Ok(Bytes::from_static(b"abcd"))));
        for _ in 0..2 {
            let chunk = c.next().await.unwrap().unwrap();
            assert_eq!(chunk.as_ptr(), big.as_ptr(), "the published buffer itself, not a copy");
        }
        let merged: Vec<usize> = std::iter::from_fn(|| futures_util::FutureExt::now_or_never(c.next()).flatten())
            .map(|r| r.unwrap().len())
            .collect();
        assert_eq!(merged, [16 << 10, 16 << 10, 8 << 10], "4 KiB chunks merged up to 16 KiB");
    }

    #[tokio::test]
    async fn cap_aborts_and_readers_see_an_error() {
        let seg = Arc::new(Segment::new(Seq(0), MemoryBudget::unlimited()));
        let mut c = Cursor::new(&seg);
        assert_eq!(seg.append(0, Bytes::from_static(b"abc"), 4), Ok(()));
        assert_eq!(seg.append(0, Bytes::from_static(b"de"), 4), Err(AppendError::TooLarge));
        assert_eq!(seg.append(0, Bytes::from_static(b"d"), 4), Err(AppendError::Ended));
        assert_eq!(c.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert_eq!(c.next().await, Some(Err(Aborted)));
    }

    #[tokio::test]
    async fn empty_complete_segment() {
        let seg = Segment::new(Seq(3), MemoryBudget::unlimited());
        assert!(seg.is_bare());
        let mut c = Cursor::new(&seg);
        seg.finish(End::Complete);
        assert_eq!(c.first().await, First::Empty);
        assert_eq!(c.next().await, None);
        assert!(!seg.finish(End::Aborted));
    }
}
