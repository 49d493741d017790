//! Attacks on the media servers, each refused: hostile RTMP clients over TCP and hostile WebRTC offers
//! on loopback. Deadlines are shortened through the config so that each test takes a second or two; no
//! test asserts timing, each waits for the outcome within a bound.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use byoc_media::{
    Leg, MediaError, Piece, PublishRequest, RtmpConfig, RtmpServer, SessionOwner, WebRtcConfig, WebRtcServer,
};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The bound for waiting on an outcome that should come within a second.
const BOUND: Duration = Duration::from_secs(10);

// ---- RTMP ----

/// An RTMP server accepting every publish into a channel that is drained (and nothing else).
async fn rtmp_server(config: RtmpConfig) -> RtmpServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    RtmpServer::bind(addr, config, |_: PublishRequest| async {
        let (tx, mut rx) = mpsc::channel::<Piece>(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Some(tx)
    })
    .await
    .expect("bind")
}

/// Connects and completes the RTMP handshake; `None` when the server closes the connection instead.
async fn handshaken(addr: SocketAddr) -> Option<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let mut hs = Handshake::new(PeerType::Client);
    stream.write_all(&hs.generate_outbound_p0_and_p1().ok()?).await.ok()?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        match hs.process_bytes(buf.get(..n)?).ok()? {
            HandshakeProcessResult::InProgress { response_bytes } => stream.write_all(&response_bytes).await.ok()?,
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                stream.write_all(&response_bytes).await.ok()?;
                return Some((stream, remaining_bytes));
            }
        }
    }
}

/// Writes the packets of `results`.
async fn send(stream: &mut TcpStream, results: Vec<ClientSessionResult>) {
    for r in results {
        if let ClientSessionResult::OutboundResponse(packet) = r {
            stream.write_all(&packet.bytes).await.expect("write");
        }
    }
}

/// An RTMP client whose publish of `live/{key}` was accepted.
async fn publishing(addr: SocketAddr, key: &str) -> (TcpStream, ClientSession) {
    let (mut stream, leftover) = handshaken(addr).await.expect("handshake");
    let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).expect("session");
    send(&mut stream, initial).await;
    let connect = session.request_connection("live".into()).expect("connect");
    send(&mut stream, vec![connect]).await;
    let mut pending = session.handle_input(&leftover).expect("input");
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + BOUND;
    loop {
        for r in std::mem::take(&mut pending) {
            match r {
                ClientSessionResult::OutboundResponse(packet) => stream.write_all(&packet.bytes).await.expect("write"),
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) => {
                    let publish = session.request_publishing(key.into(), PublishRequestType::Live).expect("publish");
                    send(&mut stream, vec![publish]).await;
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PublishRequestAccepted) => {
                    return (stream, session);
                }
                _ => {}
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n =
            tokio::time::timeout(left, stream.read(&mut buf)).await.expect("publish accepted in time").expect("read");
        assert!(n > 0, "the server closed the connection before accepting the publish");
        pending = session.handle_input(buf.get(..n).expect("read bytes")).expect("input");
    }
}

