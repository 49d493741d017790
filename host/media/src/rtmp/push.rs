//! RTMP egress: MPEG-TS segments fed to a child `ffmpeg -f mpegts -i pipe:0 ... -f flv URL`, restarted with
//! backoff when it dies, behind a bounded queue that drops the oldest segments when the destination is slow.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ffmpeg::Ffmpeg;
use crate::{Piece, StartGate};

/// What happens to the audio on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushAudio {
    /// Re-encode to AAC (FLV cannot carry Opus). Always safe.
    #[default]
    Aac,
    /// Copy the audio as is (only when it is already AAC or MP3).
    Copy,
}

/// Settings of an [`RtmpPush`].
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// Segments waiting for ffmpeg; when full, the oldest is dropped.
    pub queue_segments: usize,
    /// First delay before restarting a failed ffmpeg; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest delay between restarts.
    pub max_backoff: Duration,
    /// Audio handling.
    pub audio: PushAudio,
    /// On [`RtmpPush::close`], time allowed to send what is queued and let ffmpeg finish.
    pub close_timeout: Duration,
    /// How much input ffmpeg analyses before it connects (`-analyzeduration`); it delays the start of each
    /// ffmpeg run by about this much media time.
    pub analyze_duration: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            queue_segments: 8,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            audio: PushAudio::default(),
            close_timeout: Duration::from_secs(5),
            analyze_duration: Duration::from_secs(1),
        }
    }
}

/// Counters of an [`RtmpPush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushStats {
    /// Segments written to ffmpeg.
    pub sent: u64,
    /// Segments dropped because the queue was full.
    pub dropped: u64,
    /// Times ffmpeg failed and was restarted.
    pub restarts: u64,
}

/// A queue holding this many pieces drops its oldest segment even when it holds few segments (one
/// endless segment must not grow it without bound).
const MAX_QUEUED_PIECES: usize = 4096;

struct Shared {
    queue: Mutex<VecDeque<Piece>>,
    capacity: usize,
    notify: Notify,
    closing: AtomicBool,
    sent: AtomicU64,
    dropped: AtomicU64,
    restarts: AtomicU64,
}

