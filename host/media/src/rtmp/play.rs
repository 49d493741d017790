//! RTMP play: viewers of one `(app, stream_key)` share one pipeline, a child
//! `ffmpeg -f mpegts -i pipe:0 -c:v copy -c:a aac -f flv pipe:1` fed with the stream's segments, whose FLV
//! is split into tags and fanned out to each viewer's bounded queue. The metadata, the sequence headers and
//! the tags since the last keyframe are kept so that a viewer joining late starts decodable at once.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::messages::{MessagePayload, RtmpMessage};
use rml_rtmp::sessions::{ServerSession, StreamMetadata};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdout;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::RtmpConfig;
use super::fanout::Fanout;
use crate::ffmpeg::Ffmpeg;
use crate::flv::{FlvReader, Tag, TagKind};
use crate::{MediaError, Piece, StartGate};

/// A viewer asking to play `rtmp://host:port/{app}/{stream_key}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayRequest {
    /// The RTMP application (the first path segment, e.g. `live`).
    pub app: String,
    /// The stream key (the path after the app).
    pub stream_key: String,
    /// The viewer's address.
    pub peer: SocketAddr,
}

/// Decides whether a play is accepted, and where its media comes from.
///
/// Asked for every viewer. Returning `Some(receiver)` accepts: the receiver yields [`Piece`]s of
/// self-contained MPEG-TS segments (PAT/PMT first, H.264 from a keyframe, AAC or Opus audio); the
/// pipeline starts at the first segment start, and after a lag goes on at the next one. The first viewer of an
/// `(app, stream_key)` starts the stream's pipeline with its receiver; the receivers of later viewers are
/// dropped and they join the running pipeline. When the segment channel closes the stream has ended and
/// every viewer is disconnected. Returning `None` rejects (the viewer gets an RTMP error and is
/// disconnected). Implemented for `Fn(PlayRequest) -> impl Future<Output = Option<broadcast::Receiver<..>>>`.
pub trait RtmpPlayAuthorizer: Send + Sync + 'static {
    /// Decides on one play request.
    fn authorize(&self, request: PlayRequest) -> impl Future<Output = Option<broadcast::Receiver<Piece>>> + Send;
}

