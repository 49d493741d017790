//! One segment's bytes, shared by its writer and any number of readers.
//!
//! Bytes are kept as the `Bytes` chunks they arrived in (no copy on write); readers hold a cursor
//! into the chunk list and are woken through a `watch` channel when chunks arrive or the segment
//! ends. A segment ends either *complete* (readers see a normal end of body) or *aborted*
//! (readers see an error): a reader never mistakes a cut-off segment for a whole one.

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::seq::Seq;

/// How a segment ended, if it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Open,
    Complete,
    Aborted,
}

#[derive(Debug)]
pub(crate) struct State {
    chunks: Vec<Bytes>,
    len: usize,
    end: End,
    /// The id of the publisher attached to this segment (0: none).
    writer: u64,
}

/// Why bytes could not be appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// The segment already ended (closed by a reset, a delete, eviction or channel close).
    Ended,
    /// The segment would exceed the size cap; it has been aborted.
    TooLarge,
    /// Another publisher took the segment over (this one had not sent a byte).
    Superseded,
}

/// Why a writer's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterEnd {
    Ended,
    Superseded,
}

static NEXT_WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug)]
pub(crate) struct Segment {
    seq: Seq,
    state: watch::Sender<State>,
}

impl Segment {
    pub(crate) fn new(seq: Seq) -> Self {
        let (state, _) = watch::channel(State { chunks: Vec::new(), len: 0, end: End::Open, writer: 0 });
        Segment { seq, state }
    }

    pub(crate) fn seq(&self) -> Seq {
        self.seq
    }

    pub(crate) fn len(&self) -> usize {
        self.state.borrow().len
    }

    pub(crate) fn has_writer(&self) -> bool {
        self.state.borrow().writer != 0
    }

    /// Open and still empty: a new publisher may take it over.
    pub(crate) fn is_fresh(&self) -> bool {
        let s = self.state.borrow();
        s.end == End::Open && s.len == 0
    }

    /// True when nothing was ever written and nothing is attached: a placeholder created for a
    /// waiting reader (or left by a publisher that went away before its first byte).
    #[cfg(test)]
    pub(crate) fn is_bare(&self) -> bool {
        let s = self.state.borrow();
        s.end == End::Open && s.writer == 0 && s.len == 0
    }

    /// Attaches a publisher (replacing any other); returns its id.
    pub(crate) fn attach_writer(&self) -> u64 {
        let id = NEXT_WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.send_modify(|s| s.writer = id);
        id
    }

    /// Detaches publisher `id` if it is still the attached one.
    pub(crate) fn detach_writer(&self, id: u64) {
        self.state.send_if_modified(|s| {
            let mine = s.writer == id;
            if mine {
                s.writer = 0;
            }
            mine
        });
    }

    pub(crate) fn is_writer(&self, id: u64) -> bool {
        self.state.borrow().writer == id
    }

    /// Appends one chunk from publisher `writer`. Returns whether this was the first byte.
    pub(crate) fn append(&self, writer: u64, chunk: Bytes, cap: usize) -> Result<bool, AppendError> {
        let mut result = Ok(false);
        self.state.send_if_modified(|s| {
            if s.end != End::Open {
                result = Err(AppendError::Ended);
                return false;
            }
            if s.writer != writer {
                result = Err(AppendError::Superseded);
                return false;
            }
            if chunk.is_empty() {
                return false;
            }
            if s.len.saturating_add(chunk.len()) > cap {
                s.end = End::Aborted;
                result = Err(AppendError::TooLarge);
                return true;
            }
            result = Ok(s.len == 0);
            s.len += chunk.len();
            s.chunks.push(chunk);
            true
        });
        result
    }

    /// Ends an open segment. Returns false if it had already ended.
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

    /// Ends an open segment on behalf of publisher `writer`, if it is still the attached one.
    pub(crate) fn finish_by(&self, writer: u64, how: End) -> bool {
        self.state.send_if_modified(|s| {
            if s.end != End::Open || s.writer != writer {
                return false;
            }
            s.end = how;
            true
        })
    }

    /// Waits until the segment has ended or publisher `writer` was superseded.
    pub(crate) async fn ended_for(&self, writer: u64) -> WriterEnd {
        let mut rx = self.state.subscribe();
        // `wait_for` only fails if the sender is dropped, which cannot happen while `self` lives.
        match rx.wait_for(|s| s.end != End::Open || s.writer != writer).await {
            Ok(s) if s.end == End::Open => WriterEnd::Superseded,
            _ => WriterEnd::Ended,
        }
    }
}

/// The segment was aborted: its publisher failed or exceeded the size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("segment aborted by its publisher")]
pub struct Aborted;

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

    /// Returns every byte available after the cursor (merged into one `Bytes` when several chunks
    /// are waiting, so a late joiner gets a small segment in one piece), waiting if there are none.
    /// `None` at the end of a complete segment.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, Aborted>> {
        loop {
            {
                let s = self.rx.borrow_and_update();
                let waiting = s.chunks.get(self.next..).unwrap_or_default();
                if !waiting.is_empty() {
                    self.next = s.chunks.len();
                    return Some(Ok(merge(waiting)));
                }
                match s.end {
                    End::Complete => return None,
                    End::Aborted => return Some(Err(Aborted)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_reader_gets_everything_in_one_piece_then_live_bytes() {
        let seg = Segment::new(Seq(0));
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

    #[tokio::test]
    async fn cap_aborts_and_readers_see_an_error() {
        let seg = Segment::new(Seq(0));
        let mut c = Cursor::new(&seg);
        assert_eq!(seg.append(0, Bytes::from_static(b"abc"), 4), Ok(true));
        assert_eq!(seg.append(0, Bytes::from_static(b"de"), 4), Err(AppendError::TooLarge));
        assert_eq!(seg.append(0, Bytes::from_static(b"d"), 4), Err(AppendError::Ended));
        assert_eq!(c.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert_eq!(c.next().await, Some(Err(Aborted)));
    }

    #[tokio::test]
    async fn empty_complete_segment() {
        let seg = Segment::new(Seq(3));
        assert!(seg.is_bare());
        let mut c = Cursor::new(&seg);
        seg.finish(End::Complete);
        assert_eq!(c.first().await, First::Empty);
        assert_eq!(c.next().await, None);
        assert!(!seg.finish(End::Aborted));
    }
}
