//! Channels, their segment windows, and the sequence rules every transport shares.
//!
//! The HTTP server and the in-process clients both go through this module, so the rules are
//! written once:
//! - a channel keeps the last `window` segments in a ring (`slot = seq % window`);
//! - `next_write` (the live edge) only moves forward: `max(next_write, seq + 1)` on a segment's
//!   first byte, so a publisher whose `POST seq+1` overtakes `POST seq` does not make readers
//!   skip;
//! - a reader asking for a seq inside the window that has not been written yet waits for it
//!   instead of getting 470, so an out-of-order publish loses nothing;
//! - a publish never appends to an earlier attempt: a second `POST` of a seq starts the segment
//!   afresh, and a segment that was cut off is *aborted* (its readers get an error, not a
//!   truncated body that looks whole).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::memory::{MemoryBudget, default_budget};
use crate::segment::{AppendError, Cursor, End, Segment};
use crate::seq::{MAX_SEQ, Seq, SeqRequest};

mod readers;
use readers::ReaderMark;
pub(crate) use readers::Readers;

/// Longest mime type a channel may have, in bytes.
const MAX_MIME_LEN: usize = 255;

/// Largest window a store keeps (a bigger configured one is lowered to this).
const MAX_WINDOW: usize = 1 << 16;

/// Limits and behaviour of a trickle server.
#[derive(Debug, Clone)]
pub struct TrickleConfig {
    /// Segments kept per channel (go-livepeer: 5), between 2 and 65536. It also bounds how far
    /// ahead of the live edge a publish may go: `POST {ch}/{seq}` with
    /// `seq >= live edge + window` is refused with 400.
    pub window: usize,
    /// Largest segment accepted; a bigger publish is refused with 413 and the segment aborted.
    pub max_segment_bytes: usize,
    /// Bytes all channels together may buffer (segment bytes plus a small per-chunk cost).
    /// When a chunk does not fit, the oldest segments that have ended are dropped, across all
    /// channels, and counted ([`TrickleStore::segments_dropped_for_memory`]); their readers
    /// get what readers of a segment that left the window get. A publish that cannot fit even
    /// then is refused with 503 and its segment aborted. Default: a quarter of the machine's
    /// memory (`MemTotal` of `/proc/meminfo`, or the cgroup limit when lower), 1 GiB if
    /// neither can be read.
    pub max_buffered_bytes: usize,
    /// Most channels the server holds at once.
    pub max_channels: usize,
    /// A channel with no publish, subscribe or create activity for this long is closed.
    /// Channels whose name starts with `_` are exempt.
    pub idle_timeout: Duration,
    /// How often idle channels are looked for.
    pub sweep_interval: Duration,
    /// Create channels on first HTTP use (`POST {ch}` or `POST {ch}/{seq}`). Off by default:
    /// the orchestrator creates channels in-process.
    pub autocreate: bool,
}

impl Default for TrickleConfig {
    fn default() -> Self {
        TrickleConfig {
            window: 5,
            max_segment_bytes: 64 << 20,
            max_buffered_bytes: default_budget(),
            max_channels: 10_000,
            idle_timeout: Duration::from_secs(300),
            sweep_interval: Duration::from_secs(60),
            autocreate: false,
        }
    }
}

/// A validated channel name: 1 to [`ChannelName::MAX_LEN`] characters from `A-Z a-z 0-9 . _ -`,
/// and neither `.` nor `..`. Names appear in URLs, logs and metrics labels, so nothing that a
/// path, a shell or a terminal could read another way is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// Longest name accepted, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates a channel name.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name != "."
            && name != ".."
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok { Ok(ChannelName(Arc::from(name))) } else { Err(StoreError::BadName) }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChannelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The set of channels of one trickle server. Cheap to clone (shared).
#[derive(Clone)]
pub struct TrickleStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: TrickleConfig,
    budget: Arc<MemoryBudget>,
    epoch: Instant,
    channels: Mutex<HashMap<ChannelName, Arc<Channel>>>,
}

impl std::fmt::Debug for TrickleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrickleStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Default for TrickleStore {
    fn default() -> Self {
        Self::new(TrickleConfig::default())
    }
}