impl<F, Fut> RtmpPlayAuthorizer for F
where
    F: Fn(PlayRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<broadcast::Receiver<Piece>>> + Send,
{
    fn authorize(&self, request: PlayRequest) -> impl Future<Output = Option<broadcast::Receiver<Piece>>> + Send {
        self(request)
    }
}

/// The play authorizer of [`RtmpServer::bind`](super::RtmpServer::bind): every play is refused.
pub(crate) fn refuse_plays(_: PlayRequest) -> std::future::Ready<Option<broadcast::Receiver<Piece>>> {
    std::future::ready(None)
}

type StreamKey = (String, String);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pipelines of one server, by `(app, stream_key)`.
pub(crate) struct PlayHub {
    config: RtmpConfig,
    /// The server's token: cancelling it ends every pipeline.
    cancel: CancellationToken,
    pipelines: Mutex<HashMap<StreamKey, Pipeline>>,
    tasks: Mutex<JoinSet<()>>,
    viewers: AtomicUsize,
    next_id: AtomicU64,
}

/// A running pipeline as the hub holds it. Its task is owned by the hub's `tasks`; `cancel` ends it.
struct Pipeline {
    shared: Arc<Mutex<Fanout>>,
    cancel: CancellationToken,
}

impl PlayHub {
    pub fn new(config: RtmpConfig, cancel: CancellationToken) -> PlayHub {
        PlayHub {
            config,
            cancel,
            pipelines: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            viewers: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        }
    }

    /// Viewers playing now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Adds a viewer of `key`: to the running pipeline, or to a new one started with `segments`.
    pub fn join(
        self: &Arc<Self>,
        app: &str,
        stream_key: &str,
        segments: broadcast::Receiver<Piece>,
    ) -> Result<Viewer, MediaError> {
        let key = (app.to_string(), stream_key.to_string());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.play_queue_tags.max(1));
        let mut pipelines = lock(&self.pipelines);
        let running = pipelines.get(&key).and_then(|p| {
            let backlog = lock(&p.shared).add(id, tx.clone())?;
            Some((p.shared.clone(), p.cancel.clone(), backlog))
        });
        let (shared, cancel, backlog) = match running {
            Some(joined) => {
                tracing::debug!(app, "rtmp play joins the running pipeline");
                joined
            }
            None => {
                let pipeline = self.start(key.clone(), segments)?;
                let (shared, cancel) = (pipeline.shared.clone(), pipeline.cancel.clone());
                let backlog = lock(&shared).add(id, tx).unwrap_or_default();
                // Replaces the entry of a pipeline that takes no viewers any more, if any; that one still
                // flushes to its own viewers.
                pipelines.insert(key.clone(), pipeline);
                (shared, cancel, backlog)
            }
        };
        self.viewers.fetch_add(1, Ordering::Relaxed);
        Ok(Viewer { hub: self.clone(), key, shared, cancel, id, rx, backlog: backlog.into() })
    }

    fn start(self: &Arc<Self>, key: StreamKey, segments: broadcast::Receiver<Piece>) -> Result<Pipeline, MediaError> {
        let analyze = self.config.play_analyze_duration.as_micros().to_string();
        let args = crate::ffmpeg::ts_to_flv_args(&analyze, &["-c:a", "aac"], &["-flush_packets", "1"], "pipe:1");
        let mut ffmpeg = Ffmpeg::spawn(&self.config.ffmpeg, &args, true, "rtmp-play")?;
        let stdout = ffmpeg.stdout.take().ok_or_else(|| MediaError::Ffmpeg("no stdout".into()))?;
        let shared = Arc::new(Mutex::new(Fanout::new(self.config.play_gop_cache_bytes)));
        let cancel = self.cancel.child_token();
        let run = run_pipeline(
            ffmpeg,
            stdout,
            segments,
            shared.clone(),
            Arc::downgrade(self),
            key.clone(),
            cancel.clone(),
            self.config.flush_timeout,
        );
        let span = tracing::info_span!("rtmp_play", app = %key.0);
        let mut tasks = lock(&self.tasks);
        // Finished pipelines are forgotten here rather than kept until shutdown.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(run.instrument(span));
        tracing::info!(app = %key.0, "rtmp play pipeline started");
        Ok(Pipeline { shared, cancel })
    }

    /// Removes `key`'s pipeline if it is the one given (a newer one may have replaced it).
    fn remove(&self, key: &StreamKey, shared: &Arc<Mutex<Fanout>>) {
        let mut pipelines = lock(&self.pipelines);
        if pipelines.get(key).is_some_and(|p| Arc::ptr_eq(&p.shared, shared)) {
            pipelines.remove(key);
        }
    }

    /// Ends every pipeline (the server's token is cancelled by now) and waits until their ffmpeg processes
    /// are gone.
    pub async fn shutdown(&self) {
        // Pipelines' tokens are children of this one.
        self.cancel.cancel();
        lock(&self.pipelines).clear();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        let drained = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drained).await.is_err() {
            tracing::warn!("rtmp play pipelines did not stop in time; aborting them");
        }
        tasks.shutdown().await;
    }
}

/// One viewer's share of a pipeline. Dropping it leaves the pipeline, which ends with its last viewer.
pub(crate) struct Viewer {
    hub: Arc<PlayHub>,
    key: StreamKey,
    shared: Arc<Mutex<Fanout>>,
    /// The pipeline's token.
    cancel: CancellationToken,
    id: u64,
    /// Live tags; `None` once the stream has ended (after the queued tags).
    pub rx: mpsc::Receiver<Tag>,
    /// What to send before the live tags: metadata, sequence headers and the current GOP.
    pub backlog: VecDeque<Tag>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.viewers.fetch_sub(1, Ordering::Relaxed);
        // Lock order: hub, then pipeline, as in `join`.
        let mut pipelines = lock(&self.hub.pipelines);
        if lock(&self.shared).remove(self.id) {
            tracing::debug!(app = %self.key.0, "last rtmp viewer left; stopping the pipeline");
            self.cancel.cancel();
            if pipelines.get(&self.key).is_some_and(|p| Arc::ptr_eq(&p.shared, &self.shared)) {
                pipelines.remove(&self.key);
            }
        }
    }
}

