//! The orchestrator over real HTTP on loopback, against a real (toy) worker HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use byoc_orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::SecretKey;
use byoc_payment::job::{EthAddressCredential, JobRequest, SignaturePolicy};
use byoc_trickle::{HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::common::{listen, orchestrator, wait_until_within};

/// One request the toy worker received.
#[derive(Debug, Clone)]
struct Call {
    /// The path below `/`, e.g. `stream/start`.
    route: String,
    /// Its `Authorization` header.
    auth: Option<String>,
    /// Its `X-Stream-Id` header.
    stream_id: Option<String>,
    /// Its body: JSON, or else the text as a JSON string.
    body: Value,
}

/// A toy worker: it records every call and answers with `status`.
#[derive(Default)]
struct ToyWorker {
    calls: Mutex<Vec<Call>>,
    status: Mutex<u16>,
}

impl ToyWorker {
    /// From now on every call is answered with `status`.
    fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }
}

async fn worker_route(
    State(w): State<Arc<ToyWorker>>,
    Path(route): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let header = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
    let v = serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    let call = Call { route: route.clone(), auth: header("authorization"), stream_id: header("x-stream-id"), body: v };
    w.calls.lock().unwrap().push(call);
    let status = StatusCode::from_u16(*w.status.lock().unwrap()).unwrap();
    if route == "echo" {
        return (status, [("content-type", "application/json"), ("x-metadata", "m1")], body).into_response();
    }
    (status, axum::Json(json!({"status": "success"}))).into_response()
}

struct Node {
    url: String,
    orch: Arc<Orchestrator>,
    worker_url: String,
    worker: Arc<ToyWorker>,
}

async fn node(cfg: impl FnOnce(&mut OrchestratorConfig)) -> Node {
    let worker = Arc::new(ToyWorker { status: Mutex::new(200), ..Default::default() });
    let worker_app = Router::new().route("/{*route}", post(worker_route)).with_state(worker.clone());
    let worker_url = listen(worker_app).await;
    let served = orchestrator("s3cret", cfg).await;
    Node { url: served.url, orch: served.orch, worker_url, worker }
}

fn http() -> reqwest::Client {
    byoc_trickle::http_client().unwrap()
}

impl Node {
    async fn register(&self, name: &str, capacity: i64) {
        let body = json!({"name": name, "url": self.worker_url, "capacity": capacity, "description": "toy",
            "price_per_unit": 0, "price_scaling": 1, "token": "worker-token"});
        let r = http()
            .post(format!("{}/capability/register", self.url))
            .header("Authorization", "s3cret")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// The calls the worker received on `route`, in order.
    fn calls(&self, route: &str) -> Vec<Call> {
        self.worker.calls.lock().unwrap().iter().filter(|c| c.route == route).cloned().collect()
    }

    fn in_use(&self, cap: &str) -> u32 {
        self.orch.registry.get(cap).map_or(0, |c| c.capacity.in_use())
    }
}

fn job(id: &str, cap: &str, request: Value, parameters: Value, key: Option<&SecretKey>) -> String {
    let j = JobRequest {
        id: id.into(),
        request: request.to_string(),
        parameters: parameters.to_string(),
        capability: cap.into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    match key {
        Some(k) => byoc_e2e::nodes::signed_job(j, k),
        None => j.to_header(),
    }
}

fn all_legs() -> Value {
    json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true})
}

async fn start(n: &Node, id: &str, key: Option<&SecretKey>) -> reqwest::Response {
    http()
        .post(format!("{}/ai/stream/start", n.url))
        .header("Livepeer", job(id, "toy", json!({ "stream_id": id }), all_legs(), key))
        .json(&json!({"params": {"prompt": "x"}}))
        .send()
        .await
        .unwrap()
}