impl TrickleStore {
    /// A store with the given limits. A window below 2 is raised to 2 (one segment being written,
    /// one preconnected), one above 65536 lowered to 65536.
    pub fn new(mut config: TrickleConfig) -> Self {
        config.window = config.window.clamp(2, MAX_WINDOW);
        let budget = MemoryBudget::new(config.max_buffered_bytes);
        TrickleStore {
            inner: Arc::new(Inner { config, budget, epoch: Instant::now(), channels: Mutex::new(HashMap::new()) }),
        }
    }

    /// The store's limits.
    pub fn config(&self) -> &TrickleConfig {
        &self.inner.config
    }

    /// Bytes buffered by all channels now, as charged to the memory budget
    /// ([`TrickleConfig::max_buffered_bytes`]). Also exported as the gauge
    /// `byoc_trickle_buffered_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.budget.used()
    }

    /// Segments dropped so far to stay within the memory budget. Also exported as the counter
    /// `byoc_trickle_segments_dropped_for_memory_total`.
    pub fn segments_dropped_for_memory(&self) -> u64 {
        self.inner.budget.dropped()
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<ChannelName, Arc<Channel>>> {
        // A poisoned lock only means another thread panicked mid-update of a plain map; the map
        // itself is still consistent, so keep serving.
        self.inner.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a channel whose segments have the given mime type (at most 255 printable ASCII
    /// characters: it is sent back in every response's `Content-Type`). Creating an existing
    /// channel succeeds and changes nothing.
    pub fn create_channel(&self, name: &str, mime: &str) -> Result<(), StoreError> {
        self.get_or_create(&ChannelName::new(name)?, mime).map(|_| ())
    }

    pub(crate) fn get_or_create(&self, name: &ChannelName, mime: &str) -> Result<Arc<Channel>, StoreError> {
        let mut map = self.channels();
        if let Some(ch) = map.get(name) {
            return Ok(ch.clone());
        }
        if mime.len() > MAX_MIME_LEN || !mime.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(StoreError::BadMime);
        }
        let limit = self.inner.config.max_channels;
        if map.len() >= limit {
            return Err(StoreError::TooManyChannels(limit));
        }
        let ch = Arc::new(Channel::new(name.clone(), mime, &self.inner));
        map.insert(name.clone(), ch.clone());
        tracing::debug!(channel = %name, mime, "trickle channel created");
        Ok(ch)
    }

    /// Closes a channel: every segment ends, waiting readers and publishers are released with
    /// `Lp-Trickle-Closed`, and the name is free again.
    pub fn delete_channel(&self, name: &str) -> Result<(), StoreError> {
        let name = ChannelName::new(name)?;
        let ch = self.channels().remove(&name).ok_or(StoreError::NoChannel)?;
        ch.close();
        tracing::debug!(channel = %name, "trickle channel closed");
        Ok(())
    }

    /// Whether a channel exists.
    pub fn contains(&self, name: &str) -> bool {
        ChannelName::new(name).is_ok_and(|n| self.channels().contains_key(&n))
    }

    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.channels().len()
    }

    /// How long a channel has gone without activity (create, publish, subscribe); `None` if
    /// it does not exist.
    pub fn idle_for(&self, name: &str) -> Option<Duration> {
        let ch = self.channel(name).ok()?;
        Some(self.inner.epoch.elapsed().saturating_sub(ch.last_activity()))
    }

    /// The channel's live edge (`next_write`).
    pub fn next_seq(&self, name: &str) -> Result<Seq, StoreError> {
        Ok(Seq(self.channel(name)?.lock().next_write))
    }

    /// Every segment the store's channels hold in their windows.
    #[cfg(test)]
    pub(crate) fn window_segments(&self) -> Vec<Arc<Segment>> {
        let channels: Vec<Arc<Channel>> = self.channels().values().cloned().collect();
        channels.iter().flat_map(|ch| ch.lock().slots.iter().flatten().cloned().collect::<Vec<_>>()).collect()
    }

    pub(crate) fn channel(&self, name: &str) -> Result<Arc<Channel>, StoreError> {
        let name = ChannelName::new(name)?;
        self.channels().get(&name).cloned().ok_or(StoreError::NoChannel)
    }

    /// Closes every channel idle for longer than the idle timeout. Returns how many were closed.
    pub fn sweep_idle(&self) -> usize {
        let timeout = self.inner.config.idle_timeout;
        let now = self.inner.epoch.elapsed();
        let idle: Vec<Arc<Channel>> = {
            let mut map = self.channels();
            let names: Vec<ChannelName> = map
                .iter()
                .filter(|(n, ch)| !n.as_str().starts_with('_') && now.saturating_sub(ch.last_activity()) >= timeout)
                .map(|(n, _)| n.clone())
                .collect();
            names.iter().filter_map(|n| map.remove(n)).collect()
        };
        for ch in &idle {
            tracing::info!(channel = %ch.name, "trickle channel idle, closed");
            ch.close();
        }
        idle.len()
    }

    /// Runs the idle sweep every `sweep_interval` until the store is dropped. The task holds only
    /// a weak reference, so dropping the last store handle ends it.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.config.sweep_interval.max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { break };
                TrickleStore { inner }.sweep_idle();
            }
        })
    }
}

