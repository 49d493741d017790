//! The HTTP subscriber: follows `Lp-Trickle-Seq`, jumps to `Lp-Trickle-Latest` on 470, treats
//! 404 and `Lp-Trickle-Closed` as the end of the stream, and preconnects the next `GET`.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{default_client, header_seq, is_closed, trim_url};
use crate::error::ClientError;
use crate::headers;
use crate::local::concat;
use crate::seq::{Seq, SeqRequest};

/// How a subscriber starts and retries.
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    /// First seq to read: `Next` (-1, the live edge), `Current` (-2) or an explicit seq.
    pub start: SeqRequest,
    /// Consecutive failed attempts (transport errors, 5xx) before giving up.
    pub max_retries: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions { start: SeqRequest::Next, max_retries: 5, retry_delay: Duration::from_millis(300) }
    }
}

type PendingGet = (SeqRequest, JoinHandle<reqwest::Result<reqwest::Response>>);

/// Reads a channel segment by segment.
///
/// ```no_run
/// # async fn demo() -> Result<(), byoc_trickle::ClientError> {
/// use byoc_trickle::{HttpSubscriber, SubscriberOptions};
/// let mut sub = HttpSubscriber::new("http://127.0.0.1:3389/ai/trickle/s1-out", SubscriberOptions::default())?;
/// while let Some(mut seg) = sub.next_segment().await? {
///     while let Some(chunk) = seg.next_chunk().await? {
///         println!("segment {}: {} bytes", seg.seq(), chunk.len());
///     }
/// }
/// # Ok(()) }
/// ```
pub struct HttpSubscriber {
    client: reqwest::Client,
    url: String,
    opts: SubscriberOptions,
    next: SeqRequest,
    pending: Option<PendingGet>,
    skipped: u64,
}

impl Drop for HttpSubscriber {
    fn drop(&mut self) {
        if let Some((_, task)) = self.pending.take() {
            task.abort();
        }
    }
}

impl HttpSubscriber {
    /// A subscriber on a channel URL.
    pub fn new(url: impl Into<String>, opts: SubscriberOptions) -> Result<Self, ClientError> {
        Ok(Self::with_client(default_client()?, url, opts))
    }

    /// A subscriber using the given HTTP client.
    pub fn with_client(client: reqwest::Client, url: impl Into<String>, opts: SubscriberOptions) -> Self {
        let next = opts.start;
        HttpSubscriber { client, url: trim_url(url), opts, next, pending: None, skipped: 0 }
    }

    /// Reads from `seq` next.
    pub fn set_seq(&mut self, seq: SeqRequest) {
        if let Some((_, task)) = self.pending.take() {
            task.abort();
        }
        self.next = seq;
    }

