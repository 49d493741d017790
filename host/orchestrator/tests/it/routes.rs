//! Each route's refusals, status by status, on the router alone (`tower::ServiceExt::oneshot`,
//! no sockets). The jobs here never reach a worker: every request is refused before.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, Price, WorkerRegistration, router};
use byoc_payment::SecretKey;
use byoc_payment::job::{EthAddressCredential, JobRequest, SignaturePolicy};
use byoc_trickle::TrickleStore;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The routes that take a `Livepeer` job header.
const JOB_ROUTES: [&str; 5] =
    ["/process/request/echo", "/ai/stream/start", "/ai/stream/stop", "/ai/stream/update", "/ai/stream/payment"];

/// An orchestrator's router, with the orchestrator behind it.
struct App {
    router: Router,
    orch: Arc<Orchestrator>,
}

/// What a request got.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

/// An orchestrator in free mode with registration secret `s3cret`, as `cfg` adjusts it.
fn app(cfg: impl FnOnce(&mut OrchestratorConfig)) -> App {
    let mut config = OrchestratorConfig {
        secret: Some("s3cret".into()),
        signatures: SignaturePolicy::AllowUnsigned,
        ..OrchestratorConfig::default()
    };
    cfg(&mut config);
    let orch = Orchestrator::new(config, TrickleStore::default()).unwrap();
    App { router: router(orch.clone()), orch }
}

