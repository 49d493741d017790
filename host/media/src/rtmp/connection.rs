//! One RTMP connection's session state: what it publishes or plays, the bytes waiting for a viewer, its
//! idle and rate timers, and how it answers each `rml_rtmp` session event. [`super::server`] owns the
//! socket loop and the limits; this file decides what each event means.

use std::collections::HashSet;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rml_rtmp::sessions::{ServerSession, ServerSessionEvent, ServerSessionResult};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::config::RtmpConfig;
use super::play::{Play, PlayHub, PlayRequest, RtmpPlayAuthorizer};
use super::publish::{KeyClaim, Publish, PublishRequest, RtmpAuthorizer};
use crate::MediaError;
use crate::flv::{Tag, TagKind};

/// What every connection of one RTMP server shares: its settings, authorizers, the keys being
/// published and the streams being played.
pub(super) struct Shared<A, P> {
    pub(super) config: RtmpConfig,
    pub(super) authorizer: A,
    pub(super) play_authorizer: P,
    pub(super) active: Arc<Mutex<HashSet<(String, String)>>>,
    pub(super) plays: Arc<PlayHub>,
}

/// An `rml_rtmp` error (or any other peer misbehaviour) as a protocol error.
pub(super) fn protocol(e: impl std::fmt::Display) -> MediaError {
    MediaError::Protocol(e.to_string())
}

/// Bytes a publisher sent in the current window of [`RtmpConfig::publish_rate_window`].
pub(super) struct RateWindow {
    pub(super) ends: Instant,
    pub(super) bytes: u64,
}

/// Tags written to a viewer in one go (they are queued anyway; fewer, larger writes).
const TAGS_PER_WRITE: usize = 64;

/// RTMP status codes of rejections.
const PUBLISH_REJECTED: &str = "NetStream.Publish.BadName";
const PLAY_REJECTED: &str = "NetStream.Play.StreamNotFound";

pub(super) struct Connection<S> {
    pub(super) stream: S,
    pub(super) peer: SocketAddr,
    pub(super) publish: Option<Publish>,
    pub(super) play: Option<Play>,
    /// The viewer closed its stream.
    pub(super) play_finished: bool,
    pub(super) pre_publish_bytes: usize,
    /// Serialized tags waiting to be written to a viewer.
    pub(super) out: Vec<u8>,
    /// When the peer last sent something (the idle timer runs from there).
    pub(super) last_read: Instant,
    /// The publisher's current rate window, once its publish is accepted.
    pub(super) rate: Option<RateWindow>,
}

