//! Gateway + orchestrator + a toy worker, all real HTTP on loopback.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use byoc_gateway::{Gateway, GatewayConfig};
use byoc_orchestrator::Orchestrator;
use byoc_payment::job::JobRequest;
use byoc_trickle::{LocalPublisher, LocalSubscriber, Seq, SeqRequest};
use bytes::Bytes;
use serde_json::{Value, json};

use common::{Calls, all_legs, eventually, http, listen, toy_job as livepeer, wait_until};

async fn orchestrator(start_status: u16, idle: Duration) -> (String, Arc<Orchestrator>, Calls) {
    common::toy_orchestrator(start_status, idle).await
}

async fn gateway(orchestrators: Vec<String>) -> (String, Arc<Gateway>) {
    gateway_with(|c| {
        c.orchestrators = orchestrators;
        c.keepalive_every = Duration::from_millis(100);
        // The toy worker sends no events; the timeout has its own test.
        c.events_timeout = None;
    })
    .await
}

/// A gateway on loopback, configured by `f` (its `public_url` is set to where it listens).
async fn gateway_with(f: impl FnOnce(&mut GatewayConfig)) -> (String, Arc<Gateway>) {
    common::serve_gateway_with(Vec::new(), f).await
}

async fn start(gw: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", livepeer(all_legs()))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stream_end_to_end_through_gateway_and_orchestrator() {
    let (orch_url, orch, calls) = orchestrator(200, Duration::from_millis(400)).await;
    let (gw_url, gw) = gateway(vec![orch_url.clone()]).await;
    let r = start(&gw_url, json!({"stream_name": "cam-out", "params": "{\"prompt\":\"x\"}"})).await;
    assert_eq!(r.status(), 200);
    let urls: Value = r.json().await.unwrap();
    let id = urls["stream_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cam-out-"), "names ending in -out are fine: {id}");
    let secret = urls["stream_secret"].as_str().unwrap().to_string();
    let viewer = urls["viewer_token"].as_str().unwrap();
    assert_ne!(viewer, secret);
    assert!(urls["stop_url"].as_str().unwrap().ends_with(&format!("?token={secret}")));
    assert!(urls["status_url"].as_str().unwrap().ends_with(&format!("?token={viewer}")));
    // The worker was started with the client's params and the orchestrator's channel URLs.
    let start_call = calls.lock().unwrap().iter().find(|c| c.0 == "stream/start").unwrap().1.clone();
    assert_eq!(start_call["params"], json!({"prompt": "x"}));
    assert_eq!(start_call["gateway_request_id"], id.as_str());

    // Per-stream routes need the stream's secret.
    let status_url = format!("{gw_url}/process/stream/{id}/status");
    assert_eq!(http().get(&status_url).send().await.unwrap().status(), 401);
    assert_eq!(http().get(&status_url).bearer_auth("nope").send().await.unwrap().status(), 403);
    let st: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(st["orchestrator"], orch_url.as_str());
    assert_eq!(st["gateway_address"], gw.address().to_checksum());

    // The gateway's keepalives keep the orchestrator's stream alive past its idle timeout.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(orch.streams().len(), 1);

    // Events and data published by the worker arrive as SSE.
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    // Subscribed once the answer's headers are in: no wait needed before publishing.
    let mut data = http().get(urls["data_url"].as_str().unwrap()).send().await.unwrap();
    let channels = orch.streams()[0].channels.clone();
    let ev = LocalPublisher::new(&orch.trickle, &channels.events).unwrap();
    let mut seg = ev.next_segment().unwrap();
    seg.write(Bytes::from_static(br#"{"event":{"type":"status","fps":30},"queue_event_type":"ai_stream_events"}"#))
        .unwrap();
    seg.finish();
    let dp = LocalPublisher::new(&orch.trickle, channels.data.as_ref().unwrap()).unwrap();
    let mut seg = dp.next_segment().unwrap();
    seg.write(Bytes::from_static(b"{\"n\":1}\n{\"n\":2}\n")).unwrap();
    seg.finish();
    let mut got = String::new();
    while !got.contains("fps") {
        got.push_str(&String::from_utf8_lossy(&events.chunk().await.unwrap().unwrap()));
    }
    let mut lines = String::new();
    while !lines.contains("\"n\":2") {
        lines.push_str(&String::from_utf8_lossy(&data.chunk().await.unwrap().unwrap()));
    }
    assert!(lines.contains("data: {\"n\":1}\n\n") && lines.contains("data: {\"n\":2}\n\n"), "{lines}");
    let st: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(st["last_status"]["fps"], 30);

    // Ingest reaches the orchestrator's input channel; output comes back through egress.
    let mut input = LocalSubscriber::new(&orch.trickle, channels.input.as_ref().unwrap(), SeqRequest::At(Seq(0)));
    let r = http()
        .post(format!("{gw_url}/process/stream/{id}/ingest/0"))
        .bearer_auth(&secret)
        .body(&b"\x47input"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["lp-trickle-seq"], "0");
    assert_eq!(&input.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"\x47input");
    let out = LocalPublisher::new(&orch.trickle, channels.output.as_ref().unwrap()).unwrap();
    let mut seg = out.next_segment().unwrap();
    seg.write(Bytes::from_static(b"\x47output")).unwrap();
    seg.finish();
    let r = http().get(format!("{gw_url}/process/stream/{id}/egress/0")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(r.headers()["lp-trickle-seq"], "0");
    assert_eq!(&r.bytes().await.unwrap()[..], b"\x47output");

    // Update reaches the worker's /stream/params.
    let r = http().post(urls["update_url"].as_str().unwrap()).body(r#"{"prompt":"y"}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(calls.lock().unwrap().iter().any(|c| c.0 == "stream/params" && c.1 == json!({"prompt": "y"})));
    let verbatim = http().post(urls["update_url"].as_str().unwrap()).body("not json").send().await.unwrap();
    assert_eq!(verbatim.status(), 200, "updates are forwarded verbatim");
    let st: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(st["params"], json!({"prompt": "y"}), "only JSON objects become the remembered params");

    // Stop: everything is released on both nodes and the SSE streams end with an end event.
    let r = http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(gw.stream_ids().is_empty());
    assert!(orch.streams().is_empty());
    assert_eq!(orch.registry.get("toy").unwrap().capacity.in_use(), 0);
    let mut tail = String::new();
    while let Some(c) = events.chunk().await.unwrap() {
        tail.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(tail.contains("event: end\ndata: {\"type\":\"stream_ended\"}"), "{tail}");
    // Its owner learns that it ended (410, with why); see the attack tests for everyone else.
    assert_eq!(http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().status(), 410);

    // Both nodes export Prometheus metrics.
    let gw_metrics = http().get(format!("{gw_url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(gw_metrics.contains("byoc_gateway_streams_started_total{capability=\"toy\"}"), "{gw_metrics}");
    let orch_metrics = http().get(format!("{orch_url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(orch_metrics.contains("byoc_orchestrator_streams_started_total"), "{orch_metrics}");
    assert!(orch_metrics.contains("byoc_trickle_segments_published_total"), "{orch_metrics}");
}

#[tokio::test]
async fn a_rejecting_orchestrator_is_skipped_and_none_left_is_503_with_reasons() {
    let (busy_url, busy, _) = orchestrator(503, Duration::from_secs(60)).await;
    let (ok_url, ok, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, _) = gateway(vec![busy_url.clone(), ok_url.clone()]).await;
    let r = start(&gw_url, json!({})).await;
    assert_eq!(r.status(), 200);
    assert!(busy.streams().is_empty());
    assert_eq!(busy.registry.get("toy").unwrap().capacity.in_use(), 0);
    assert_eq!(ok.streams().len(), 1);

    let (gw2, _) = gateway(vec![busy_url.clone(), "http://127.0.0.1:9".into()]).await;
    let r = start(&gw2, json!({})).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reasons"].as_array().unwrap().len(), 2, "{body}");

    // include/exclude pick among the list.
    let only_busy = JobRequest {
        request: "{}".into(),
        parameters: json!({"orchestrators": {"exclude": [ok_url]}}).to_string(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    let r = http()
        .post(format!("{gw_url}/process/stream/start"))
        .header("Livepeer", only_busy.to_header())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn the_gateway_notices_when_the_orchestrator_ends_the_stream() {
    let (orch_url, orch, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, gw) = gateway(vec![orch_url]).await;
    assert_eq!(start(&gw_url, json!({})).await.status(), 200);
    orch.shutdown().await;
    wait_until("gateway stream removed", || gw.stream_ids().is_empty()).await;
}

#[tokio::test]
async fn bad_start_requests_are_4xx() {
    let (orch_url, orch, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, _) = gateway(vec![orch_url]).await;
    let post = |header: Option<String>, body: &'static str| {
        let mut r = http().post(format!("{gw_url}/process/stream/start")).body(body);
        if let Some(h) = header {
            r = r.header("Livepeer", h);
        }
        r.send()
    };
    assert_eq!(post(None, "{}").await.unwrap().status(), 400);
    assert_eq!(post(Some("@@".into()), "{}").await.unwrap().status(), 400);
    assert_eq!(post(Some(livepeer(all_legs())), "{").await.unwrap().status(), 400);
    assert_eq!(post(Some(livepeer(all_legs())), r#"{"params":"[1]"}"#).await.unwrap().status(), 400);
    assert_eq!(post(Some(livepeer(all_legs())), r#"{"stream_name":"a/b"}"#).await.unwrap().status(), 400);
    assert_eq!(post(Some(livepeer(all_legs())), r#"{"stream_id":"dup"}"#).await.unwrap().status(), 200);
    assert_eq!(post(Some(livepeer(all_legs())), r#"{"stream_id":"dup"}"#).await.unwrap().status(), 409);
    assert_eq!(orch.streams().len(), 1);
}

/// Every per-stream route refuses bad input with a clear 4xx, and the stream is untouched.
#[tokio::test]
async fn bad_per_stream_requests_are_4xx_and_change_nothing() {
    let (orch_url, orch, calls) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, gw) = gateway_with(|c| {
        c.orchestrators = vec![orch_url];
        c.events_timeout = None;
        c.max_body_bytes = 1024;
    })
    .await;
    let urls: Value = start(&gw_url, json!({"params": {"prompt": "kept"}})).await.json().await.unwrap();
    let (id, secret) = (urls["stream_id"].as_str().unwrap(), urls["stream_secret"].as_str().unwrap());
    let base = format!("{gw_url}/process/stream/{id}");
    let calls_before = calls.lock().unwrap().len();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http().post(format!("{base}/update")).body("{}"), 401, "no secret"),
        (http().post(format!("{base}/update")).bearer_auth("wrong").body("{}"), 403, "wrong secret"),
        (http().post(format!("{base}/update?token=wrong")).body("{}"), 403, "wrong token"),
        (http().post(format!("{base}/update")).bearer_auth(secret).body(vec![b' '; 4096]), 413, "oversized update"),
        (http().post(format!("{base}/stop")).bearer_auth("wrong"), 403, "stop, wrong secret"),
        (http().get(format!("{base}/status")), 401, "status, no secret"),
        (http().get(format!("{base}/data")).bearer_auth("wrong"), 403, "data, wrong secret"),
        (http().post(format!("{base}/ingest/abc")).bearer_auth(secret).body("x"), 400, "ingest, bad seq"),
        (http().get(format!("{base}/egress/-7")).bearer_auth(secret), 400, "egress, bad seq"),
        (http().post(format!("{gw_url}/process/stream/nope/stop")).bearer_auth(secret), 404, "unknown stream"),
    ];
    for (req, want, what) in cases {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no error message in {body}");
    }
    assert_eq!(gw.stream_ids(), vec![id.to_string()], "the stream is still there");
    assert_eq!(orch.streams().len(), 1);
    assert_eq!(calls.lock().unwrap().len(), calls_before, "nothing reached the worker");
    let status: Value =
        http().get(format!("{base}/status")).bearer_auth(secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["params"], json!({"prompt": "kept"}));
}

#[tokio::test]
async fn batch_jobs_fail_over_and_report_failure_clearly() {
    let (busy_url, _, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (ok_url, _, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, _) = gateway(vec!["http://127.0.0.1:9".into(), busy_url.clone(), ok_url.clone()]).await;
    let r = http()
        .post(format!("{gw_url}/process/request/echo"))
        .header("Livepeer", livepeer(json!({})))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-orchestrator-url"], busy_url.as_str());
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"a": 1}));
    let (dead, _) = gateway(vec!["http://127.0.0.1:9".into()]).await;
    let r = http()
        .post(format!("{dead}/process/request/echo"))
        .header("Livepeer", livepeer(json!({})))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "not go-livepeer's empty 200");
}

#[tokio::test]
async fn a_stream_moves_to_the_next_orchestrator_with_its_latest_params() {
    let (a_url, a, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (b_url, b, b_calls) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, gw) = gateway(vec![a_url.clone(), b_url.clone()]).await;
    let urls: Value = start(&gw_url, json!({"params": {"prompt": "x"}})).await.json().await.unwrap();
    let id = urls["stream_id"].as_str().unwrap().to_string();
    assert_eq!(a.streams().len(), 1);
    let r = http().post(urls["update_url"].as_str().unwrap()).body(r#"{"prompt":"latest"}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    // Orchestrator A goes away: its channels close.
    a.shutdown().await;
    // B holds the stream once its worker has been asked to start it.
    let started_on_b = || b_calls.lock().unwrap().iter().find(|c| c.0 == "stream/start").map(|c| c.1.clone());
    wait_until("stream on B", || b.streams().len() == 1 && started_on_b().is_some()).await;
    let start_on_b = started_on_b().unwrap();
    assert_eq!(start_on_b["params"], json!({"prompt": "latest"}));
    assert_eq!(start_on_b["gateway_request_id"], id.as_str());
    // The gateway's status names B once B has answered the restart.
    let status_url = urls["status_url"].as_str().unwrap();
    eventually("the status names B", Duration::from_secs(5), || async {
        let st: Value = http().get(status_url).send().await.unwrap().json().await.unwrap();
        (st["orchestrator"] == b_url.as_str()).then_some(())
    })
    .await;
    let mut got = String::new();
    while !got.contains("orchestrator_swap") {
        got.push_str(&String::from_utf8_lossy(&events.chunk().await.unwrap().unwrap()));
    }
    // The client's ingest URL keeps working, now into B.
    let on_b = b.streams()[0].channels.input.clone().unwrap();
    let mut input = LocalSubscriber::new(&b.trickle, &on_b, SeqRequest::At(Seq(0)));
    let r = http()
        .post(format!("{}/0", urls["ingest_url"].as_str().unwrap()))
        .bearer_auth(urls["stream_secret"].as_str().unwrap())
        .body("seg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&input.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"seg");
    // B goes away too: nothing is left, the stream ends.
    b.shutdown().await;
    wait_until("stream ended", || gw.stream_ids().is_empty()).await;
    assert_eq!(a.registry.get("toy").unwrap().capacity.in_use(), 0);
    assert_eq!(b.registry.get("toy").unwrap().capacity.in_use(), 0);
}

/// The encoder settings a stream started with (`params.encoder`, which only a start sets) go with
/// it to the next orchestrator, though a later update did not name them.
#[tokio::test]
async fn a_moved_stream_keeps_the_encoder_settings_it_started_with() {
    let (a_url, a, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (b_url, b, b_calls) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, gw) = gateway(vec![a_url, b_url]).await;
    let encoder = json!({"bitrate_kbps": 800, "preset": "ultrafast"});
    let urls: Value =
        start(&gw_url, json!({"params": {"effect": "grayscale", "encoder": encoder}})).await.json().await.unwrap();
    assert_eq!(a.streams().len(), 1);
    let r = http().post(urls["update_url"].as_str().unwrap()).body(r#"{"effect":"invert"}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    a.shutdown().await;
    let started_on_b = || b_calls.lock().unwrap().iter().find(|c| c.0 == "stream/start").map(|c| c.1.clone());
    wait_until("stream on B", || b.streams().len() == 1 && started_on_b().is_some()).await;
    assert_eq!(started_on_b().unwrap()["params"], json!({"effect": "invert", "encoder": encoder}));
    let st: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(st["params"], json!({"effect": "invert", "encoder": encoder}), "the status says what a restart sends");
    b.shutdown().await;
    wait_until("stream ended", || gw.stream_ids().is_empty()).await;
}

#[tokio::test]
async fn a_stream_without_events_is_moved_then_ended() {
    let (a_url, a, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (b_url, b, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, gw) = gateway_with(|c| {
        c.orchestrators = vec![a_url, b_url];
        c.events_timeout = Some(Duration::from_millis(300));
    })
    .await;
    assert_eq!(start(&gw_url, json!({})).await.status(), 200);
    // An event keeps it where it is for a while.
    let ev = LocalPublisher::new(&a.trickle, &a.streams()[0].channels.events).unwrap();
    let mut seg = ev.next_segment().unwrap();
    seg.write(Bytes::from_static(br#"{"type":"heartbeat"}"#)).unwrap();
    seg.finish();
    assert_eq!(a.streams().len(), 1);
    // Then silence: it moves to B (A is told to stop), and silence there too ends it.
    wait_until("moved to B", || b.streams().len() == 1 || gw.stream_ids().is_empty()).await;
    wait_until("ended", || gw.stream_ids().is_empty()).await;
    wait_until("released on A", || a.registry.get("toy").unwrap().capacity.in_use() == 0).await;
    wait_until("released on B", || b.registry.get("toy").unwrap().capacity.in_use() == 0).await;
}

#[tokio::test]
async fn orchestrators_can_come_from_a_refreshable_list() {
    let (orch_url, orch, _) = orchestrator(200, Duration::from_secs(60)).await;
    let dir = std::env::temp_dir().join(format!("byoc-list-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("orchestrators.txt");
    std::fs::write(&list, "# none yet\n").unwrap();
    let (gw_url, _gw) = gateway_with(|c| {
        c.orchestrator_list = Some(list.to_string_lossy().into_owned());
        c.events_timeout = None;
    })
    .await;
    assert_eq!(start(&gw_url, json!({})).await.status(), 503, "an empty list: nobody to ask");
    std::fs::write(&list, format!("{orch_url}\n")).unwrap();
    assert_eq!(start(&gw_url, json!({})).await.status(), 200, "the list is read again");
    assert_eq!(orch.streams().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The operator's auth webhook decides on every start: allowed → the stream starts; refused →
/// 403 with the webhook's words and nothing started; unreachable → 503.
#[tokio::test]
async fn the_auth_webhook_decides_on_start() {
    let (orch_url, orch, _) = orchestrator(200, Duration::from_secs(60)).await;
    let seen: Calls = Arc::default();
    let hook = listen(
        Router::new()
            .route(
                "/auth",
                post(|State(seen): State<Calls>, body: Bytes| async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push(("auth".into(), v.clone()));
                    if v["authorization"] == "Bearer letmein" {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::UNAUTHORIZED, "unknown client")
                    }
                }),
            )
            .with_state(seen.clone()),
    )
    .await;
    let with_hook = |hook: String| {
        let orch_url = orch_url.clone();
        async move {
            gateway_with(|c| {
                c.orchestrators = vec![orch_url];
                c.auth_webhook = Some(hook);
                c.events_timeout = None;
            })
            .await
            .0
        }
    };
    let gw_url = with_hook(format!("{hook}/auth")).await;
    let send = |auth: &'static str| {
        http()
            .post(format!("{gw_url}/process/stream/start"))
            .header("Livepeer", livepeer(all_legs()))
            .header("Authorization", auth)
            .body(json!({"stream_name": "cam", "params": {"prompt": "p"}}).to_string())
            .send()
    };
    let r = send("Bearer nope").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("unknown client"));
    assert!(orch.streams().is_empty(), "a refused start starts nothing");
    let r = send("Bearer letmein").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(orch.streams().len(), 1);
    let q = seen.lock().unwrap().last().unwrap().1.clone();
    assert_eq!((q["kind"].as_str(), q["capability"].as_str()), (Some("stream"), Some("toy")));
    assert!(q["stream_id"].as_str().unwrap().starts_with("cam-"), "{q}");
    assert_eq!(q["params"], json!({"prompt": "p"}));

    // A webhook nobody answers refuses with 503.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/auth", l.local_addr().unwrap())
    };
    let gw2 = with_hook(dead).await;
    let r = http()
        .post(format!("{gw2}/process/stream/start"))
        .header("Livepeer", livepeer(all_legs()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(orch.streams().len(), 1);
}

/// `/openapi.json` is kept true: its operations are exactly the router's routes, every operation
/// answers only statuses it documents (asked without credentials, about an unknown stream and
/// about a real one), and start's and status's answers have exactly the documented fields.
#[tokio::test]
async fn the_openapi_document_matches_the_routes_and_the_answers() {
    use std::collections::BTreeSet;
    let (orch_url, _orch, _) = orchestrator(200, Duration::from_secs(60)).await;
    let (gw_url, _gw) = gateway(vec![orch_url]).await;
    let r = http().get(format!("{gw_url}/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // The routes, as the router declares them.
    let src = include_str!("../../src/lib.rs");
    let routes: BTreeSet<(String, String)> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|rest| {
            let (path, after) = rest.split_once('"').unwrap();
            let method = after.trim_start_matches(", ").split('(').next().unwrap();
            (path.replace("{*", "{"), method.to_string())
        })
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (p.clone(), m.clone())))
        .collect();
    assert_eq!(routes, documented, "the OpenAPI paths differ from the router's routes");

    let started = start(&gw_url, json!({"stream_name": "doc"})).await;
    assert_eq!(started.status(), 200);
    let urls: Value = started.json().await.unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    let required = |schema: &str| {
        doc["components"]["schemas"][schema]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&urls), required("StreamUrls"));
    let id = urls["stream_id"].as_str().unwrap();
    let status: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(keys(&status), required("StreamStatus"));

    // Every operation answers a documented status.
    for (path, method) in &documented {
        let documented_statuses = keys(&doc["paths"][path][method]["responses"]);
        for stream in ["no-such-stream", id] {
            let url = format!("{gw_url}{path}")
                .replace("{id}", stream)
                .replace("{seq}", "0")
                .replace("{path}", "echo")
                .replace("{session}", "0");
            let req = http().request(method.to_uppercase().parse().unwrap(), &url);
            let r = tokio::time::timeout(Duration::from_secs(10), req.send()).await.unwrap().unwrap();
            let code = r.status().as_u16().to_string();
            assert!(documented_statuses.contains(&code), "{method} {path} ({stream}) answered {code}, not documented");
        }
    }
}

#[tokio::test]
async fn while_a_stream_moves_its_status_says_reconnecting_and_why() {
    let (a_url, _a, _) = orchestrator(200, Duration::from_secs(60)).await;
    // B's worker takes a while to start the stream: the move is under way meanwhile.
    let slow = listen(Router::new().route(
        "/{*route}",
        post(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            axum::Json(json!({"status": "success"}))
        }),
    ))
    .await;
    let (b_url, b, _) = orchestrator(200, Duration::from_secs(60)).await;
    b.registry.unregister("toy").unwrap();
    b.registry
        .register_worker(&byoc_orchestrator::WorkerRegistration {
            name: "toy".into(),
            url: slow,
            capacity: 2,
            ..Default::default()
        })
        .unwrap();
    let (gw_url, _) = gateway_with(|c| {
        c.orchestrators = vec![a_url.clone(), b_url];
        c.events_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let urls: Value = start(&gw_url, json!({})).await.json().await.unwrap();
    let status = || async {
        http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let first = status().await;
    assert_eq!((first["state"].as_str(), first["reconnect_reason"].is_null()), (Some("running"), true));
    // No events from A: the stream moves, and says so while it does.
    let st = eventually("the status to say reconnecting while the stream moves", Duration::from_secs(5), || async {
        Some(status().await).filter(|st| st["state"] == "reconnecting")
    })
    .await;
    assert_eq!(st["orchestrator"], a_url.as_str(), "the one that lost it");
    assert!(st["reconnect_reason"].as_str().unwrap().contains("events"), "{st}");
}
