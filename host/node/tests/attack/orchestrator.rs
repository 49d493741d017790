//! Attacks on the orchestrator.

use std::time::Duration;

use byoc_payment::SecretKey;
use byoc_payment::job::JobRequest;
use serde_json::json;

use crate::common::{http, raw_http, toy_orchestrator};

fn signed(key: &SecretKey, request: serde_json::Value) -> String {
    let mut job = JobRequest {
        request: request.to_string(),
        parameters: "{}".into(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    job.sign(key).unwrap();
    job.to_header()
}

#[tokio::test]
async fn a_batch_path_cannot_reach_the_workers_other_routes() {
    let (orch_url, _orch, calls) = toy_orchestrator(200, Duration::from_secs(60)).await;
    let header = signed(&SecretKey::generate(), json!({}));
    for path in ["..%2fstream%2fstop", "x%5c..%5cstream"] {
        let r = http()
            .post(format!("{orch_url}/process/request/{path}"))
            .header("Livepeer", &header)
            .body("{}")
            .send()
            .await
            .unwrap();
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
