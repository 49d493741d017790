//! The gateway's RTMP server: a publish to a stream's `rtmp_url` feeds the stream, a play of its
//! `…-out` key gets the stream's output (pushing the output to the client's `rtmp_output` destinations
//! is `media::push_output`).
//! The media work (RTMP, FLV → MPEG-TS, keyframe-cut segments, ffmpeg egress) is `byoc-media`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use byoc_media::{Piece, PlayRequest, PublishRequest, RtmpConfig, RtmpServer};
use tokio::sync::{broadcast, mpsc};

use crate::media::{MediaSession, feed_input, output, refused};
use crate::model::{Access, GwStream};
use crate::state::Gateway;
use crate::urls::{PLAY_SUFFIX, rtmp_stream_key};

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

/// The stream an RTMP `app`/`key` (`{stream_id}-{secret}`) names, if the secret is its own: the control
/// secret to publish (`rtmp_in`), either secret to play.
fn keyed<'k>(gw: &Gateway, leg: &str, app: &str, key: &'k str) -> Option<(&'k str, Arc<GwStream>)> {
    let (id, secret) = rtmp_stream_key(app, key)?;
    let stream = gw.stream(id)?;
    match stream.access(secret)? {
        Access::View if leg == "rtmp_in" => None,
        _ => Some((id, stream)),
    }
}

/// The stream an RTMP client names, if the key is its own and the leg (`rtmp_in`, its input;
/// `rtmp_play`, its output) is enabled; each refusal logged and counted.
fn admitted(gw: &Gateway, leg: &'static str, app: &str, key: Option<&str>, peer: SocketAddr) -> Option<Arc<GwStream>> {
    let what = if leg == "rtmp_in" { "publish" } else { "play" };
    let Some((id, stream)) = key.and_then(|key| keyed(gw, leg, app, key)) else {
        tracing::info!(peer = %peer, "RTMP {what} refused: unknown stream key");
        refused(leg, "bad_key");
        return None;
    };
    let (enabled, direction) = match leg {
        "rtmp_in" => (stream.input_url().is_some(), "ingress"),
        _ => (stream.output_url().is_some(), "egress"),
    };
    if !enabled {
        tracing::info!(stream_id = %id, peer = %peer, "RTMP {what} refused: video {direction} is not enabled");
        refused(leg, "not_enabled");
        return None;
    }
    tracing::info!(stream_id = %id, peer = %peer, "RTMP {what} started");
    Some(stream)
}

fn authorize(gw: Arc<Gateway>, req: PublishRequest) -> Option<mpsc::Sender<Piece>> {
    let stream = admitted(&gw, "rtmp_in", &req.app, Some(&req.stream_key), req.peer)?;
    let (tx, rx) = mpsc::channel(256);
    let live = MediaSession::open("rtmp_in");
    tokio::spawn(async move {
        let _live = live;
        feed_input(stream, rx).await
    });
    Some(tx)
}

/// A play of `…/live/{stream_id}-{secret}-out` gets the stream's output (the media crate shares one
/// remux among all viewers of a stream and ends it with the stream).
fn authorize_play(gw: Arc<Gateway>, req: PlayRequest) -> Option<broadcast::Receiver<Piece>> {
    let stream = admitted(&gw, "rtmp_play", &req.app, req.stream_key.strip_suffix(PLAY_SUFFIX), req.peer)?;
    metrics::counter!("byoc_gateway_media_sessions_total", "leg" => "rtmp_play").increment(1);
    Some(output(&stream))
}
