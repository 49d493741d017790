//! What the tests share: a gateway with its media legs and an orchestrator with the bundled
//! plugins, in this process, and starting a video stream on them; an orchestrator in front of a toy
//! HTTP worker that records what it is asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;

use byoc_e2e::nodes::{job_header, plugins_dir, root};
use byoc_gateway::{Gateway, GatewayConfig};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::job::SignaturePolicy;
use byoc_runtime::{CacheDir, Runtime, RuntimeConfig};
use byoc_trickle::TrickleStore;
use serde_json::{Value, json};

pub use byoc_e2e::wait::{eventually, wait_until, wait_until_within};

/// A running gateway (HTTP on loopback, RTMP ingest, WebRTC) in front of one orchestrator with the
/// bundled plugins. Dropping it stops the RTMP server.
pub struct MediaNodes {
    /// The gateway's base URL.
    pub url: String,
    /// Its RTMP server.
    pub rtmp: byoc_media::RtmpServer,
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
    serve_orchestrator_with(config, |orch| {
        orch.offer_plugins(runtime, streams);
    })
    .await
}

/// An orchestrator (signed jobs required unless `config` says otherwise) served on loopback, its
/// capabilities set up by `offer` before it serves.
pub async fn serve_orchestrator_with(
    config: impl FnOnce(&mut OrchestratorConfig),
    offer: impl FnOnce(&Orchestrator),
) -> (String, Arc<Orchestrator>) {
    // The process-wide metrics recorder, as the `byoc` binary installs it.
    byoc_protocol::telemetry::init();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut c = OrchestratorConfig {
        service_url: url.clone(),
        signatures: SignaturePolicy::Required,
        ..OrchestratorConfig::default()
    };
    config(&mut c);
    let orch = Orchestrator::new(c, TrickleStore::default()).unwrap();
    offer(&orch);
    let app = byoc_orchestrator::router(orch.clone());
    tokio::spawn(byoc_net::serve("orchestrator", l, app, byoc_net::Limits::default(), std::future::pending()));
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
    byoc_protocol::telemetry::init();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut c = GatewayConfig { public_url: url.clone(), orchestrators, ..GatewayConfig::default() };
    config(&mut c);
    let gateway = Gateway::new(c).unwrap();
    let app = byoc_gateway::router(gateway.clone());
    tokio::spawn(byoc_net::serve("gateway", l, app, byoc_net::Limits::default(), std::future::pending()));
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
    let rtmp = byoc_gateway::serve_rtmp(&gateway, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    byoc_gateway::serve_webrtc(&gateway, webrtc, None).await.unwrap();
    MediaNodes { url, rtmp }
}

pub fn http() -> reqwest::Client {
    byoc_trickle::http_client().unwrap()
}

/// `POST`s `body` to `url` with this `Livepeer` job header.
pub async fn post_job(url: &str, header: &str, body: &'static str) -> reqwest::Response {
    http().post(url).header("Livepeer", header).body(body).send().await.unwrap()
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

/// Serves `app` on a fresh loopback port; returns its base URL.
pub async fn listen(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(byoc_net::serve("test", l, app, byoc_net::Limits::default(), std::future::pending()));
    format!("http://{addr}")
}

/// What the toy worker was asked: (route, JSON body).
pub type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// An orchestrator (signed jobs required) with one toy worker ("toy", capacity 2) answering
/// `start_status` to stream starts, echoing `/echo` and `{"status":"success"}` to the rest.
pub async fn toy_orchestrator(start_status: u16, idle: Duration) -> (String, Arc<Orchestrator>, Calls) {
    toy_orchestrator_with(start_status, |c| c.stream_idle_timeout = idle).await
}

/// [`toy_orchestrator`], with `config` adjusting its settings (`service_url` is set here).
pub async fn toy_orchestrator_with(
    start_status: u16,
    config: impl FnOnce(&mut OrchestratorConfig),
) -> (String, Arc<Orchestrator>, Calls) {
    let calls: Calls = Arc::default();
    let worker = listen(
        Router::new()
            .route(
                "/{*route}",
                post(|State((calls, st)): State<(Calls, u16)>, Path(route): Path<String>, body: Bytes| async move {
                    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    calls.lock().unwrap().push((route.clone(), v.clone()));
                    let status = if route == "stream/start" { st } else { 200 };
                    let reply = if route == "echo" { v } else { json!({"status": "success"}) };
                    (StatusCode::from_u16(status).unwrap(), axum::Json(reply)).into_response()
                }),
            )
            .with_state((calls.clone(), start_status)),
    )
    .await;
    let (url, orch) = serve_orchestrator_with(config, |orch| {
        let toy = byoc_orchestrator::WorkerRegistration {
            name: "toy".into(),
            url: worker,
            capacity: 2,
            ..Default::default()
        };
        orch.registry.register_worker(&toy).unwrap();
    })
    .await;
    (url, orch, calls)
}

/// An unsigned `Livepeer` header for the toy capability with these `parameters`.
pub fn toy_job(parameters: Value) -> String {
    toy_request("", json!({}), parameters).to_header()
}

/// A job for the toy capability with this `id`, `request` and `parameters` (10 s timeout), unsigned.
pub fn toy_request(id: &str, request: Value, parameters: Value) -> byoc_payment::job::JobRequest {
    byoc_payment::job::JobRequest {
        id: id.into(),
        request: request.to_string(),
        parameters: parameters.to_string(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    }
}

/// Every stream leg on.
pub fn all_legs() -> Value {
    json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true})
}

/// Sends `request` (raw HTTP/1.1 text, sent as is: no path normalisation) to `base`
/// (`http://host:port`) and returns the status and body of the answer.
pub async fn raw_http(base: &str, request: &str) -> (u16, String) {
    raw_exchange(base, request.as_bytes(), false).await
}

/// [`raw_http`] with raw bytes; with `close_write` the client then shuts its side for writing, as a
/// client that goes away mid-request does (a body shorter than its `Content-Length` ends there).
pub async fn raw_exchange(base: &str, request: &[u8], close_write: bool) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    if close_write {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
