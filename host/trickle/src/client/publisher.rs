//! The HTTP publisher: one streamed `POST {url}/{seq}` per segment, with the next one
//! preconnected while the current one is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{default_client, header_seq, is_closed, trim_url};
use crate::error::ClientError;
use crate::headers;
use crate::seq::Seq;

/// Attempts for one segment when the connection fails before any byte of it was sent.
const MAX_ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Publishes segments `0, 1, 2, …` (or from the live edge) to one channel URL.
///
/// ```no_run
/// # async fn demo() -> Result<(), byoc_trickle::ClientError> {
/// let mut publisher = byoc_trickle::HttpPublisher::new("http://127.0.0.1:3389/ai/trickle/s1", "video/mp2t")?;
/// let mut seg = publisher.next_segment();
/// seg.write(bytes::Bytes::from_static(b"first bytes"))?;
/// seg.write(bytes::Bytes::from_static(b"more bytes"))?;
/// seg.finish().await?;
/// publisher.close().await?;
/// # Ok(()) }
/// ```
pub struct HttpPublisher {
    client: reqwest::Client,
    url: String,
    mime: String,
    next: u64,
    reset_next: bool,
    pending: Option<HttpSegmentWriter>,
    /// The slowest reader the server last reported, if any.
    slowest_seen: Option<Seq>,
}

impl HttpPublisher {
    /// A publisher starting at seq 0.
    pub fn new(url: impl Into<String>, mime: impl Into<String>) -> Result<Self, ClientError> {
        Ok(Self::with_client(default_client()?, url, mime))
    }

    /// A publisher using the given HTTP client (e.g. one that accepts a self-signed certificate).
    pub fn with_client(client: reqwest::Client, url: impl Into<String>, mime: impl Into<String>) -> Self {
        HttpPublisher {
            client,
            url: trim_url(url),
            mime: mime.into(),
            next: 0,
            reset_next: false,
            pending: None,
            slowest_seen: None,
        }
    }

    /// Continues an existing channel: asks the server for its live edge (`GET {url}/next`) and
    /// publishes from there, resetting readers stuck on older segments.
    pub async fn start_at_live_edge(&mut self) -> Result<Seq, ClientError> {
        let resp = self.client.get(format!("{}/next", self.url)).send().await?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Err(ClientError::NotFound),
            status => return Err(ClientError::Status { status, message: resp.text().await.unwrap_or_default() }),
        }
        let latest = header_seq(&resp, headers::LATEST)
            .ok_or_else(|| ClientError::Protocol(format!("{} missing or invalid on /next", headers::LATEST)))?;
        self.set_seq(latest);
        self.reset_next = true;
        Ok(latest)
    }

    /// Waits until the next segment is fewer than `max_ahead` (at least 1) segments ahead of the
    /// channel's slowest reader, as the server reports it (`GET {url}/next?wait_reader=SEQ`, a byoc
    /// extension). Call it before [`next_segment`](Self::next_segment): with `max_ahead` below the
    /// server's window, a reader that keeps reading loses nothing to the window. Without readers, or
    /// against a server that does not report them, it does not wait.
    pub async fn keep_within(&mut self, max_ahead: u64) -> Result<(), ClientError> {
        let max_ahead = max_ahead.max(1);
        let within = |slowest: Seq, next: u64| next < slowest.0.saturating_add(max_ahead);
        if self.slowest_seen.is_some_and(|s| within(s, self.next)) {
            return Ok(());
        }
        loop {
            let wanted = self.next.saturating_add(1).saturating_sub(max_ahead);
            let resp = self.client.get(format!("{}/next?wait_reader={wanted}", self.url)).send().await?;
            match resp.status().as_u16() {
                200 => {}
                404 => return Err(ClientError::NotFound),
                status => {
                    return Err(ClientError::Status { status, message: resp.text().await.unwrap_or_default() });
                }
            }
            self.slowest_seen = header_seq(&resp, headers::SLOWEST_READER);
            match self.slowest_seen {
                Some(s) if !within(s, self.next) => continue,
                _ => return Ok(()),
            }
        }
    }

    /// Publishes the next segment at `seq` (dropping any preconnected upload).
    pub fn set_seq(&mut self, seq: Seq) {
        self.pending = None;
        self.next = seq.0;
    }

    /// The next segment's upload. Its `POST` is already connected (preconnected when the previous
    /// segment was handed out); this call preconnects the one after it.
    pub fn next_segment(&mut self) -> HttpSegmentWriter {
        let seg = match self.pending.take() {
            Some(p) if p.seq.0 == self.next => p,
            _ => self.start_upload(Seq(self.next)),
        };
        self.next = self.next.saturating_add(1);
        self.pending = Some(self.start_upload(Seq(self.next)));
        seg
    }

    fn start_upload(&mut self, seq: Seq) -> HttpSegmentWriter {
        let (tx, _) = watch::channel(Upload::default());
        let tx = Arc::new(tx);
        let reset = std::mem::take(&mut self.reset_next);
        let task = tokio::spawn(post_segment(
            self.client.clone(),
            format!("{}/{seq}", self.url),
            self.mime.clone(),
            reset,
            seq,
            tx.clone(),
        ));
        HttpSegmentWriter { seq, upload: tx, task: Some(task) }
    }

    /// Drops the preconnected upload and closes the channel (`DELETE {url}`), which ends the
    /// stream for every subscriber.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.pending = None;
        let resp = self.client.delete(&self.url).send().await?;
        match resp.status().as_u16() {
            200 | 404 => Ok(()),
            status => Err(ClientError::Status { status, message: resp.text().await.unwrap_or_default() }),
        }
    }
}