    /// Segments jumped over because the subscriber fell out of the server's window.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn get(&self, seq: SeqRequest) -> JoinHandle<reqwest::Result<reqwest::Response>> {
        tokio::spawn(self.client.get(format!("{}/{seq}", self.url)).send())
    }

    /// The next segment, once the server has its first byte. `Ok(None)` at the end of the
    /// stream (channel closed or gone). Falling out of the server's window is handled here: the
    /// subscriber jumps to the live edge and goes on (see [`Self::skipped`]); use
    /// [`Self::next_step`] to see each jump.
    pub async fn next_segment(&mut self) -> Result<Option<HttpSegmentReader>, ClientError> {
        loop {
            match self.next_step().await? {
                SubscriberStep::Segment(segment) => return Ok(Some(segment)),
                SubscriberStep::End => return Ok(None),
                SubscriberStep::Skipped { .. } => {}
            }
        }
    }

    /// The next thing that happens to this subscriber: a segment, a jump over segments the server
    /// no longer holds (the next step reads from the jump's `to`), or the end of the stream.
    pub async fn next_step(&mut self) -> Result<SubscriberStep, ClientError> {
        let mut failures = 0u32;
        loop {
            let want = self.next;
            let task = match self.pending.take() {
                Some((seq, task)) if seq == want => task,
                Some((_, task)) => {
                    task.abort();
                    self.get(want)
                }
                None => self.get(want),
            };
            let result = match task.await {
                Ok(r) => r.map_err(ClientError::from),
                Err(e) => Err(ClientError::Protocol(format!("request task failed: {e}"))),
            };
            let retry = |failures: &mut u32, err: ClientError| -> Result<(), ClientError> {
                *failures += 1;
                if *failures > self.opts.max_retries { Err(err) } else { Ok(()) }
            };
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    retry(&mut failures, e)?;
                    tokio::time::sleep(self.opts.retry_delay).await;
                    continue;
                }
            };
            if is_closed(&resp) {
                return Ok(SubscriberStep::End);
            }
            match resp.status().as_u16() {
                200 => {
                    let seq = header_seq(&resp, headers::SEQ)
                        .ok_or_else(|| ClientError::Protocol(format!("200 without a valid {}", headers::SEQ)))?;
                    let next = SeqRequest::At(Seq(seq.0 + 1));
                    self.next = next;
                    self.pending = Some((next, self.get(next)));
                    return Ok(SubscriberStep::Segment(HttpSegmentReader { seq, resp }));
                }
                404 => return Ok(SubscriberStep::End),
                470 => {
                    let latest = header_seq(&resp, headers::LATEST)
                        .ok_or_else(|| ClientError::Protocol(format!("470 without a valid {}", headers::LATEST)))?;
                    match want {
                        // Ahead of the live edge: wait for the publisher rather than go back. At it:
                        // the server contradicts itself; jumping would ask for the same seq again.
                        SeqRequest::At(seq) if seq >= latest => {
                            retry(&mut failures, ClientError::OutsideWindow { seq, latest })?;
                            tokio::time::sleep(self.opts.retry_delay).await;
                        }
                        SeqRequest::At(seq) => {
                            self.skipped = self.skipped.saturating_add(latest.0 - seq.0);
                            tracing::debug!(url = %self.url, %seq, %latest, "trickle subscriber fell behind, jumping");
                            self.next = SeqRequest::At(latest);
                            return Ok(SubscriberStep::Skipped { from: seq, to: latest });
                        }
                        // -1/-2 are always inside the window; a 470 for them means a confused server.
                        _ => {
                            retry(&mut failures, ClientError::Protocol("470 for a relative seq".into()))?;
                            self.next = SeqRequest::At(latest);
                        }
                    }
                }
                status if status >= 500 => {
                    let err = ClientError::Status { status, message: resp.text().await.unwrap_or_default() };
                    retry(&mut failures, err)?;
                    tokio::time::sleep(self.opts.retry_delay).await;
                }
                status => {
                    return Err(ClientError::Status { status, message: resp.text().await.unwrap_or_default() });
                }
            }
        }
    }
}

/// What [`HttpSubscriber::next_step`] saw.
pub enum SubscriberStep {
    /// A segment, being received.
    Segment(HttpSegmentReader),
    /// The subscriber fell out of the server's window: the segments from `from` up to (not
    /// including) `to` are gone, and reading goes on at `to`.
    Skipped {
        /// The first seq skipped.
        from: Seq,
        /// Where reading goes on.
        to: Seq,
    },
    /// The channel was closed or is gone.
    End,
}

/// One segment being received.
pub struct HttpSegmentReader {
    seq: Seq,
    resp: reqwest::Response,
}

impl HttpSegmentReader {
    /// The segment's seq (`Lp-Trickle-Seq`).
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The channel's mime type, as the server announced it.
    pub fn content_type(&self) -> Option<&str> {
        self.resp.headers().get(http::header::CONTENT_TYPE)?.to_str().ok()
    }

    /// The next bytes as they arrive; `Ok(None)` at the end. A body cut short (the publisher
    /// failed, or the connection broke) is an error, never a silently short segment.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.resp.chunk().await.map_err(|_| ClientError::Aborted(self.seq))
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
