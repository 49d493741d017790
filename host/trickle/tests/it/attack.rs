//! Attacks on the trickle node, each refused. Every test talks real HTTP on 127.0.0.1 to the
//! trickle router and is named for the attack it refuses, so this file reads as a list of them.

use std::time::Duration;

use crate::common::{Server, header, http, serve, within};
use byoc_trickle::TrickleConfig;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TS: &str = "video/mp2t";

fn autocreate() -> TrickleConfig {
    TrickleConfig { autocreate: true, ..TrickleConfig::default() }
}

/// The `host:port` part of the server's base URL.
fn addr(srv: &Server) -> String {
    srv.base.trim_start_matches("http://").split('/').next().unwrap().to_string()
}

/// Sends `head` (request line and headers, without the blank line) and `body` as raw bytes, so
/// that paths reach the server exactly as written (no client-side normalisation of `..` or
/// percent-escapes). Returns the response's status code.
async fn raw(srv: &Server, head: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr(srv)).await.unwrap();
    let req = format!("{head}\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", addr(srv), body.len());
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    within("raw response", s.read_to_end(&mut resp)).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    let code = text.split(' ').nth(1).unwrap_or("");
    code.parse().unwrap_or_else(|_| panic!("no status line in {text:?}"))
}

/// Status and body of a raw request.
async fn raw_text(srv: &Server, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr(srv)).await.unwrap();
    let req = format!("{head}\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", addr(srv));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    within("raw response", s.read_to_end(&mut resp)).await.unwrap();
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// POST a body and return (status, `Lp-Trickle-Seq`).
async fn post(url: String, body: impl Into<reqwest::Body>) -> (u16, Option<String>) {
    let resp = http().post(url).body(body).send().await.unwrap();
    (resp.status().as_u16(), header(&resp, "Lp-Trickle-Seq"))
}

// ---- Channel names -------------------------------------------------------------------------

/// Names that must never become a channel, as they appear in a request path.
const BAD_NAMES: &[(&str, &str)] = &[
    (".", "dot"),
    ("..", "dot-dot"),
    ("%2e%2e", "percent-encoded dot-dot"),
    ("%2E", "percent-encoded dot"),
    ("a%2fb", "percent-encoded slash"),
    ("a%5cb", "backslash"),
    ("%C3%A9t%C3%A9", "non-ASCII"),
    ("a%20b", "space"),
    ("a:b", "colon"),
    ("a%00b", "NUL"),
    ("a%25b", "percent sign"),
    ("~home", "tilde"),
];

#[tokio::test]
async fn path_traversal_and_odd_channel_names_are_refused_with_400_and_create_nothing() {
    let srv = serve(autocreate()).await;
    for (name, what) in BAD_NAMES {
        for head in [format!("POST /ai/trickle/{name} HTTP/1.1"), format!("POST /ai/trickle/{name}/0 HTTP/1.1")] {
            let (status, text) = raw_text(&srv, &head).await;
            assert_eq!(status, 400, "{what} ({name}): {head} gave {text:?}");
            assert!(text.contains("invalid channel name"), "{what}: the refusal says why: {text:?}");
        }
        assert_eq!(raw(&srv, &format!("GET /ai/trickle/{name}/0 HTTP/1.1"), b"").await, 400, "{what}");
    }
    assert_eq!(srv.store.channel_count(), 0, "no bad name created a channel");
    // The allowed alphabet still works.
    assert_eq!(raw(&srv, "POST /ai/trickle/Az09._-x HTTP/1.1", b"").await, 200);
    assert!(srv.store.contains("Az09._-x"));
}

#[tokio::test]
async fn raw_slashes_in_a_channel_name_match_no_route_and_create_nothing() {
    let srv = serve(autocreate()).await;
    assert_eq!(raw(&srv, "POST /ai/trickle/a/b/0 HTTP/1.1", b"x").await, 404);
    assert_eq!(raw(&srv, "POST /ai/trickle/../../x/0 HTTP/1.1", b"x").await, 404);
    assert_eq!(raw(&srv, "POST /ai/trickle/../0 HTTP/1.1", b"x").await, 400);
    assert_eq!(srv.store.channel_count(), 0);
}

