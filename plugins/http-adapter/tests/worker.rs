//! http-adapter against a fake worker: the harness answers outbound HTTP with a closure, so
//! these tests check exactly what the plugin sends and how it maps each answer.

// Test code: a failed unwrap or index is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use byoc_sdk::testing::Harness;
use byoc_sdk::{Body, Error, HttpError, HttpRequest, HttpResponse, Request};
use http_adapter::HttpAdapter;
use serde_json::json;

const WORKER: &str = "127.0.0.1:9000";

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// A worker that implements the adapter's session API: segments are echoed reversed
/// (as "processed video"), control messages answer a data line and an event.
fn fake_worker(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let path = request.url.strip_prefix("http://127.0.0.1:9000").unwrap_or("");
    let json = |value: serde_json::Value| {
        HttpResponse::new(200, value.to_string().into_bytes()).header("content-type", "application/json")
    };
    Ok(match path {
        "/session" => {
            let params: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            if params.get("bad").is_some() {
                HttpResponse::new(422, b"bad is not a param".to_vec())
            } else {
                json(json!({"id": "s-1"}))
            }
        }
        p if p.starts_with("/session/s-1/segment?seq=") => {
            let mut video = request.body.clone();
            video.reverse();
            HttpResponse::new(200, video).header("content-type", "video/mp2t")
        }
        "/session/s-1/control" => json(json!({
            "data": ["plain line", {"objects": 2}],
            "events": [{"type": "worker.updated"}],
        })),
        "/session/s-1/close" => HttpResponse::new(204, Vec::new()),
        "/predict" => {
            let mut body = b"echo:".to_vec();
            body.extend_from_slice(&request.body);
            HttpResponse::new(201, body)
                .header("content-type", "text/plain")
                .header("x-worker", "fake")
                .header("connection", "close")
        }
        // The worker's root: where the default route (what the Livepeer SDK calls) goes.
        "/" | "/?v=2" => json(json!({"root": serde_json::from_slice::<serde_json::Value>(&request.body).unwrap()})),
        "/stream" => HttpResponse::new(200, b"data: one\n\ndata: [DONE]\n\n".to_vec())
            .header("content-type", "text/event-stream"),
        _ => HttpResponse::new(500, b"no such route".to_vec()),
    })
}

fn harness() -> Harness<HttpAdapter> {
    Harness::<HttpAdapter>::new()
        .with_config("worker_url", "http://127.0.0.1:9000/")
        .with_secret("worker_token", "t0k3n")
        .with_outbound_host(WORKER)
        .with_http(fake_worker)
}

#[test]
fn batch_is_forwarded_with_body_headers_and_credentials() {
    let harness = harness();
    let request = Request::new("/predict", "text/plain", b"hi".to_vec())
        .with_header("x-request-id", "42")
        .with_header("authorization", "client secret")
        .with_header("connection", "keep-alive");
    let response = harness.process(request).unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.body, Body::Bytes(b"echo:hi".to_vec()));
    assert_eq!(response.content_type, "text/plain");
    assert_eq!(response.header("x-worker"), Some("fake"));
    assert_eq!(response.header("connection"), None, "hop-by-hop headers stay behind");

    let sent = &harness.batch_outputs().http_requests[0];
    assert_eq!(sent.url, "http://127.0.0.1:9000/predict");
    assert_eq!(header(sent, "content-type"), Some("text/plain"));
    assert_eq!(header(sent, "x-request-id"), Some("42"));
    assert_eq!(header(sent, "authorization"), Some("Bearer t0k3n"));
    assert_eq!(header(sent, "connection"), None);
    assert!(sent.timeout.is_some());
}

/// What the Livepeer SDK's `submit_byoc_job` sends: `POST /process/request/http-adapter` (the
/// plugin sees `/http-adapter`) with a JSON body. The worker is called at its own URL, whatever
/// name the adapter is offered under; a path after the name is the worker's path.
#[test]
fn the_capability_name_is_the_default_route_and_reaches_the_worker_url() {
    let harness = harness();
    let sdk = Request::new("/http-adapter", "application/json", br#"{"prompt": "a cat"}"#.to_vec());
    let response = harness.process(sdk).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "application/json");
    let Body::Bytes(body) = &response.body else { panic!("expected a body") };
    assert_eq!(serde_json::from_slice::<serde_json::Value>(body).unwrap(), json!({"root": {"prompt": "a cat"}}));

    for (path, body) in [("/http-adapter?v=2", "{}"), ("/http-adapter/predict", "x"), ("/predict", "x"), ("/", "{}")] {
        let response = harness.process(Request::new(path, "application/json", body.as_bytes().to_vec())).unwrap();
        assert!((200..300).contains(&response.status), "{path}: {}", response.status);
    }
    let urls: Vec<String> = harness.batch_outputs().http_requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:9000/",
            "http://127.0.0.1:9000/?v=2",
            "http://127.0.0.1:9000/predict",
            "http://127.0.0.1:9000/predict",
            "http://127.0.0.1:9000/",
        ]
    );

    // A worker URL with a path (an existing worker serving `/{its capability}`) is called as is.
    let at_path = Harness::<HttpAdapter>::new()
        .with_config("worker_url", "http://127.0.0.1:9000/my-model/")
        .with_outbound_host(WORKER)
        .with_http(|_| Ok(HttpResponse::new(204, Vec::new())));
    for path in ["/http-adapter", "/http-adapter?v=2", "/http-adapter/x", "/x"] {
        at_path.process(Request::new(path, "application/json", b"{}".to_vec())).unwrap();
    }
    let urls: Vec<String> = at_path.batch_outputs().http_requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:9000/my-model",
            "http://127.0.0.1:9000/my-model?v=2",
            "http://127.0.0.1:9000/my-model/x",
            "http://127.0.0.1:9000/my-model/x",
        ]
    );
}

