//! Attacks on the orchestrator.

use std::time::Duration;

use byoc_payment::SecretKey;
use byoc_payment::job::JobRequest;
use serde_json::json;

use crate::common::{http, post_job, raw_http, toy_orchestrator, toy_request};

fn signed(key: &SecretKey, request: serde_json::Value) -> String {
    byoc_e2e::nodes::signed_job(toy_request("", request, json!({})), key)
}

#[tokio::test]
async fn a_batch_path_cannot_reach_the_workers_other_routes() {
    let (orch_url, _orch, calls) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let header = signed(&SecretKey::generate(), json!({}));
    for path in ["..%2fstream%2fstop", "x%5c..%5cstream"] {
        let r = post_job(&format!("{orch_url}/process/request/{path}"), &header, "{}").await;
        assert_eq!(r.status(), 400, "{path}");
    }
    for path in ["../stream/stop", "%2e%2e/stream/stop"] {
        let req = format!(
            "POST /process/request/{path} HTTP/1.1\r\nHost: x\r\nLivepeer: {header}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        assert_eq!(raw_http(&orch_url, &req).await.0, 400, "{path}");
    }
    assert!(calls.lock().unwrap().is_empty(), "the worker was asked nothing: {:?}", calls.lock().unwrap());
}

#[tokio::test]
async fn a_stream_started_directly_cannot_take_another_streams_channels() {
    let (orch_url, orch, _) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true});
    let call = |route: &'static str, key: &SecretKey, id: &str| {
        let header = byoc_e2e::nodes::signed_job(toy_request(id, json!({ "stream_id": id }), legs.clone()), key);
        http().post(format!("{orch_url}/ai/stream/{route}")).header("Livepeer", header).body("{}").send()
    };
    assert_eq!(call("start", &SecretKey::generate(), "v").await.unwrap().status(), 200);
    let victims = orch.streams()[0].channels.names();
    for suffix in ["out", "events", "control", "data"] {
        let (key, id) = (SecretKey::generate(), format!("v-{suffix}"));
        let r = call("start", &key, &id).await.unwrap();
        assert!(r.status() == 200 || r.status() == 409, "{suffix}: {}", r.status());
        let theirs: Vec<String> =
            orch.streams().iter().filter(|s| s.id == id).flat_map(|s| s.channels.names()).collect();
        assert!(theirs.iter().all(|c| !victims.contains(c)), "{suffix}: {theirs:?} overlaps {victims:?}");
        if r.status() == 200 {
            assert_eq!(call("stop", &key, &id).await.unwrap().status(), 200);
        }
        assert!(victims.iter().all(|c| orch.trickle.contains(c)), "{suffix}: the victim lost a channel");
        assert_eq!(orch.streams().len(), 1, "{suffix}: only the victim is left");
    }
}