#[tokio::test]
async fn over_long_channel_names_are_refused_with_400() {
    let srv = serve(autocreate()).await;
    let long = "x".repeat(256);
    assert_eq!(raw(&srv, &format!("POST /ai/trickle/{long} HTTP/1.1"), b"").await, 400);
    assert_eq!(raw(&srv, &format!("POST /ai/trickle/{long}/0 HTTP/1.1"), b"x").await, 400);
    assert_eq!(srv.store.channel_count(), 0);
    let longest = "x".repeat(255);
    assert_eq!(raw(&srv, &format!("POST /ai/trickle/{longest} HTTP/1.1"), b"").await, 200);
}

#[tokio::test]
async fn huge_request_headers_are_refused_and_the_server_keeps_serving() {
    let srv = serve(autocreate()).await;
    let big = "a".repeat(1 << 20);
    let mut s = tokio::net::TcpStream::connect(addr(&srv)).await.unwrap();
    let req = format!("POST /ai/trickle/s/0 HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nContent-Length: 1\r\n\r\nx");
    // The server may close the connection before taking the whole request.
    let _ = s.write_all(req.as_bytes()).await;
    let mut resp = Vec::new();
    let _ = within("huge header response", s.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp);
    assert!(!text.starts_with("HTTP/1.1 200"), "a 1 MiB header was accepted: {text:?}");
    assert!(!srv.store.contains("s"));
    assert_eq!(post(format!("{}/0", srv.url("s")), "ok").await.0, 200);
}

#[tokio::test]
async fn an_over_long_content_type_cannot_bloat_an_autocreated_channel() {
    let srv = serve(autocreate()).await;
    let mime = format!("video/{}", "x".repeat(64 << 10));
    for path in ["s", "s/0"] {
        let resp = http()
            .post(format!("{}/{path}", srv.base))
            .header("Content-Type", &mime)
            .header("Expect-Content", &mime)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "POST {path}");
        assert!(resp.text().await.unwrap().contains("content type"));
    }
    assert_eq!(srv.store.channel_count(), 0);
    let resp =
        http().post(format!("{}/s/0", srv.base)).header("Content-Type", "video/mp2t").body("x").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

// ---- Sequence numbers ----------------------------------------------------------------------

#[tokio::test]
async fn publishing_to_seq_2_pow_53_cannot_brick_the_channel() {
    let srv = serve(TrickleConfig::default()).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    let (status, _) = post(format!("{url}/{}", 1u64 << 53), "far").await;
    assert_eq!(status, 400, "a jump far past the live edge is refused");
    assert_eq!(srv.store.next_seq("s").unwrap().0, 0, "the live edge did not move");
    assert_eq!(post(format!("{url}/-1"), "a").await, (200, Some("0".into())));
    assert_eq!(post(format!("{url}/1"), "b").await, (200, Some("1".into())));
    assert_eq!(http().get(format!("{url}/0")).send().await.unwrap().text().await.unwrap(), "a");
}

