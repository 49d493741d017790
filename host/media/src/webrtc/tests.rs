use super::*;
use str0m::media::{Direction, MediaKind};

/// An offer as a browser would make it, from a str0m peer.
fn offer(direction: Direction) -> String {
    let mut peer = Rtc::builder().clear_codecs().enable_h264(true).enable_opus(true, false).build(Instant::now());
    let mut change = peer.sdp_api();
    change.add_media(MediaKind::Video, direction, None, None, None);
    change.add_media(MediaKind::Audio, direction, None, None, None);
    let (offer, _pending) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

fn owner() -> SessionOwner {
    SessionOwner { stream: "s".into(), client: None }
}

#[tokio::test]
async fn offers_are_answered_limited_and_closed() {
    let config = WebRtcConfig { max_sessions: 1, ..WebRtcConfig::default() };
    let server = WebRtcServer::bind(config).await.expect("bind");
    let (tx, _rx) = mpsc::channel(1);
    let (id, answer) = server.whip_offer(&offer(Direction::SendOnly), tx, owner()).await.expect("answered");
    assert!(answer.contains("a=ice-lite"));
    assert!(answer.contains(&format!("{}", server.local_addr().port())), "the candidate is announced");
    assert_eq!(server.sessions().await, 1);
    // A keyframe can be asked of a connected publisher only.
    assert!(!server.request_keyframe(id).await, "not connected yet");
    assert!(!server.request_keyframe(SessionId(id.0.wrapping_add(1))).await, "no such session");

    let (_tx, rx) = mpsc::channel(1);
    let refused = server.whep_offer(&offer(Direction::RecvOnly), rx, owner()).await;
    assert!(matches!(refused, Err(MediaError::Limit(_))), "over the session limit");

    assert!(server.close(id, "s", Leg::Whip).await);
    let unknown: SessionId = "00000000000000ff".parse().expect("id");
    assert!(!server.close(unknown, "s", Leg::Whip).await);
    for _ in 0..100 {
        if server.sessions().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.sessions().await, 0, "closed sessions are gone");
    let (tx, _rx) = mpsc::channel(1);
    assert!(matches!(server.whip_offer("v=0 garbage", tx, owner()).await, Err(MediaError::Protocol(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn unspecified_bind_needs_an_advertised_address() {
    let config = WebRtcConfig { bind: SocketAddr::from(([0, 0, 0, 0], 0)), ..WebRtcConfig::default() };
    assert!(WebRtcServer::bind(config).await.is_err());
}

#[tokio::test]
async fn an_offer_that_panics_str0m_is_refused_and_the_server_serves_on() {
    // Found by the webrtc_offer fuzz target: an aiortc WHEP offer whose audio section also maps the
    // video's H.264 payload type 99 made str0m 0.25 panic ("Pt locked multiple times") while accepting it.
    let server = WebRtcServer::bind(WebRtcConfig::default()).await.expect("bind");
    let good = include_str!("aiortc_whep_offer.sdp");
    let bad = good.replace("a=rtpmap:96 opus/48000/2\r\n", "a=rtpmap:96 opus/48000/2\r\na=rtpmap:99 H264/90000\r\n");
    assert_ne!(bad, good);
    let (_tx, rx) = mpsc::channel(1);
    assert!(matches!(server.whep_offer(&bad, rx, owner()).await, Err(MediaError::Protocol(_))));
    let (_tx, rx) = mpsc::channel(1);
    assert!(server.whep_offer(good, rx, owner()).await.is_ok(), "the server still answers");
    server.shutdown().await;
}