/// Whether the server has closed `stream`: reads (discarding) for up to `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one byte every 100 ms (never enough to trip the pre-publish byte cap, always enough to reset
/// the idle timer) until the server closes the connection; `true` when it did within [`BOUND`].
async fn trickle_until_closed(mut stream: TcpStream) -> bool {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if stream.write_all(&[0x03]).await.is_err() || closed_within(&mut stream, Duration::from_millis(100)).await {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn rtmp_connections_that_never_publish_cannot_hold_the_slots() {
    let config = RtmpConfig {
        max_connections: 4,
        publish_deadline: Duration::from_millis(400),
        idle_timeout: Duration::from_secs(30),
        ..RtmpConfig::default()
    };
    let server = rtmp_server(config).await;
    let addr = server.local_addr();
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (stream, _) = handshaken(addr).await.expect("an attacker gets a slot");
        attackers.spawn(trickle_until_closed(stream));
    }
    while let Some(closed) = attackers.join_next().await {
        assert!(closed.expect("attacker task"), "a connection that never published was kept past the deadline");
    }
    // The slots are free again: a real publisher gets one.
    let (_publisher, _) = publishing(addr, "key").await;
    assert_eq!(server.active_publishes(), 1);
}

#[tokio::test]
async fn rtmp_publishers_trickling_bytes_are_disconnected() {
    let config = RtmpConfig {
        min_publish_rate: 4096,
        publish_rate_window: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
        ..RtmpConfig::default()
    };
    let server = rtmp_server(config).await;
    let (mut stream, mut session) = publishing(server.local_addr(), "key").await;
    assert_eq!(server.active_publishes(), 1);
    // A ping every 100 ms: about 200 bytes/s, enough to look alive, far below the minimum rate.
    let deadline = Instant::now() + BOUND;
    let mut closed = false;
    while Instant::now() < deadline && !closed {
        let (ping, _) = session.send_ping_request().expect("ping");
        closed = stream.write_all(&ping.bytes).await.is_err()
            || closed_within(&mut stream, Duration::from_millis(100)).await;
    }
    assert!(closed, "a publisher below the minimum rate kept its connection");
    for _ in 0..100 {
        if server.active_publishes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.active_publishes(), 0, "the publish is over");
}

/// Not an attack: the minimum rate (its default) over a short window must spare a real publisher of
/// low-bitrate audio and video.
#[tokio::test]
async fn rtmp_minimum_rate_spares_a_real_low_bitrate_publisher() {
    if !common::peers_available() {
        return;
    }
    let config = RtmpConfig { publish_rate_window: Duration::from_millis(1000), ..RtmpConfig::default() };
    let (tx, mut rx) = mpsc::channel::<Piece>(1024);
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = RtmpServer::bind(addr, config, move |_: PublishRequest| {
        let tx = tx.clone();
        async move { Some(tx) }
    })
    .await
    .expect("bind");
    let url = format!("rtmp://{}/live/key", server.local_addr());
    let mut ffmpeg = tokio::process::Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "20"])
        .args(["-b:v", "24k", "-maxrate", "24k", "-bufsize", "48k", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "16k", "-ac", "1", "-f", "flv", &url])
        .kill_on_drop(true);
    let status = tokio::time::timeout(Duration::from_secs(30), ffmpeg.status())
        .await
        .expect("ffmpeg ends")
        .expect("ffmpeg runs");
    assert!(status.success(), "the low-bitrate publisher was cut off");
    let mut starts = 0;
    while let Ok(Some(piece)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        starts += usize::from(piece.is_start());
        if starts >= 2 {
            break;
        }
    }
    assert!(starts >= 2, "its segments came through");
}

#[tokio::test]
async fn rtmp_one_address_cannot_take_every_connection() {
    let config = RtmpConfig { max_connections: 16, max_connections_per_ip: 2, ..RtmpConfig::default() };
    let server = rtmp_server(config).await;
    let addr = server.local_addr();
    let first = handshaken(addr).await.expect("first connection");
    let _second = handshaken(addr).await.expect("second connection");
    assert!(handshaken(addr).await.is_none(), "a third connection from one address was served");
    // When one of them leaves, its address may connect again.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        again = handshaken(addr).await;
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is available to the address again");
}

// ---- WebRTC ----