impl Shared {
    fn pop(&self) -> Option<Piece> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// Pushes output segments to one RTMP destination. Dropping it kills ffmpeg at once; [`close`](Self::close)
/// sends what is queued first.
pub struct RtmpPush {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    close_timeout: Duration,
    task: Option<JoinHandle<()>>,
}

impl RtmpPush {
    /// Starts pushing to `url` (`rtmp://...`). ffmpeg is started when the first segment arrives.
    pub fn spawn(url: impl Into<String>, config: PushConfig) -> RtmpPush {
        let url = url.into();
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: config.queue_segments.max(1),
            notify: Notify::new(),
            closing: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        });
        let cancel = CancellationToken::new();
        let span = tracing::info_span!("rtmp_push", url = %redact(&url));
        let close_timeout = config.close_timeout;
        let task = tokio::spawn(run(url, config, shared.clone(), cancel.clone()).instrument(span));
        RtmpPush { shared, cancel, close_timeout, task: Some(task) }
    }

    /// Queues one piece of an MPEG-TS segment (segments start on a keyframe, as [`crate::TsSegmenter`]
    /// cuts them). Never waits: when the queue holds its limit of segments, the oldest one is dropped
    /// whole (ffmpeg then goes on at the next segment start).
    pub fn push(&self, piece: Piece) {
        let dropped = {
            let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let mut dropped = 0;
            while !queue.is_empty()
                && (queue.len() >= MAX_QUEUED_PIECES
                    || (piece.is_start() && queue.iter().filter(|p| p.is_start()).count() >= self.shared.capacity))
            {
                queue.pop_front();
                while queue.front().is_some_and(|p| !p.is_start()) {
                    queue.pop_front();
                }
                dropped += 1;
            }
            queue.push_back(piece);
            dropped
        };
        if dropped > 0 {
            let total = self.shared.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            tracing::warn!(dropped_total = total, "rtmp destination too slow: dropped the oldest queued segment");
        }
        self.shared.notify.notify_one();
    }

    /// Counters so far.
    pub fn stats(&self) -> PushStats {
        PushStats {
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            restarts: self.shared.restarts.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued, ends ffmpeg's input so it finishes the FLV stream, and waits. All of it is
    /// bounded by [`PushConfig::close_timeout`], after which ffmpeg is killed. Returns the final counters.
    pub async fn close(mut self) -> PushStats {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.notify.notify_one();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(self.close_timeout, &mut task).await.is_err()
        {
            tracing::warn!("rtmp push: close timed out; killing ffmpeg");
            self.cancel.cancel();
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for RtmpPush {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Hides the stream key (the last path segment) in logs.
fn redact(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/***"),
        None => "***".to_string(),
    }
}

enum Fed {
    /// `close()` was called and the queue is drained.
    Closed,
    /// ffmpeg failed or exited.
    Failed(String),
    Cancelled,
}

async fn run(url: String, config: PushConfig, shared: Arc<Shared>, cancel: CancellationToken) {
    let audio: &[&str] = match config.audio {
        PushAudio::Aac => &["-c:a", "aac"],
        PushAudio::Copy => &["-c:a", "copy"],
    };
    let analyze = config.analyze_duration.as_micros().to_string();
    // ffmpeg's rtmp protocol passes its options down to its TCP socket: no Nagle delay on the push.
    let args = crate::ffmpeg::ts_to_flv_args(&analyze, audio, &["-tcp_nodelay", "1"], &url);
    let mut backoff = config.min_backoff;
    loop {
        // Start ffmpeg only when there is something to send.
        while shared.is_empty() {
            if shared.closing.load(Ordering::Acquire) {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = shared.notify.notified() => {}
            }
        }
        let mut ffmpeg = match Ffmpeg::spawn(&config.ffmpeg, &args, false, "rtmp-push") {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "rtmp push: cannot start ffmpeg");
                shared.restarts.fetch_add(1, Ordering::Relaxed);
                if shared.closing.load(Ordering::Acquire) {
                    return;
                }
                if !sleep_or_cancel(backoff, &shared, &cancel).await {
                    return;
                }
                backoff = (backoff * 2).min(config.max_backoff);
                continue;
            }
        };
        let started = Instant::now();
        let closing_at_start = shared.closing.load(Ordering::Acquire);
        let fed = feed(&mut ffmpeg, &shared, &cancel).await;
        match fed {
            Fed::Cancelled => {
                ffmpeg.kill().await;
                return;
            }
            Fed::Closed => {
                let (status, tail) = ffmpeg.stop(config.close_timeout).await;
                tracing::info!(status = status.map(tracing::field::display), %tail, "rtmp push closed");
                return;
            }
            Fed::Failed(why) => {
                let tail = ffmpeg.kill().await;
                let restarts = shared.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(%why, %tail, restarts, "rtmp push: ffmpeg failed; restarting");
                if started.elapsed() > config.max_backoff {
                    backoff = config.min_backoff;
                }
                if closing_at_start {
                    // The last attempt, made for close(), failed too.
                    return;
                }
                if !sleep_or_cancel(backoff, &shared, &cancel).await {
                    return;
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

/// Sleeps for the backoff; `false` when cancelled. A `close()` cuts the sleep short so that one last
/// attempt delivers what is queued (bounded by the close timeout).
async fn sleep_or_cancel(delay: Duration, shared: &Shared, cancel: &CancellationToken) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        if shared.closing.load(Ordering::Acquire) {
            return true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = shared.notify.notified() => {}
        }
    }
}

/// Writes queued pieces into ffmpeg until closing (queue drained), failure, or cancellation. Each
/// ffmpeg starts at a segment start.
async fn feed(ffmpeg: &mut Ffmpeg, shared: &Shared, cancel: &CancellationToken) -> Fed {
    let Some(mut stdin) = ffmpeg.stdin.take() else { return Fed::Failed("no stdin".into()) };
    let mut gate = StartGate::default();
    loop {
        let piece = match shared.pop() {
            Some(s) => s,
            None if shared.closing.load(Ordering::Acquire) => {
                ffmpeg.stdin = Some(stdin);
                return Fed::Closed;
            }
            None => {
                tokio::select! {
                    _ = cancel.cancelled() => return Fed::Cancelled,
                    _ = shared.notify.notified() => continue,
                    status = ffmpeg.wait() => return Fed::Failed(format!("ffmpeg exited: {status:?}")),
                }
            }
        };
        if !gate.pass(&piece) {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Fed::Cancelled,
            written = stdin.write_all(piece.bytes()) => match written {
                Ok(()) => {
                    shared.sent.fetch_add(u64::from(piece.is_start()), Ordering::Relaxed);
                }
                Err(e) => return Fed::Failed(format!("write to ffmpeg: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn full_queue_drops_oldest_and_close_ends_backoff() {
        let config = PushConfig {
            ffmpeg: PathBuf::from("/nonexistent/ffmpeg"),
            queue_segments: 2,
            min_backoff: Duration::from_secs(600),
            close_timeout: Duration::from_secs(5),
            ..PushConfig::default()
        };
        let push = RtmpPush::spawn("rtmp://127.0.0.1:9/live/x", config);
        for i in 0..5u8 {
            push.push(Piece::Start(Bytes::from(vec![i])));
            push.push(Piece::More(Bytes::from(vec![i, i])));
        }
        let queued: Vec<Piece> =
            push.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        let piece = |i: u8, more: bool| {
            if more { Piece::More(Bytes::from(vec![i, i])) } else { Piece::Start(Bytes::from(vec![i])) }
        };
        assert_eq!(queued, [piece(3, false), piece(3, true), piece(4, false), piece(4, true)]);
        let stats = push.close().await;
        assert_eq!(stats.dropped, 3);
        assert_eq!(stats.sent, 0);
    }

    #[test]
    fn stream_key_is_redacted() {
        assert_eq!(redact("rtmp://h:1935/live/secret"), "rtmp://h:1935/live/***");
    }
}
