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

#[path = "../../benches/webrtc/peer.rs"]
mod peer;

/// A STUN binding request with `USERNAME` = `username` (and no integrity: routing alone reads it).
fn stun_request(username: &str) -> Vec<u8> {
    let name = username.as_bytes();
    let padded = name.len().div_ceil(4) * 4;
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&u16::try_from(4 + padded).expect("short").to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    // A PRIORITY attribute first, so the parser has to walk past one.
    m.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
    m[3] += 8;
    m.extend_from_slice(&[0x00, 0x06]);
    m.extend_from_slice(&u16::try_from(name.len()).expect("short").to_be_bytes());
    m.extend_from_slice(name);
    m.resize(m.len() + padded - name.len(), 0);
    m
}

#[test]
fn a_stun_request_names_its_session_by_the_local_ufrag() {
    assert_eq!(driver::stun_local_ufrag(&stun_request("srvU:peerU")), Some("srvU"));
    assert_eq!(driver::stun_local_ufrag(&stun_request("abc")), Some("abc"));
    assert_eq!(driver::stun_local_ufrag(&stun_request(":x")), None, "an empty ufrag names nothing");
    // Not STUN: DTLS, RTP, a wrong cookie, truncations of every length.
    assert_eq!(driver::stun_local_ufrag(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(driver::stun_local_ufrag(&[0x80; 40]), None);
    let mut bad = stun_request("a:b");
    bad[4] = 0;
    assert_eq!(driver::stun_local_ufrag(&bad), None);
    let good = stun_request("srvU:peerU");
    for n in 0..good.len() {
        assert_eq!(driver::stun_local_ufrag(&good[..n]), None, "cut at {n}");
    }
    // An attribute length running past the message.
    let mut long = stun_request("a:b");
    long[23] = 0xff;
    assert_eq!(driver::stun_local_ufrag(&long), None);
}

#[tokio::test]
async fn many_peers_connect_at_once_and_strangers_reach_no_session() {
    let server = WebRtcServer::bind(WebRtcConfig::default()).await.expect("bind");
    let mut peers = Vec::new();
    let mut keep = Vec::new();
    for i in 0..6 {
        let (mut p, offer) = peer::Peer::offer(Direction::SendOnly).await.expect("peer");
        let (tx, rx) = mpsc::channel(64);
        let owner = SessionOwner { stream: format!("s{i}"), client: None };
        let (_, answer) = server.whip_offer(&offer, tx, owner).await.expect("answered");
        p.answer(&answer).expect("answer taken");
        peers.push(p);
        keep.push(rx);
    }
    // A stranger sends STUN naming no session, and garbage, from its own address: nothing breaks.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for _ in 0..50 {
        stranger.send_to(&stun_request("nobody:x"), server.local_addr()).await.expect("send");
        stranger.send_to(&[0x80; 200], server.local_addr()).await.expect("send");
    }
    let connected = futures_util::future::join_all(peers.iter_mut().map(|p| p.connect(Duration::from_secs(15)))).await;
    assert!(connected.iter().all(|c| *c), "every peer connects: {connected:?}");
    assert_eq!(server.sessions().await, 6);
    // Media from a connected peer reaches its own stream's segments only.
    let mut pts = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(peers[2].write_frame(pts, pts.is_multiple_of(90_000), 1200), "the peer writes video");
        pts += 3000;
        peers[2].run_until(Instant::now() + Duration::from_millis(33)).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(5), keep[2].recv()).await.ok().flatten();
    assert!(got.is_some(), "the publishing peer's stream gets media");
    for (i, rx) in keep.iter_mut().enumerate().filter(|(i, _)| *i != 2) {
        assert!(rx.try_recv().is_err(), "stream s{i} got nothing of another stream's media");
    }
    server.shutdown().await;
}

#[test]
fn only_housekeeping_timers_may_fire_late() {
    use str0m::Reason;
    for late in [Reason::Feedback, Reason::Nack, Reason::Twcc, Reason::Stats, Reason::PauseCheck] {
        assert!(driver::may_wait(late), "{late:?} is housekeeping");
    }
    // Handshakes, and anything that times media a peer sees (pacing, packetizing, a frame held for
    // reordering, bandwidth estimation), keep their deadlines.
    for on_time in [
        Reason::NotHappening,
        Reason::DTLS,
        Reason::Ice,
        Reason::Sctp,
        Reason::Channel,
        Reason::Pacer(str0m::PacerReason::Paced),
        Reason::SendStream,
        Reason::Packetize,
        Reason::ReceiveReorder,
        Reason::BweDelayControl,
        Reason::BweProbeControl,
        Reason::BweProbeEstimator,
    ] {
        assert!(!driver::may_wait(on_time), "{on_time:?} keeps its deadline");
    }
}
