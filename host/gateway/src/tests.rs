//! The client API's refusals, asked of the router itself (`oneshot`, no sockets): for every route, who
//! is refused and with what status. A stream is put in the gateway's table directly (attached to an
//! orchestrator that is never asked), so no route here reaches the network.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::discovery::Candidate;
use crate::model::{Attachment, GwStream, OrchUrls};
use crate::{Gateway, GatewayConfig, router};

/// Every per-stream route: (method, path after `/process/stream/{id}`).
const STREAM_ROUTES: [(&str, &str); 12] = [
    ("POST", "update"),
    ("POST", "stop"),
    ("GET", "status"),
    ("GET", "data"),
    ("GET", "events"),
    ("POST", "ingest/0"),
    ("GET", "egress/0"),
    ("POST", "whip"),
    ("POST", "whep"),
    ("GET", "player"),
    ("DELETE", "whip/0"),
    ("DELETE", "whep/0"),
];

fn gateway(config: GatewayConfig) -> Arc<Gateway> {
    Gateway::new(GatewayConfig { orchestrators: Vec::new(), ..config }).unwrap()
}

/// A stream `id` in `gw`'s table, attached to an orchestrator that is never asked (its watchers are
/// not started); `video`: its trickle ingest and egress are enabled. Returns its secret.
fn put_stream(gw: &Gateway, id: &str, video: bool) -> String {
    let orch = "http://orchestrator.invalid";
    let channel = |name: &str| format!("{orch}/ai/trickle/{id}-{name}");
    let urls = OrchUrls {
        own_balance: None,
        publish: video.then(|| channel("in")),
        subscribe: video.then(|| channel("out")),
        control: channel("control"),
        events: channel("events"),
        data: None,
    };
    let token = serde_json::from_value(json!({})).unwrap();
    let cancel = CancellationToken::new();
    let att = Attachment::new(&Candidate { url: orch.into(), token }, urls, cancel.child_token());
    let job = byoc_payment::job::JobRequest { capability: "toy".into(), timeout_seconds: 10, ..Default::default() };
    let stream = Arc::new(GwStream::new(id.into(), &job, json!({}), att, cancel));
    gw.lock().insert(id.into(), stream.clone());
    stream.secret.clone()
}

