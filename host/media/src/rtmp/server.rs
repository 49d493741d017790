//! The RTMP server: a tokio TCP server around `rml_rtmp`'s sans-IO session. A connection publishes (see
//! [`super::publish`]) or plays (see [`super::play`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::config::RtmpConfig;
use super::connection::{Connection, RateWindow, Shared, protocol};
use super::play::{self, PlayHub, RtmpPlayAuthorizer};
use super::publish::RtmpAuthorizer;
use crate::MediaError;
use crate::flv::Tag;

/// An RTMP server for publishers (ingest) and viewers (play). Dropping it (or
/// [`shutdown`](Self::shutdown)) closes the listener and every connection (ending their segment channels)
/// and kills the ffmpeg processes of play.
pub struct RtmpServer {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    active: Arc<Mutex<HashSet<(String, String)>>>,
    plays: Arc<PlayHub>,
    task: Option<JoinHandle<()>>,
}

impl RtmpServer {
    /// Binds `addr` and starts serving publishes; every play is refused.
    pub async fn bind<A: RtmpAuthorizer>(
        addr: SocketAddr,
        config: RtmpConfig,
        authorizer: A,
    ) -> Result<RtmpServer, MediaError> {
        RtmpServer::bind_with_play(addr, config, authorizer, play::refuse_plays).await
    }

    /// Binds `addr` and starts serving publishes (decided by `authorizer`) and plays (decided by
    /// `play_authorizer`).
    pub async fn bind_with_play<A: RtmpAuthorizer, P: RtmpPlayAuthorizer>(
        addr: SocketAddr,
        config: RtmpConfig,
        authorizer: A,
        play_authorizer: P,
    ) -> Result<RtmpServer, MediaError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let active = Arc::new(Mutex::new(HashSet::new()));
        let plays = Arc::new(PlayHub::new(config.clone(), cancel.clone()));
        let shared =
            Arc::new(Shared { config, authorizer, play_authorizer, active: active.clone(), plays: plays.clone() });
        let task = tokio::spawn(accept_loop(listener, shared, cancel.clone()));
        Ok(RtmpServer { local_addr, cancel, active, plays, task: Some(task) })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many publishes are live now.
    pub fn active_publishes(&self) -> usize {
        self.active.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// How many viewers are playing now.
    pub fn active_plays(&self) -> usize {
        self.plays.viewers()
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

async fn accept_loop<A: RtmpAuthorizer, P: RtmpPlayAuthorizer>(
    listener: TcpListener,
    shared: Arc<Shared<A, P>>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
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
                let ip = crate::address::client_key(peer.ip());
                let Some(ip_slot) = IpSlot::take(&per_ip, ip, shared.config.max_connections_per_ip) else {
                    tracing::info!(%peer, "rtmp connection refused: too many connections from this address");
                    continue;
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "rtmp connection refused: too many connections");
                    continue;
                };
                let _ = stream.set_nodelay(true);
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
                        drop((permit, ip_slot));
                    }
                    .instrument(span),
                );
            }
        }
    }
    connections.shutdown().await;
    shared.plays.shutdown().await;
}

