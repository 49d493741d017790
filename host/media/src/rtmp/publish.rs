//! RTMP ingest: the publish authorizer, and one accepted publish whose FLV is remuxed by a child `ffmpeg`
//! (FLV in, MPEG-TS out) and cut by [`TsSegmenter`] into the consumer's channel.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::RtmpConfig;
use crate::ffmpeg::Ffmpeg;
use crate::flv::{self, TagKind};
use crate::{MediaError, Piece, TsSegmenter};

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

/// Aborts a task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tags are held back until both audio and video were seen (or this many arrived) so that the FLV
/// header's flags tell ffmpeg exactly which streams to wait for.
const TAGS_BEFORE_HEADER: usize = 64;

/// One accepted publish: FLV goes into ffmpeg, whose MPEG-TS is segmented into the consumer's channel.
pub(crate) struct Publish {
    pub ffmpeg: Ffmpeg,
    pump: AbortOnDrop<Result<u64, MediaError>>,
    /// A clone of the consumer's sender, to notice when the consumer goes away.
    pub consumer: mpsc::Sender<Piece>,
    pub header_written: bool,
    held: Vec<(TagKind, u32, Bytes)>,
    seen_audio: bool,
    seen_video: bool,
    buf: Vec<u8>,
    _claim: KeyClaim,
}

impl Publish {
    pub fn start(config: &RtmpConfig, tx: mpsc::Sender<Piece>, claim: KeyClaim) -> Result<Publish, MediaError> {
        let mut ffmpeg = Ffmpeg::spawn(
            &config.ffmpeg,
            // Each packet is written out at once: the segmenter hands pieces on as they come.
            &["-f", "flv", "-i", "pipe:0", "-map", "0", "-c", "copy", "-flush_packets", "1", "-f", "mpegts", "pipe:1"],
            true,
            "rtmp-ingest",
        )?;
        let stdout = ffmpeg.stdout.take().ok_or_else(|| MediaError::Ffmpeg("no stdout".into()))?;
        let segmenter = TsSegmenter::new(config.segmenter.clone());
        let consumer = tx.clone();
        let pump = tokio::spawn(async move { segmenter.pump(stdout, &tx).await }.in_current_span());
        Ok(Publish {
            ffmpeg,
            pump: AbortOnDrop(pump),
            consumer,
            header_written: false,
            held: Vec::new(),
            seen_audio: false,
            seen_video: false,
            buf: Vec::new(),
            _claim: claim,
        })
    }

    pub async fn tag(&mut self, kind: TagKind, timestamp: u32, data: Bytes) -> Result<(), MediaError> {
        if !self.header_written {
            self.seen_audio |= kind == TagKind::Audio;
            self.seen_video |= kind == TagKind::Video;
            self.held.push((kind, timestamp, data));
            if (self.seen_audio && self.seen_video) || self.held.len() >= TAGS_BEFORE_HEADER {
                self.write_header_and_held().await?;
            }
            return Ok(());
        }
        self.buf.clear();
        if flv::write_tag(&mut self.buf, kind, timestamp, &data).is_none() {
            tracing::warn!(len = data.len(), "rtmp message too large for flv; dropped");
            return Ok(());
        }
        self.write_buf().await
    }

    pub async fn write_header_and_held(&mut self) -> Result<(), MediaError> {
        self.header_written = true;
        self.buf.clear();
        self.buf.extend_from_slice(&flv::header(self.seen_audio, self.seen_video));
        for (kind, timestamp, data) in std::mem::take(&mut self.held) {
            let _ = flv::write_tag(&mut self.buf, kind, timestamp, &data);
        }
        self.write_buf().await
    }

    async fn write_buf(&mut self) -> Result<(), MediaError> {
        // After the publisher said it is done, late tags are ignored.
        let Some(stdin) = self.ffmpeg.stdin.as_mut() else { return Ok(()) };
        stdin.write_all(&self.buf).await.map_err(|e| MediaError::Ffmpeg(format!("write to ffmpeg: {e}")))
    }

    /// The publisher is done: let ffmpeg and the segmenter flush the last segment, within `timeout`.
    pub async fn finish(mut self, timeout: Duration) {
        if !self.header_written && !self.held.is_empty() {
            let _ = self.write_header_and_held().await;
        }
        let Publish { ffmpeg, mut pump, consumer, _claim, .. } = self;
        drop(consumer);
        let flushed = async {
            let (status, tail) = ffmpeg.stop(timeout).await;
            let pumped = (&mut pump.0).await;
            (status, tail, pumped)
        };
        match tokio::time::timeout(timeout, flushed).await {
            Ok((status, tail, Ok(Ok(segments)))) => {
                tracing::info!(segments, ?status, "rtmp publish ended");
                if !status.is_some_and(|s| s.success()) && !tail.is_empty() {
                    tracing::debug!(%tail, "ffmpeg stderr");
                }
            }
            Ok((status, tail, pumped)) => tracing::info!(?status, %tail, ?pumped, "rtmp publish ended with an error"),
            Err(_) => tracing::warn!("rtmp publish: flushing the last segment timed out"),
        }
        drop(_claim);
    }
}
