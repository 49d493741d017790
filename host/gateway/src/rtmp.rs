//! The gateway's RTMP legs: an RTMP ingest server (a publish to a stream's `rtmp_url` feeds the
//! stream) and RTMP egress (a stream's output pushed to the client's `rtmp_output` destination).
//! The media work (RTMP, FLV → MPEG-TS, keyframe-cut segments, ffmpeg egress) is `byoc-media`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use byoc_media::{Piece, PlayRequest, PublishRequest, PushConfig, RtmpConfig, RtmpPush, RtmpServer, StartGate};
use tokio::sync::{broadcast, mpsc};

use super::Gateway;
use super::model::GwStream;

/// The application part of RTMP URLs (`rtmp://HOST:PORT/live/{stream_id}-{secret}`).
pub(crate) const APP: &str = "live";
/// The suffix of the stream key that plays a stream's output (`…/live/{stream_id}-{secret}-out`).
const PLAY_SUFFIX: &str = "-out";

/// Serves RTMP ingest on `addr`: a publish to `rtmp://…/live/{stream_id}-{stream_secret}` (the
/// `rtmp_url` start hands out) feeds that stream's input; any other key is refused, as is a second
/// publisher of one stream. `public`: the `host:port` put in `rtmp_url`s (default: the bound one).
pub async fn serve_rtmp(
    gw: &Arc<Gateway>,
    addr: SocketAddr,
    public: Option<String>,
) -> Result<RtmpServer, byoc_media::MediaError> {
    let (weak, weak_play) = (Arc::downgrade(gw), Arc::downgrade(gw));
    let limits = &gw.config.media_limits;
    let config = RtmpConfig {
        segmenter: gw.config.segmenter(),
        publish_deadline: limits.rtmp_publish_deadline,
        min_publish_rate: limits.rtmp_min_publish_rate,
        max_connections_per_ip: limits.rtmp_max_connections_per_ip,
        ..RtmpConfig::default()
    };
    let server = RtmpServer::bind_with_play(
        addr,
        config,
        move |req: PublishRequest| {
            let gw = weak.upgrade();
            async move { authorize(gw?, req) }
        },
        move |req: PlayRequest| {
            let gw = weak_play.upgrade();
            async move { authorize_play(gw?, req) }
        },
    )
    .await?;
    let advertised = public.unwrap_or_else(|| server.local_addr().to_string());
    let _ = gw.rtmp_public.set(advertised);
    Ok(server)
}

/// The stream an RTMP `app`/`key` (`{stream_id}-{secret}`) names, if the secret is its own.
fn keyed<'k>(gw: &Gateway, app: &str, key: &'k str) -> Option<(&'k str, Arc<GwStream>)> {
    let (id, secret) = (app == APP).then(|| key.rsplit_once('-')).flatten()?;
    let stream = gw.lock().get(id).cloned()?;
    stream.has_secret(secret).then_some((id, stream))
}

fn authorize(gw: Arc<Gateway>, req: PublishRequest) -> Option<mpsc::Sender<Piece>> {
    let Some((id, stream)) = keyed(&gw, &req.app, &req.stream_key) else {
        tracing::info!(peer = %req.peer, "RTMP publish refused: unknown stream key");
        super::legs::refused("rtmp_in", "bad_key");
        return None;
    };
    if stream.input_url().is_none() {
        tracing::info!(stream_id = %id, peer = %req.peer, "RTMP publish refused: video ingress is not enabled");
        super::legs::refused("rtmp_in", "not_enabled");
        return None;
    }
    tracing::info!(stream_id = %id, peer = %req.peer, "RTMP publish started");
    let (tx, rx) = mpsc::channel(256);
    let live = super::legs::MediaSession::open("rtmp_in");
    tokio::spawn(async move {
        let _live = live;
        super::legs::feed_input(stream, rx).await
    });
    Some(tx)
}

/// A play of `…/live/{stream_id}-{secret}-out` gets the stream's output (the media crate shares one
/// remux among all viewers of a stream and ends it with the stream).
fn authorize_play(gw: Arc<Gateway>, req: PlayRequest) -> Option<broadcast::Receiver<Piece>> {
    let found = req.stream_key.strip_suffix(PLAY_SUFFIX).and_then(|key| keyed(&gw, &req.app, key));
    let Some((id, stream)) = found else {
        tracing::info!(peer = %req.peer, "RTMP play refused: unknown stream key");
        super::legs::refused("rtmp_play", "bad_key");
        return None;
    };
    if stream.output_url().is_none() {
        tracing::info!(stream_id = %id, peer = %req.peer, "RTMP play refused: video egress is not enabled");
        super::legs::refused("rtmp_play", "not_enabled");
        return None;
    }
    tracing::info!(stream_id = %id, peer = %req.peer, "RTMP play started");
    metrics::counter!("byoc_gateway_media_sessions_total", "leg" => "rtmp_play").increment(1);
    Some(super::legs::output(&stream))
}

/// The RTMP URL that plays a stream's output, when the gateway serves RTMP.
pub(crate) fn play_url(gw: &Gateway, stream_id: &str, secret: &str) -> Option<String> {
    gw.rtmp_public.get().map(|hostport| format!("rtmp://{hostport}/{APP}/{stream_id}-{secret}{PLAY_SUFFIX}"))
}

/// The `rtmp_url` of a stream, when the gateway serves RTMP ingest.
pub(crate) fn ingest_url(gw: &Gateway, stream_id: &str, secret: &str) -> Option<String> {
    gw.rtmp_public.get().map(|hostport| format!("rtmp://{hostport}/{APP}/{stream_id}-{secret}"))
}

/// Pushes the stream's output to `destination` (an `rtmp://` URL) until the stream ends; ffmpeg
/// is restarted with backoff if the destination goes away.
pub(crate) fn push_output(stream: &Arc<GwStream>, destination: String) {
    let mut output = super::legs::output(stream);
    let stream = stream.clone();
    let live = super::legs::MediaSession::open("rtmp_out");
    tokio::spawn(async move {
        let _live = live;
        let push = RtmpPush::spawn(destination.clone(), PushConfig::default());
        let mut gate = StartGate::default();
        loop {
            let piece = tokio::select! {
                _ = stream.cancelled() => break,
                p = output.recv() => p,
            };
            match piece {
                Ok(piece) if gate.pass(&piece) => push.push(piece),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(stream_id = %stream.id(), skipped = n, "RTMP output fell behind");
                    gate.lost();
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        let stats = push.close().await;
        tracing::info!(stream_id = %stream.id(), destination = %destination, ?stats, "RTMP output ended");
    });
}