async fn stop(n: &Node, id: &str, key: Option<&SecretKey>) -> reqwest::Response {
    http()
        .post(format!("{}/ai/stream/stop", n.url))
        .header("Livepeer", job("x", "toy", json!({"stream_id": id}), json!({}), key))
        .body("stream ended")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_needs_the_secret_compared_exactly() {
    let n = node(|_| {}).await;
    let body = json!({"name": "toy", "url": n.worker_url, "capacity": 1});
    let post = |auth: Option<&str>| {
        let mut r = http().post(format!("{}/capability/register", n.url)).json(&body);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 400);
    assert_eq!(post(Some("s3cre")).await.unwrap().status(), 400);
    let ok = post(Some("s3cret")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");
    let with_secret = |route: &str, body: &'static str| {
        http().post(format!("{}/capability/{route}", n.url)).header("Authorization", "s3cret").body(body).send()
    };
    let bad = with_secret("register", "{\"name\":\"x\"}").await.unwrap();
    assert_eq!(bad.status(), 400, "a registration without a URL is refused");
    assert_eq!(with_secret("unregister", "toy").await.unwrap().status(), 200);
    assert!(n.orch.registry.get("toy").is_none());
    assert_eq!(http().get(format!("{}/capability/register", n.url)).send().await.unwrap().status(), 405);

    let closed = node(|c| c.secret = None).await;
    let r = http().post(format!("{}/capability/register", closed.url)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403, "no secret configured and no opt-in: registration is refused");
    let open = node(|c| {
        c.secret = None;
        c.open_registration = true;
    })
    .await;
    let r = http().post(format!("{}/capability/register", open.url)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn job_tokens_report_capacity_and_check_the_credential() {
    let n = node(|c| c.signatures = SignaturePolicy::Required).await;
    n.register("toy", 3).await;
    let key = SecretKey::generate();
    let cred = EthAddressCredential::new(&key).unwrap().to_header();
    let get = |cred: Option<&str>, cap: Option<&str>| {
        let mut r = http().get(format!("{}/process/token", n.url));
        if let Some(c) = cred {
            r = r.header("Livepeer-Eth-Address", c);
        }
        if let Some(c) = cap {
            r = r.header("Livepeer-Capability", c);
        }
        r.send()
    };
    let t: Value = get(Some(&cred), Some("toy")).await.unwrap().json().await.unwrap();
    assert_eq!(t["available_capacity"], 3);
    assert_eq!(t["service_addr"], n.url.as_str());
    assert_eq!(t["sender_address"]["addr"], key.address().to_checksum());
    assert_eq!(t["LastNonce"], 0);
    assert!(t.get("balance").is_none(), "zero values are omitted, as go-livepeer does");
    let unknown: Value = get(Some(&cred), Some("nope")).await.unwrap().json().await.unwrap();
    assert!(unknown.get("available_capacity").is_none());
    assert_eq!(get(None, Some("toy")).await.unwrap().status(), 400);
    assert_eq!(get(Some(&cred), None).await.unwrap().status(), 400);
    let other = SecretKey::generate();
    let forged =
        EthAddressCredential { addr: key.address().to_checksum(), sig: EthAddressCredential::new(&other).unwrap().sig };
    assert_eq!(get(Some(&forged.to_header()), Some("toy")).await.unwrap().status(), 400);
    assert_eq!(get(Some("not base64!"), Some("toy")).await.unwrap().status(), 400);
}

#[tokio::test]
async fn batch_jobs_are_forwarded_and_release_their_slot() {
    let n = node(|_| {}).await;
    n.register("toy", 1).await;
    let r = http()
        .post(format!("{}/process/request/echo", n.url))
        .header("Livepeer", job("b1", "toy", json!({}), json!({}), None))
        .header("content-type", "application/json")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-metadata"], "m1");
    assert_eq!(r.headers()["livepeer-balance"], "0");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"hello": "world"}));
    let calls = n.calls("echo");
    assert_eq!(calls[0].auth.as_deref(), Some("Bearer worker-token"));
    assert_eq!(n.in_use("toy"), 0);
    let batch = |id: &str, capability: &str| {
        let header = job(id, capability, json!({}), json!({}), None);
        http().post(format!("{}/process/request/echo", n.url)).header("Livepeer", header).send()
    };
    assert_eq!(batch("b2", "nope").await.unwrap().status(), 503);
    let no_header = http().post(format!("{}/process/request/echo", n.url)).send().await.unwrap();
    assert_eq!(no_header.status(), 400);
    // A worker answering 401 loses its registration.
    n.worker.answer(401);
    assert_eq!(batch("b3", "toy").await.unwrap().status(), 500);
    assert!(n.orch.registry.get("toy").is_none());
}