/// An offer as a browser would make it (video and audio), from a str0m peer.
fn offer(direction: Direction) -> String {
    let mut peer = Rtc::builder().clear_codecs().enable_h264(true).enable_opus(true, false).build(Instant::now());
    let mut change = peer.sdp_api();
    change.add_media(MediaKind::Video, direction, None, None, None);
    change.add_media(MediaKind::Audio, direction, None, None, None);
    let (offer, _pending) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

fn from(stream: &str, client: Option<&str>) -> SessionOwner {
    SessionOwner { stream: stream.into(), client: client.map(|c| c.parse::<IpAddr>().expect("ip")) }
}

/// A WHEP offer of `owner` whose session never does ICE (its segment sender is dropped at the end).
async fn whep(server: &WebRtcServer, owner: SessionOwner) -> Result<byoc_media::SessionId, MediaError> {
    let (_tx, rx) = mpsc::channel(1);
    server.whep_offer(&offer(Direction::RecvOnly), rx, owner).await.map(|(id, _)| id)
}

fn limit(result: Result<byoc_media::SessionId, MediaError>, cap: &str) {
    match result {
        Err(MediaError::Limit(msg)) => assert!(msg.contains(cap), "{msg} names {cap}"),
        other => panic!("expected the {cap} limit, got {other:?}"),
    }
}

async fn webrtc(config: WebRtcConfig) -> WebRtcServer {
    WebRtcServer::bind(config).await.expect("bind")
}

#[tokio::test]
async fn webrtc_one_address_cannot_hold_every_pending_session() {
    let server = webrtc(WebRtcConfig { max_sessions: 16, max_pending_per_ip: 2, ..WebRtcConfig::default() }).await;
    let attacker = Some("192.0.2.1");
    whep(&server, from("a", attacker)).await.expect("first pending offer");
    whep(&server, from("b", attacker)).await.expect("second pending offer");
    limit(whep(&server, from("c", attacker)).await, "max_pending_per_ip");
    whep(&server, from("a", Some("192.0.2.2"))).await.expect("another address is served");
    whep(&server, from("a", None)).await.expect("an offer of unknown address is served");
    assert_eq!(server.sessions().await, 4);
}

#[tokio::test]
async fn webrtc_one_address_cannot_hold_every_session() {
    let config =
        WebRtcConfig { max_sessions: 16, max_sessions_per_ip: 3, max_pending_per_ip: 16, ..WebRtcConfig::default() };
    let server = webrtc(config).await;
    let attacker = Some("192.0.2.1");
    for stream in ["a", "b", "c"] {
        whep(&server, from(stream, attacker)).await.expect("offer within the cap");
    }
    limit(whep(&server, from("d", attacker)).await, "max_sessions_per_ip");
    whep(&server, from("d", Some("192.0.2.2"))).await.expect("another address is served");
}

#[tokio::test]
async fn webrtc_one_stream_cannot_hold_every_pending_session() {
    let config = WebRtcConfig { max_sessions: 16, max_pending_per_stream: 2, ..WebRtcConfig::default() };
    let server = webrtc(config).await;
    whep(&server, from("a", None)).await.expect("first pending offer");
    whep(&server, from("a", None)).await.expect("second pending offer");
    limit(whep(&server, from("a", None)).await, "max_pending_per_stream");
    whep(&server, from("b", None)).await.expect("another stream is served");
}

#[tokio::test]
async fn webrtc_one_stream_cannot_hold_every_session() {
    let config =
        WebRtcConfig { max_sessions: 16, max_sessions_per_stream: 3, max_pending_per_stream: 16, ..Default::default() };
    let server = webrtc(config).await;
    for _ in 0..3 {
        whep(&server, from("a", None)).await.expect("offer within the cap");
    }
    limit(whep(&server, from("a", None)).await, "max_sessions_per_stream");
    whep(&server, from("b", None)).await.expect("another stream is served");
}

#[tokio::test]
async fn webrtc_offers_that_never_do_ice_lose_their_slot_at_the_deadline() {
    let config = WebRtcConfig {
        max_sessions: 16,
        max_pending_per_ip: 1,
        connect_timeout: Duration::from_millis(300),
        ..WebRtcConfig::default()
    };
    let server = webrtc(config).await;
    let attacker = Some("192.0.2.1");
    whep(&server, from("a", attacker)).await.expect("a pending offer");
    limit(whep(&server, from("a", attacker)).await, "max_pending_per_ip");
    let mut freed = false;
    for _ in 0..200 {
        if server.sessions().await == 0 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "a session that never did ICE outlived the deadline");
    whep(&server, from("a", attacker)).await.expect("the freed slot serves a new offer");
}

#[tokio::test]
async fn webrtc_a_session_cannot_be_closed_through_another_stream_or_leg() {
    let server = webrtc(WebRtcConfig::default()).await;
    let id = whep(&server, from("a", None)).await.expect("offer");
    assert!(!server.close(id, "b", Leg::Whep).await, "closed through another stream");
    assert!(!server.close(id, "a", Leg::Whip).await, "closed through the other leg");
    assert_eq!(server.sessions().await, 1, "the session is still there");
    assert!(server.close(id, "a", Leg::Whep).await, "its own stream and leg close it");
}

#[tokio::test]
async fn webrtc_a_bad_offer_is_refused_without_parser_details() {
    let server = webrtc(WebRtcConfig::default()).await;
    let (_tx, rx) = mpsc::channel(1);
    match server.whep_offer("v=0\r\nnot sdp at all", rx, from("a", None)).await {
        Err(e @ MediaError::Protocol(_)) => assert_eq!(e.to_string(), "protocol: invalid SDP offer"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn webrtc_one_ipv6_network_cannot_pass_for_many_addresses() {
    let server = webrtc(WebRtcConfig { max_sessions: 16, max_pending_per_ip: 2, ..WebRtcConfig::default() }).await;
    // One /64 is one client's: its addresses are counted together.
    whep(&server, from("a", Some("2001:db8:0:1::1"))).await.expect("first pending offer");
    whep(&server, from("a", Some("2001:db8:0:1::2"))).await.expect("second pending offer");
    limit(whep(&server, from("a", Some("2001:db8:0:1:ffff::3"))).await, "max_pending_per_ip");
    whep(&server, from("a", Some("2001:db8:0:2::1"))).await.expect("another /64 is served");
    // An IPv4 client seen through an IPv6 socket is the same client as over IPv4.
    whep(&server, from("b", Some("192.0.2.7"))).await.expect("an IPv4 client");
    whep(&server, from("b", Some("::ffff:192.0.2.7"))).await.expect("the same client, mapped");
    limit(whep(&server, from("b", Some("192.0.2.7"))).await, "max_pending_per_ip");
}