/// The status and body of `router(gw)`'s answer to `req`.
async fn ask(gw: &Arc<Gateway>, req: Request<Body>) -> (StatusCode, String) {
    let resp = router(gw.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

/// A bodiless request, with `Authorization: Bearer {secret}` if a secret is given.
fn bare(method: &str, uri: &str, secret: Option<&str>) -> Request<Body> {
    let mut req = request(method, uri);
    if let Some(s) = secret {
        req = req.header("Authorization", format!("Bearer {s}"));
    }
    req.body(Body::empty()).unwrap()
}

/// The `error` of a JSON error answer.
fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["error"].as_str().unwrap_or_else(|| panic!("no error in {body}")).to_string()
}

/// An unsigned `Livepeer` header for the toy capability.
fn job_header(parameters: Value) -> String {
    byoc_payment::job::JobRequest {
        request: "{}".into(),
        parameters: parameters.to_string(),
        capability: "toy".into(),
        timeout_seconds: 10,
        ..Default::default()
    }
    .to_header()
}

#[tokio::test]
async fn every_stream_route_needs_the_streams_secret() {
    let gw = gateway(GatewayConfig::default());
    put_stream(&gw, "s1", true);
    for (method, route) in STREAM_ROUTES {
        let uri = format!("/process/stream/s1/{route}");
        let (status, body) = ask(&gw, bare(method, &uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {route} without the secret: {body}");
        assert!(error_of(&body).contains("secret is required"), "{body}");

        let (status, body) = ask(&gw, bare(method, &uri, Some("nope"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {route} with a wrong secret: {body}");
        assert_eq!(error_of(&body), "wrong stream secret");

        let (status, _) = ask(&gw, bare(method, &format!("{uri}?token=nope"), None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {route} with a wrong ?token=");
    }
}

/// The per-stream routes that control the stream: the viewer token is refused there.
const CONTROL_ROUTES: [(&str, &str); 5] =
    [("POST", "update"), ("POST", "stop"), ("POST", "ingest/0"), ("POST", "whip"), ("DELETE", "whip/0")];

#[tokio::test]
async fn the_viewer_token_watches_and_every_control_route_refuses_it() {
    let gw = gateway(GatewayConfig::default());
    put_stream(&gw, "s1", true);
    let viewer = gw.stream("s1").unwrap().viewer.clone();
    for (method, route) in STREAM_ROUTES {
        let uri = format!("/process/stream/s1/{route}");
        for req in [bare(method, &uri, Some(&viewer)), bare(method, &format!("{uri}?token={viewer}"), None)] {
            if CONTROL_ROUTES.contains(&(method, route)) {
                let (status, body) = ask(&gw, req).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {route} with the viewer token: {body}");
                assert!(error_of(&body).contains("the viewer token only watches"), "{body}");
            } else {
                // Past the check: what the route itself answers here (no orchestrator, no media server; the
                // SSE routes answer 200 and go on, so only the status is read).
                let status = router(gw.clone()).oneshot(req).await.unwrap().status();
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status),
                    "{method} {route}: {status}"
                );
            }
        }
    }
    assert!(gw.stream("s1").is_some(), "the viewer token stopped nothing");
    let (status, body) = ask(&gw, bare("GET", "/process/stream/s1/status", Some(&viewer))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["access"], "view");
    let secret = gw.stream("s1").unwrap().secret.clone();
    let (_, body) = ask(&gw, bare("GET", "/process/stream/s1/status", Some(&secret))).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["access"], "control");
}

#[tokio::test]
async fn an_unknown_stream_is_404_whatever_the_secret() {
    let gw = gateway(GatewayConfig::default());
    for (method, route) in STREAM_ROUTES {
        for secret in [None, Some("nope")] {
            let (status, body) = ask(&gw, bare(method, &format!("/process/stream/nope/{route}"), secret)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route} ({secret:?}): {body}");
            assert_eq!(error_of(&body), "Stream not found");
        }
    }
}

#[tokio::test]
async fn an_ended_stream_is_410_with_why_to_its_owner_and_404_to_anyone_else() {
    let gw = gateway(GatewayConfig::default());
    gw.ended.remember("gone", "its-secret", "its-viewer-token", "stopped by the client");
    for (method, route) in STREAM_ROUTES {
        let uri = format!("/process/stream/gone/{route}");
        for own in ["its-secret", "its-viewer-token"] {
            let (status, body) = ask(&gw, bare(method, &uri, Some(own))).await;
            assert_eq!(status, StatusCode::GONE, "{method} {route}: {body}");
            assert_eq!(error_of(&body), "stream ended: stopped by the client");
        }
        let (status, _) = ask(&gw, bare(method, &format!("{uri}?token=its-secret"), None)).await;
        assert_eq!(status, StatusCode::GONE, "{method} {route} with ?token=");
        for stranger in [None, Some("guess")] {
            let (status, _) = ask(&gw, bare(method, &uri, stranger)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route}: no hint to a stranger");
        }
    }
}

#[tokio::test]
async fn a_stream_id_that_is_not_utf8_is_400() {
    let gw = gateway(GatewayConfig::default());
    for (method, route) in STREAM_ROUTES {
        let (status, _) = ask(&gw, bare(method, &format!("/process/stream/%FF/{route}"), None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {route}");
    }
}

#[tokio::test]
async fn malformed_trickle_requests_are_400_and_legs_not_enabled_409() {
    let gw = gateway(GatewayConfig::default());
    let secret = put_stream(&gw, "video", true);
    for (method, route) in [("POST", "ingest/abc"), ("GET", "egress/-9x")] {
        let uri = format!("/process/stream/video/{route}?token={secret}");
        let (status, body) = ask(&gw, bare(method, &uri, None)).await;
        assert_eq!((status, error_of(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid seq"), "{route}");
    }
    let secret = put_stream(&gw, "plain", false);
    for (method, route) in [("POST", "ingest/0"), ("GET", "egress/0")] {
        let uri = format!("/process/stream/plain/{route}?token={secret}");
        let (status, body) = ask(&gw, bare(method, &uri, None)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{route}: {body}");
    }
    let uri = format!("/process/stream/plain/data?token={secret}");
    let (status, body) = ask(&gw, bare("GET", &uri, None)).await;
    assert_eq!((status, error_of(&body).as_str()), (StatusCode::SERVICE_UNAVAILABLE, "Stream data not available"));
}

#[tokio::test]
async fn the_status_of_a_stream_says_where_it_runs() {
    let gw = gateway(GatewayConfig::default());
    let secret = put_stream(&gw, "s1", false);
    let uri = format!("/process/stream/s1/status?token={secret}");
    let (status, body) = ask(&gw, bare("GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stream_id"], "s1");
    assert_eq!(v["state"], "running");
    assert_eq!(v["orchestrator"], "http://orchestrator.invalid");
    assert_eq!(v["capability"], "toy");
}

/// A start request with this body and `Livepeer` header (if any).
fn start(header: Option<&str>, body: &str) -> Request<Body> {
    let mut req = request("POST", "/process/stream/start");
    if let Some(h) = header {
        req = req.header("Livepeer", h);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn malformed_starts_are_400_with_why() {
    let gw = gateway(GatewayConfig::default());
    let job = job_header(json!({}));
    let cases: [(Option<&str>, &str, &str); 9] = [
        (None, "{}", "missing Livepeer job header"),
        (Some("not base64 json"), "{}", "invalid job"),
        (Some(&job), "{not json", "invalid JSON request body"),
        (Some(&job), "[1, 2]", "the request body must be a JSON object"),
        (Some(&job), r#"{"stream_id": 7}"#, "invalid JSON request body"),
        (Some(&job), r#"{"params": "[1]"}"#, "invalid model params"),
        (Some(&job), r#"{"params": 3}"#, "invalid model params"),
        (Some(&job), r#"{"stream_id": ".."}"#, "stream_name and stream_id may use"),
        (Some(&job), r#"{"rtmp_output": "http://x/y"}"#, "rtmp_output must be"),
    ];
    for (header, body, why) in cases {
        let (status, answer) = ask(&gw, start(header, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(error_of(&answer).starts_with(why), "{body}: {answer}");
    }
    assert!(gw.stream_ids().is_empty());
}

#[tokio::test]
async fn a_start_for_a_running_stream_id_is_409() {
    let gw = gateway(GatewayConfig::default());
    put_stream(&gw, "taken", false);
    let (status, body) = ask(&gw, start(Some(&job_header(json!({}))), r#"{"stream_id": "taken"}"#)).await;
    assert_eq!((status, error_of(&body)), (StatusCode::CONFLICT, "stream already exists: taken".to_string()));
}

#[tokio::test]
async fn with_no_orchestrator_a_start_is_503_with_the_reasons() {
    let gw = gateway(GatewayConfig::default());
    let (status, body) = ask(&gw, start(Some(&job_header(json!({}))), "{}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "no orchestrator accepted the stream for capability toy");
    assert_eq!(v["reasons"], json!(["no orchestrator left after include/exclude"]));
}

#[tokio::test]
async fn start_and_batch_need_the_api_key_when_one_is_set() {
    let gw = gateway(GatewayConfig { api_key: Some("k3y".into()), ..GatewayConfig::default() });
    let job = job_header(json!({}));
    for auth in [None, Some("Bearer wrong"), Some("k3y")] {
        for uri in ["/process/stream/start", "/process/request/echo"] {
            let mut req = request("POST", uri).header("Livepeer", &job);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let (status, body) = ask(&gw, req.body(Body::from("{}")).unwrap()).await;
            assert_eq!((status, error_of(&body)), (StatusCode::UNAUTHORIZED, "invalid API key".into()), "{uri}");
        }
    }
    let ok = start(Some(&job), "{}");
    let (mut parts, body) = ok.into_parts();
    parts.headers.insert("Authorization", "Bearer k3y".parse().unwrap());
    let (status, _) = ask(&gw, Request::from_parts(parts, body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "past the key: no orchestrator here");
}

#[tokio::test]
async fn the_capability_list_needs_the_api_key_when_one_is_set() {
    let gw = gateway(GatewayConfig { api_key: Some("k3y".into()), ..GatewayConfig::default() });
    for auth in [None, Some("Bearer wrong")] {
        let mut req = request("GET", "/capabilities");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let (status, body) = ask(&gw, req.body(Body::empty()).unwrap()).await;
        assert_eq!((status, error_of(&body)), (StatusCode::UNAUTHORIZED, "invalid API key".into()));
    }
    let (status, body) = ask(&gw, bare("GET", "/capabilities", Some("k3y"))).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["capabilities"].clone(), v["orchestrators_answered"].clone()), (json!([]), json!(0)));
}

#[tokio::test]
async fn malformed_batch_jobs_are_400() {
    let gw = gateway(GatewayConfig::default());
    let (status, body) = ask(&gw, bare("POST", "/process/request/echo", None)).await;
    assert_eq!((status, error_of(&body)), (StatusCode::BAD_REQUEST, "missing Livepeer job header".into()));
    let climb =
        request("POST", "/process/request/..%2f..%2fai%2fstream%2fstop").header("Livepeer", job_header(json!({})));
    let (status, body) = ask(&gw, climb.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let gw = gateway(GatewayConfig { max_body_bytes: 16, ..GatewayConfig::default() });
    let (status, _) =
        ask(&gw, start(Some(&job_header(json!({}))), &format!(r#"{{"stream_name": "{}"}}"#, "a".repeat(64)))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let gw = gateway(GatewayConfig::default());
    let (status, body) = ask(&gw, bare("GET", "/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, crate::OPENAPI);
}

#[tokio::test]
async fn an_sse_reader_reconnecting_with_last_event_id_gets_only_what_came_after() {
    let gw = gateway(GatewayConfig::default());
    let secret = put_stream(&gw, "s1", false);
    let stream = gw.lock().get("s1").cloned().unwrap();
    for n in 1..=3 {
        stream.events.send(Arc::from(format!("{{\"n\":{n}}}")));
    }
    // An ended stream closes its SSE answers (after an `end` event), so each body can be read whole.
    stream.cancel.cancel();
    let events = |last: Option<&str>| {
        let mut req = request("GET", "/process/stream/s1/events").header("Authorization", format!("Bearer {secret}"));
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        req.body(Body::empty()).unwrap()
    };
    let (status, all) = ask(&gw, events(None)).await;
    assert_eq!(status, StatusCode::OK);
    for n in 1..=3 {
        assert!(all.contains(&format!("id: {n}\ndata: {{\"n\":{n}}}\n")), "{all}");
    }
    let (_, after) = ask(&gw, events(Some("2"))).await;
    assert!(
        after.contains("id: 3\ndata: {\"n\":3}\n") && !after.contains("\"n\":2") && !after.contains("\"n\":1"),
        "{after}"
    );
    assert!(after.contains("event: end"), "{after}");
    // An id that is not a number is no position: everything kept.
    let (_, bad) = ask(&gw, events(Some("x"))).await;
    assert!(bad.contains("\"n\":1"), "{bad}");
}

#[tokio::test]
async fn the_one_stream_console_shows_the_rtmp_play_url_to_a_viewer_and_the_ingest_only_to_control() {
    let gw = gateway(GatewayConfig::default());
    gw.rtmp_public.set("127.0.0.1:1935".into()).unwrap();
    let secret = put_stream(&gw, "s1", true);
    let viewer = gw.lock().get("s1").unwrap().viewer.clone();
    let meta = |page: &str| {
        let start = page.find(r#"<meta name="byoc-stream" content=""#).unwrap_or_else(|| panic!("no stream meta"));
        let rest = &page[start + r#"<meta name="byoc-stream" content=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let play = format!("play=rtmp://127.0.0.1:1935/live/s1-{viewer}-out");
    let (status, page) = ask(&gw, bare("GET", &format!("/process/stream/s1/player?token={viewer}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    let said = meta(&page);
    assert!(said.split(' ').any(|w| w == play), "{said}");
    assert!(!said.contains(&secret) && !said.contains("rtmp=") && !said.contains("viewer="), "{said}");
    let (_, page) = ask(&gw, bare("GET", &format!("/process/stream/s1/player?token={secret}"), None)).await;
    let said = meta(&page);
    assert!(said.split(' ').any(|w| w == play), "{said}");
    assert!(said.contains(&format!("rtmp=rtmp://127.0.0.1:1935/live/s1-{secret}")), "{said}");
}