#[tokio::test]
async fn a_stream_gets_its_channels_and_the_worker_its_urls() {
    let n = node(|_| {}).await;
    n.register("toy", 1).await;
    let r = start(&n, "s1", None).await;
    assert_eq!(r.status(), 200);
    let h = |name: &str| r.headers()[name].to_str().unwrap().to_string();
    let base = format!("{}/ai/trickle", n.url);
    let ch = n.orch.streams()[0].channels.clone();
    // Each name is the stream id, a random part (no id can name another stream's channels) and the role.
    let random = ch.control.strip_prefix("s1-").and_then(|r| r.strip_suffix("-control")).unwrap();
    assert!(random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()), "{random}");
    assert_eq!(ch.input.as_deref(), Some(format!("s1-{random}-in").as_str()));
    assert_eq!(h("x-publish-url"), format!("{base}/s1-{random}-in"));
    assert_eq!(h("x-subscribe-url"), format!("{base}/s1-{random}-out"));
    assert_eq!(h("x-control-url"), format!("{base}/s1-{random}-control"));
    assert_eq!(h("x-events-url"), format!("{base}/s1-{random}-events"));
    assert_eq!(h("x-data-url"), format!("{base}/s1-{random}-data"));
    let Call { auth, stream_id, body, .. } = n.calls("stream/start").remove(0);
    assert_eq!((auth.as_deref(), stream_id.as_deref()), (Some("Bearer worker-token"), Some("s1")));
    assert_eq!(body["gateway_request_id"], "s1");
    assert_eq!(body["subscribe_url"], format!("{base}/s1-{random}-in"));
    assert_eq!(body["publish_url"], format!("{base}/s1-{random}-out"));
    assert_eq!(body["params"], json!({"prompt": "x"}));
    assert_eq!(n.in_use("toy"), 1);
    // The gateway's input reaches whoever subscribes to the worker's subscribe_url.
    let mut sub = HttpSubscriber::new(
        body["subscribe_url"].as_str().unwrap(),
        SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() },
    )
    .unwrap();
    let mut publisher = HttpPublisher::new(h("x-publish-url"), "video/mp2t").unwrap();
    let mut seg = publisher.next_segment();
    seg.write(Bytes::from_static(b"\x47ts bytes")).unwrap();
    seg.finish().await.unwrap();
    assert_eq!(&sub.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"\x47ts bytes");
    // Full: a second stream is refused without touching the first.
    assert_eq!(start(&n, "s2", None).await.status(), 503);
    assert_eq!(start(&n, "s1", None).await.status(), 409);
    assert!(n.orch.trickle.contains(ch.output.as_deref().unwrap()));
    // Update goes to /stream/params.
    let up = http()
        .post(format!("{}/ai/stream/update", n.url))
        .header("Livepeer", job("x", "toy", json!({"stream_id": "s1"}), json!({}), None))
        .body(r#"{"prompt":"y"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(n.calls("stream/params")[0].body, json!({"prompt": "y"}));
    // Stop: worker told, channels gone, slot free.
    assert_eq!(stop(&n, "s1", None).await.status(), 200);
    assert_eq!(n.calls("stream/stop")[0].body, Value::String("stream ended".into()));
    assert!(ch.names().iter().all(|c| !n.orch.trickle.contains(c)), "every channel is gone");
    assert_eq!(n.in_use("toy"), 0);
    // Stopping it again: 410, it ended here (an id never seen is 404).
    assert_eq!(stop(&n, "s1", None).await.status(), 410);
    assert_eq!(stop(&n, "never-started", None).await.status(), 404);
    assert!(sub.next_segment().await.unwrap().is_none(), "the worker's subscription ends with the stream");
}

#[tokio::test]
async fn a_worker_refusing_the_start_frees_everything() {
    let n = node(|_| {}).await;
    n.register("toy", 1).await;
    n.worker.answer(503);
    let r = start(&n, "busy", None).await;
    assert_eq!(r.status(), 503, "the worker's status is forwarded");
    assert_eq!(n.in_use("toy"), 0);
    assert_eq!(n.orch.trickle.channel_count(), 0);
    assert!(n.orch.streams().is_empty());
    n.worker.answer(401);
    assert_eq!(start(&n, "auth", None).await.status(), 500);
    assert!(n.orch.registry.get("toy").is_none(), "a worker rejecting our token is removed");
}