/// One of the connections of an IP address; the count goes down when it is dropped.
struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl IpSlot {
    /// A slot for `ip`, unless it already has `max` connections.
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(IpSlot { ip, counts: counts.clone() })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What woke a connection up.
enum Wake {
    Read(std::io::Result<usize>),
    /// A tag for the viewer; `None` when the played stream has ended.
    Tag(Option<Tag>),
    ConsumerGone,
    /// A deadline of the connection (idle, publish, rate window) may have passed.
    Timer,
}

/// Serves one RTMP connection until the publisher or viewer leaves, misbehaves, or is rejected, or the
/// played stream ends. Any byte stream serves (a TCP socket here, an in-memory pipe under the fuzzer).
async fn serve<S: AsyncRead + AsyncWrite + Unpin, A: RtmpAuthorizer, P: RtmpPlayAuthorizer>(
    mut stream: S,
    peer: SocketAddr,
    shared: &Shared<A, P>,
) -> Result<(), MediaError> {
    let config = &shared.config;
    let mut buf = vec![0u8; 16 << 10];
    // Fixed from the accept on, whatever the peer sends: slots cannot be held by trickling bytes.
    let admit_by = Instant::now() + config.publish_deadline;

    let handshake_by = admit_by.min(Instant::now() + config.handshake_timeout);
    let leftover = tokio::time::timeout_at(handshake_by, handshake(&mut stream, &mut buf))
        .await
        .map_err(|_| MediaError::Timeout("rtmp handshake"))??;

    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new()).map_err(protocol)?;
    let mut conn = Connection {
        stream,
        peer,
        publish: None,
        play: None,
        play_finished: false,
        pre_publish_bytes: leftover.len(),
        out: Vec::new(),
        last_read: Instant::now(),
        rate: None,
    };
    let mut results = VecDeque::from(initial);
    results.extend(handle_input(&mut session, &leftover)?);
    let outcome = loop {
        if let Err(e) = conn.process(&mut session, &mut results, shared).await {
            break Err(e);
        }
        if conn.play_finished || conn.publish.as_ref().is_some_and(|p| p.finished) {
            break Ok(());
        }
        if let Err(e) = conn.send_backlog(&mut session, config.idle_timeout).await {
            break Err(e);
        }
        if conn.publish.is_some() && conn.rate.is_none() && config.min_publish_rate > 0 {
            conn.rate = Some(RateWindow { ends: Instant::now() + config.publish_rate_window, bytes: 0 });
        }
        let admitting = conn.publish.is_none() && conn.play.is_none();
        // A viewer may stay silent for long; a stuck one is caught by the write timeout instead.
        let idle_deadline = conn.play.is_none().then(|| conn.last_read + config.idle_timeout);
        let timer = [idle_deadline, admitting.then_some(admit_by), conn.rate.as_ref().map(|r| r.ends)]
            .into_iter()
            .flatten()
            .min();
        let wake = {
            let Connection { stream, publish, play, .. } = &mut conn;
            let consumer_gone = async {
                match publish {
                    Some(p) => p.consumer_closed().await,
                    None => std::future::pending().await,
                }
            };
            let next_tag = async {
                match play {
                    Some(p) => p.viewer.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match timer {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = consumer_gone => Wake::ConsumerGone,
                tag = next_tag => Wake::Tag(tag),
                _ = timer => Wake::Timer,
                read = stream.read(&mut buf) => Wake::Read(read),
            }
        };
        let n = match wake {
            Wake::ConsumerGone => break Err(MediaError::Closed),
            Wake::Timer => {
                let now = Instant::now();
                if admitting && now >= admit_by {
                    break Err(MediaError::Timeout("rtmp publish or play not accepted in time"));
                }
                if idle_deadline.is_some_and(|d| now >= d) {
                    break Err(MediaError::Timeout("rtmp idle"));
                }
                if let Some(rate) = conn.rate.as_mut().filter(|r| now >= r.ends) {
                    if rate.bytes < min_window_bytes(config) {
                        break Err(MediaError::Protocol("publisher sends less than the minimum rate".into()));
                    }
                    *rate = RateWindow { ends: now + config.publish_rate_window, bytes: 0 };
                }
                continue;
            }
            Wake::Tag(Some(tag)) => match conn.send_tags(&mut session, tag, config.idle_timeout).await {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
            Wake::Tag(None) => {
                conn.finish_play(&mut session).await;
                break Ok(());
            }
            Wake::Read(Err(e)) => break Err(e.into()),
            Wake::Read(Ok(0)) => break Ok(()),
            Wake::Read(Ok(n)) => n,
        };
        conn.last_read = Instant::now();
        if let Some(rate) = &mut conn.rate {
            rate.bytes = rate.bytes.saturating_add(n as u64);
        }
        if conn.publish.is_none() && conn.play.is_none() {
            conn.pre_publish_bytes += n;
            if conn.pre_publish_bytes > config.max_bytes_before_publish {
                break Err(MediaError::Protocol("too many bytes before publish".into()));
            }
        }
        match handle_input(&mut session, buf.get(..n).unwrap_or_default()) {
            Ok(r) => results.extend(r),
            Err(e) => break Err(e),
        }
    };
    let _ = conn.stream.shutdown().await;
    if let Some(publish) = conn.publish.take() {
        publish.finish(config.flush_timeout).await;
    }
    outcome
}

/// Serves one connection over `stream` as an accepted TCP connection is served, with `config` and
/// `authorizer` (plays are refused). The fuzz targets run the server this way over an in-memory pipe.
pub(crate) async fn serve_one<S: AsyncRead + AsyncWrite + Unpin, A: RtmpAuthorizer>(
    stream: S,
    peer: SocketAddr,
    config: RtmpConfig,
    authorizer: A,
) -> Result<(), MediaError> {
    let cancel = CancellationToken::new();
    let plays = Arc::new(PlayHub::new(config.clone(), cancel.clone()));
    let shared = Shared { config, authorizer, play_authorizer: play::refuse_plays, active: Arc::default(), plays };
    let outcome = serve(stream, peer, &shared).await;
    cancel.cancel();
    outcome
}

/// The bytes a publisher must send in one rate window.
fn min_window_bytes(config: &RtmpConfig) -> u64 {
    let bytes = u128::from(config.min_publish_rate) * config.publish_rate_window.as_millis() / 1000;
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<Vec<u8>, MediaError> {
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

/// Feeds bytes from the peer to the session. `rml_rtmp` 0.8 panics on some malformed messages (a bare
/// `@setDataFrame` indexes an empty list); such a panic becomes a protocol error that closes this
/// connection only, and the session is not used again.
fn handle_input(session: &mut ServerSession, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, MediaError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(bytes))) {
        Ok(results) => results.map_err(protocol),
        Err(_) => Err(MediaError::Protocol("malformed rtmp message".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_that_panics_rml_rtmp_is_a_protocol_error() {
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("session");
        // One chunk (csid 3, type 0 header): AMF0 data message (18) of 16 bytes, the string "@setDataFrame".
        let mut chunk = vec![0x03, 0, 0, 0, 0, 0, 16, 18, 0, 0, 0, 0, 0x02, 0, 13];
        chunk.extend_from_slice(b"@setDataFrame");
        assert!(matches!(handle_input(&mut session, &chunk), Err(MediaError::Protocol(_))));
    }

    #[test]
    fn a_command_with_fewer_than_three_values_is_a_protocol_error() {
        // Found by the rtmp_server fuzz target: rml_rtmp takes a command's name, transaction id and
        // object with `drain(..3)`, which panics when the message holds fewer AMF0 values.
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("session");
        // One chunk (csid 3, type 0 header): AMF0 command (20) of 10 bytes, only the string "connect".
        let mut chunk = vec![0x03, 0, 0, 0, 0, 0, 10, 20, 0, 0, 0, 0, 0x02, 0, 7];
        chunk.extend_from_slice(b"connect");
        assert!(matches!(handle_input(&mut session, &chunk), Err(MediaError::Protocol(_))));
    }
}