#[tokio::test]
async fn publishing_one_window_ahead_of_the_live_edge_is_refused() {
    let srv = serve(TrickleConfig { window: 5, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    assert_eq!(post(format!("{url}/5"), "x").await.0, 400);
    assert_eq!(post(format!("{url}/4"), "x").await.0, 200, "up to window - 1 ahead is a preconnect");
    assert_eq!(post(format!("{url}/-1"), "y").await, (200, Some("5".into())));
}

/// A POST a whole window ahead of the live edge that goes away before its first byte used to
/// leave an empty open segment in the live edge's slot: every later `-1` publish got 470.
#[tokio::test]
async fn an_abandoned_post_a_window_ahead_cannot_block_the_live_edge() {
    let srv = serve(TrickleConfig { window: 5, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr(&srv)).await.unwrap();
    let head = "POST /ai/trickle/s/5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    // Give the server the headers, then vanish without a byte of body.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = srv.url("s");
    assert_eq!(post(format!("{url}/-1"), "a").await, (200, Some("0".into())));
    assert_eq!(post(format!("{url}/-1"), "b").await, (200, Some("1".into())));
}

#[tokio::test]
async fn subscribing_far_ahead_or_at_the_u64_edges_is_refused_and_changes_nothing() {
    let srv = serve(TrickleConfig::default()).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    assert_eq!(post(format!("{url}/0"), "a").await.0, 200);
    let far = http().get(format!("{url}/{}", 1u64 << 53)).send().await.unwrap();
    assert_eq!(far.status(), 470);
    assert_eq!(header(&far, "Lp-Trickle-Latest").as_deref(), Some("1"));
    for seq in
        [u64::MAX.to_string(), i64::MAX.to_string(), i64::MIN.to_string(), "-3".into(), "18446744073709551616".into()]
    {
        let status = http().get(format!("{url}/{seq}")).send().await.unwrap().status();
        assert_eq!(status, 400, "GET seq {seq}");
        assert_eq!(post(format!("{url}/{seq}"), "x").await.0, 400, "POST seq {seq}");
        let status = http().delete(format!("{url}/{seq}")).send().await.unwrap().status();
        assert_eq!(status, 400, "DELETE seq {seq}");
    }
    assert_eq!(srv.store.next_seq("s").unwrap().0, 1);
    assert_eq!(post(format!("{url}/-1"), "b").await, (200, Some("1".into())));
}

// ---- Sizes ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_oversized_segment_gets_413_and_the_channel_goes_on() {
    let srv = serve(TrickleConfig { max_segment_bytes: 64 << 10, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    let (status, _) = post(format!("{url}/0"), vec![0u8; 1 << 20]).await;
    assert_eq!(status, 413);
    assert_eq!(post(format!("{url}/1"), Bytes::from_static(b"ok")).await, (200, Some("1".into())));
}

// ---- Memory --------------------------------------------------------------------------------

/// A server whose channels together may buffer `budget` bytes.
async fn budget_server(budget: usize, max_segment_bytes: usize) -> Server {
    serve(TrickleConfig { max_buffered_bytes: budget, max_segment_bytes, ..TrickleConfig::default() }).await
}

#[tokio::test]
async fn many_channels_filled_with_large_segments_stay_within_the_memory_budget() {
    let budget = 1 << 20;
    let srv = budget_server(budget, 256 << 10).await;
    let segment = Bytes::from(vec![7u8; 200 << 10]);
    for ch in 0..8 {
        srv.store.create_channel(&format!("s{ch}"), TS).unwrap();
    }
    // 8 channels x 5 segments of 200 KiB: 8 MiB published into a 1 MiB budget.
    for seq in 0..5 {
        for ch in 0..8 {
            let (status, _) = post(format!("{}/{seq}", srv.url(&format!("s{ch}"))), segment.clone()).await;
            assert_eq!(status, 200, "s{ch}/{seq}: an ended older segment makes room");
            assert!(srv.store.buffered_bytes() <= budget, "{} bytes buffered", srv.store.buffered_bytes());
        }
    }
    let dropped = srv.store.segments_dropped_for_memory();
    assert!(dropped >= 30, "only {dropped} segments dropped");
    // A dropped segment reads as one that left the window.
    let gone = http().get(format!("{}/0", srv.url("s0"))).send().await.unwrap();
    assert_eq!(gone.status(), 470);
    assert_eq!(header(&gone, "Lp-Trickle-Latest").as_deref(), Some("5"));
    // A fresh publish still works and reads back whole.
    assert_eq!(post(format!("{}/-1", srv.url("s3")), "fresh").await, (200, Some("5".into())));
    assert_eq!(http().get(format!("{}/5", srv.url("s3"))).send().await.unwrap().text().await.unwrap(), "fresh");
}

#[tokio::test]
async fn a_segment_larger_than_the_whole_memory_budget_gets_503_and_the_channel_goes_on() {
    let srv = budget_server(64 << 10, 1 << 20).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    let (status, seq) = post(format!("{url}/0"), vec![1u8; 200 << 10]).await;
    assert_eq!((status, seq.as_deref()), (503, Some("0")));
    assert!(srv.store.buffered_bytes() <= 64 << 10);
    assert_eq!(post(format!("{url}/1"), "small").await, (200, Some("1".into())));
    assert_eq!(http().get(format!("{url}/1")).send().await.unwrap().text().await.unwrap(), "small");
}

#[tokio::test]
async fn one_byte_chunks_cannot_buffer_past_the_memory_budget() {
    let budget = 64 << 10;
    let srv = budget_server(budget, 1 << 20).await;
    srv.store.create_channel("s", TS).unwrap();
    // 16 Ki one-byte chunks: 16 KiB of payload, but far more to keep track of.
    let chunks = (0..16 << 10).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"x")));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = http().post(format!("{}/0", srv.url("s"))).body(body).send().await;
    // The server answers 503 as soon as it refuses, possibly before the client sent it all.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 503);
    }
    assert!(srv.store.buffered_bytes() <= budget);
    assert_eq!(post(format!("{}/1", srv.url("s")), "ok").await.0, 200);
}