impl<S: AsyncWrite + Unpin> Connection<S> {
    /// Works through session results in order: writes responses, reacts to events (which may add results).
    pub(super) async fn process<A: RtmpAuthorizer, P: RtmpPlayAuthorizer>(
        &mut self,
        session: &mut ServerSession,
        results: &mut VecDeque<ServerSessionResult>,
        shared: &Shared<A, P>,
    ) -> Result<(), MediaError> {
        while let Some(result) = results.pop_front() {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.stream.write_all(&packet.bytes).await?,
                ServerSessionResult::RaisedEvent(event) => self.event(session, results, event, shared).await?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        // What this read brought goes to the consumer in one go.
        match &mut self.publish {
            Some(p) => p.flush().await,
            None => Ok(()),
        }
    }

    async fn event<A: RtmpAuthorizer, P: RtmpPlayAuthorizer>(
        &mut self,
        session: &mut ServerSession,
        results: &mut VecDeque<ServerSessionResult>,
        event: ServerSessionEvent,
        shared: &Shared<A, P>,
    ) -> Result<(), MediaError> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                results.extend(session.accept_request(request_id).map_err(protocol)?);
            }
            ServerSessionEvent::PublishStreamRequested { request_id, app_name, stream_key, .. } => {
                if self.publish.is_some() || self.play.is_some() {
                    let why = "one publish or play per connection";
                    return self.reject(session, request_id, PUBLISH_REJECTED, why).await;
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
                    return self.reject(session, request_id, PUBLISH_REJECTED, "stream key already publishing").await;
                };
                let request = PublishRequest { app: app_name.clone(), stream_key, peer: self.peer };
                let decision =
                    tokio::time::timeout(shared.config.authorize_timeout, shared.authorizer.authorize(request)).await;
                let Ok(Some(tx)) = decision else {
                    tracing::info!(app = %app_name, "rtmp publish rejected by the authorizer");
                    return self.reject(session, request_id, PUBLISH_REJECTED, "publish not authorized").await;
                };
                self.publish = Some(Publish::start(&shared.config, tx, claim));
                tracing::info!(app = %app_name, "rtmp publish accepted");
                results.extend(session.accept_request(request_id).map_err(protocol)?);
            }
            ServerSessionEvent::StreamMetadataChanged { metadata: m, .. } => {
                if let Some(p) = &mut self.publish {
                    let video = m.video_codec_id.is_some() || m.video_width.is_some() || m.video_frame_rate.is_some();
                    let audio =
                        m.audio_codec_id.is_some() || m.audio_sample_rate.is_some() || m.audio_channels.is_some();
                    p.metadata(video, audio);
                }
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                if let Some(p) = &mut self.publish {
                    p.tag(TagKind::Video, timestamp.value, data)?;
                }
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                if let Some(p) = &mut self.publish {
                    p.tag(TagKind::Audio, timestamp.value, data)?;
                }
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Some(p) = &mut self.publish {
                    // Marks the publish as over; the read loop then ends the connection.
                    p.finished = true;
                }
            }
            ServerSessionEvent::PlayStreamRequested { request_id, app_name, stream_key, stream_id, .. } => {
                if self.publish.is_some() || self.play.is_some() {
                    return self.reject(session, request_id, PLAY_REJECTED, "one publish or play per connection").await;
                }
                let request = PlayRequest { app: app_name.clone(), stream_key: stream_key.clone(), peer: self.peer };
                let decision =
                    tokio::time::timeout(shared.config.authorize_timeout, shared.play_authorizer.authorize(request))
                        .await;
                let Ok(Some(segments)) = decision else {
                    tracing::info!(app = %app_name, "rtmp play rejected by the authorizer");
                    return self.reject(session, request_id, PLAY_REJECTED, "play not authorized").await;
                };
                let viewer = match shared.plays.join(&app_name, &stream_key, segments) {
                    Ok(viewer) => viewer,
                    Err(e) => {
                        tracing::warn!(app = %app_name, error = %e, "rtmp play: cannot start the pipeline");
                        return self.reject(session, request_id, PLAY_REJECTED, "stream unavailable").await;
                    }
                };
                tracing::info!(app = %app_name, "rtmp play accepted");
                results.extend(session.accept_request(request_id).map_err(protocol)?);
                self.play = Some(Play { viewer, stream_id, base: None });
            }
            ServerSessionEvent::PlayStreamFinished { .. } => {
                self.play_finished |= self.play.is_some();
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends what a viewer that just joined must get before live tags.
    pub(super) async fn send_backlog(
        &mut self,
        session: &mut ServerSession,
        timeout: Duration,
    ) -> Result<(), MediaError> {
        let Some(play) = &mut self.play else { return Ok(()) };
        if play.viewer.backlog.is_empty() {
            return Ok(());
        }
        self.out.clear();
        for tag in std::mem::take(&mut play.viewer.backlog) {
            play.serialize(session, tag, &mut self.out)?;
        }
        self.write_out(timeout).await
    }

    /// Sends `tag` and whatever else is queued (up to [`TAGS_PER_WRITE`]) to the viewer.
    pub(super) async fn send_tags(
        &mut self,
        session: &mut ServerSession,
        tag: Tag,
        timeout: Duration,
    ) -> Result<(), MediaError> {
        let Some(play) = &mut self.play else { return Ok(()) };
        self.out.clear();
        play.serialize(session, tag, &mut self.out)?;
        for _ in 1..TAGS_PER_WRITE {
            let Ok(tag) = play.viewer.rx.try_recv() else { break };
            play.serialize(session, tag, &mut self.out)?;
        }
        self.write_out(timeout).await
    }

    /// Writes `out`; a viewer that takes more than `timeout` to accept it is dropped.
    async fn write_out(&mut self, timeout: Duration) -> Result<(), MediaError> {
        match tokio::time::timeout(timeout, self.stream.write_all(&self.out)).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(MediaError::Timeout("rtmp viewer not reading")),
        }
    }

    /// The played stream ended: tells the viewer (`NetStream.Play.Complete`) before the connection closes.
    pub(super) async fn finish_play(&mut self, session: &mut ServerSession) {
        let Some(play) = self.play.take() else { return };
        if let Ok(packet) = session.finish_playing(play.stream_id) {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.write_all(&packet.bytes)).await;
        }
        tracing::info!("rtmp play ended with the stream");
    }

    /// Sends an RTMP error for the request, then fails so that the connection is closed.
    async fn reject(
        &mut self,
        session: &mut ServerSession,
        request_id: u32,
        code: &str,
        why: &str,
    ) -> Result<(), MediaError> {
        for result in session.reject_request(request_id, code, why).map_err(protocol)? {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.stream.write_all(&packet.bytes).await?;
            }
        }
        let _ = self.stream.flush().await;
        Err(MediaError::Rejected(why.to_string()))
    }
}
