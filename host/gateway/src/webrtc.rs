//! The gateway's WebRTC legs: WHIP ingest (`POST {whip_url}` with an SDP offer → 201, the answer
//! and a `Location` to `DELETE`) and WHEP egress (`POST {whep_url}` with a recvonly offer, many
//! viewers per stream). The WebRTC work (str0m, ICE-lite, one UDP port, RTP ↔ MPEG-TS) is
//! `byoc-media`'s; this is the HTTP layer and the plumbing to the stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use byoc_media::{Leg, MediaError, SessionId, SessionOwner, StartGate, WebRtcConfig, WebRtcServer};
use http::{HeaderMap, StatusCode, Uri};
use tokio::sync::{broadcast, mpsc};

use crate::auth::{authorized, needs_control};
use crate::error::ApiError;
use crate::media::{MediaSession, feed_input, refused, webrtc_output};
use crate::model::GwStream;
use crate::state::Gateway;

/// Serves WHIP and WHEP media on one UDP port at `bind`; `advertised` is the address peers are
/// told to reach (required when `bind` is unspecified, e.g. `0.0.0.0`).
///
/// The caps on WebRTC sessions per client address apply only when the gateway's router is served
/// with connect info (`into_make_service_with_connect_info::<SocketAddr>()`); the caps per stream and
/// per server apply always.
pub async fn serve_webrtc(
    gw: &Arc<Gateway>,
    bind: SocketAddr,
    advertised: Option<SocketAddr>,
) -> Result<SocketAddr, MediaError> {
    let limits = &gw.config.media_limits;
    let server = WebRtcServer::bind(WebRtcConfig {
        bind,
        advertised,
        segmenter: gw.config.segmenter(),
        pli_interval: gw.config.keyframe_request_every,
        max_sessions_per_stream: limits.webrtc_max_sessions_per_stream,
        max_pending_per_stream: limits.webrtc_max_pending_per_stream,
        max_sessions_per_ip: limits.webrtc_max_sessions_per_ip,
        max_pending_per_ip: limits.webrtc_max_pending_per_ip,
        connect_timeout: limits.webrtc_connect_timeout,
        ..WebRtcConfig::default()
    })
    .await?;
    let addr = server.local_addr();
    let _ = gw.webrtc.set(server);
    Ok(addr)
}

/// The media server, or 404 when the gateway serves no WebRTC.
fn serving(gw: &Gateway) -> Result<&WebRtcServer, ApiError> {
    gw.webrtc.get().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this gateway serves no WebRTC"))
}

/// What both offers need: the stream (its secret checked, and the leg, `whip` (its input) or `whep`
/// (its output), enabled), the media server, and the SDP text.
async fn offer<'g>(
    gw: &'g Gateway,
    leg: &'static str,
    id: &str,
    query: Option<&str>,
    h: &HeaderMap,
    body: Body,
) -> Result<(Arc<GwStream>, &'g WebRtcServer, String), ApiError> {
    let (stream, access) = authorized(gw, id, h, query)?;
    if leg == "whip" {
        needs_control(access)?;
    }
    let server = serving(gw)?;
    let body = byoc_protocol::read_limited(body, 64 << 10)
        .await
        .map_err(|m| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m))?;
    let ct = h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ct.trim().to_ascii_lowercase().starts_with("application/sdp") {
        let msg = "the offer must be Content-Type: application/sdp";
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg));
    }
    let sdp = String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the offer is not UTF-8 text"))?;
    let (enabled, what) = match leg {
        "whip" => (stream.input_url().is_some(), "ingress"),
        _ => (stream.output_url().is_some(), "egress"),
    };
    if !enabled {
        refused(leg, "not_enabled");
        return Err(ApiError::new(StatusCode::CONFLICT, format!("video {what} is not enabled for this stream")));
    }
    Ok((stream, server, sdp))
}

/// The client's address, when the gateway is served with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`); without it the per-address caps of WebRTC
/// sessions cannot apply.
type Client = Option<Extension<ConnectInfo<SocketAddr>>>;

fn owner(stream_id: &str, client: Client) -> SessionOwner {
    SessionOwner { stream: stream_id.to_string(), client: client.map(|Extension(ConnectInfo(a))| a.ip()) }
}

fn answer(stream_id: &str, leg: &str, id: SessionId, sdp: String) -> Response {
    let location = format!("/process/stream/{stream_id}/{leg}/{id}");
    (
        StatusCode::CREATED,
        [(http::header::CONTENT_TYPE, "application/sdp".to_string()), (http::header::LOCATION, location)],
        sdp,
    )
        .into_response()
}