#[tokio::test]
async fn readers_that_never_read_cannot_pin_memory_past_the_budget() {
    let budget = 4 << 20;
    let srv = budget_server(budget, 2 << 20).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    let segment = Bytes::from(vec![9u8; 1 << 20]);
    let mut stalled = Vec::new();
    for seq in 0..12 {
        // A reader takes each segment's headers and then never reads its body.
        let get = tokio::spawn(http().get(format!("{url}/{seq}")).send());
        assert_eq!(post(format!("{url}/{seq}"), segment.clone()).await.0, 200);
        stalled.push(within("stalled reader's headers", get).await.unwrap().unwrap());
        assert!(srv.store.buffered_bytes() <= budget, "{} bytes buffered", srv.store.buffered_bytes());
    }
    assert!(srv.store.segments_dropped_for_memory() > 0);
    drop(stalled);
    assert_eq!(post(format!("{url}/-1"), "after").await, (200, Some("12".into())));
}

// ---- Channels changing under their clients -------------------------------------------------

#[tokio::test]
async fn a_channel_deleted_and_created_again_under_a_live_reader_does_not_leak_into_it() {
    let srv = serve(TrickleConfig::default()).await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    // An old-stream publisher mid-segment, and a reader that has its headers (it is attached).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let old_pub =
        tokio::spawn(http().post(format!("{url}/0")).body(reqwest::Body::wrap_stream(tokio_stream(rx))).send());
    tx.send(Ok(Bytes::from_static(b"old-"))).await.unwrap();
    let reader = within("reader headers", http().get(format!("{url}/0")).send()).await.unwrap();
    assert_eq!(reader.status(), 200);
    srv.store.delete_channel("s").unwrap();
    srv.store.create_channel("s", TS).unwrap();
    assert_eq!(post(format!("{url}/0"), "new stream").await.0, 200);
    let _ = tx.send(Ok(Bytes::from_static(b"more"))).await;
    drop(tx);
    // The old reader's body is cut off (the segment was aborted), never the new stream's bytes.
    if let Ok(body) = within("old reader", reader.bytes()).await {
        panic!("the cut-off segment read as whole: {body:?}");
    }
    let old = within("old publisher", old_pub).await.unwrap().unwrap();
    assert_eq!(header(&old, "Lp-Trickle-Closed").as_deref(), Some("terminated"));
    assert_eq!(http().get(format!("{url}/0")).send().await.unwrap().text().await.unwrap(), "new stream");
}

