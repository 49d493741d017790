//! The server's bounds, attacked over real TCP on loopback: slow and idle connections are closed,
//! caps never lock a normal request out, long responses live on.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use byoc_net::{Accepted, Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// `/` answers at once; `/slow` streams 6 chunks 150 ms apart; `/hold` never answers.
async fn server(limits: Limits) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|Extension(a): Extension<Accepted>| async move { format!("nodelay={}", a.nodelay) }))
        .route(
            "/slow",
            get(|| async {
                let chunks = futures_util::stream::unfold(0, |n| async move {
                    if n == 6 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Some((Ok::<_, std::convert::Infallible>(format!("{n}")), n + 1))
                });
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route("/hold", get(std::future::pending::<String>));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve("test", l, app, limits, std::future::pending()));
    addr
}

fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(500),
        max_connections: 1000,
        max_connections_per_ip: 1000,
    }
}

/// Whether the server closes `s` within `within` (reads until EOF or an error).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A plain GET over a fresh connection from `from`: the status code (0: no answer) and the
/// whole answer's text.
async fn get_text(from: &str, addr: SocketAddr, path: &str) -> (u16, String) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    (text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), text)
}

async fn get_from(from: &str, addr: SocketAddr, path: &str) -> u16 {
    get_text(from, addr, path).await.0
}

#[tokio::test]
async fn accepted_sockets_have_tcp_nodelay() {
    let addr = server(quick()).await;
    let (status, text) = get_text("127.0.0.1", addr, "/").await;
    assert_eq!(status, 200);
    assert!(text.ends_with("\r\n\r\nnodelay=true"), "{text}");
}

#[tokio::test]
async fn a_slowloris_request_head_is_cut_off() {
    let addr = server(quick()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One header line every 100 ms: each byte arrives well within any read timeout, but the
    // head never completes.
    let drip = async {
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(format!("X-{i}: y\r\n").as_bytes()).await.is_err() {
                return true;
            }
        }
        false
    };
    assert!(tokio::time::timeout(Duration::from_secs(5), drip).await.unwrap(), "the connection outlived the drip");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let addr = server(quick()).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await, "a connection that never spoke");
    // And one that made a request, then went quiet (keep-alive).
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await, "an idle keep-alive connection");
}

#[tokio::test]
async fn a_long_response_is_not_idle() {
    let addr = server(quick()).await;
    // 6 × 150 ms = 900 ms of streaming, longer than both deadlines.
    let (status, text) = get_text("127.0.0.1", addr, "/slow").await;
    assert_eq!(status, 200);
    let body: String = text.split("\r\n\r\n").nth(1).unwrap().split("\r\n").skip(1).step_by(2).collect();
    assert_eq!(body, "012345", "{text}");
    // A request parked without an answer stays open past the idle deadline too.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(!closed_within(&mut s, Duration::from_millis(1500)).await, "a parked request was dropped");
}

#[tokio::test]
async fn idle_connections_at_the_cap_make_room_for_a_real_request() {
    let addr = server(Limits { max_connections: 50, max_connections_per_ip: 50, ..Limits::default() }).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    assert_eq!(get_from("127.0.0.1", addr, "/").await, 200, "a normal request is served at the cap");
    // The oldest idle ones were closed to make room: at most the cap is still open.
    let mut open = 0;
    for s in &mut idle {
        if !closed_within(s, Duration::from_millis(5)).await {
            open += 1;
        }
    }
    assert!(open <= 50, "{open} idle connections still open");
}

#[tokio::test]
async fn busy_connections_at_a_cap_get_a_clean_503_and_other_ips_are_served() {
    let addr = server(Limits { max_connections: 100, max_connections_per_ip: 4, ..quick() }).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get_from("127.0.0.1", addr, "/").await, 503, "a fifth from the same IP");
    assert_eq!(get_from("127.0.0.2", addr, "/").await, 200, "another IP");
    drop(held);
}

#[tokio::test]
async fn shutdown_lets_a_response_in_flight_finish_and_refuses_new_connections() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "done"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let served = tokio::spawn({
        let stop = stop.clone();
        async move { serve("test", l, app, quick(), async move { stop.notified().await }).await }
    });
    let pending = tokio::spawn(get_text("127.0.0.1", addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.notify_one();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!served.is_finished(), "serve returned while a response was still in flight");
    let (status, text) = pending.await.unwrap();
    assert_eq!(status, 200);
    assert!(text.ends_with("done"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), served).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

/// The `server` app on a port serving TLS beside plain HTTP.
async fn sniffed_server(limits: Limits) -> SocketAddr {
    let app = Router::new().route("/", get(|| async { "plain or tls" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let tls = byoc_net::TlsConfig::self_signed(&["localhost".into()]).unwrap();
    let transport = byoc_net::Transport::Sniffed(tls);
    tokio::spawn(byoc_net::serve_with("test", l, app, limits, transport, std::future::pending()));
    addr
}

#[tokio::test]
async fn on_a_shared_port_plain_http_is_served_and_silent_or_stalled_handshakes_are_cut_off() {
    let addr = sniffed_server(quick()).await;
    let (status, text) = get_text("127.0.0.1", addr, "/").await;
    assert_eq!(status, 200);
    assert!(text.ends_with("plain or tls"), "{text}");
    // Nothing sent: the first byte never comes.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await, "a connection that never spoke");
    // A TLS record header, then nothing: the handshake must finish within the header deadline.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    assert!(closed_within(&mut stalled, Duration::from_secs(5)).await, "a stalled TLS handshake");
}

#[tokio::test]
async fn a_pending_tls_handshake_never_locks_out_a_request_at_the_cap() {
    let addr = sniffed_server(Limits { max_connections_per_ip: 1, ..Limits::default() }).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The handshaking connection has no request in flight: it makes room.
    assert_eq!(get_from("127.0.0.1", addr, "/").await, 200);
    assert!(closed_within(&mut stalled, Duration::from_secs(5)).await, "the stalled one was evicted");
}