#[tokio::test]
async fn a_worker_registration_cannot_take_a_plugins_or_another_workers_capability() {
    let runtime = crate::common::bundled_plugins(byoc_runtime::RuntimeConfig {
        cache_dir: byoc_runtime::CacheDir::At(byoc_e2e::nodes::root().join("target/runtime-test-cache")),
        ..Default::default()
    })
    .await;
    // Registration open to anyone, as `byoc dev` runs it.
    let (url, orch) = crate::common::serve_orchestrator(&runtime, 2, |c| c.open_registration = true).await;
    let register = |name: &str, worker: &str, token: &str| {
        http()
            .post(format!("{url}/capability/register"))
            .json(&json!({"name": name, "url": worker, "capacity": 1, "token": token}))
            .send()
    };
    let is_plugin = || orch.registry.get("passthrough").is_some_and(|c| c.backend.plugin().is_some());
    assert!(is_plugin());
    let r = register("passthrough", "http://127.0.0.1:9", "").await.unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
    assert!(is_plugin(), "the plugin still serves its capability");
    let r = http().post(format!("{url}/capability/unregister")).body("passthrough").send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(is_plugin(), "unregister never removes a plugin");
    // A worker's name is its own: another token cannot re-register (redirect) or take it.
    assert_eq!(register("mine", "http://127.0.0.1:7001", "first").await.unwrap().status(), 200);
    assert_eq!(register("mine", "http://127.0.0.1:7002", "other").await.unwrap().status(), 409);
    assert_eq!(register("mine", "http://127.0.0.1:7003", "").await.unwrap().status(), 409);
    let cap = orch.registry.get("mine").unwrap();
    assert!(format!("{:?}", cap.backend).contains("7001"), "{:?}", cap.backend);
    // The same worker (same token) may update its registration.
    assert_eq!(register("mine", "http://127.0.0.1:7004", "first").await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_unsigned_job_cannot_carry_a_payment_in_priced_mode() {
    // Priced mode (the node has a key) that also accepts unsigned jobs for free capabilities.
    let (orch_url, _, calls) = crate::common::toy_orchestrator_with(200, |c| {
        c.key = Some(SecretKey::generate());
        c.signatures = byoc_payment::job::SignaturePolicy::AllowUnsigned;
    })
    .await;
    let unsigned = crate::common::toy_job(json!({}));
    for route in ["process/request/echo", "ai/stream/payment"] {
        let r = http()
            .post(format!("{orch_url}/{route}"))
            .header("Livepeer", &unsigned)
            .header("Livepeer-Payment", "CgA=")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{route}: {}", r.text().await.unwrap());
    }
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_job_timeout_out_of_range_is_400() {
    let (orch_url, _, calls) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let key = SecretKey::generate();
    for t in [-5, 0, 1 << 40] {
        let job = JobRequest { timeout_seconds: t, ..toy_request("", json!({}), json!({})) };
        let r = http()
            .post(format!("{orch_url}/process/request/echo"))
            .header("Livepeer", byoc_e2e::nodes::signed_job(job, &key))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "timeout {t}");
    }
    assert!(calls.lock().unwrap().is_empty());
}

/// An unsigned, unstamped stream job (video in) for stream `id` with `request` as given.
fn raw_stream_job(id: &str, request: serde_json::Value) -> JobRequest {
    toy_request(id, request, json!({"enable_video_ingress": true}))
}

#[tokio::test]
async fn a_captured_start_cannot_be_replayed_renamed_or_used_late() {
    let (orch_url, orch, _) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let key = SecretKey::generate();
    let post = |route: &'static str, header: String| {
        http().post(format!("{orch_url}/ai/stream/{route}")).header("Livepeer", header).body("{}").send()
    };
    let start = byoc_e2e::nodes::signed_job(raw_stream_job("s", json!({"stream_id": "s"})), &key);
    assert_eq!(post("start", start.clone()).await.unwrap().status(), 200);
    let stop = byoc_e2e::nodes::signed_job(raw_stream_job("s", json!({"stream_id": "s"})), &key);
    assert_eq!(post("stop", stop).await.unwrap().status(), 200);
    // The captured start, replayed after the stop: refused, nothing started (or charged).
    let r = post("start", start.clone()).await.unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
    assert!(orch.streams().is_empty());
    // The same signed request under another (unsigned) id.
    let mut renamed = JobRequest::from_header(&start).unwrap();
    renamed.id = "other".into();
    assert_eq!(post("start", renamed.to_header()).await.unwrap().status(), 400);
    assert!(orch.streams().is_empty());
    // A freshly signed start of the same id is fine.
    let fresh = byoc_e2e::nodes::signed_job(raw_stream_job("s", json!({"stream_id": "s"})), &key);
    assert_eq!(post("start", fresh).await.unwrap().status(), 200);
    // Stale, future, or unstamped signed jobs.
    let stamped_at = |ms: u64| {
        let mut j = raw_stream_job("t", json!({"stream_id": "t"}));
        j.stamp_issued_at(ms).unwrap();
        j.sign(&key).unwrap();
        j.to_header()
    };
    let now =
        u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    for (header, what) in [
        (stamped_at(now - 10 * 60_000), "ten minutes old"),
        (stamped_at(now + 10 * 60_000), "ten minutes ahead"),
        (
            {
                let mut j = raw_stream_job("t", json!({"stream_id": "t"}));
                j.sign(&key).unwrap();
                j.to_header()
            },
            "unstamped",
        ),
        (byoc_e2e::nodes::signed_job(raw_stream_job("t", json!({})), &key), "no stream_id in the request"),
    ] {
        let r = post("start", header).await.unwrap();
        assert_eq!(r.status(), 400, "{what}: {}", r.text().await.unwrap());
    }
    assert_eq!(orch.streams().len(), 1, "only the fresh start runs");
}

#[tokio::test]
async fn go_livepeer_style_unstamped_jobs_are_accepted_only_when_the_operator_allows() {
    let (orch_url, orch, _) = crate::common::toy_orchestrator_with(200, |c| c.accept_unstamped_jobs = true).await;
    let key = SecretKey::generate();
    let mut j = raw_stream_job("g", json!({}));
    j.sign(&key).unwrap();
    let start = j.to_header();
    let post = |header: String| {
        http().post(format!("{orch_url}/ai/stream/start")).header("Livepeer", header).body("{}").send()
    };
    assert_eq!(post(start.clone()).await.unwrap().status(), 200);
    let mut stop = raw_stream_job("g", json!({"stream_id": "g"}));
    stop.sign(&key).unwrap();
    let r = http().post(format!("{orch_url}/ai/stream/stop")).header("Livepeer", stop.to_header()).send();
    assert_eq!(r.await.unwrap().status(), 200);
    // Even then, its replay after the stream ended here is refused.
    assert_eq!(post(start).await.unwrap().status(), 409);
    assert!(orch.streams().is_empty());
}