/// Feeds segments into ffmpeg and fans its FLV out until the stream ends, ffmpeg fails, or `cancel`.
#[allow(clippy::too_many_arguments)]
async fn run_pipeline(
    mut ffmpeg: Ffmpeg,
    stdout: ChildStdout,
    mut segments: broadcast::Receiver<Piece>,
    shared: Arc<Mutex<Fanout>>,
    hub: Weak<PlayHub>,
    key: StreamKey,
    cancel: CancellationToken,
    flush_timeout: Duration,
) {
    let stdin = ffmpeg.stdin.take();
    let feeder = async move {
        let Some(mut stdin) = stdin else { return };
        let mut gate = StartGate::default();
        loop {
            match segments.recv().await {
                Ok(piece) => {
                    if !gate.pass(&piece) {
                        continue;
                    }
                    if let Err(e) = stdin.write_all(piece.bytes()).await {
                        tracing::info!(error = %e, "rtmp play: ffmpeg stopped taking input");
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "rtmp play: ffmpeg too slow; pieces skipped, going on at the next segment"
                    );
                    gate.lost();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
        // Dropping stdin lets ffmpeg flush and exit.
    };
    let reader = read_flv(stdout, &shared);
    let mut feeder = pin!(feeder);
    let mut reader = pin!(reader);
    let mut flush_deadline = None;
    let outcome = loop {
        let flush_timer = async {
            match flush_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break Err(MediaError::Closed),
            _ = &mut feeder, if flush_deadline.is_none() => {
                lock(&shared).stop_accepting();
                flush_deadline = Some(tokio::time::Instant::now() + flush_timeout);
            }
            _ = flush_timer => break Err(MediaError::Timeout("rtmp play: ffmpeg flush")),
            read = &mut reader => break read,
        }
    };
    lock(&shared).end();
    if let Some(hub) = hub.upgrade() {
        hub.remove(&key, &shared);
    }
    let (status, tail) = ffmpeg.stop(Duration::from_secs(1)).await;
    match outcome {
        Ok(()) => {
            tracing::info!(status = status.map(tracing::field::display), "rtmp play pipeline ended with the stream")
        }
        Err(MediaError::Closed) => tracing::info!("rtmp play pipeline stopped"),
        Err(e) => {
            tracing::warn!(error = %e, status = status.map(tracing::field::display), %tail, "rtmp play pipeline failed")
        }
    }
}

/// Splits ffmpeg's FLV into tags for the fan-out until EOF.
async fn read_flv(mut stdout: ChildStdout, shared: &Mutex<Fanout>) -> Result<(), MediaError> {
    let mut reader = FlvReader::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        reader.push(buf.get(..n).unwrap_or_default());
        while let Some(tag) = reader.next_tag()? {
            lock(shared).tag(tag);
        }
    }
}

/// One accepted play on a connection.
pub(crate) struct Play {
    pub viewer: Viewer,
    pub stream_id: u32,
    /// Timestamp of the first media tag sent: the viewer's timeline starts at zero there.
    pub base: Option<u32>,
}

impl Play {
    /// Serializes one tag for this viewer into `out`.
    pub fn serialize(&mut self, session: &mut ServerSession, tag: Tag, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let media = tag.kind != TagKind::Script && !tag.is_video_config() && !tag.is_audio_config();
        if media && self.base.is_none() {
            self.base = Some(tag.timestamp);
        }
        let timestamp = RtmpTimestamp::new(self.base.map_or(0, |base| tag.timestamp.saturating_sub(base)));
        let packet = match tag.kind {
            TagKind::Script => {
                let Some(metadata) = metadata(tag.body) else { return Ok(()) };
                session.send_metadata(self.stream_id, &metadata)
            }
            TagKind::Video => session.send_video_data(self.stream_id, tag.body, timestamp, false),
            TagKind::Audio => session.send_audio_data(self.stream_id, tag.body, timestamp, false),
        }
        .map_err(|e| MediaError::Protocol(e.to_string()))?;
        out.extend_from_slice(&packet.bytes);
        Ok(())
    }
}

/// Parses an `onMetaData` script tag body (AMF0: the name, then an object or ECMA array).
fn metadata(body: Bytes) -> Option<StreamMetadata> {
    let payload = MessagePayload { timestamp: RtmpTimestamp::new(0), type_id: 18, message_stream_id: 0, data: body };
    let RtmpMessage::Amf0Data { values } = payload.to_rtmp_message().ok()? else { return None };
    let properties = values.into_iter().find_map(|v| v.get_object_properties())?;
    let mut metadata = StreamMetadata::new();
    metadata.apply_metadata_values(properties);
    Some(metadata)
}