impl App {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    /// `POST uri` with `headers` and `body`.
    async fn post(&self, uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Answer {
        let mut req = Request::post(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    /// `POST uri` with the job header `livepeer` and `body`.
    async fn job(&self, uri: &str, livepeer: &str, body: impl Into<Body>) -> Answer {
        self.post(uri, &[("Livepeer", livepeer)], body).await
    }

    /// Registers the worker capability `toy` (never reached) with `capacity` slots.
    fn offer_toy(&self, capacity: i64) {
        let reg = WorkerRegistration {
            name: "toy".into(),
            url: "http://127.0.0.1:9".into(),
            capacity,
            token: "t".into(),
            ..Default::default()
        };
        self.orch.registry.register_worker(&reg).unwrap();
    }
}

/// An unsigned job for `capability` whose `request` is `request`.
fn job(id: &str, capability: &str, request: Value) -> JobRequest {
    JobRequest {
        id: id.into(),
        request: request.to_string(),
        parameters: "{}".into(),
        capability: capability.into(),
        timeout_seconds: 10,
        ..Default::default()
    }
}

/// `job`'s header, unsigned.
fn unsigned(id: &str, capability: &str, request: Value) -> String {
    job(id, capability, request).to_header()
}

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test]
async fn registration_needs_the_secret_and_a_valid_worker() {
    let a = app(|_| {});
    let register = |auth: Option<&'static str>, body: &'static str| {
        let headers: Vec<(&str, &str)> = auth.map(|v| ("Authorization", v)).into_iter().collect();
        let a = &a;
        async move { a.post("/capability/register", &headers, body).await }
    };
    let worker = r#"{"name":"toy","url":"http://127.0.0.1:9","capacity":1,"token":"a"}"#;
    let no_auth = register(None, worker).await;
    assert_eq!((no_auth.status, no_auth.body.as_str()), (StatusCode::BAD_REQUEST, "invalid authorization\n"));
    assert_eq!(register(Some("s3cre"), worker).await.status, StatusCode::BAD_REQUEST);
    let not_json = register(Some("s3cret"), "{not json").await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert!(not_json.body.starts_with("Error registering capability: "), "{}", not_json.body);
    assert_eq!(register(Some("s3cret"), r#"{"name":"x"}"#).await.status, StatusCode::BAD_REQUEST, "no URL");
    let ok = register(Some("s3cret"), worker).await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(ok.headers[http::header::CONTENT_TYPE], "application/json");
    let other_token = r#"{"name":"toy","url":"http://127.0.0.1:9","capacity":1,"token":"b"}"#;
    assert_eq!(register(Some("s3cret"), other_token).await.status, StatusCode::CONFLICT, "the name is held");
    assert_eq!(a.post("/capability/unregister", &[], "toy").await.status, StatusCode::BAD_REQUEST);
    assert!(a.orch.registry.get("toy").is_some(), "an unauthorized unregister changes nothing");
    let get = a.send(Request::get("/capability/register").body(Body::empty()).unwrap()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);

    let closed = app(|c| c.secret = None);
    let r = closed.post("/capability/register", &[], worker).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no secret configured and no opt-in");
}

#[tokio::test]
async fn job_tokens_need_a_verified_credential_and_a_capability() {
    let a = app(|c| c.signatures = SignaturePolicy::Required);
    let token = |headers: Vec<(&'static str, String)>| {
        let mut req = Request::get("/process/token");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        a.send(req.body(Body::empty()).unwrap())
    };
    let cred = EthAddressCredential::new(&SecretKey::generate()).unwrap().to_header();
    assert_eq!(token(vec![("Livepeer-Capability", "toy".into())]).await.status, StatusCode::BAD_REQUEST);
    let garbage = token(vec![("Livepeer-Eth-Address", "not base64!".into()), ("Livepeer-Capability", "toy".into())]);
    assert_eq!(garbage.await.status, StatusCode::BAD_REQUEST);
    let no_capability = token(vec![("Livepeer-Eth-Address", cred.clone())]).await;
    assert_eq!(no_capability.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_capability.body, "Job capabilities not provided in Livepeer-Capability header\n");
    let fine = token(vec![("Livepeer-Eth-Address", cred), ("Livepeer-Capability", "nope".into())]).await;
    assert_eq!(fine.status, StatusCode::OK, "an unknown capability gets a token with no capacity");
}

#[tokio::test]
async fn every_job_route_refuses_a_missing_or_malformed_livepeer_header() {
    let a = app(|_| {});
    a.offer_toy(1);
    let no_timeout = JobRequest { id: "t".into(), capability: "toy".into(), ..Default::default() }.to_header();
    for route in JOB_ROUTES {
        let missing = a.post(route, &[], "{}").await;
        assert_eq!((missing.status, missing.body.as_str()), (StatusCode::BAD_REQUEST, "missing Livepeer job header\n"));
        let garbage = a.job(route, "%%%", "{}").await;
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{route}");
        assert!(garbage.body.starts_with("invalid job: "), "{route}: {}", garbage.body);
        assert_eq!(a.job(route, &no_timeout, "{}").await.status, StatusCode::BAD_REQUEST, "{route}");
    }
    assert_eq!(a.orch.registry.get("toy").unwrap().capacity.in_use(), 0);
}

#[tokio::test]
async fn a_signed_job_must_verify_and_be_fresh() {
    let a = app(|c| c.signatures = SignaturePolicy::Required);
    let (key, other) = (SecretKey::generate(), SecretKey::generate());
    let signed = |mut j: JobRequest, issued_at: Option<u64>| {
        if let Some(at) = issued_at {
            j.stamp_issued_at(at).unwrap();
        }
        j.sign(&key).unwrap();
        j
    };
    let fresh = Some(now_ms());
    for route in JOB_ROUTES {
        let unsigned = a.job(route, &unsigned("s1", "toy", json!({})), "{}").await;
        assert_eq!(unsigned.status, StatusCode::BAD_REQUEST, "{route}");
        assert!(unsigned.body.starts_with("invalid job: job is not signed"), "{route}: {}", unsigned.body);
        let mut forged = signed(job("s1", "toy", json!({})), fresh);
        forged.sender = other.address().to_checksum();
        assert_eq!(a.job(route, &forged.to_header(), "{}").await.status, StatusCode::BAD_REQUEST, "{route}");
        let stale = signed(job("s1", "toy", json!({})), Some(now_ms() - 10 * 60 * 1000));
        let stale = a.job(route, &stale.to_header(), "{}").await;
        assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{route}");
        assert!(stale.body.starts_with("job expired"), "{route}: {}", stale.body);
        let future = signed(job("s1", "toy", json!({})), Some(now_ms() + 10 * 60 * 1000));
        assert_eq!(a.job(route, &future.to_header(), "{}").await.status, StatusCode::BAD_REQUEST, "{route}");
        let unstamped = signed(job("s1", "toy", json!({})), None);
        assert_eq!(a.job(route, &unstamped.to_header(), "{}").await.status, StatusCode::BAD_REQUEST, "{route}");
    }
    // A signed start names its stream in what is signed.
    let elsewhere = signed(job("s1", "toy", json!({"stream_id": "s2"})), fresh);
    let r = a.job("/ai/stream/start", &elsewhere.to_header(), "{}").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::BAD_REQUEST, "request.stream_id must be the job's id\n"));
    let unnamed = signed(job("s1", "toy", json!({})), fresh);
    let r = a.job("/ai/stream/start", &unnamed.to_header(), "{}").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.starts_with("a signed start must name its stream"), "{}", r.body);
}

#[tokio::test]
async fn a_job_for_a_capability_not_offered_or_full_is_503() {
    let a = app(|_| {});
    for route in ["/process/request/echo", "/ai/stream/start"] {
        let r = a.job(route, &unsigned("s1", "nope", json!({})), "{}").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{route}");
        assert!(r.body.starts_with("No capacity available for capability: "), "{route}: {}", r.body);
    }
    a.offer_toy(0);
    for route in ["/process/request/echo", "/ai/stream/start"] {
        let r = a.job(route, &unsigned("s1", "toy", json!({})), "{}").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{route}");
    }
    assert!(a.orch.streams().is_empty());
    assert_eq!(a.orch.trickle.channel_count(), 0);
}

#[tokio::test]
async fn a_batch_path_that_climbs_or_hides_separators_is_400_before_anything_else() {
    let a = app(|_| {});
    a.offer_toy(1);
    for path in ["..%2f..%2fai%2fstream%2fstop", "a/../../ai/stream/stop", "a//b", "%2e%2e/x"] {
        let r = a.job(&format!("/process/request/{path}"), &unsigned("b", "toy", json!({})), "{}").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        // Even without a job header: the path is checked first.
        assert_eq!(a.post(&format!("/process/request/{path}"), &[], "").await.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(a.orch.registry.get("toy").unwrap().capacity.in_use(), 0);
}

#[tokio::test]
async fn stop_update_and_payment_must_name_a_running_stream() {
    let a = app(|_| {});
    a.offer_toy(1);
    for route in ["/ai/stream/stop", "/ai/stream/update"] {
        let unnamed = a.job(route, &unsigned("x", "toy", json!({})), "{}").await;
        assert_eq!(
            (unnamed.status, unnamed.body.as_str()),
            (StatusCode::BAD_REQUEST, "request must be a JSON object with stream_id\n"),
            "{route}"
        );
    }
    for route in ["/ai/stream/stop", "/ai/stream/update", "/ai/stream/payment"] {
        let ghost = a.job(route, &unsigned("x", "toy", json!({"stream_id": "ghost"})), "{}").await;
        assert_eq!((ghost.status, ghost.body.as_str()), (StatusCode::NOT_FOUND, "Stream not found\n"), "{route}");
    }
    // A payment naming no stream is for the sender's balance: nothing to pay in free mode.
    let r = a.job("/ai/stream/payment", &unsigned("x", "toy", json!({})), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["livepeer-balance"], "0");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let a = app(|c| c.max_body_bytes = 16);
    a.offer_toy(1);
    let big = " ".repeat(17);
    for route in ["/ai/stream/start", "/ai/stream/stop", "/ai/stream/update"] {
        let r = a.job(route, &unsigned("s1", "toy", json!({"stream_id": "s1"})), big.clone()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{route}");
    }
    assert_eq!(a.orch.registry.get("toy").unwrap().capacity.in_use(), 0);
    assert!(a.orch.streams().is_empty());
}

#[tokio::test]
async fn a_paid_node_refuses_unsigned_payments_and_unsigned_jobs_on_priced_capabilities() {
    let a = app(|c| c.key = Some(SecretKey::generate()));
    a.offer_toy(1);
    let r = a
        .post("/ai/stream/payment", &[("Livepeer", &unsigned("x", "toy", json!({}))), ("Livepeer-Payment", "x")], "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.starts_with("a payment needs a signed job"), "{}", r.body);
    a.orch.registry.set_price("toy", Price { per_unit: 1, scaling: 1 });
    for route in ["/process/request/echo", "/ai/stream/start"] {
        let r = a.job(route, &unsigned("s1", "toy", json!({})), "{}").await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::PAYMENT_REQUIRED, "toy is priced: jobs must be signed\n"));
    }
    assert_eq!(a.orch.registry.get("toy").unwrap().capacity.in_use(), 0);
}

#[tokio::test]
async fn plugin_reload_needs_the_secret_and_plugins() {
    let a = app(|_| {});
    assert_eq!(a.post("/plugins/reload", &[], "").await.status, StatusCode::BAD_REQUEST);
    let r = a.post("/plugins/reload", &[("Authorization", "s3cret")], "").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NOT_FOUND, "this node hosts no plugins\n"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_metrics_are_served() {
    let a = app(|_| {});
    assert_eq!(a.post("/nope", &[], "").await.status, StatusCode::NOT_FOUND);
    let req = |m: Method, uri: &str| Request::builder().method(m).uri(uri).body(Body::empty()).unwrap();
    assert_eq!(a.send(req(Method::GET, "/metrics")).await.status, StatusCode::OK);
    assert_eq!(a.send(req(Method::GET, "/process/request/echo")).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn shutdown_with_no_streams_is_quick() {
    let a = app(|_| {});
    tokio::time::timeout(Duration::from_secs(1), a.orch.shutdown()).await.expect("shutdown");
}