#[derive(Default)]
struct Upload {
    chunks: Vec<Bytes>,
    finished: bool,
    cancelled: bool,
}

/// One segment's upload. Write chunks as they are produced, then [`finish`](Self::finish).
/// Dropping it unfinished cancels the upload; the server then aborts the segment.
pub struct HttpSegmentWriter {
    seq: Seq,
    upload: Arc<watch::Sender<Upload>>,
    task: Option<JoinHandle<Result<Seq, ClientError>>>,
}

impl HttpSegmentWriter {
    /// The seq this upload is for.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Queues a chunk; it is sent as soon as the connection takes it.
    pub fn write(&mut self, chunk: Bytes) -> Result<(), ClientError> {
        if self.task.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(ClientError::WriteAfterEnd);
        }
        if !chunk.is_empty() {
            self.upload.send_modify(|u| u.chunks.push(chunk));
        }
        Ok(())
    }

    /// Ends the segment and waits for the server's answer. Returns the seq the server wrote.
    pub async fn finish(mut self) -> Result<Seq, ClientError> {
        self.upload.send_modify(|u| u.finished = true);
        let task = self.task.take().ok_or(ClientError::WriteAfterEnd)?;
        match task.await {
            Ok(r) => r,
            Err(e) => Err(ClientError::Protocol(format!("upload task failed: {e}"))),
        }
    }
}

impl Drop for HttpSegmentWriter {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.upload.send_modify(|u| u.cancelled = true);
            // The body stream ends with an error, the request is abandoned; nothing to await.
            drop(task);
        }
    }
}

/// The request body: every chunk written so far, then the ones still to come.
fn body_stream(
    upload: Arc<watch::Sender<Upload>>,
    sent: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some((upload.subscribe(), 0usize)), move |state| {
        let sent = sent.clone();
        async move {
            let (mut rx, i) = state?;
            let item = {
                let u = rx.wait_for(|u| u.chunks.len() > i || u.finished || u.cancelled).await.ok()?;
                if u.cancelled {
                    Err(std::io::Error::other("segment upload cancelled"))
                } else if let Some(c) = u.chunks.get(i) {
                    Ok(c.clone())
                } else {
                    return None;
                }
            };
            match item {
                Ok(c) => {
                    sent.store(true, Ordering::Relaxed);
                    Some((Ok(c), Some((rx, i + 1))))
                }
                // End the stream after the error: the request is abandoned.
                Err(e) => Some((Err(e), None)),
            }
        }
    })
}

async fn post_segment(
    client: reqwest::Client,
    url: String,
    mime: String,
    reset: bool,
    seq: Seq,
    upload: Arc<watch::Sender<Upload>>,
) -> Result<Seq, ClientError> {
    let mut attempt = 1;
    loop {
        let sent = Arc::new(AtomicBool::new(false));
        let mut req = client
            .post(&url)
            .header(http::header::CONTENT_TYPE, &mime)
            .body(reqwest::Body::wrap_stream(body_stream(upload.clone(), sent.clone())));
        if reset {
            req = req.header(headers::RESET, "1");
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) if !sent.load(Ordering::Relaxed) && attempt < MAX_ATTEMPTS && !upload.borrow().cancelled => {
                // Nothing of this segment reached the wire: safe to send it again. Wait for data
                // first so that a dead preconnection does not burn the attempts while idle.
                tracing::debug!(%url, error = %e, attempt, "trickle publish failed before sending, retrying");
                let mut rx = upload.subscribe();
                let _ = rx.wait_for(|u| !u.chunks.is_empty() || u.finished || u.cancelled).await;
                tokio::time::sleep(RETRY_DELAY).await;
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        return match resp.status().as_u16() {
            _ if is_closed(&resp) => Err(ClientError::Closed),
            200 => Ok(header_seq(&resp, headers::SEQ).unwrap_or(seq)),
            404 => Err(ClientError::NotFound),
            470 => Err(ClientError::OutsideWindow { seq, latest: header_seq(&resp, headers::LATEST).unwrap_or(seq) }),
            status => Err(ClientError::Status { status, message: resp.text().await.unwrap_or_default() }),
        };
    }
}
