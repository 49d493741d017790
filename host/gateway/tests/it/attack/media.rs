//! Attacks on the gateway's WebRTC routes, each refused: closing another stream's session, one
//! stream or one address taking every WebRTC session, and offers that probe the SDP parser. Real HTTP
//! on loopback, in front of an orchestrator with the bundled plugins.

use std::net::IpAddr;

use crate::common::{MediaNodes, bundled_plugins, http, media_nodes, serve_orchestrator, start_video as start};
use byoc_gateway::{Gateway, GatewayConfig};
use serde_json::{Value, json};

/// A browser-like WHEP offer (H.264 video and Opus audio, receive only). Its session never does ICE.
const WHEP_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
a=fingerprint:sha-256 9F:A4:83:1A:72:07:56:95:95:62:2C:7D:F7:16:FE:4A:B0:6B:87:49:2E:D8:FF:43:E5:C7:C1:5F:43:C5:E8:10\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 H264/90000\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
a=fingerprint:sha-256 9F:A4:83:1A:72:07:56:95:95:62:2C:7D:F7:16:FE:4A:B0:6B:87:49:2E:D8:FF:43:E5:C7:C1:5F:43:C5:E8:10\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n";

/// `POST`s an SDP offer to `url`; the status and the answer's body.
async fn offer(url: &str, sdp: &str) -> (u16, String, Option<String>) {
    offer_with(&http(), url, sdp).await
}

/// [`offer`] from the loopback address `127.0.0.{n}` (so that per-address caps do not apply).
async fn offer_from(n: u8, url: &str, sdp: &str) -> (u16, String, Option<String>) {
    let from = IpAddr::from([127, 0, 0, n]);
    offer_with(&byoc_trickle::http_client_builder().local_address(from).build().unwrap(), url, sdp).await
}

async fn offer_with(client: &reqwest::Client, url: &str, sdp: &str) -> (u16, String, Option<String>) {
    let r = client.post(url).header("Content-Type", "application/sdp").body(sdp.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), location)
}

fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON error: {body}"));
    v["error"].as_str().unwrap_or_else(|| panic!("an error message: {body}")).to_string()
}

async fn delete(url: &str) -> u16 {
    http().delete(url).send().await.unwrap().status().as_u16()
}

/// The gateway's URL of a stream's session: `location` with the stream's token.
fn session_url(gw: &str, location: &str, urls: &Value) -> String {
    format!("{gw}{location}?token={}", urls["stream_secret"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_session_cannot_be_closed_through_another_stream_or_leg() {
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let gw = nodes.url.as_str();
    let (a, b) = (start(gw, json!({})).await, start(gw, json!({})).await);
    let (status, _, location) = offer(a["whep_url"].as_str().unwrap(), WHEP_OFFER).await;
    assert_eq!(status, 201);
    let location = location.expect("a Location");
    let (a_id, b_id) = (a["stream_id"].as_str().unwrap(), b["stream_id"].as_str().unwrap());
    assert!(location.starts_with(&format!("/process/stream/{a_id}/whep/")), "{location}");

    // B's secret, B's route, A's session.
    let through_b = session_url(gw, &location.replace(a_id, b_id), &b);
    assert_eq!(delete(&through_b).await, 404, "A's viewer was closed through stream B");
    // A's own secret, but the WHIP leg.
    let as_whip = session_url(gw, &location.replace("/whep/", "/whip/"), &a);
    assert_eq!(delete(&as_whip).await, 404, "A's viewer was closed as a WHIP session");
    // Its own stream and leg close it, once.
    assert_eq!(delete(&session_url(gw, &location, &a)).await, 200, "the viewer is still there");
    assert_eq!(delete(&session_url(gw, &location, &a)).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_offers_of_one_stream_cannot_take_every_session() {
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let gw = nodes.url.as_str();
    let (a, b) = (start(gw, json!({})).await, start(gw, json!({})).await);
    let cap = byoc_media::WebRtcConfig::default().max_pending_per_stream;
    // Each offer from an address of its own: the stream's cap, not an address's, is what binds.
    for n in 0..cap {
        assert_eq!(offer_from(10 + n as u8, a["whep_url"].as_str().unwrap(), WHEP_OFFER).await.0, 201);
    }
    let (status, body, _) = offer_from(9, a["whep_url"].as_str().unwrap(), WHEP_OFFER).await;
    assert_eq!(status, 429, "{body}");
    assert!(error_of(&body).contains("max_pending_per_stream"), "{body}");
    assert_eq!(offer(b["whep_url"].as_str().unwrap(), WHEP_OFFER).await.0, 201, "another stream is served");
}

/// [`media_nodes`] with room for more streams, the gateway served as the `byoc` binary serves it
/// (with the client's address, which the per-address caps need).
async fn nodes_with_client_addresses() -> (String, std::sync::Arc<Gateway>) {
    let cache_dir = byoc_runtime::CacheDir::At(byoc_e2e::nodes::root().join("target/runtime-test-cache"));
    let runtime = bundled_plugins(byoc_runtime::RuntimeConfig { cache_dir, ..Default::default() }).await;
    let (orch_url, _) = serve_orchestrator(&runtime, 8, |_| {}).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let config = GatewayConfig { public_url: url.clone(), orchestrators: vec![orch_url], ..GatewayConfig::default() };
    let gateway = Gateway::new(config).unwrap();
    let app = byoc_gateway::router(gateway.clone());
    tokio::spawn(byoc_net::serve("gateway", l, app, byoc_net::Limits::default(), std::future::pending()));
    byoc_gateway::serve_webrtc(&gateway, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    (url, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_offers_from_one_address_cannot_take_every_session() {
    let (gw, _gateway) = nodes_with_client_addresses().await;
    let cap = byoc_media::WebRtcConfig::default().max_pending_per_ip;
    // Spread over two streams, so that no per-stream cap is what refuses.
    let streams = [start(&gw, json!({})).await, start(&gw, json!({})).await];
    for i in 0..cap {
        let url = streams[i % 2]["whep_url"].as_str().unwrap();
        assert_eq!(offer(url, WHEP_OFFER).await.0, 201);
    }
    let (status, body, _) = offer(streams[0]["whep_url"].as_str().unwrap(), WHEP_OFFER).await;
    assert_eq!(status, 429, "{body}");
    assert!(error_of(&body).contains("max_pending_per_ip"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sdp_offer_learns_nothing_of_the_parser() {
    let nodes: MediaNodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let urls = start(&nodes.url, json!({})).await;
    for (leg, garbage) in [("WHEP", "v=0\r\nnot sdp"), ("WHIP", "v=0\r\no=x\r\n"), ("WHEP", "")] {
        let url = urls[format!("{}_url", leg.to_lowercase())].as_str().unwrap();
        let (status, body, _) = offer(url, garbage).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_of(&body), format!("{leg} offer refused: invalid SDP offer"));
    }
}
