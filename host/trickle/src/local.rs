//! In-process publisher and subscriber: the same rules as the HTTP clients, straight on a
//! [`TrickleStore`], with no HTTP and no copy beyond `Bytes` clones. This is how a plugin hosted
//! by the orchestrator is attached to its stream's channels.

use bytes::{Bytes, BytesMut};

/// Joins chunks, without a copy when there is only one.
pub(crate) fn concat(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        out.extend_from_slice(&p);
    }
    out.freeze()
}

use crate::error::{ClientError, StoreError};
use crate::segment::First;
use crate::seq::{Seq, SeqRequest};
use crate::store::{ReadHandle, ReadOutcome, TrickleStore, WriteHandle};

/// How long, and how often, a subscriber ahead of the live edge waits for the publisher (the
/// HTTP subscriber's defaults: 5 × 300 ms).
const AHEAD_RETRY: std::time::Duration = std::time::Duration::from_millis(300);
const AHEAD_ATTEMPTS: usize = 6;

/// Publishes segments to one channel of a local store, one after the other.
#[derive(Debug, Clone)]
pub struct LocalPublisher {
    store: TrickleStore,
    channel: String,
}

impl LocalPublisher {
    /// A publisher on an existing channel.
    pub fn new(store: &TrickleStore, channel: &str) -> Result<Self, ClientError> {
        match store.channel(channel) {
            Ok(_) => Ok(LocalPublisher { store: store.clone(), channel: channel.to_string() }),
            Err(StoreError::NoChannel) => Err(ClientError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the next segment (the channel's live edge, as `POST {ch}/-1`).
    pub fn next_segment(&self) -> Result<LocalSegmentWriter, ClientError> {
        self.open(SeqRequest::Next)
    }

    /// Opens a given seq (as `POST {ch}/{seq}`).
    pub fn segment(&self, seq: Seq) -> Result<LocalSegmentWriter, ClientError> {
        self.open(SeqRequest::At(seq))
    }

    fn open(&self, req: SeqRequest) -> Result<LocalSegmentWriter, ClientError> {
        let ch = self.store.channel(&self.channel).map_err(not_found)?;
        let handle = ch.open_write(req, false).map_err(not_found)?;
        Ok(LocalSegmentWriter { handle })
    }

    /// Closes the channel (as `DELETE {ch}`): subscribers see the end of the stream.
    pub fn close(self) -> Result<(), ClientError> {
        self.store.delete_channel(&self.channel).map_err(not_found)
    }
}

fn not_found(e: StoreError) -> ClientError {
    match e {
        StoreError::NoChannel => ClientError::NotFound,
        StoreError::Closed => ClientError::Closed,
        StoreError::OutsideWindow { seq, latest } => ClientError::OutsideWindow { seq, latest },
        e => ClientError::Store(e),
    }
}

/// One segment being published. Dropping it without [`finish`](Self::finish) aborts the segment
/// for its readers.
pub struct LocalSegmentWriter {
    handle: WriteHandle,
}

impl LocalSegmentWriter {
    /// The seq this segment was given.
    pub fn seq(&self) -> Seq {
        self.handle.seq()
    }

    /// Appends bytes; readers see them at once.
    pub fn write(&mut self, chunk: Bytes) -> Result<(), ClientError> {
        self.handle.write(chunk).map_err(not_found)
    }

    /// Ends the segment.
    pub fn finish(self) {
        self.handle.finish();
    }
}

/// Follows a channel of a local store segment by segment.
#[derive(Debug, Clone)]
pub struct LocalSubscriber {
    store: TrickleStore,
    channel: String,
    next: SeqRequest,
    skipped: u64,
}

impl LocalSubscriber {
    /// A subscriber starting at `start` (`SeqRequest::Next` is the live edge).
    pub fn new(store: &TrickleStore, channel: &str, start: SeqRequest) -> Self {
        LocalSubscriber { store: store.clone(), channel: channel.to_string(), next: start, skipped: 0 }
    }

    /// Moves to another seq.
    pub fn set_seq(&mut self, seq: SeqRequest) {
        self.next = seq;
    }

    /// Segments jumped over because the subscriber fell out of the window.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next segment, once its first byte exists (or it ended empty). `Ok(None)` at the end
    /// of the stream: the channel was closed or does not exist. Falling out of the window jumps
    /// to the live edge and counts the skipped segments.
    pub async fn next_segment(&mut self) -> Result<Option<LocalSegmentReader>, ClientError> {
        // A jump lands on the live edge, which is always readable, so two rounds suffice for
        // that; the bound also limits how long a subscriber ahead of the edge waits.
        for _ in 0..AHEAD_ATTEMPTS {
            let ch = match self.store.channel(&self.channel) {
                Ok(ch) => ch,
                Err(StoreError::NoChannel) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            match ch.open_read(self.next) {
                ReadOutcome::Closed { .. } => return Ok(None),
                // Ahead of the live edge: wait for the publisher rather than go back.
                ReadOutcome::NotFound { seq, latest } if latest < seq => {
                    tokio::time::sleep(AHEAD_RETRY).await;
                }
                ReadOutcome::NotFound { seq, latest } => {
                    self.skipped = self.skipped.saturating_add(latest.0 - seq.0);
                    self.next = SeqRequest::At(latest);
                }
                ReadOutcome::Segment { seg, .. } => {
                    let mut rh = ReadHandle::tracked(seg, &ch);
                    let seq = rh.seg.seq();
                    let first = rh.cursor.first().await;
                    if first == First::Empty {
                        rh.completed();
                    }
                    if first == First::Empty && ch.is_closed() {
                        return Ok(None);
                    }
                    self.next = SeqRequest::At(Seq(seq.0 + 1));
                    return Ok(Some(LocalSegmentReader { seq, rh }));
                }
            }
        }
        Err(ClientError::Protocol("subscriber could not catch up with the publisher".into()))
    }
}

/// One segment being read.
pub struct LocalSegmentReader {
    seq: Seq,
    rh: ReadHandle,
}

impl LocalSegmentReader {
    /// The segment's seq.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The next bytes, waiting for the publisher; `Ok(None)` at the end of the segment.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        match self.rh.cursor.next().await {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(_)) => Err(ClientError::Aborted(self.seq)),
            None => {
                self.rh.completed();
                Ok(None)
            }
        }
    }

    /// The whole segment.
    pub async fn read_all(mut self) -> Result<Bytes, ClientError> {
        let mut parts = Vec::new();
        while let Some(b) = self.next_chunk().await? {
            parts.push(b);
        }
        Ok(concat(parts))
    }
}
