//! RTMP ingest: a tokio TCP server around `rml_rtmp`'s sans-IO session. Each accepted publish is remuxed
//! by a child `ffmpeg` (FLV in, MPEG-TS out) and cut by [`TsSegmenter`] into the consumer's channel.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ffmpeg::Ffmpeg;
use crate::flv::{self, TagKind};
use crate::{MediaError, SegmenterConfig, TsSegmenter};

/// Settings of an [`RtmpServer`].
#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// The ffmpeg binary used to remux FLV into MPEG-TS.
    pub ffmpeg: PathBuf,
    /// How ingest is cut into segments.
    pub segmenter: SegmenterConfig,
    /// Time allowed for the RTMP handshake.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed for the authorizer to decide.
    pub authorize_timeout: Duration,
    /// After the publisher is gone, how long ffmpeg and the segmenter may take to flush the last segment
    /// into the consumer's channel.
    pub flush_timeout: Duration,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// Bytes a connection may send before its publish is accepted.
    pub max_bytes_before_publish: usize,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            segmenter: SegmenterConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            authorize_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_bytes_before_publish: 64 << 10,
        }
    }
}

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
    fn authorize(&self, request: PublishRequest) -> impl Future<Output = Option<mpsc::Sender<Bytes>>> + Send;
}

