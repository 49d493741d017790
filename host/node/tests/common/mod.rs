//! What the media tests share: a gateway with its media legs and an orchestrator with the bundled
//! plugins, in this process, and starting a video stream on them.

#![allow(dead_code)] // Each test binary uses its own part.

use std::net::SocketAddr;
use std::sync::Arc;

use byoc_e2e::nodes::{job_header, plugins_dir, root};
use byoc_node::gateway::{Gateway, GatewayConfig};
use byoc_node::orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::job::SignaturePolicy;
use byoc_runtime::{CacheDir, Runtime, RuntimeConfig};
use byoc_trickle::TrickleStore;
use serde_json::{Value, json};

/// A running gateway (HTTP on loopback, RTMP ingest, WebRTC on `webrtc`) in front of one
/// orchestrator with the bundled plugins. Dropping it stops the RTMP server.
pub struct MediaNodes {
    pub url: String,
    pub gateway: Arc<Gateway>,
    pub rtmp: byoc_media::RtmpServer,
    pub webrtc: SocketAddr,
}

/// The bundled plugins (`target/plugins`) under `config`.
pub async fn bundled_plugins(config: RuntimeConfig) -> Arc<Runtime> {
    Arc::new(Runtime::load(plugins_dir(), config).await.unwrap())
}

/// An orchestrator offering `runtime`'s plugins (`streams` at once each), served on loopback;
/// `config` adjusts its settings (its `service_url` is set here).
pub async fn serve_orchestrator(
    runtime: &Arc<Runtime>,
    streams: u32,
    config: impl FnOnce(&mut OrchestratorConfig),
) -> (String, Arc<Orchestrator>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut c = OrchestratorConfig {
        service_url: url.clone(),
        signatures: SignaturePolicy::Required,
        ..OrchestratorConfig::default()
    };
    config(&mut c);
    let orch = Orchestrator::new(c, TrickleStore::default()).unwrap();
    orch.offer_plugins(runtime, streams);
    let app = byoc_node::orchestrator::router(orch.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, orch)
}

/// A gateway in front of `orchestrators`, served on loopback.
pub async fn serve_gateway(orchestrators: Vec<String>) -> (String, Arc<Gateway>) {
    serve_gateway_with(orchestrators, |_| {}).await
}

/// [`serve_gateway`], with `config` adjusting its settings (`public_url` and `orchestrators` are set here).
pub async fn serve_gateway_with(
    orchestrators: Vec<String>,
    config: impl FnOnce(&mut GatewayConfig),
) -> (String, Arc<Gateway>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut c = GatewayConfig { public_url: url.clone(), orchestrators, ..GatewayConfig::default() };
    config(&mut c);
    let gateway = Gateway::new(c).unwrap();
    let app = byoc_node::gateway::router(gateway.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, gateway)
}

pub async fn media_nodes(webrtc: SocketAddr) -> MediaNodes {
    media_nodes_with(webrtc, |_| {}).await
}

/// [`media_nodes`], with `config` adjusting the gateway's settings.
pub async fn media_nodes_with(webrtc: SocketAddr, config: impl FnOnce(&mut GatewayConfig)) -> MediaNodes {
    let cache_dir = CacheDir::At(root().join("target/runtime-test-cache"));
    let runtime = bundled_plugins(RuntimeConfig { cache_dir, ..RuntimeConfig::default() }).await;
    let (orch_url, _) = serve_orchestrator(&runtime, 4, |_| {}).await;
    let (url, gateway) = serve_gateway_with(vec![orch_url], config).await;
    let rtmp = byoc_node::gateway::serve_rtmp(&gateway, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let webrtc = byoc_node::gateway::serve_webrtc(&gateway, webrtc, None).await.unwrap();
    MediaNodes { url, gateway, rtmp, webrtc }
}

pub fn http() -> reqwest::Client {
    byoc_trickle::http_client().unwrap()
}

/// Starts a `passthrough` stream with video in and out; returns start's JSON (its URLs).
pub async fn start_video(gw: &str, body: Value) -> Value {
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true});
    let r = http()
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", job_header("passthrough", &legs))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
