//! The gateway's RTMP legs: an RTMP ingest server (a publish to a stream's `rtmp_url` feeds the
//! stream) and RTMP egress (a stream's output pushed to the client's `rtmp_output` destination).
//! The media work (RTMP, FLV → MPEG-TS, keyframe-cut segments, ffmpeg egress) is `byoc-media`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use byoc_media::{PublishRequest, PushConfig, RtmpConfig, RtmpPush, RtmpServer};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::Gateway;
use super::stream::GwStream;

/// The application part of RTMP URLs (`rtmp://HOST:PORT/live/{stream_id}-{secret}`).
pub(crate) const APP: &str = "live";

/// Serves RTMP ingest on `addr`: a publish to `rtmp://…/live/{stream_id}-{stream_secret}` (the
/// `rtmp_url` start hands out) feeds that stream's input; any other key is refused, as is a second
/// publisher of one stream. `public`: the `host:port` put in `rtmp_url`s (default: the bound one).
pub async fn serve_rtmp(
    gw: &Arc<Gateway>,
    addr: SocketAddr,
    public: Option<String>,
) -> Result<RtmpServer, byoc_media::MediaError> {
    let weak = Arc::downgrade(gw);
    let server = RtmpServer::bind(addr, RtmpConfig::default(), move |req: PublishRequest| {
        let gw = weak.upgrade();
        async move { authorize(gw?, req) }
    })
    .await?;
    let advertised = public.unwrap_or_else(|| server.local_addr().to_string());
    let _ = gw.rtmp_public.set(advertised);
    Ok(server)
}

fn authorize(gw: Arc<Gateway>, req: PublishRequest) -> Option<mpsc::Sender<Bytes>> {
    if req.app != APP {
        return None;
    }
    let (id, secret) = req.stream_key.rsplit_once('-')?;
    let stream = gw.lock().get(id).cloned()?;
    if !stream.has_secret(secret) || stream.input_url().is_none() {
        tracing::info!(stream_id = %id, peer = %req.peer, "RTMP publish refused");
        return None;
    }
    tracing::info!(stream_id = %id, peer = %req.peer, "RTMP publish started");
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(super::legs::feed_input(stream, rx));
    Some(tx)
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
    tokio::spawn(async move {
        let push = RtmpPush::spawn(destination.clone(), PushConfig::default());
        loop {
            let seg = tokio::select! {
                _ = stream.cancelled() => break,
                s = output.recv() => s,
            };
            match seg {
                Ok(seg) => push.push(seg),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(stream_id = %stream.id(), skipped = n, "RTMP output fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        let stats = push.close().await;
        tracing::info!(stream_id = %stream.id(), destination = %destination, ?stats, "RTMP output ended");
    });
}