impl<F, Fut> RtmpAuthorizer for F
where
    F: Fn(PublishRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<mpsc::Sender<Bytes>>> + Send,
{
    fn authorize(&self, request: PublishRequest) -> impl Future<Output = Option<mpsc::Sender<Bytes>>> + Send {
        self(request)
    }
}

/// An RTMP ingest server. Dropping it (or [`shutdown`](Self::shutdown)) closes the listener and every
/// connection and kills their ffmpeg processes.
pub struct RtmpServer {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    active: Arc<Mutex<HashSet<(String, String)>>>,
    task: Option<JoinHandle<()>>,
}

struct Shared<A> {
    config: RtmpConfig,
    authorizer: A,
    active: Arc<Mutex<HashSet<(String, String)>>>,
}

impl RtmpServer {
    /// Binds `addr` and starts serving.
    pub async fn bind<A: RtmpAuthorizer>(
        addr: SocketAddr,
        config: RtmpConfig,
        authorizer: A,
    ) -> Result<RtmpServer, MediaError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let active = Arc::new(Mutex::new(HashSet::new()));
        let shared = Arc::new(Shared { config, authorizer, active: active.clone() });
        let task = tokio::spawn(accept_loop(listener, shared, cancel.clone()));
        Ok(RtmpServer { local_addr, cancel, active, task: Some(task) })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many publishes are live now.
    pub fn active_publishes(&self) -> usize {
        self.active.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Stops accepting, closes every connection (without flushing) and waits until all is gone.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop<A: RtmpAuthorizer>(listener: TcpListener, shared: Arc<Shared<A>>, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "rtmp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "rtmp connection refused: too many connections");
                    continue;
                };
                let shared = shared.clone();
                let cancel = cancel.clone();
                let span = tracing::info_span!("rtmp", %peer);
                connections.spawn(
                    async move {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            result = serve(stream, peer, &shared) => match result {
                                Ok(()) => tracing::debug!("rtmp connection closed"),
                                Err(e) => tracing::info!(error = %e, "rtmp connection ended"),
                            }
                        }
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }
    }
    connections.shutdown().await;
}

/// Releases an `(app, key)` claim when the publish ends, on every path.
struct KeyClaim {
    key: (String, String),
    active: Arc<Mutex<HashSet<(String, String)>>>,
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
struct Publish {
    ffmpeg: Ffmpeg,
    pump: AbortOnDrop<Result<u64, MediaError>>,
    /// A clone of the consumer's sender, to notice when the consumer goes away.
    consumer: mpsc::Sender<Bytes>,
    header_written: bool,
    held: Vec<(TagKind, u32, Bytes)>,
    seen_audio: bool,
    seen_video: bool,
    buf: Vec<u8>,
    _claim: KeyClaim,
}

impl Publish {
    fn start(config: &RtmpConfig, tx: mpsc::Sender<Bytes>, claim: KeyClaim) -> Result<Publish, MediaError> {
        let mut ffmpeg = Ffmpeg::spawn(
            &config.ffmpeg,
            &["-f", "flv", "-i", "pipe:0", "-map", "0", "-c", "copy", "-f", "mpegts", "pipe:1"],
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

    async fn tag(&mut self, kind: TagKind, timestamp: u32, data: Bytes) -> Result<(), MediaError> {
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

    async fn write_header_and_held(&mut self) -> Result<(), MediaError> {
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
    async fn finish(mut self, timeout: Duration) {
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

/// Serves one RTMP connection until the publisher leaves, misbehaves, or is rejected.
async fn serve<A: RtmpAuthorizer>(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared<A>,
) -> Result<(), MediaError> {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 << 10];

    let leftover = tokio::time::timeout(config.handshake_timeout, handshake(&mut stream, &mut buf))
        .await
        .map_err(|_| MediaError::Timeout("rtmp handshake"))??;

    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new()).map_err(protocol)?;
    let mut conn = Connection { stream, peer, publish: None, pre_publish_bytes: leftover.len() };
    let mut results = VecDeque::from(initial);
    results.extend(session.handle_input(&leftover).map_err(protocol)?);
    let outcome = loop {
        if let Err(e) = conn.process(&mut session, &mut results, shared).await {
            break Err(e);
        }
        if conn.publish.as_ref().is_some_and(|p| p.header_written && p.ffmpeg.stdin.is_none()) {
            break Ok(());
        }
        let publish = &conn.publish;
        let consumer_gone = async move {
            match publish {
                Some(p) => p.consumer.closed().await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            _ = consumer_gone => break Err(MediaError::Closed),
            read = tokio::time::timeout(config.idle_timeout, conn.stream.read(&mut buf)) => match read {
                Err(_) => break Err(MediaError::Timeout("rtmp idle")),
                Ok(Err(e)) => break Err(e.into()),
                Ok(Ok(0)) => break Ok(()),
                Ok(Ok(n)) => n,
            },
        };
        if conn.publish.is_none() {
            conn.pre_publish_bytes += n;
            if conn.pre_publish_bytes > config.max_bytes_before_publish {
                break Err(MediaError::Protocol("too many bytes before publish".into()));
            }
        }
        match session.handle_input(buf.get(..n).unwrap_or_default()) {
            Ok(r) => results.extend(r),
            Err(e) => break Err(protocol(e)),
        }
    };
    let _ = conn.stream.shutdown().await;
    if let Some(publish) = conn.publish.take() {
        publish.finish(config.flush_timeout).await;
    }
    outcome
}

async fn handshake(stream: &mut TcpStream, buf: &mut [u8]) -> Result<Vec<u8>, MediaError> {
    let mut hs = Handshake::new(PeerType::Server);
    loop {
        let n = stream.read(buf).await?;
        if n == 0 {
            return Err(MediaError::Protocol("closed during handshake".into()));
        }
        match hs.process_bytes(buf.get(..n).unwrap_or_default()).map_err(protocol)? {
            HandshakeProcessResult::InProgress { response_bytes } => stream.write_all(&response_bytes).await?,
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                stream.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

fn protocol(e: impl std::fmt::Display) -> MediaError {
    MediaError::Protocol(e.to_string())
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    publish: Option<Publish>,
    pre_publish_bytes: usize,
}

impl Connection {
    /// Works through session results in order: writes responses, reacts to events (which may add results).
    async fn process<A: RtmpAuthorizer>(
        &mut self,
        session: &mut ServerSession,
        results: &mut VecDeque<ServerSessionResult>,
        shared: &Shared<A>,
    ) -> Result<(), MediaError> {
        while let Some(result) = results.pop_front() {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.stream.write_all(&packet.bytes).await?,
                ServerSessionResult::RaisedEvent(event) => self.event(session, results, event, shared).await?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    async fn event<A: RtmpAuthorizer>(
        &mut self,
        session: &mut ServerSession,
        results: &mut VecDeque<ServerSessionResult>,
        event: ServerSessionEvent,
        shared: &Shared<A>,
    ) -> Result<(), MediaError> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                results.extend(session.accept_request(request_id).map_err(protocol)?);
            }
            ServerSessionEvent::PublishStreamRequested { request_id, app_name, stream_key, .. } => {
                if self.publish.is_some() {
                    return self.reject(session, request_id, "already publishing on this connection").await;
                }
                let key = (app_name.clone(), stream_key.clone());
                let claim = {
                    let mut active = shared.active.lock().unwrap_or_else(PoisonError::into_inner);
                    if active.insert(key.clone()) {
                        Some(KeyClaim { key, active: shared.active.clone() })
                    } else {
                        None
                    }
                };
                let Some(claim) = claim else {
                    tracing::info!(app = %app_name, "rtmp publish rejected: stream key already publishing");
                    return self.reject(session, request_id, "stream key already publishing").await;
                };
                let request = PublishRequest { app: app_name.clone(), stream_key, peer: self.peer };
                let decision =
                    tokio::time::timeout(shared.config.authorize_timeout, shared.authorizer.authorize(request)).await;
                let Ok(Some(tx)) = decision else {
                    tracing::info!(app = %app_name, "rtmp publish rejected by the authorizer");
                    return self.reject(session, request_id, "publish not authorized").await;
                };
                self.publish = Some(Publish::start(&shared.config, tx, claim)?);
                tracing::info!(app = %app_name, "rtmp publish accepted");
                results.extend(session.accept_request(request_id).map_err(protocol)?);
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                if let Some(p) = &mut self.publish {
                    p.tag(TagKind::Video, timestamp.value, data).await?;
                }
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                if let Some(p) = &mut self.publish {
                    p.tag(TagKind::Audio, timestamp.value, data).await?;
                }
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Some(p) = &mut self.publish {
                    if !p.header_written {
                        p.write_header_and_held().await?;
                    }
                    // Marks the publish as over; the read loop then ends the connection.
                    drop(p.ffmpeg.stdin.take());
                }
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                return self.reject(session, request_id, "playback is not served here").await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends an RTMP error for the request, then fails so that the connection is closed.
    async fn reject(&mut self, session: &mut ServerSession, request_id: u32, why: &str) -> Result<(), MediaError> {
        for result in session.reject_request(request_id, "NetStream.Publish.BadName", why).map_err(protocol)? {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.stream.write_all(&packet.bytes).await?;
            }
        }
        let _ = self.stream.flush().await;
        Err(MediaError::Rejected(why.to_string()))
    }
}