#[tokio::test]
async fn a_channel_deleted_under_a_publisher_mid_body_ends_it_and_frees_its_bytes() {
    let srv = serve(TrickleConfig::default()).await;
    srv.store.create_channel("s", TS).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let publishing = tokio::spawn(http().post(format!("{}/0", srv.url("s"))).body(body).send());
    tx.send(Ok(Bytes::from(vec![0u8; 64 << 10]))).await.unwrap();
    within("first bytes", async {
        while srv.store.buffered_bytes() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    srv.store.delete_channel("s").unwrap();
    let resp = within("publisher's answer", publishing).await.unwrap().unwrap();
    assert_eq!(header(&resp, "Lp-Trickle-Closed").as_deref(), Some("terminated"));
    drop(tx);
    within("bytes given back", async {
        while srv.store.buffered_bytes() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// One request over a fresh connection from `from` (an address on 127.0.0.0/8), left open: the
/// connection, to read its answer from later or to hold.
async fn request_from(from: &str, addr: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    s
}

/// The status code of the answer on `s` (0: none within `within`).
async fn status_within(s: &mut tokio::net::TcpStream, within: Duration) -> u16 {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// `GET {ch}/next?wait_reader=SEQ` holds its connection while a reader is behind SEQ (up to 5 s):
/// one client holding many such waits reaches its per-IP connection cap and gets a clean 503,
/// while another client is served, and every wait it held is still answered once the reader
/// moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_reader_waits_is_capped_per_ip_and_others_are_served() {
    let store = byoc_trickle::TrickleStore::new(TrickleConfig::default());
    store.create_channel("held", TS).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = byoc_net::Limits {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(10),
        max_connections: 100,
        max_connections_per_ip: 4,
    };
    let app = byoc_trickle::router(store);
    let server = tokio::spawn(byoc_net::serve("trickle", listener, app, limits, std::future::pending()));

    // A reader from another address waits at seq 0: every `wait_reader=1` now waits for it.
    let mut reader = request_from("127.0.0.2", addr, "/held/0").await;
    within("the reader to be seen", async {
        loop {
            let mut s = request_from("127.0.0.3", addr, "/held/next").await;
            let mut head = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut head)).await;
            if String::from_utf8_lossy(&head).to_ascii_lowercase().contains("lp-trickle-slowest-reader: 0") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        waits.push(request_from("127.0.0.1", addr, "/held/next?wait_reader=1").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for w in &mut waits {
        assert_eq!(status_within(w, Duration::from_millis(20)).await, 0, "a wait answered while the reader is behind");
    }
    let mut fifth = request_from("127.0.0.1", addr, "/held/next?wait_reader=1").await;
    assert_eq!(status_within(&mut fifth, Duration::from_secs(2)).await, 503, "a fifth connection from the same IP");
    let mut other = request_from("127.0.0.3", addr, "/held/next").await;
    assert_eq!(status_within(&mut other, Duration::from_secs(2)).await, 200, "another IP is served");

    // The reader reads seq 0 whole and moves on: the waits are answered, none lost.
    let publish = tokio::net::TcpSocket::new_v4().unwrap();
    publish.bind("127.0.0.4:0".parse().unwrap()).unwrap();
    let mut publish = publish.connect(addr).await.unwrap();
    publish
        .write_all(b"POST /held/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsegment 0")
        .await
        .unwrap();
    assert_eq!(status_within(&mut publish, Duration::from_secs(5)).await, 200, "the publish");
    assert_eq!(status_within(&mut reader, Duration::from_secs(5)).await, 200);
    for w in &mut waits {
        assert_eq!(status_within(w, Duration::from_secs(7)).await, 200, "a held wait is answered");
    }
    server.abort();
}

// ---- Our clients facing a hostile server ---------------------------------------------------

/// A server that answers every request with status 200 and `Lp-Trickle-Seq` /
/// `Lp-Trickle-Latest` set to `seq`.
async fn lying_server(seq: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .fallback(move || async move { ([("Lp-Trickle-Seq", seq), ("Lp-Trickle-Latest", seq)], "x") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/s"), task)
}

#[tokio::test]
async fn a_server_announcing_seq_u64_max_cannot_overflow_the_subscriber() {
    let (url, task) = lying_server("18446744073709551615").await;
    let mut sub = byoc_trickle::HttpSubscriber::new(url, byoc_trickle::SubscriberOptions::default()).unwrap();
    let got = within("subscriber", sub.next_segment()).await;
    assert!(matches!(got, Err(byoc_trickle::ClientError::Protocol(_))), "got {:?}", got.map(|s| s.map(|s| s.seq())));
    task.abort();
}

#[tokio::test]
async fn a_server_announcing_a_live_edge_of_u64_max_cannot_overflow_the_publisher() {
    let (url, task) = lying_server("18446744073709551615").await;
    let mut p = byoc_trickle::HttpPublisher::new(url, TS).unwrap();
    let got = within("live edge", p.start_at_live_edge()).await;
    assert!(matches!(got, Err(byoc_trickle::ClientError::Protocol(_))), "got {got:?}");
    // Whatever seq a caller sets, handing out segments never overflows.
    p.set_seq(byoc_trickle::Seq(u64::MAX));
    let _ = p.next_segment();
    let _ = p.next_segment();
    task.abort();
}
