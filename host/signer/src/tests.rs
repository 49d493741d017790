//! The router on its own (`oneshot`): who may call, each route's answers and refusals, and payments
//! checked by a real `Recipient` (the orchestrator's ticket checks).

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use byoc_payment::job::{EthAddressCredential, JobRequest, SignaturePolicy};
use byoc_payment::proto::{CAPABILITY_BYOC, OrchestratorInfo, PriceInfo};
use byoc_payment::{BlockClock, Payment, Price, Recipient, RecipientConfig, SecretKey, Wei};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

const KEY: &str = "test-api-key";

fn signer(config: impl FnOnce(&mut SignerConfig)) -> Arc<Signer> {
    let mut c = SignerConfig::new(SecretKey::generate());
    c.api_key = Some(KEY.into());
    config(&mut c);
    Signer::new(c).unwrap()
}

async fn call(s: &Arc<Signer>, method: &str, path: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
    let resp = router(s.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn post(s: &Arc<Signer>, path: &str, body: Value) -> (StatusCode, Value) {
    call(s, "POST", path, body, Some(KEY)).await
}

/// An orchestrator: its recipient (the ticket checks of `byoc orchestrator`) and its price.
struct Orch {
    recipient: Recipient,
    price: Price,
}

impl Orch {
    fn new(wei_per_sec: i64) -> Orch {
        let ev = Wei::from_u128(1_000_000);
        let config = RecipientConfig::for_ev(Wei::from_u128(100_000_000), &ev);
        Orch {
            recipient: Recipient::new(SecretKey::generate().address(), config, BlockClock::manual(1)),
            price: Price::wei_per_second(wei_per_sec).unwrap(),
        }
    }

    /// A fresh `OrchestratorInfo` for `sender`, base64, `text-transform` priced as the params.
    fn info(&self, sender: &Signer) -> String {
        let params = self.recipient.ticket_params(&sender.address(), &self.price).unwrap();
        let price = PriceInfo { price_per_unit: self.price.price_per_unit, pixels_per_unit: 1, ..Default::default() };
        let info = OrchestratorInfo {
            transcoder: "http://127.0.0.1:1".into(),
            ticket_params: Some(params.to_proto()),
            price_info: Some(price.clone()),
            address: self.recipient.address().0.to_vec(),
            capabilities_prices: vec![PriceInfo {
                capability: CAPABILITY_BYOC,
                constraint: "text-transform".into(),
                ..price
            }],
            ..Default::default()
        };
        B64.encode(info.encode_to_vec())
    }
}

fn pay_request(info: &str, state: Option<&Value>) -> Value {
    let mut v = json!({"orchestrator": info, "type": "lv2v", "capability": "text-transform"});
    if let Some(st) = state {
        v["state"] = st.clone();
    }
    v
}

#[tokio::test]
async fn every_route_needs_the_api_key() {
    let s = signer(|_| {});
    for (method, path) in [
        ("POST", "/sign-orchestrator-info"),
        ("POST", "/sign-byoc-job"),
        ("POST", "/generate-live-payment"),
        ("GET", "/discover-orchestrators"),
        ("GET", "/metrics"),
    ] {
        for key in [None, Some("wrong"), Some("")] {
            let (status, body) = call(&s, method, path, json!({}), key).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {key:?}");
            assert!(body["error"].as_str().unwrap().contains("API key"), "{body}");
        }
    }
    let (status, _) = call(&s, "POST", "/sign-orchestrator-info", json!({}), Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_orchestrator_info_signature_is_the_address_credential() {
    let s = signer(|_| {});
    let (status, body) = post(&s, "/sign-orchestrator-info", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let cred = EthAddressCredential {
        addr: body["address"].as_str().unwrap().into(),
        sig: body["signature"].as_str().unwrap().into(),
    };
    assert_eq!(cred.verify(SignaturePolicy::Required).unwrap(), s.address());
    assert_eq!(cred.addr, s.address().to_checksum());
}

#[tokio::test]
async fn a_signed_job_verifies_as_the_orchestrator_checks_it_and_bad_jobs_are_400() {
    let s = signer(|_| {});
    let job = json!({"id": "j1", "capability": "text-transform", "request": "{\"text\":\"hi\"}",
        "parameters": "", "timeout_seconds": 30});
    let (status, body) = post(&s, "/sign-byoc-job", job).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let req = JobRequest {
        id: "j1".into(),
        request: "{\"text\":\"hi\"}".into(),
        capability: "text-transform".into(),
        sender: body["sender"].as_str().unwrap().into(),
        sig: body["signature"].as_str().unwrap().into(),
        timeout_seconds: 30,
        ..Default::default()
    };
    assert_eq!(req.verify(SignaturePolicy::Required).unwrap(), Some(s.address()));

    let big = "x".repeat(70_000);
    for (bad, says) in [
        (json!("not an object"), "invalid job"),
        (json!({"capability": "c"}), "invalid job"),
        (json!({"capability": "c", "request": "[1]"}), "JSON object"),
        (json!({"capability": "c", "request": "nope"}), "JSON object"),
        (json!({"capability": "c", "request": "{}", "parameters": "7"}), "parameters"),
        (json!({"capability": "", "request": "{}"}), "capability"),
        (json!({"capability": "c", "request": "{}", "timeout_seconds": -1}), "timeout"),
        (json!({"capability": "c", "request": format!("{{\"a\":\"{big}\"}}")}), "over"),
    ] {
        let (status, body) = post(&s, "/sign-byoc-job", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].as_str().unwrap().contains(says), "{bad}: {body}");
    }
}

#[tokio::test]
async fn payments_pass_the_recipients_checks_with_fresh_nonces_even_for_the_same_info() {
    let s = signer(|_| {});
    let orch = Orch::new(1_000_000);
    let info = orch.info(&s);
    let mut total = 0usize;
    for _ in 0..2 {
        // The SDK sends the same kind of request every time, without state.
        let (status, body) = post(&s, "/generate-live-payment", pay_request(&info, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body["segCreds"].as_str().unwrap().is_empty());
        let payment = Payment::from_header(body["payment"].as_str().unwrap()).unwrap();
        let receipt = orch.recipient.receive_payment(&payment, &s.address()).expect("fresh nonces, valid tickets");
        // 60 s of 1e6 wei/s at 1e6 wei a ticket.
        assert_eq!(receipt.tickets, 60);
        total += receipt.tickets;
        assert_eq!(payment.expected_price.unwrap().price_per_unit, 1_000_000);
    }
    assert_eq!(total, 120);
}

#[tokio::test]
async fn in_pixels_without_a_type_pays_for_that_many_seconds() {
    // How `byoc gateway --signer` asks: the seconds its balance is short of, no type.
    let s = signer(|_| {});
    let orch = Orch::new(1_000_000);
    for (secs, tickets) in [(7, 7), (90, 90)] {
        let req = json!({"orchestrator": orch.info(&s), "capability": "text-transform", "inPixels": secs});
        let (status, body) = post(&s, "/generate-live-payment", req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let payment = Payment::from_header(body["payment"].as_str().unwrap()).unwrap();
        assert_eq!(orch.recipient.receive_payment(&payment, &s.address()).unwrap().tickets, tickets);
    }
    // With a type, inPixels is not the amount (the type's rule is); a day at most; negative is ignored.
    let typed = json!({"orchestrator": orch.info(&s), "type": "lv2v", "capability": "text-transform", "inPixels": 7});
    let (status, body) = post(&s, "/generate-live-payment", typed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let payment = Payment::from_header(body["payment"].as_str().unwrap()).unwrap();
    assert_eq!(payment.ticket_sender_params.len(), 60, "the opening 60 s");
    let huge = json!({"orchestrator": orch.info(&s), "capability": "text-transform", "inPixels": 90_000});
    let (status, body) = post(&s, "/generate-live-payment", huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("inPixels"), "{body}");
}

#[tokio::test]
async fn a_session_state_pays_for_the_time_since_and_a_replay_or_forgery_is_400() {
    let s = signer(|_| {});
    let orch = Orch::new(1_000_000);
    let (status, first) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    assert_eq!(status, StatusCode::OK);
    let st1 = first["state"].clone();
    let (status, second) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&st1))).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let payment = Payment::from_header(second["payment"].as_str().unwrap()).unwrap();
    let receipt = orch.recipient.receive_payment(&payment, &s.address()).unwrap();
    assert!(receipt.tickets >= 1 && receipt.tickets < 60, "{} tickets for ~1 s", receipt.tickets);
    let state: PaymentState =
        SignedState::open(&serde_json::from_value(second["state"].clone()).unwrap(), &s.address()).unwrap();
    assert_eq!(state.sequence_number, 2);

    // The first state again: refused, as a replay.
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&st1))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("replayed state"), "{body}");

    // Another signer's state, and ours with its State changed.
    let other = signer(|_| {});
    let (_, theirs) = post(&other, "/generate-live-payment", pay_request(&orch.info(&other), None)).await;
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&theirs["state"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("invalid sig"), "{body}");
    let mut forged = second["state"].clone();
    forged["State"] =
        json!(B64.encode(br#"{"StateID":"x","LastUpdate":"","OrchestratorAddress":"","SequenceNumber":7}"#));
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&forged))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Our state, for another orchestrator.
    let b = Orch::new(1_000_000);
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&b.info(&s), Some(&second["state"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("is for orchestrator"), "{body}");
}

#[tokio::test]
async fn prices_over_a_ceiling_are_481_and_bad_inputs_400() {
    let s = signer(|c| {
        c.max_price = Some(Price::wei_per_second(10_000_000).unwrap());
        c.max_price_per_capability.insert("text-transform".into(), Price::wei_per_second(500_000).unwrap());
    });
    let orch = Orch::new(1_000_000);
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    assert_eq!(status.as_u16(), 481, "{body}");
    assert!(body["error"].as_str().unwrap().contains("signer's maximum"), "{body}");

    let s = signer(|_| {});
    let mut req = pay_request(&orch.info(&s), None);
    req["maxPrice"] = json!({"price": 999_999, "currency": "wei", "unit": "seconds"});
    let (status, body) = post(&s, "/generate-live-payment", req.clone()).await;
    assert_eq!(status.as_u16(), 481, "{body}");
    req["maxPrice"] = json!({"price": 1_000_000, "currency": "USD", "unit": "seconds"});
    let (status, _) = post(&s, "/generate-live-payment", req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The first price of a session is its ceiling.
    let (_, first) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    let mut dearer = Orch::new(2_000_000);
    dearer.recipient = orch.recipient;
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&dearer.info(&s), Some(&first["state"]))).await;
    assert_eq!(status.as_u16(), 481, "{body}");
    assert!(body["error"].as_str().unwrap().contains("first price"), "{body}");

    // Too many tickets: 60 s of 1e9 wei/s at 1e6 a ticket.
    let (status, body) =
        post(&s, "/generate-live-payment", pay_request(&Orch::new(1_000_000_000).info(&s), None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("raise the orchestrator's ticket EV"), "{body}");

    let no_params = B64.encode(OrchestratorInfo::default().encode_to_vec());
    for (bad, says) in [
        (json!({"orchestrator": "%%%"}), "base64"),
        (json!({"orchestrator": B64.encode(b"\xff\xff\xff")}), "protobuf"),
        (json!({"orchestrator": no_params}), "no ticket params"),
        (json!({"nothing": 1}), "invalid payment request"),
        (pay_request(&Orch::new(0).info(&s), None), "face value is 0"),
    ] {
        let (status, body) = post(&s, "/generate-live-payment", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].as_str().unwrap().contains(says), "{says}: {body}");
    }
}

#[tokio::test]
async fn discovery_is_503_until_an_orchestrator_answers() {
    let s = signer(|_| {});
    let (status, body) = call(&s, "GET", "/discover-orchestrators?caps=x", Value::Null, Some(KEY)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"].as_str().unwrap().contains("no orchestrator"), "{body}");
}

#[test]
fn caps_are_percent_decoded() {
    assert_eq!(discovery::caps("caps=live-video-to-video%2Fsd+x"), ["live-video-to-video/sd x"]);
    assert_eq!(discovery::caps("caps=a%zz%"), ["a%zz%"]);
    assert_eq!(discovery::caps("other=1&caps=&caps=b"), ["b"]);
}

/// A webhook on loopback answering `answer` (status, JSON) and keeping what it was sent.
async fn webhook(answer: (u16, Value)) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                log.lock().unwrap().push(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
                (StatusCode::from_u16(answer.0).unwrap(), axum::Json(answer.1))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, seen)
}

fn with_hook(url: &str) -> Arc<Signer> {
    signer(|c| {
        c.webhook = Some(WebhookConfig {
            url: url.into(),
            headers: vec![("x-hook-secret".into(), "h".into())],
            timeout: Duration::from_secs(5),
        })
    })
}

#[tokio::test]
async fn the_auth_webhook_decides_and_its_expiry_is_kept_in_the_state() {
    let orch = Orch::new(1_000_000);
    let far = 4_102_444_800i64;
    let (url, seen) = webhook((200, json!({"status": 200, "expiry": far, "auth_id": "a-1"}))).await;
    let s = with_hook(&url);
    let (status, first) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let state = SignedState::open(&serde_json::from_value(first["state"].clone()).unwrap(), &s.address()).unwrap();
    assert_eq!((state.auth_expiry, state.auth_id.as_str()), (far, "a-1"));
    {
        let sent = seen.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["state"]["SequenceNumber"], 1);
        assert!(sent[0]["headers"].get("Authorization").is_none(), "the API key is not passed on: {}", sent[0]);
        assert_eq!(sent[0]["headers"]["Content-Type"], json!(["application/json"]));
    }
    // Until the expiry, the webhook is not asked again.
    let (status, _) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&first["state"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap().len(), 1);

    let (url, _) = webhook((200, json!({"status": 403, "reason": "denied"}))).await;
    let s = with_hook(&url);
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (StatusCode::FORBIDDEN, "denied"));

    for answer in [(500, json!({"status": 200})), (200, json!({"status": 0})), (200, json!("nonsense"))] {
        let (url, _) = webhook(answer.clone()).await;
        let s = with_hook(&url);
        let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer:?}: {body}");
    }
}

#[tokio::test]
async fn a_refused_payment_leaves_the_state_usable() {
    // A payment refused (over the request's ceiling) uses up nothing: the same state works after it.
    let orch = Orch::new(1_000_000);
    let s = signer(|_| {});
    let (_, first) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), None)).await;
    let mut req = pay_request(&orch.info(&s), Some(&first["state"]));
    req["maxPrice"] = json!({"price": 1, "currency": "wei", "unit": "seconds"});
    let (status, _) = post(&s, "/generate-live-payment", req).await;
    assert_eq!(status.as_u16(), 481);
    let (status, body) = post(&s, "/generate-live-payment", pay_request(&orch.info(&s), Some(&first["state"]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