/// `POST /process/stream/{id}/whip`: one publisher per stream, and the newest wins: a publisher that
/// comes while another is connected (most often a browser tab that died without saying so) replaces
/// it. The old session is closed and its last segment finished before the new one feeds the stream.
pub(super) async fn whip(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    client: Client,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (stream, server, offer) = offer(&gw, "whip", &id, q.as_deref(), &h, body).await?;
    let mut slot = stream.whip_session.lock().await;
    if let Some(old) = *slot {
        drop(slot);
        server.close(old, &id, Leg::Whip).await;
        let deadline = tokio::time::Instant::now() + REPLACE_WAIT;
        loop {
            slot = stream.whip_session.lock().await;
            if *slot != Some(old) || tokio::time::Instant::now() >= deadline {
                break;
            }
            drop(slot);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(stream_id = %id, session = %old, "WHIP publisher replaced by a new one");
        metrics::counter!("byoc_gateway_whip_replaced_total").increment(1);
    }
    // A few seconds of frames; when the orchestrator falls further behind, the media crate drops the
    // rest of the segment and goes on at the next one.
    let (tx, rx) = mpsc::channel(256);
    match server.whip_offer(&offer, tx, owner(&id, client)).await {
        Ok((session, sdp)) => {
            *slot = Some(session);
            drop(slot);
            let s = stream.clone();
            let live = MediaSession::open("whip");
            tokio::spawn(async move {
                let _live = live;
                feed_input(s.clone(), rx).await;
                // The publisher is gone (or the stream ended): the slot is free again, unless a newer
                // publisher holds it already.
                let mut slot = s.whip_session.lock().await;
                if *slot == Some(session) {
                    *slot = None;
                }
            });
            tracing::info!(stream_id = %id, session = %session, "WHIP publisher connected");
            Ok(answer(&id, "whip", session, sdp))
        }
        Err(e) => Err(refusal("whip", e)),
    }
}

/// How long a new WHIP publisher waits for the one it replaces to finish its last segment.
const REPLACE_WAIT: Duration = Duration::from_secs(3);

/// `POST /process/stream/{id}/whep`: a viewer of the stream's output.
pub(super) async fn whep(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    client: Client,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (stream, server, offer) = offer(&gw, "whep", &id, q.as_deref(), &h, body).await?;
    // Each viewer gets its own queue; a slow one skips to the next segment instead of holding others back.
    let (tx, rx) = mpsc::channel(256);
    let mut output = webrtc_output(&stream);
    match server.whep_offer(&offer, rx, owner(&id, client)).await {
        Ok((session, sdp)) => {
            let (s, gw) = (stream.clone(), gw.clone());
            let live = MediaSession::open("whep");
            let mut asks = server.viewer_keyframe_requests();
            tokio::spawn(async move {
                let _live = live;
                // The viewer starts at a segment start: when the stream's publisher is ours, have it
                // send a keyframe and start a segment there, rather than wait for the next one.
                ask_publisher(&gw, &s, "viewer_joined").await;
                let mut gate = StartGate::default();
                loop {
                    let piece = tokio::select! {
                        _ = s.cancelled() => return,
                        _ = tx.closed() => return,
                        ask = asks.recv() => {
                            if ask.is_ok_and(|asker| asker == session) {
                                ask_publisher(&gw, &s, "viewer_asked").await;
                            }
                            continue;
                        }
                        piece = output.recv() => piece,
                    };
                    match piece {
                        Ok(piece) if gate.pass(&piece) => match tx.try_send(piece) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => gate.lost(),
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        },
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => gate.lost(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            tracing::info!(stream_id = %id, session = %session, "WHEP viewer connected");
            Ok(answer(&id, "whep", session, sdp))
        }
        Err(e) => Err(refusal("whep", e)),
    }
}

/// The answer to an offer the media server refused: 429 naming the cap it would exceed, 400 for an
/// offer it cannot use.
fn refusal(leg: &'static str, e: MediaError) -> ApiError {
    let upper = leg.to_ascii_uppercase();
    match e {
        MediaError::Limit(cap) => {
            refused(leg, "limit");
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("{upper} offer refused: {cap}"))
        }
        MediaError::Protocol(why) => {
            refused(leg, "bad_offer");
            ApiError::new(StatusCode::BAD_REQUEST, format!("{upper} offer refused: {why}"))
        }
        e => {
            tracing::warn!(error = %e, "{upper} offer failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{upper} is unavailable"))
        }
    }
}

/// Passes a WHEP viewer's need for a keyframe on to the stream's WHIP publisher, when it has one (an
/// RTMP or HTTP publisher cannot be asked; the viewer then waits for the next segment).
async fn ask_publisher(gw: &Gateway, stream: &GwStream, reason: &'static str) {
    let publisher = *stream.whip_session.lock().await;
    if let (Some(server), Some(id)) = (gw.webrtc.get(), publisher)
        && server.request_keyframe(id).await
    {
        metrics::counter!("byoc_gateway_keyframe_requests_total", "reason" => reason).increment(1);
    }
}

/// `DELETE /process/stream/{id}/whip/{session}` and `…/whep/{session}`: ends that session, if it is
/// this stream's and of this leg (404 otherwise).
pub(super) async fn end_session(
    State(gw): State<Arc<Gateway>>,
    Path((id, session)): Path<(String, String)>,
    uri: Uri,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (_, access) = authorized(&gw, &id, &h, q.as_deref())?;
    // Both legs' routes end here: `…/{leg}/{session}`.
    let leg = match uri.path().rsplit('/').nth(1) {
        Some("whip") => Leg::Whip,
        _ => Leg::Whep,
    };
    if leg == Leg::Whip {
        needs_control(access)?;
    }
    let no_such = || ApiError::new(StatusCode::NOT_FOUND, "no such session");
    let (Some(server), Ok(session)) = (gw.webrtc.get(), session.parse::<SessionId>()) else {
        return Err(no_such());
    };
    if server.close(session, &id, leg).await { Ok(StatusCode::OK) } else { Err(no_such()) }
}
