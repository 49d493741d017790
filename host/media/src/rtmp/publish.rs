//! RTMP ingest: the publish authorizer, and one accepted publish whose FLV tags are remuxed to MPEG-TS in
//! process (see [`super::remux`]) and cut by [`TsSegmenter`] into the consumer's channel.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::RtmpConfig;
use super::remux::{Expected, FlvToTs};
use crate::flv::TagKind;
use crate::{MediaError, Piece, StartGate, TsSegmenter};

/// A publisher asking to publish `rtmp://host:port/{app}/{stream_key}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The RTMP application (the first path segment, e.g. `live`).
    pub app: String,
    /// The stream key (the path after the app).
    pub stream_key: String,
    /// The publisher's address.
    pub peer: SocketAddr,
}

/// Decides whether a publish is accepted, and where its segments go.
///
/// Returning `Some(sender)` accepts: segments of this publish are sent there, and the channel closes
/// (every sender dropped) when the publish ends, after the last partial segment. Dropping the receiver
/// ends the publish (the publisher is disconnected). Returning `None` rejects (the publisher gets an RTMP
/// error and is disconnected). A second publish of an `(app, stream_key)` already publishing is rejected
/// before the authorizer is asked. Implemented for `Fn(PublishRequest) -> impl Future<Output = Option<..>>`.
pub trait RtmpAuthorizer: Send + Sync + 'static {
    /// Decides on one publish request.
    fn authorize(&self, request: PublishRequest) -> impl Future<Output = Option<mpsc::Sender<Piece>>> + Send;
}

impl<F, Fut> RtmpAuthorizer for F
where
    F: Fn(PublishRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<mpsc::Sender<Piece>>> + Send,
{
    fn authorize(&self, request: PublishRequest) -> impl Future<Output = Option<mpsc::Sender<Piece>>> + Send {
        self(request)
    }
}

/// Releases an `(app, key)` claim when the publish ends, on every path.
pub(crate) struct KeyClaim {
    pub key: (String, String),
    pub active: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        self.active.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

/// One accepted publish: tags are remuxed to MPEG-TS as they come; what one read of the connection brought
/// is cut into pieces and sent to the consumer in one go ([`flush`](Self::flush)).
pub(crate) struct Publish {
    remux: FlvToTs,
    segmenter: TsSegmenter,
    /// TS muxed since the last flush.
    ts: Vec<u8>,
    consumer: Consumer,
    /// The publisher said it is done (`FCUnpublish`/`deleteStream`).
    pub finished: bool,
    _claim: KeyClaim,
}

impl Publish {
    pub fn start(config: &RtmpConfig, tx: mpsc::Sender<Piece>, claim: KeyClaim) -> Publish {
        Publish {
            remux: FlvToTs::new(),
            segmenter: TsSegmenter::new(config.segmenter.clone()),
            ts: Vec::new(),
            consumer: Consumer {
                tx,
                gate: StartGate::default(),
                wait: config.consumer_wait,
                stalled: false,
                dropped: 0,
            },
            finished: false,
            _claim: claim,
        }
    }

    /// The publisher's metadata announced which tracks it sends.
    pub fn metadata(&mut self, video: bool, audio: bool) {
        self.remux.expect(Expected { video, audio });
    }

    /// Takes one audio or video tag; fails when the publish carries nothing we can mux.
    pub fn tag(&mut self, kind: TagKind, timestamp: u32, data: Bytes) -> Result<(), MediaError> {
        if self.finished {
            // After the publisher said it is done, late tags are ignored.
            return Ok(());
        }
        self.remux.push(kind, timestamp, data, &mut self.ts)
    }

    /// Resolves when the consumer dropped its receiver.
    pub async fn consumer_closed(&self) {
        self.consumer.tx.closed().await
    }

    /// Cuts what was muxed since the last flush into pieces and sends them; fails when the consumer is gone.
    pub async fn flush(&mut self) -> Result<(), MediaError> {
        if self.ts.is_empty() {
            return Ok(());
        }
        let pieces = self.segmenter.push_pieces(&self.ts);
        self.ts.clear();
        for piece in pieces {
            self.consumer.send(piece, self.consumer.wait).await?;
        }
        Ok(())
    }

    /// The publisher is gone: muxes what is held and sends the last pieces (the last partial segment)
    /// within `timeout`; then the channel closes.
    pub async fn finish(self, timeout: Duration) {
        let Publish { mut remux, mut segmenter, mut ts, mut consumer, _claim, .. } = self;
        let deadline = tokio::time::Instant::now() + timeout;
        if let Err(e) = remux.finish(&mut ts) {
            tracing::info!(error = %e, "rtmp publish: nothing to remux");
        }
        let mut pieces = segmenter.push_pieces(&ts);
        pieces.extend(segmenter.finish_pieces());
        for piece in pieces {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Err(e) = consumer.send(piece, wait).await {
                tracing::info!(error = %e, "rtmp publish ended; its last pieces were not delivered");
                return;
            }
        }
        tracing::info!(segments_cut_short = consumer.dropped, "rtmp publish ended");
    }
}

/// The consumer's channel, as a publish sends to it.
///
/// A full channel is waited for up to `wait` ([`RtmpConfig::consumer_wait`]; the connection is not read
/// meanwhile, which slows the publisher down through TCP). After that the rest of the segment is dropped,
/// and while the consumer stays full, pieces are dropped without waiting, so that the publisher is never
/// held up for long.
struct Consumer {
    tx: mpsc::Sender<Piece>,
    /// Closed after a piece was dropped: the rest of that segment goes too.
    gate: StartGate,
    wait: Duration,
    /// Pieces were dropped and none went through since: do not wait.
    stalled: bool,
    dropped: u64,
}

impl Consumer {
    /// Sends one piece, waiting up to `wait` when the channel is full; fails when the consumer is gone.
    async fn send(&mut self, piece: Piece, wait: Duration) -> Result<(), MediaError> {
        if !self.gate.pass(&piece) {
            return Ok(());
        }
        let piece = match self.tx.try_send(piece) {
            Ok(()) => {
                self.stalled = false;
                return Ok(());
            }
            Err(TrySendError::Closed(_)) => return Err(MediaError::Closed),
            Err(TrySendError::Full(piece)) => piece,
        };
        if !self.stalled {
            match tokio::time::timeout(wait, self.tx.send(piece)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(MediaError::Closed),
                Err(_) => {}
            }
        }
        // A segment with a hole would not decode: drop the rest of it, go on at the next one.
        self.stalled = true;
        self.gate.lost();
        self.dropped += 1;
        tracing::warn!(dropped_total = self.dropped, "rtmp consumer too slow: rest of a segment dropped");
        Ok(())
    }
}