/// One channel: a ring of recent segments and the live edge.
pub(crate) struct Channel {
    pub(crate) name: ChannelName,
    pub(crate) mime: String,
    window: usize,
    max_segment_bytes: usize,
    budget: Arc<MemoryBudget>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last activity; lock-free because every chunk touches it.
    activity_ms: AtomicU64,
    state: Mutex<ChannelState>,
    /// Where its readers are (see [`Readers`]).
    pub(crate) readers: Arc<Readers>,
}

struct ChannelState {
    next_write: u64,
    slots: Vec<Option<Arc<Segment>>>,
    closed: bool,
}

impl ChannelState {
    fn slot(&mut self, seq: u64, window: usize) -> &mut Option<Arc<Segment>> {
        // `window >= 2`, and `slots.len() == window`, so the index is always in range; `get_mut`
        // keeps that an invariant rather than a panic site.
        let i = usize::try_from(seq % window as u64).unwrap_or(0);
        let len = self.slots.len();
        &mut self.slots[i.min(len.saturating_sub(1))]
    }
}

/// What a subscriber gets when it asks for a seq.
pub(crate) enum ReadOutcome {
    /// The segment (possibly still empty and waiting for its publisher).
    Segment { seg: Arc<Segment>, latest: Seq },
    /// Outside the window (470): jump to `latest`.
    NotFound { seq: Seq, latest: Seq },
    /// The channel is closed.
    Closed { seq: Seq, latest: Seq },
}

/// Ends a segment that is being dropped from the window or closed from outside: a segment that
/// holds bytes but was not finished by its publisher is aborted (readers must not take it for a
/// whole one); an empty one completes empty, which releases its waiting readers.
fn evict(seg: &Segment) {
    let how = if seg.len() > 0 { End::Aborted } else { End::Complete };
    seg.finish(how);
}

