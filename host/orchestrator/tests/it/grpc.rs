//! gRPC `net.Orchestrator/GetOrchestrator` over TLS with the official Python SDK as the client
//! (`tests/peers/sdk_orch_info.py`: livepeer-gateway's own trust-on-first-use channel), payments made
//! from the params it got, and `Livepeer-Segment` credentials carrying its session token. Each test
//! serves a real orchestrator on a loopback address of its own (127.0.20.x) with `byoc_net::serve_with`;
//! the multiplexed port (TLS beside plain HTTP) is the default, as `byoc orchestrator` serves it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use base64::Engine as _;
use byoc_net::{Limits, TlsConfig, Transport};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, Price, WorkerRegistration, router};
use byoc_payment::job::{JobRequest, SignaturePolicy};
use byoc_payment::proto::OrchestratorInfo;
use byoc_payment::{SecretKey, TicketParams, create_payment, random_hex, segcreds};
use byoc_trickle::TrickleStore;
use prost::Message as _;
use serde_json::{Value, json};

use crate::common::{self, listen};

/// An orchestrator served on `addr` with a toy worker behind capability `toy`.
struct Node {
    orch: Arc<Orchestrator>,
    addr: SocketAddr,
}

impl Node {
    fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn https(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// Serves an orchestrator on `addr` over `transport` (made from a fresh self-signed certificate),
/// offering `toy` (a worker echoing its body) and `cheap`, as `cfg` adjusts the config.
async fn node(addr: &str, transport: fn(TlsConfig) -> Transport, cfg: impl FnOnce(&mut OrchestratorConfig)) -> Node {
    let worker = listen(Router::new().route("/{*route}", post(|body: Bytes| async move { body }))).await;
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    let mut config = OrchestratorConfig { service_url: format!("http://{addr}"), ..OrchestratorConfig::default() };
    cfg(&mut config);
    let orch = Orchestrator::new(config, TrickleStore::default()).unwrap();
    for name in ["toy", "cheap"] {
        let reg = WorkerRegistration { name: name.into(), url: worker.clone(), capacity: 4, ..Default::default() };
        orch.registry.register_worker(&reg).unwrap();
    }
    let tls = TlsConfig::self_signed(&["localhost".into(), addr.ip().to_string()]).unwrap();
    let app = router(orch.clone());
    tokio::spawn(byoc_net::serve_with(
        "orchestrator",
        l,
        app,
        Limits::default(),
        transport(tls),
        std::future::pending(),
    ));
    Node { orch, addr }
}

/// A priced node (key, `toy` at 7 wei/s, `cheap` at 3 wei per 2 s).
async fn priced(addr: &str, transport: fn(TlsConfig) -> Transport) -> (Node, SecretKey) {
    let key = SecretKey::generate();
    let node = node(addr, transport, |c| c.key = Some(key.clone())).await;
    node.orch.registry.set_price("toy", Price { per_unit: 7, scaling: 1 });
    node.orch.registry.set_price("cheap", Price { per_unit: 3, scaling: 2 });
    (node, key)
}

/// A fresh sender key and its hex (for the SDK's eth_account).
fn sender() -> (SecretKey, String) {
    let hex = random_hex(32);
    (SecretKey::from_hex(&hex).unwrap(), hex)
}

/// Runs the SDK peer with `args`; its one JSON line.
async fn sdk(py: &str, args: &[&str]) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/sdk_orch_info.py");
    let run = tokio::process::Command::new(py).arg(script).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the SDK peer finishes").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "peer failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn python() -> Option<String> {
    common::python("BYOC_PEERS_PYTHON", "the peers venv")
}

/// The `OrchestratorInfo` the SDK received.
fn info_of(v: &Value) -> OrchestratorInfo {
    let bytes = base64::engine::general_purpose::STANDARD.decode(v["info"].as_str().unwrap()).unwrap();
    OrchestratorInfo::decode(bytes.as_slice()).unwrap()
}

/// A one-ticket payment by `key` from the params and price of `info` (as a remote signer makes it).
fn payment(key: &SecretKey, info: &OrchestratorInfo) -> String {
    let params = TicketParams::from_proto(info.ticket_params.as_ref().unwrap()).unwrap();
    let p = info.price_info.as_ref().unwrap();
    let price = byoc_payment::Price { price_per_unit: p.price_per_unit, pixels_per_unit: p.pixels_per_unit };
    create_payment(key, &params, &price, 1).unwrap().to_header()
}

fn client() -> reqwest::Client {
    byoc_trickle::http_client_builder().danger_accept_invalid_certs(true).build().unwrap()
}

/// A signed batch job on `toy` with `headers`: status, body, `Livepeer-Balance`.
async fn batch(base: &str, key: &SecretKey, headers: &[(&str, &str)]) -> (u16, String, Option<i64>) {
    let job = JobRequest {
        id: random_hex(4),
        request: "{}".into(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    let mut req =
        client().post(format!("{base}/process/request/echo")).header("Livepeer", byoc_e2e::nodes::signed_job(job, key));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.body(r#"{"hello":"byoc"}"#).send().await.unwrap();
    let balance = r.headers().get("livepeer-balance").and_then(|v| v.to_str().ok()?.parse().ok());
    (r.status().as_u16(), r.text().await.unwrap(), balance)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_gets_ticket_params_prices_and_a_token_for_a_signed_request() {
    let Some(py) = python() else { return };
    // The SDK's fixed gRPC port, on an address of this test's own, TLS only (as --grpc-listen).
    let (n, orch_key) = priced("127.0.20.1:8935", Transport::Tls).await;
    let (_, sender_hex) = sender();
    let v = sdk(&py, &["https://127.0.20.1:8935", &sender_hex]).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(!v["face_value"].as_str().unwrap().is_empty(), "priced: a face value");
    // The dearest BYOC price, and every BYOC capability at its own.
    assert_eq!(v["price"], json!([7, 1]));
    assert_eq!(v["byoc"], json!({"toy": [7, 1], "cheap": [3, 2]}));
    assert_eq!(v["address"], hex(&orch_key.address().0));
    assert_eq!(v["transcoder"], n.http());
    assert_eq!(v["token"]["len"], 32);
    let now = i64::try_from(byoc_protocol::now_ms() / 1000).unwrap();
    let expiration = v["token"]["expiration"].as_i64().unwrap();
    assert!((now + 29 * 60..=now + 31 * 60).contains(&expiration), "{expiration} vs {now}");
    let info = info_of(&v);
    assert_eq!(info.ticket_params.as_ref().unwrap().recipient, orch_key.address().0.to_vec());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_signature_and_unknown_methods_are_refused_with_grpc_errors() {
    let Some(py) = python() else { return };
    let (n, _) = priced("127.0.20.2:0", Transport::Sniffed).await;
    let url = n.https();
    let (_, sender_hex) = sender();
    let (_, other_hex) = sender();
    let v = sdk(&py, &[&url, &sender_hex, &other_hex]).await;
    assert_eq!((v["ok"].clone(), v["code"].clone()), (json!(false), json!("UNAUTHENTICATED")), "{v}");
    assert!(v["error"].as_str().unwrap().contains("Invalid orchestrator request"), "{v}");
    // No signature at all, on a node that requires one.
    let v = sdk(&py, &[&url]).await;
    assert_eq!(v["code"], "UNAUTHENTICATED", "{v}");
    let v = sdk(&py, &[&url, "--method", "/net.Transcoder/Transcode"]).await;
    assert_eq!(v["code"], "UNIMPLEMENTED", "{v}");
    assert!(v["error"].as_str().unwrap().contains("net.Orchestrator/GetOrchestrator"), "{v}");
    // An empty message is an empty request: no address, no signature.
    let v = sdk(&py, &[&url, "--method", "/net.Orchestrator/GetOrchestrator"]).await;
    assert_eq!(v["code"], "UNAUTHENTICATED", "{v}");
    assert!(v["error"].as_str().unwrap().contains("address is 0 bytes, not 20"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn free_mode_answers_unsigned_requests_with_face_value_zero() {
    let Some(py) = python() else { return };
    let n = node("127.0.20.3:0", Transport::Sniffed, |c| c.signatures = SignaturePolicy::AllowUnsigned).await;
    n.orch.registry.set_price("toy", Price { per_unit: 7, scaling: 1 });
    let v = sdk(&py, &[&n.https()]).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["face_value"], "", "free: nothing to pay");
    assert_eq!(v["price"], json!([0, 1]));
    assert_eq!(v["byoc"], json!({"toy": [0, 1], "cheap": [0, 1]}), "no key: every capability is free");
    assert_eq!(v["address"], "");
    // The SDK's free path then posts the job without payment.
    let job = JobRequest {
        id: "j".into(),
        request: "{}".into(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    let r = client()
        .post(format!("{}/process/request/echo", n.http()))
        .header("Livepeer", job.to_header())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn params_from_grpc_pay_for_jobs_and_segment_credentials_are_checked() {
    let Some(py) = python() else { return };
    let (n, _) = priced("127.0.20.4:0", Transport::Sniffed).await;
    let (other, _) = priced("127.0.20.5:0", Transport::Sniffed).await;
    let (key, key_hex) = sender();
    let info_for = |url: String| {
        let (py, key_hex) = (py.clone(), key_hex.clone());
        async move { info_of(&sdk(&py, &[&url, &key_hex]).await) }
    };
    // Plain payment over https (the API on the multiplexed port): credited, job answered.
    let info = info_for(n.https()).await;
    let (status, body, balance) = batch(&n.https(), &key, &[("Livepeer-Payment", &payment(&key, &info))]).await;
    assert_eq!((status, body.as_str()), (200, r#"{"hello":"byoc"}"#));
    let after_one = balance.unwrap();
    assert!(after_one > 0, "the ticket's expected value, less the job's second: {after_one}");
    // With valid segment credentials (the gRPC token, signed by the sender), over plain HTTP.
    let info = info_for(n.https()).await;
    let seg = segcreds::seg_creds(&key, "manifest", 0, b"", info.auth_token.clone()).unwrap();
    let headers = [("Livepeer-Payment", payment(&key, &info)), ("Livepeer-Segment", seg)];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, balance) = batch(&n.http(), &key, &headers).await;
    assert_eq!(status, 200, "{body}");
    assert!(balance.unwrap() > after_one);
    let before = balance.unwrap();

    // Refused segments: 400, nothing credited, nothing run.
    let forger = SecretKey::generate();
    let foreign = info_for(other.https()).await;
    let mut moved = info.auth_token.clone().unwrap();
    moved.expiration += 3600;
    let cases = [
        ("signed by another key", segcreds::seg_creds(&forger, "m", 0, b"", info.auth_token.clone()).unwrap()),
        ("another orchestrator's token", segcreds::seg_creds(&key, "m", 0, b"", foreign.auth_token.clone()).unwrap()),
        ("a token whose expiry was moved", segcreds::seg_creds(&key, "m", 0, b"", Some(moved)).unwrap()),
        ("no token", segcreds::seg_creds(&key, "m", 0, b"", None).unwrap()),
        ("garbage", "not base64!".to_string()),
    ];
    for (what, seg) in cases {
        let info = info_for(n.https()).await;
        let pay = payment(&key, &info);
        let (status, body, _) = batch(&n.http(), &key, &[("Livepeer-Payment", &pay), ("Livepeer-Segment", &seg)]).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(body.starts_with("invalid Livepeer-Segment: "), "{what}: {body}");
        for route in ["/ai/stream/payment", "/ai/stream/start"] {
            let job = JobRequest {
                id: "s1".into(),
                request: r#"{"stream_id":"s1"}"#.into(),
                capability: "toy".into(),
                timeout_seconds: 10,
                ..Default::default()
            };
            let r = client()
                .post(format!("{}{route}", n.http()))
                .header("Livepeer", byoc_e2e::nodes::signed_job(job, &key))
                .header("Livepeer-Payment", &pay)
                .header("Livepeer-Segment", &seg)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{what} on {route}");
        }
    }
    // Nothing was credited or started: the next job, without payment, sees the balance as it was
    // (less its own second).
    let (status, _, balance) = batch(&n.http(), &key, &[]).await;
    assert_eq!((status, balance), (200, Some(before - 7)));
    assert!(n.orch.streams().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_token_is_refused() {
    let Some(py) = python() else { return };
    let key = SecretKey::generate();
    let n = node("127.0.20.6:0", Transport::Sniffed, |c| {
        c.key = Some(key);
        c.auth_token_ttl = Duration::ZERO;
    })
    .await;
    n.orch.registry.set_price("toy", Price { per_unit: 7, scaling: 1 });
    let (sender, sender_hex) = sender();
    let info = info_of(&sdk(&py, &[&n.https(), &sender_hex]).await);
    let seg = segcreds::seg_creds(&sender, "m", 0, b"", info.auth_token.clone()).unwrap();
    // The token expired when it was made; a second later it is refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, _) =
        batch(&n.http(), &sender, &[("Livepeer-Payment", &payment(&sender, &info)), ("Livepeer-Segment", &seg)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_and_tls_share_one_port() {
    let n = node("127.0.20.7:0", Transport::Sniffed, |c| c.signatures = SignaturePolicy::AllowUnsigned).await;
    for base in [n.http(), n.https()] {
        let r = client().get(format!("{base}/capabilities")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{base}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["capabilities"].as_array().unwrap().len(), 2, "{base}");
    }
    // TLS negotiates HTTP/2 when the client offers it (as gRPC clients do).
    let h2 =
        byoc_trickle::http_client_builder().danger_accept_invalid_certs(true).http2_prior_knowledge().build().unwrap();
    let r = h2.get(format!("{}/capabilities", n.https())).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, http::Version::HTTP_2));
    // gRPC over that port is answered by the gRPC handler, plain HTTP by the routes.
    let r = h2
        .post(format!("{}/net.Orchestrator/GetOrchestrator", n.https()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 2, 0x20, 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/grpc");
    let body = r.bytes().await.unwrap();
    let info = OrchestratorInfo::decode(body.get(5..).unwrap()).unwrap();
    assert_eq!(info.transcoder, n.http());
    // Bad frames, compression and oversized messages get a gRPC status, not an HTTP error.
    let cases: [(Vec<u8>, &str); 4] = [
        (vec![1, 0, 0, 0, 1, 0], "12"),
        (vec![0, 0, 0], "3"),
        (vec![0, 0, 0, 0, 9, 1], "3"),
        ([vec![0, 0, 1, 0, 1], vec![0; 65537]].concat(), "8"),
    ];
    for (body, code) in cases {
        let r = h2
            .post(format!("{}/net.Orchestrator/GetOrchestrator", n.https()))
            .header("content-type", "application/grpc")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["grpc-status"].to_str().unwrap()), (200, code));
    }
}
