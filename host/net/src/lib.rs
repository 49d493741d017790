//! Serving the nodes' HTTP APIs with bounds. Every byoc HTTP server (gateway, orchestrator, trickle,
//! `byoc dev`) is served by [`serve`], the one place that:
//!
//! - sets `TCP_NODELAY` on every accepted socket ([`tune_accepted`]): responses are streamed in
//!   small writes (chunk framing, trickle segments, SSE), which Nagle's algorithm would hold back
//!   until the peer's delayed ACK;
//! - closes a connection that has started a request head but not finished it within
//!   [`Limits::header_read_timeout`] (slowloris), and one with no request in flight for
//!   [`Limits::idle_timeout`]. A connection serving a request is never idle, however long the
//!   response takes: trickle readers parked on the live edge and SSE streams live on;
//! - caps connections for the node ([`Limits::max_connections`]) and per client IP
//!   ([`Limits::max_connections_per_ip`]). At a cap, the connection of that IP (or, at the node's
//!   cap, of anyone) idle the longest is closed to make room; if none is idle, the new connection
//!   is answered `503` and closed. So idle connections can never lock out a normal request;
//! - hands handlers the peer address as `axum::extract::ConnectInfo<SocketAddr>`;
//! - runs each connection as one task whose wake-ups of itself while it runs (hyper makes one per
//!   request body chunk it hands to the handler) are answered in the same poll, not as a yield
//!   through the runtime (`unyielding.rs`);
//! - with [`serve_with`], speaks TLS ([`Transport::Tls`]), or TLS and plain HTTP on one port
//!   ([`Transport::Sniffed`]: a connection whose first byte opens a TLS handshake gets TLS). The
//!   handshake counts as the request head: it must be done within [`Limits::header_read_timeout`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_service::Service;

mod tls;
mod unyielding;

pub use tls::{TlsConfig, TlsError, Transport};
use unyielding::Unyielding;

/// The bounds of one HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head (request line and headers) must be complete this long after its first byte.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// Most connections open at once, all clients together.
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    /// Sized for a 2-core, 24 GiB node: the node's cap stays well under a 20,000 file limit
    /// (streams, plugins and ffmpeg children need descriptors too), and one IP may hold a
    /// quarter of it (a gateway holds about 8 connections per stream to its orchestrator).
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_ip: 1024,
        }
    }
}

/// Sets what every socket we accept gets; the one place it is done.
pub fn tune_accepted(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY could not be set");
    }
}

/// Lets one place in the code log at most once a second, so that a flood of the same refusal (a
/// client at a cap, a full buffer) writes one line a second, not one per event; the lines held back
/// are counted into the next. Use one `static` per place.
pub struct LogThrottle {
    /// When (ms since the process's first use) the next line may be written.
    next_ms: AtomicU64,
    held: AtomicU64,
}

impl LogThrottle {
    /// The gap between two lines.
    pub const PERIOD: Duration = Duration::from_secs(1);

    /// A throttle that lets the first line through.
    pub const fn new() -> LogThrottle {
        LogThrottle { next_ms: AtomicU64::new(0), held: AtomicU64::new(0) }
    }

    /// `Some(lines held back since the last one)` when a line may be written now, else `None`
    /// (and this one is counted as held back).
    pub fn allow(&self) -> Option<u64> {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        self.allow_at(ms(EPOCH.get_or_init(Instant::now).elapsed()))
    }

    /// [`LogThrottle::allow`] at `now` ms.
    fn allow_at(&self, now: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self.next_ms.compare_exchange(next, now + ms(Self::PERIOD), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.held.swap(0, Ordering::Relaxed));
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle::new()
    }
}

/// What a handler can learn of its connection (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Whether the socket has `TCP_NODELAY` set.
    pub nodelay: bool,
}

/// "No time": the connection has no partial request head.
const NONE: u64 = u64::MAX;

/// What the server knows of one connection.
struct Conn {
    id: u64,
    ip: IpAddr,
    /// Requests whose response is not finished (or dropped).
    in_flight: AtomicUsize,
    /// When (ms since the server's start) the connection last had no request in flight.
    idle_since: AtomicU64,
    /// When the first byte of a request head arrived, while nothing was in flight; [`NONE`] if none.
    head_since: AtomicU64,
    /// Closes the connection at once (evicted, or past a deadline).
    close: CancellationToken,
}