impl Channel {
    fn new(name: ChannelName, mime: &str, inner: &Inner) -> Self {
        let ch = Channel {
            name,
            mime: mime.to_string(),
            window: inner.config.window,
            max_segment_bytes: inner.config.max_segment_bytes,
            budget: inner.budget.clone(),
            epoch: inner.epoch,
            activity_ms: AtomicU64::new(0),
            state: Mutex::new(ChannelState { next_write: 0, slots: vec![None; inner.config.window], closed: false }),
            readers: Arc::default(),
        };
        ch.touch();
        ch
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last_activity(&self) -> Duration {
        Duration::from_millis(self.activity_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn latest(&self) -> Seq {
        Seq(self.lock().next_write)
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        for seg in st.slots.iter_mut().filter_map(Option::take) {
            evict(&seg);
        }
    }

    /// Attaches a publisher to a segment.
    pub(crate) fn open_write(self: &Arc<Self>, req: SeqRequest, reset: bool) -> Result<WriteHandle, StoreError> {
        self.touch();
        let w = self.window as u64;
        let mut st = self.lock();
        if st.closed {
            return Err(StoreError::Closed);
        }
        let seq = match req {
            SeqRequest::Current => return Err(StoreError::CurrentOnPublish),
            SeqRequest::At(Seq(s)) => s,
            SeqRequest::Next => {
                // The live edge, skipping segments that other publishers are already streaming
                // into (two concurrent `-1` publishers must not interleave their bytes).
                let mut s = st.next_write;
                for _ in 0..w {
                    match st.slot(s, self.window) {
                        Some(seg) if seg.seq().0 == s && seg.has_writer() => s += 1,
                        _ => break,
                    }
                }
                s
            }
        };
        let latest = Seq(st.next_write);
        let too_old = || StoreError::OutsideWindow { seq: Seq(seq), latest };
        if seq > MAX_SEQ {
            return Err(StoreError::BadSeq(crate::seq::SeqParseError::TooLarge));
        }
        // A publish may run ahead of the live edge by less than one window. Further ahead, its
        // slot is the one the live edge is about to use: a segment parked there (a POST that never
        // sends a byte) would make every publish of the live edge look too old, and a jump to a
        // huge seq would leave no seq to publish after it.
        let last_allowed = st.next_write.saturating_add(w - 1);
        if seq > last_allowed {
            return Err(StoreError::TooFarAhead { seq: Seq(seq), latest, max: Seq(last_allowed) });
        }
        let slot = st.slot(seq, self.window);
        let seg = match slot {
            Some(seg) if seg.seq().0 > seq => return Err(too_old()),
            // Still open: join it. Waiting readers keep it; the first publisher to send a byte
            // streams and any other one's body follows it whole (see `Segment`).
            Some(seg) if seg.seq().0 == seq && seg.is_open() => seg.clone(),
            _ if seq + w <= latest.0 => return Err(too_old()),
            _ => {
                // A fresh segment: the slot held an older one (dropped from the window) or an
                // earlier attempt at this seq (replaced, never appended to).
                if let Some(old) = slot.take() {
                    evict(&old);
                }
                let seg = Arc::new(Segment::new(Seq(seq), self.budget.clone()));
                *slot = Some(seg.clone());
                seg
            }
        };
        if reset {
            for old in st.slots.iter().flatten().filter(|s| s.seq().0 < seq) {
                evict(old);
            }
        }
        let writer = seg.attach_writer();
        drop(st);
        Ok(WriteHandle { channel: self.clone(), seg, writer, done: false })
    }

    /// Finds (or, at the live edge and for gaps inside the window, pre-creates) a segment.
    pub(crate) fn open_read(&self, req: SeqRequest) -> ReadOutcome {
        self.touch();
        let w = self.window as u64;
        let mut st = self.lock();
        let nw = st.next_write;
        let latest = Seq(nw);
        let seq = match req {
            SeqRequest::Next => nw,
            SeqRequest::Current => nw.saturating_sub(1),
            SeqRequest::At(Seq(s)) => s,
        };
        if st.closed {
            return ReadOutcome::Closed { seq: Seq(seq), latest };
        }
        let slot = st.slot(seq, self.window);
        match slot {
            // Dropped for memory: gone, as if it had left the window.
            Some(seg) if seg.seq().0 == seq && seg.is_dropped() => ReadOutcome::NotFound { seq: Seq(seq), latest },
            Some(seg) if seg.seq().0 == seq => ReadOutcome::Segment { seg: seg.clone(), latest },
            Some(seg) if seg.seq().0 > seq => ReadOutcome::NotFound { seq: Seq(seq), latest },
            _ if (seq <= nw && seq + w > nw) || (nw == 0 && seq == 1) => {
                if let Some(old) = slot.take() {
                    evict(&old);
                }
                let seg = Arc::new(Segment::new(Seq(seq), self.budget.clone()));
                *slot = Some(seg.clone());
                ReadOutcome::Segment { seg, latest }
            }
            _ => ReadOutcome::NotFound { seq: Seq(seq), latest },
        }
    }

    /// Ends one segment (`DELETE {ch}/{seq}`).
    pub(crate) fn close_segment(&self, seq: Seq) -> Result<(), StoreError> {
        let mut st = self.lock();
        match st.slot(seq.0, self.window) {
            Some(seg) if seg.seq() == seq => {
                evict(seg);
                Ok(())
            }
            _ => Err(StoreError::NoSegment),
        }
    }

    fn advance(&self, seq: Seq) {
        self.touch();
        let mut st = self.lock();
        st.next_write = st.next_write.max(seq.0 + 1);
    }
}

/// A publisher attached to one segment. Dropping it without [`WriteHandle::finish`] aborts the
/// segment if any byte was written (readers get an error), or leaves it waiting for another
/// publisher if none was.
pub(crate) struct WriteHandle {
    channel: Arc<Channel>,
    seg: Arc<Segment>,
    writer: u64,
    done: bool,
}

impl WriteHandle {
    pub(crate) fn seq(&self) -> Seq {
        self.seg.seq()
    }

    /// Appends bytes, waking readers.
    pub(crate) fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        // Move the live edge *before* the first byte becomes visible: a reader that has seen
        // bytes of seq N and asks for N+1 must find N+1 at (or behind) the edge, never ahead
        // of it, or it would be told to go back and read N again.
        if self.seg.len() == 0 && !chunk.is_empty() {
            self.channel.advance(self.seg.seq());
        }
        let len = chunk.len();
        match self.seg.append(self.writer, chunk, self.channel.max_segment_bytes) {
            Ok(()) => {
                self.channel.touch();
                metrics::counter!("byoc_trickle_bytes_published_total").increment(len as u64);
                Ok(())
            }
            Err(AppendError::TooLarge) => {
                self.done = true;
                self.seg.abandon(self.writer);
                Err(StoreError::TooLarge(self.channel.max_segment_bytes))
            }
            Err(AppendError::OverBudget) => {
                self.done = true;
                self.seg.abandon(self.writer);
                metrics::counter!("byoc_trickle_publishes_refused_for_memory_total").increment(1);
                static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
                if let Some(held_back) = LOG.allow() {
                    let limit = self.channel.budget.limit();
                    tracing::warn!(limit, held_back, "trickle: a publish was refused: over the memory bound");
                }
                Err(StoreError::OverBudget(self.channel.budget.limit()))
            }
            Err(AppendError::Ended) if self.channel.is_closed() => Err(StoreError::Closed),
            // Ended by a reset, a `DELETE {ch}/{seq}` or eviction from the window.
            Err(AppendError::Ended) => Err(StoreError::NoSegment),
        }
    }

    /// Ends the segment normally. An empty segment still moves the live edge past it.
    pub(crate) fn finish(mut self) {
        self.done = true;
        if self.seg.finish_by(self.writer) {
            metrics::counter!("byoc_trickle_segments_published_total").increment(1);
            if self.seg.len() == 0 {
                self.channel.advance(self.seg.seq());
            }
        }
    }

    /// A future that resolves when the segment ends (while this writer is still sending, that means
    /// something else ended it: a reset, a delete, eviction, channel close, or another publisher of
    /// the same seq completing it while this one stayed idle).
    pub(crate) fn ended_waiter(&self) -> impl Future<Output = ()> + Send + 'static {
        let seg = self.seg.clone();
        async move { seg.ended().await }
    }
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if !self.done {
            self.seg.abandon(self.writer);
        }
    }
}

/// A subscriber attached to one segment.
pub(crate) struct ReadHandle {
    pub(crate) seg: Arc<Segment>,
    pub(crate) cursor: Cursor,
    /// Counts this read among the channel's readers while it lasts.
    mark: Option<ReaderMark>,
}

impl ReadHandle {
    /// A read that the channel's [`Readers`] do not see.
    #[cfg(test)]
    pub(crate) fn new(seg: Arc<Segment>) -> Self {
        let cursor = Cursor::new(&seg);
        ReadHandle { seg, cursor, mark: None }
    }

    /// A read of `ch`, counted among its readers until it is dropped.
    pub(crate) fn tracked(seg: Arc<Segment>, ch: &Channel) -> Self {
        let cursor = Cursor::new(&seg);
        let mark = Some(ch.readers.start(seg.seq()));
        ReadHandle { seg, cursor, mark }
    }

    /// The whole segment was delivered: its reader is expected at the next seq.
    pub(crate) fn completed(&mut self) {
        if let Some(mark) = &mut self.mark {
            mark.complete();
        }
    }
}

#[cfg(test)]
mod tests;