#[test]
fn a_worker_event_stream_becomes_sse_events() {
    let response = harness().process(Request::new("/stream", "application/json", b"{}".to_vec())).unwrap();
    let Body::Events(events) = response.body else {
        panic!("expected events");
    };
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["one", "[DONE]"]);
}

#[test]
fn worker_errors_pass_through_and_transport_errors_are_upstream_failures() {
    let response = harness().process(Request::new("/missing", "", Vec::new())).unwrap();
    assert_eq!(response.status, 500);

    let unreachable = Harness::<HttpAdapter>::new()
        .with_config("worker_url", "http://127.0.0.1:9000")
        .with_outbound_host(WORKER)
        .with_http(|_| Err(HttpError::Connect("connection refused".into())));
    assert!(matches!(unreachable.process(Request::new("/x", "", Vec::new())), Err(Error::Upstream(_))));
}

#[test]
fn a_worker_on_an_ungranted_host_is_denied() {
    let not_granted = Harness::<HttpAdapter>::new()
        .with_config("worker_url", "http://10.1.2.3:9000")
        .with_outbound_host(WORKER)
        .with_http(fake_worker);
    assert!(matches!(not_granted.process(Request::new("/predict", "", Vec::new())), Err(Error::Denied(_))));
    assert!(matches!(not_granted.open("{}"), Err(Error::Denied(_))));
}

#[test]
fn missing_or_bad_configuration_is_reported_precisely() {
    let ungranted = Harness::<HttpAdapter>::new();
    assert!(matches!(ungranted.process(Request::new("/", "", Vec::new())), Err(Error::Denied(_))));
    let unset = Harness::<HttpAdapter>::new().with_unset_config("worker_url");
    assert!(matches!(unset.open("{}"), Err(Error::InvalidParams(_))));
    let bad_url = Harness::<HttpAdapter>::new().with_config("worker_url", "worker:9000");
    assert!(matches!(bad_url.open("{}"), Err(Error::InvalidParams(_))));
    let bad_timeout = harness().with_config("timeout_ms", "soon");
    assert!(matches!(bad_timeout.open("{}"), Err(Error::InvalidParams(_))));
}

#[test]
fn a_stream_is_forwarded_segment_by_segment_with_control_and_close() {
    let harness = harness().with_chunk_size(100);
    let mut session = harness.open(r#"{"prompt": "cats"}"#).unwrap();
    assert_eq!(session.session().handler().id(), "s-1");

    let segment: Vec<u8> = (0..250u8).collect();
    session.segment(7, &segment).unwrap();
    session.control(r#"{"prompt": "dogs"}"#).unwrap();
    session.close().unwrap();

    let out = session.outputs();
    let urls: Vec<&str> = out.http_requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:9000/session",
            "http://127.0.0.1:9000/session/s-1/segment?seq=7",
            "http://127.0.0.1:9000/session/s-1/control",
            "http://127.0.0.1:9000/session/s-1/close",
        ]
    );
    assert_eq!(out.http_requests[0].body, br#"{"prompt": "cats"}"#);
    assert_eq!(out.http_requests[1].body, segment, "the whole segment, in one request");
    assert_eq!(header(&out.http_requests[1], "content-type"), Some("video/mp2t"));

    let mut reversed = segment.clone();
    reversed.reverse();
    assert_eq!(out.segments.len(), 1);
    assert_eq!(out.segments[0].bytes, reversed);
    assert!(out.segments[0].complete);
    assert_eq!(out.data, ["plain line", r#"{"objects":2}"#]);
    assert_eq!(out.events, [json!({"type": "worker.updated"})]);
}

#[test]
fn params_the_worker_refuses_refuse_the_stream() {
    assert!(matches!(harness().open(r#"{"bad": true}"#), Err(Error::InvalidParams(_))));
}

#[test]
fn an_unsafe_session_id_from_the_worker_is_rejected() {
    for id in ["../admin", "", "a/b", ".."] {
        let harness = Harness::<HttpAdapter>::new()
            .with_config("worker_url", "http://127.0.0.1:9000")
            .with_outbound_host(WORKER)
            .with_http(move |_| {
                Ok(HttpResponse::new(200, json!({"id": id}).to_string().into_bytes())
                    .header("content-type", "application/json"))
            });
        assert!(matches!(harness.open("{}"), Err(Error::Upstream(_))), "{id:?}");
    }
}

/// A batch request cannot reach the worker's session API (which drives the streams this adapter
/// opened for other clients), however the path spells it; the worker is never called.
#[test]
fn batch_requests_cannot_reach_the_workers_session_api() {
    let harness = harness();
    for path in [
        "/session/abc/close",
        "/http-adapter/session/abc/control",
        "/Session/abc/close",
        "/%73ession/abc/close",
        "/session?id=abc",
        "/session",
    ] {
        let err = harness.process(Request::new(path, "application/json", b"{}".to_vec())).unwrap_err();
        assert!(err.to_string().contains("session API"), "{path}: {err}");
    }
    assert!(harness.batch_outputs().http_requests.is_empty(), "the worker was called");
    // A route that only starts like it is the worker's own business.
    harness.process(Request::new("/sessions-report", "application/json", b"{}".to_vec())).unwrap();
    let urls: Vec<String> = harness.batch_outputs().http_requests.iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, ["http://127.0.0.1:9000/sessions-report"]);
}