struct Shared {
    /// The node this server serves (`gateway`, `orchestrator`, `trickle`): the `node` label of its metrics.
    node: &'static str,
    limits: Limits,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a connection from `ip`, closing the longest idle one if a cap is reached;
    /// `None` when a cap is reached and nothing can be closed.
    fn admit(&self, ip: IpAddr) -> Option<Arc<Conn>> {
        let mut t = self.table();
        let over_ip = t.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_connections_per_ip;
        let over_all = t.conns.len() >= self.limits.max_connections;
        if over_ip || over_all {
            let victim = t
                .conns
                .values()
                .filter(|c| c.in_flight.load(Ordering::SeqCst) == 0 && (!over_ip || c.ip == ip))
                .min_by_key(|c| c.idle_since.load(Ordering::SeqCst))
                .map(|c| c.id);
            let reason = if over_ip { "per_ip_cap" } else { "node_cap" };
            match victim.and_then(|id| t.remove(id)) {
                Some(v) => {
                    v.close.cancel();
                    let node = self.node;
                    metrics::counter!("byoc_http_connections_closed_total", "node" => node, "reason" => "evicted")
                        .increment(1);
                }
                None => {
                    metrics::counter!("byoc_http_connections_refused_total", "node" => self.node, "reason" => reason)
                        .increment(1);
                    static REFUSALS: LogThrottle = LogThrottle::new();
                    if let Some(held_back) = REFUSALS.allow() {
                        tracing::warn!(node = self.node, %ip, reason, held_back, "connection refused at a cap (503)");
                    }
                    return None;
                }
            }
        }
        t.next_id += 1;
        let conn = Arc::new(Conn {
            id: t.next_id,
            ip,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now()),
            head_since: AtomicU64::new(NONE),
            close: CancellationToken::new(),
        });
        t.conns.insert(conn.id, conn.clone());
        *t.per_ip.entry(ip).or_default() += 1;
        metrics::gauge!("byoc_http_connections", "node" => self.node).set(t.conns.len() as f64);
        Some(conn)
    }

    fn leave(&self, id: u64) {
        let mut t = self.table();
        t.remove(id);
        metrics::gauge!("byoc_http_connections", "node" => self.node).set(t.conns.len() as f64);
    }

    /// Why the connection should be closed now, if it should.
    fn overdue(&self, conn: &Conn) -> Option<&'static str> {
        if conn.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let now = self.now();
        let head = conn.head_since.load(Ordering::SeqCst);
        if head != NONE {
            let late = now.saturating_sub(head) >= ms(self.limits.header_read_timeout);
            return late.then_some("header_timeout");
        }
        let idle = now.saturating_sub(conn.idle_since.load(Ordering::SeqCst)) >= ms(self.limits.idle_timeout);
        idle.then_some("idle")
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NONE - 1)
}

/// The answer to a connection over a cap.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 34\r\nconnection: close\r\n\r\n{\"error\":\"too many connections\"}\r\n";

/// Serves `app` of `node` (`gateway`, `orchestrator`, `trickle`: the `node` label of the
/// `byoc_http_*` metrics) on `listener` within `limits` until `shutdown` resolves; then no new
/// connection is accepted and open ones are asked to finish (HTTP/1 after their current response,
/// HTTP/2 with a GOAWAY). Returns once they all have: a caller that must not wait for ever (a trickle
/// reader parked on the live edge never finishes) bounds it, e.g. with a timeout.
pub async fn serve(
    node: &'static str,
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with(node, listener, app, limits, Transport::Plain, shutdown).await
}

/// [`serve`] over `transport`: plain HTTP, TLS, or both on the one port.
pub async fn serve_with(
    node: &'static str,
    listener: TcpListener,
    app: Router,
    limits: Limits,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let shared = Arc::new(Shared { node, limits, epoch: Instant::now(), table: Mutex::new(Table::default()) });
    let stopping = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or the peer gave up mid-handshake: wait a moment
                    // rather than spin, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tune_accepted(&stream);
        let Some(conn) = shared.admit(peer.ip()) else {
            let _ = stream.try_write(REFUSED);
            continue;
        };
        let io = Watched { inner: stream, conn: conn.clone(), shared: shared.clone() };
        let (shared, app, stopping, transport) = (shared.clone(), app.clone(), stopping.clone(), transport.clone());
        // Each connection is one task; hyper's wake-ups of it during its own poll (one per request
        // body chunk) are answered in that poll ([`Unyielding`]).
        tokio::spawn(Unyielding::new(async move {
            let id = conn.id;
            tokio::select! {
                _ = handshake_then_serve(&shared, conn.clone(), io, peer, app, &stopping, transport) => {}
                // Evicted, or the server stopped, before the handshake was done.
                _ = conn.close.cancelled() => {}
            }
            shared.leave(id);
        }));
    }
    stopping.cancel();
    // Open connections finish their current response (the caller bounds how long it waits).
    while !shared.table().conns.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether the connection's first byte opens a TLS handshake (waits for that byte).