#[tokio::test]
async fn streams_are_bound_to_the_sender_that_started_them() {
    let n = node(|c| c.signatures = SignaturePolicy::Required).await;
    n.register("toy", 2).await;
    let (alice, mallory) = (SecretKey::generate(), SecretKey::generate());
    assert_eq!(start(&n, "unsigned", None).await.status(), 400, "unsigned jobs are refused unless in free mode");
    assert_eq!(start(&n, "a1", Some(&alice)).await.status(), 200);
    assert_eq!(stop(&n, "a1", Some(&mallory)).await.status(), 403);
    let pay = |key: &SecretKey| {
        http()
            .post(format!("{}/ai/stream/payment", n.url))
            .header("Livepeer", job("x", "toy", json!({"stream_id": "a1"}), json!({}), Some(key)))
            .send()
    };
    assert_eq!(pay(&mallory).await.unwrap().status(), 403);
    assert_eq!(pay(&alice).await.unwrap().status(), 200);
    assert_eq!(n.in_use("toy"), 1);
    assert_eq!(stop(&n, "a1", Some(&alice)).await.status(), 200);
    assert_eq!(n.in_use("toy"), 0);
}

#[tokio::test]
async fn a_gateway_that_goes_quiet_loses_its_stream() {
    let n = node(|c| c.stream_idle_timeout = Duration::from_millis(300)).await;
    n.register("toy", 1).await;
    assert_eq!(start(&n, "quiet", None).await.status(), 200);
    wait_until_within("the stream to end", Duration::from_secs(10), || n.orch.streams().is_empty()).await;
    assert_eq!(n.in_use("toy"), 0);
    // The worker is told right after the stream is removed.
    wait_until_within("the worker to be told", Duration::from_secs(10), || !n.calls("stream/stop").is_empty()).await;
    assert_eq!(n.calls("stream/stop").len(), 1);
}

#[tokio::test]
async fn concurrent_starts_from_two_gateways_never_overcommit() {
    let n = Arc::new(node(|_| {}).await);
    n.register("toy", 3).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let n = n.clone();
        tasks.push(tokio::spawn(async move { start(&n, &format!("c{i}"), None).await.status().as_u16() }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 3);
    assert!(codes.iter().all(|c| *c == 200 || *c == 503));
    assert_eq!(n.in_use("toy"), 3);
    n.orch.shutdown().await;
    assert_eq!(n.in_use("toy"), 0);
    assert!(n.orch.streams().is_empty());
    assert_eq!(n.calls("stream/stop").len(), 3);
}

#[tokio::test]
async fn malformed_start_requests_get_4xx_and_change_nothing() {
    let n = node(|_| {}).await;
    n.register("toy", 1).await;
    let post = |header: String, body: &'static str| {
        http().post(format!("{}/ai/stream/start", n.url)).header("Livepeer", header).body(body).send()
    };
    let bad_params = JobRequest {
        id: "p".into(),
        request: "{}".into(),
        parameters: "{not json".into(),
        capability: "toy".into(),
        timeout_seconds: 5,
        ..Default::default()
    };
    assert_eq!(post(bad_params.to_header(), "{}").await.unwrap().status(), 400);
    assert_eq!(post(job("b", "toy", json!({}), all_legs(), None), "[1,2]").await.unwrap().status(), 400);
    assert_eq!(post(job("bad/id", "toy", json!({}), all_legs(), None), "{}").await.unwrap().status(), 400);
    assert_eq!(post(job("", "toy", json!({}), all_legs(), None), "{}").await.unwrap().status(), 400);
    assert_eq!(post("%%%".into(), "{}").await.unwrap().status(), 400);
    let no_timeout = JobRequest { id: "t".into(), capability: "toy".into(), ..Default::default() };
    assert_eq!(post(no_timeout.to_header(), "{}").await.unwrap().status(), 400);
    let big = vec![b' '; 11 << 20];
    let r = http()
        .post(format!("{}/ai/stream/start", n.url))
        .header("Livepeer", job("big", "toy", json!({}), all_legs(), None))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(n.in_use("toy"), 0);
    assert!(n.orch.streams().is_empty());
    assert_eq!(n.orch.trickle.channel_count(), 0);
}
