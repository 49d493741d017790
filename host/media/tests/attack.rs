//! Attacks on the media servers, each refused: hostile RTMP clients over TCP and hostile WebRTC offers
//! on loopback. Deadlines are shortened through the config so that each test takes a second or two; no
//! test asserts timing, each waits for the outcome within a bound.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use byoc_media::{Leg, MediaError, SessionOwner, WebRtcConfig, WebRtcServer};
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};
use tokio::sync::mpsc;

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