async fn starts_with_tls(stream: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    Ok(n == 1 && first[0] == tls::TLS_HANDSHAKE)
}

/// Finishes the TLS handshake if `transport` asks for one (within the header deadline), then serves.
async fn handshake_then_serve(
    shared: &Arc<Shared>,
    conn: Arc<Conn>,
    io: Watched,
    peer: SocketAddr,
    app: Router,
    stopping: &CancellationToken,
    transport: Transport,
) {
    let accepted = Accepted { nodelay: io.inner.nodelay().unwrap_or(false) };
    let config = match transport {
        Transport::Plain => None,
        Transport::Tls(c) => Some(c),
        Transport::Sniffed(c) => {
            match tokio::time::timeout(shared.limits.header_read_timeout, starts_with_tls(&io.inner)).await {
                Ok(Ok(true)) => Some(c),
                Ok(Ok(false)) => None,
                Ok(Err(_)) | Err(_) => return,
            }
        }
    };
    let Some(config) = config else {
        return connection(shared, conn, TokioIo::new(io), peer, app, stopping, accepted).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config.server);
    match tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => connection(shared, conn, TokioIo::new(tls), peer, app, stopping, accepted).await,
        Ok(Err(e)) => tracing::debug!(node = shared.node, ip = %conn.ip, error = %e, "TLS handshake failed"),
        Err(_) => {
            let node = shared.node;
            metrics::counter!("byoc_http_connections_closed_total", "node" => node, "reason" => "header_timeout")
                .increment(1);
        }
    }
}

async fn connection<I>(
    shared: &Arc<Shared>,
    conn: Arc<Conn>,
    io: TokioIo<I>,
    peer: SocketAddr,
    app: Router,
    stopping: &CancellationToken,
    accepted: Accepted,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn({
        let (conn, shared) = (conn.clone(), shared.clone());
        move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(accepted);
            let guard = InFlight::begin(&conn, &shared);
            let mut app = app.clone();
            async move {
                let resp = app.call(req.map(axum::body::Body::new)).await?;
                Ok::<_, std::convert::Infallible>(
                    resp.map(|body| axum::body::Body::new(Tracked { body, _guard: guard })),
                )
            }
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let served = builder.serve_connection(io, svc);
    tokio::pin!(served);
    let tick = (shared.limits.header_read_timeout.min(shared.limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut finishing = false;
    loop {
        tokio::select! {
            _ = served.as_mut() => break,
            _ = conn.close.cancelled() => break,
            _ = stopping.cancelled(), if !finishing => {
                finishing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                if let Some(reason) = shared.overdue(&conn) {
                    let node = shared.node;
                    metrics::counter!("byoc_http_connections_closed_total", "node" => node, "reason" => reason)
                        .increment(1);
                    tracing::debug!(node, ip = %conn.ip, reason, "connection closed by a bound");
                    break;
                }
            }
        }
    }
}

/// Holds a request "in flight" from the moment it is dispatched until its response body is
/// finished or dropped.
struct InFlight {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl InFlight {
    fn begin(conn: &Arc<Conn>, shared: &Arc<Shared>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        conn.head_since.store(NONE, Ordering::SeqCst);
        InFlight { conn: conn.clone(), shared: shared.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.shared.now(), Ordering::SeqCst);
        self.conn.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is done.
    struct Tracked {
        #[pin]
        body: axum::body::Body,
        _guard: InFlight,
    }
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The socket, noting when a request head starts arriving on an idle connection.
    struct Watched {
        #[pin]
        inner: TcpStream,
        conn: Arc<Conn>,
        shared: Arc<Shared>,
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before && this.conn.in_flight.load(Ordering::SeqCst) == 0 {
            let now = this.shared.now();
            let _ = this.conn.head_since.compare_exchange(NONE, now, Ordering::SeqCst, Ordering::SeqCst);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::LogThrottle;

    #[test]
    fn a_throttle_lets_one_line_a_period_through_and_counts_the_rest() {
        let t = LogThrottle::new();
        assert_eq!(t.allow_at(5), Some(0));
        assert_eq!((t.allow_at(6), t.allow_at(1004)), (None, None));
        assert_eq!(t.allow_at(1005), Some(2), "the two held back are told with the next line");
        assert_eq!(t.allow_at(1006), None);
        assert_eq!(t.allow_at(9000), Some(1));
    }
}
