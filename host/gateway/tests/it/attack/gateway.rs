//! Attacks on the gateway.

use std::time::Duration;

use byoc_payment::job::JobRequest;
use serde_json::{Value, json};

use crate::common::{
    all_legs, http, post_job, raw_exchange, raw_http, serve_gateway_with, toy_job, toy_orchestrator, toy_request,
};

/// A victim's stream on a gateway in front of a toy orchestrator: (gateway URL, orchestrator,
/// worker calls, victim stream id).
async fn victim() -> (String, std::sync::Arc<byoc_orchestrator::Orchestrator>, crate::common::Calls, String) {
    let (orch_url, orch, calls) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let (gw, _) = serve_gateway_with(vec![orch_url], |c| c.events_timeout = None).await;
    let r = http()
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", toy_job(all_legs()))
        .body(json!({"stream_id": "victim"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["stream_id"].as_str().unwrap().to_string();
    (gw, orch, calls, id)
}

/// A stream with every leg on, started on a gateway (without an events timeout, `config` adjusting
/// the rest) in front of a toy orchestrator: (gateway URL, orchestrator, the start's answer).
async fn toy_stream(
    config: impl FnOnce(&mut byoc_gateway::GatewayConfig),
) -> (String, std::sync::Arc<byoc_orchestrator::Orchestrator>, Value) {
    let (orch_url, orch, _) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let (gw, _) = serve_gateway_with(vec![orch_url], |c| {
        c.events_timeout = None;
        config(c);
    })
    .await;
    let r = http().post(format!("{gw}/process/stream/start")).header("Livepeer", toy_job(all_legs())).body("{}");
    let urls: Value = r.send().await.unwrap().json().await.unwrap();
    (gw, orch, urls)
}

/// A batch job header naming the victim's stream in its `request`.
fn naming(stream_id: &str) -> String {
    toy_request("", json!({ "stream_id": stream_id }), json!({})).to_header()
}

#[tokio::test]
async fn a_batch_path_cannot_climb_to_another_route_of_the_orchestrator() {
    let (gw, orch, calls, id) = victim().await;
    let header = naming(&id);
    // Encoded separators and dots, as any HTTP client sends them.
    for path in ["..%2f..%2fai%2fstream%2fstop", "a%5c..%5c..%5cai%5cstream%5cstop", "x//y"] {
        let r = post_job(&format!("{gw}/process/request/{path}"), &header, "{}").await;
        assert_eq!(r.status(), 400, "{path}");
    }
    // Raw and encoded dot segments, sent as is (`curl --path-as-is`; HTTP clients resolve them).
    for path in ["../../ai/stream/stop", "echo/../../../ai/stream/update", "./echo", "%2e%2e/%2E%2e/ai/stream/stop"] {
        let req = format!(
            "POST /process/request/{path} HTTP/1.1\r\nHost: x\r\nLivepeer: {header}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let (status, body) = raw_http(&gw, &req).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    assert_eq!(orch.streams().len(), 1, "the victim's stream is still running");
    let worker_saw: Vec<String> = calls.lock().unwrap().iter().map(|c| c.0.clone()).collect();
    assert_eq!(worker_saw, vec!["stream/start"], "nothing but the victim's start reached the worker");
    // A plain nested route still works.
    let r = http().post(format!("{gw}/process/request/echo")).header("Livepeer", &header).body("{\"a\":1}");
    assert_eq!(r.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_stream_id_cannot_land_on_another_streams_channels() {
    let (gw, orch, _, id) = victim().await;
    let channels_of = |sid: &str| -> Vec<String> {
        orch.streams().into_iter().find(|s| s.id == sid).map(|s| s.channels.names()).unwrap_or_default()
    };
    let victims = channels_of(&id);
    assert!(!victims.is_empty());
    for suffix in ["out", "events", "control", "data"] {
        let attacker_id = format!("{id}-{suffix}");
        let r = http()
            .post(format!("{gw}/process/stream/start"))
            .header("Livepeer", toy_job(all_legs()))
            .body(json!({ "stream_id": attacker_id }).to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 200 || status == 409, "{suffix}: {status}");
        if status == 200 {
            let urls: Value = r.json().await.unwrap();
            let mine = channels_of(&attacker_id);
            assert!(mine.iter().all(|c| !victims.contains(c)), "{suffix}: {mine:?} overlaps {victims:?}");
            // Its stop deletes its own channels only.
            let stop = http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
            assert_eq!(stop.status(), 200);
        }
        assert!(victims.iter().all(|c| orch.trickle.contains(c)), "{suffix}: the victim lost a channel");
        assert_eq!(channels_of(&id), victims, "{suffix}: the victim's stream is untouched");
    }
}

#[tokio::test]
async fn idle_and_slowloris_connections_cannot_lock_out_a_client() {
    use tokio::io::AsyncWriteExt;
    let (orch_url, _, _) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let config =
        byoc_gateway::GatewayConfig { orchestrators: vec![orch_url], events_timeout: None, ..Default::default() };
    let gw = byoc_gateway::Gateway::new(config).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = byoc_net::Limits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(2),
        max_connections: 64,
        max_connections_per_ip: 64,
    };
    tokio::spawn(byoc_net::serve("gateway", l, byoc_gateway::router(gw), limits, std::future::pending()));
    // 200 connections that never speak and 50 that start a request head and never finish it.
    let mut held = Vec::new();
    for i in 0..250 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 5 == 0 {
            let _ = s.write_all(b"POST /process/stream/start HTTP/1.1\r\nHost: x\r\n").await;
        }
        held.push(s);
    }
    // A real client is still served at once.
    let r = http()
        .post(format!("http://{addr}/process/stream/start"))
        .header("Livepeer", toy_job(all_legs()))
        .body("{}")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_starts_are_400_and_start_nothing() {
    let (orch_url, orch, _) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let (gw, gateway) = serve_gateway_with(vec![orch_url], |c| c.events_timeout = None).await;
    let start = |header: String, body: &'static str| {
        http().post(format!("{gw}/process/stream/start")).header("Livepeer", header).body(body).send()
    };
    let with_timeout = |t: i64| JobRequest { timeout_seconds: t, ..toy_request("", json!({}), all_legs()) }.to_header();
    let cases = [
        (toy_job(all_legs()), "[]", "a JSON array body"),
        (toy_job(all_legs()), "42", "a number body"),
        (toy_job(all_legs()), r#"{"stream_id":"."}"#, "stream id ."),
        (toy_job(all_legs()), r#"{"stream_id":".."}"#, "stream id .."),
        (toy_job(all_legs()), r#"{"stream_name":"..","stream_id":"x"}"#, "stream name .."),
        (with_timeout(-5), "{}", "a negative timeout"),
        (with_timeout(0), "{}", "a zero timeout"),
        (with_timeout(1 << 40), "{}", "a huge timeout"),
    ];
    for (header, body, what) in cases {
        let r = start(header, body).await.unwrap();
        assert_eq!(r.status(), 400, "{what}: {}", r.text().await.unwrap());
    }
    assert!(gateway.stream_ids().is_empty() && orch.streams().is_empty(), "nothing started");
}

#[tokio::test]
async fn an_ended_stream_answers_its_owner_410_and_tells_no_one_else() {
    let (gw, _, urls) = toy_stream(|_| {}).await;
    let (id, secret) = (urls["stream_id"].as_str().unwrap(), urls["stream_secret"].as_str().unwrap());
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
    let status = format!("{gw}/process/stream/{id}/status");
    let r = http().get(&status).bearer_auth(secret).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("stopped by the client"), "{body}");
    assert_eq!(http().get(&status).bearer_auth("guess").send().await.unwrap().status(), 404);
    assert_eq!(http().get(&status).send().await.unwrap().status(), 404);
    assert_eq!(
        http().get(format!("{gw}/process/stream/never/status")).bearer_auth(secret).send().await.unwrap().status(),
        404
    );
}

/// A client whose upload ends before its body is complete (it went away, or half-closed) is told
/// so with a 400, and it is not counted or logged as the orchestrator being unreachable: a client
/// must not be able to raise an operator's alarm about a healthy orchestrator.
#[tokio::test]
async fn an_ingest_upload_cut_short_by_the_client_is_400_not_an_unreachable_orchestrator() {
    let (gw, _, urls) = toy_stream(|_| {}).await;
    let secret = urls["stream_secret"].as_str().unwrap();
    let path = urls["ingest_url"].as_str().unwrap().trim_start_matches(&gw).to_string();
    // 1000 bytes of the 100,000 announced, then the client goes away.
    let mut request = format!(
        "POST {path}/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nContent-Length: 100000\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(&[0x47u8; 1000]);
    let (status, body) = raw_exchange(&gw, &request, true).await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("unreachable"), "{body}");
}

#[tokio::test]
async fn an_ingest_segment_cannot_exceed_the_cap() {
    let (_, orch, urls) = toy_stream(|c| c.media_limits.max_ingest_segment_bytes = 1 << 20).await;
    let secret = urls["stream_secret"].as_str().unwrap();
    let input = orch.streams()[0].channels.input.clone().unwrap();
    let mut sub =
        byoc_trickle::LocalSubscriber::new(&orch.trickle, &input, byoc_trickle::SeqRequest::At(byoc_trickle::Seq(0)));
    let ingest = |len: usize| {
        http()
            .post(format!("{}/0", urls["ingest_url"].as_str().unwrap()))
            .bearer_auth(secret)
            .body(vec![0x47u8; len])
            .send()
    };
    let r = ingest(3 << 20).await.unwrap();
    assert_eq!(r.status(), 413, "{}", r.text().await.unwrap());
    // What reached the orchestrator is at most the cap, and not a whole segment.
    let seg = sub.next_segment().await.unwrap().unwrap();
    // Cut off: the reader sees an aborted segment, or at most the cap.
    if let Ok(b) = seg.read_all().await {
        assert!(b.len() <= 1 << 20, "{} bytes reached the orchestrator", b.len());
    }
    // A segment within the cap goes through.
    let r = http()
        .post(format!("{}/1", urls["ingest_url"].as_str().unwrap()))
        .bearer_auth(secret)
        .body(vec![0x47u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
