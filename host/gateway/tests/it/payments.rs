//! Priced mode end to end on loopback: a gateway paying an orchestrator with probabilistic
//! tickets for a stream on the real `passthrough` plugin, the orchestrator debiting it as it runs
//! and stopping it when the gateway stops paying; malformed and replayed payments refused.

use std::sync::Arc;
use std::time::Duration;

use byoc_gateway::Gateway;
use byoc_orchestrator::{Orchestrator, PaymentSettings};
use byoc_payment::job::{EthAddressCredential, JobRequest};
use byoc_payment::{RecipientConfig, SecretKey, TicketParams, Wei, WinProb};
use byoc_runtime::{CacheDir, RuntimeConfig};
use serde_json::{Value, json};

use crate::common::{self, eventually, http, wait_until_within as wait_until};

/// Wei per second of `passthrough` in these tests.
const PRICE: u128 = 1000;

async fn orchestrator(grace: Duration) -> (String, Arc<Orchestrator>) {
    let cache_dir = CacheDir::At(byoc_e2e::nodes::root().join("target/runtime-test-cache"));
    let runtime =
        common::bundled_plugins(RuntimeConfig { cache_dir, max_instances: 8, ..RuntimeConfig::default() }).await;
    common::serve_orchestrator_with(
        |c| {
            c.key = Some(SecretKey::generate());
            c.heartbeat_every = Duration::from_millis(200);
            c.payments = PaymentSettings {
                // Every ticket wins (so each is stored) and is worth 500 wei.
                recipient: RecipientConfig {
                    face_value: Wei::from_u128(500),
                    win_prob: WinProb::max(),
                    ..RecipientConfig::default()
                },
                min_balance_secs: 1,
                debit_every: Duration::from_millis(100),
                grace,
                ticket_store: None,
                on_chain: None,
            };
        },
        |orch| {
            orch.offer_plugins(&runtime, 4);
            orch.registry.set_price("passthrough", byoc_orchestrator::Price { per_unit: PRICE, scaling: 1 });
        },
    )
    .await
}

async fn gateway(orch: &str, payment_every: Option<Duration>) -> (String, Arc<Gateway>) {
    gateway_with_key(orch, payment_every, None).await
}

async fn gateway_with_key(
    orch: &str,
    payment_every: Option<Duration>,
    key: Option<SecretKey>,
) -> (String, Arc<Gateway>) {
    common::serve_gateway_with(vec![orch.to_string()], |c| {
        c.key = key;
        c.payment_every = payment_every;
        c.min_balance_secs = 3;
        c.top_up_secs = 2;
    })
    .await
}

/// A client's start: the job asks for 2 s of compute (the gateway pays that much up front).
async fn start(gw: &str) -> Value {
    start_with(gw, json!({"enable_video_ingress": true, "enable_video_egress": true})).await
}

async fn start_with(gw: &str, parameters: Value) -> Value {
    let header = JobRequest {
        request: "{}".into(),
        parameters: parameters.to_string(),
        capability: "passthrough".into(),
        timeout_seconds: 2,
        ..Default::default()
    }
    .to_header();
    let r =
        http().post(format!("{gw}/process/stream/start")).header("Livepeer", header).body("{}").send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "start: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_stream_runs_and_an_unpaid_one_is_stopped_within_the_grace() {
    // Paid: the gateway tops up every 200 ms; the stream outlives what the start paid for.
    let (orch_url, orch) = orchestrator(Duration::from_millis(300)).await;
    let (gw_url, gw) = gateway(&orch_url, Some(Duration::from_millis(200))).await;
    let urls = start(&gw_url).await;
    let id = urls["stream_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(gw.stream_ids(), vec![id.clone()], "a paid stream keeps running");
    assert_eq!(orch.streams().len(), 1);
    let status: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["orchestrator"], orch_url.as_str());
    assert_eq!(status["gateway_address"], gw.address().to_checksum());
    let balance: i64 = status["balance"].as_str().unwrap().parse().unwrap();
    assert!(balance > 0, "balance {balance}");
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
    assert_eq!(orch.registry.get("passthrough").unwrap().capacity.in_use(), 0);

    // Unpaid: no top-ups; the start paid for 2 s, so the stream is stopped after that plus the
    // grace, the gateway is told why, and the slot is free again.
    let (orch_url, orch) = orchestrator(Duration::from_millis(300)).await;
    let (gw_url, gw) = gateway(&orch_url, None).await;
    let urls = start(&gw_url).await;
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    let began = std::time::Instant::now();
    wait_until("the unpaid stream to be stopped", Duration::from_secs(15), || orch.streams().is_empty()).await;
    let after = began.elapsed();
    eprintln!("unpaid stream stopped after {after:?} (2 s paid + 0.3 s grace)");
    assert!(after >= Duration::from_millis(1500), "stopped too early: {after:?}");
    // The slot is released just after the stream leaves the table.
    wait_until("the slot to be free", Duration::from_secs(5), || {
        orch.registry.get("passthrough").unwrap().capacity.in_use() == 0
    })
    .await;
    wait_until("the gateway to end it", Duration::from_secs(10), || gw.stream_ids().is_empty()).await;
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(c)) = events.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    assert!(seen.contains("insufficient_balance"), "events: {seen}");
    assert!(!seen.contains("orchestrator_swap"), "an unpaid stream is not moved elsewhere: {seen}");
}

/// A signed job header from `key` for `capability`.
fn signed(key: &SecretKey, id: &str) -> String {
    let job = JobRequest {
        id: id.into(),
        request: json!({"stream_id": id}).to_string(),
        parameters: json!({"enable_video_ingress": true}).to_string(),
        capability: "passthrough".into(),
        timeout_seconds: 10,
        ..Default::default()
    };
    byoc_e2e::nodes::signed_job(job, key)
}

async fn token(orch_url: &str, key: &SecretKey) -> Value {
    let cred = EthAddressCredential::new(key).unwrap().to_header();
    let r = http()
        .get(format!("{orch_url}/process/token"))
        .header("Livepeer-Eth-Address", cred)
        .header("Livepeer-Capability", "passthrough")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()
}

/// Opt-in: a stream paid from a balance of its own, apart from the gateway's shared balance; what
/// is left when it ends goes back to the shared one.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_can_pay_from_a_balance_of_its_own() {
    let (orch_url, orch) = orchestrator(Duration::from_secs(10)).await;
    let key = SecretKey::generate();
    let gw_key = SecretKey::from_bytes(&key.to_bytes()[..]).unwrap();
    let (gw_url, _gw) = gateway_with_key(&orch_url, Some(Duration::from_millis(200)), Some(gw_key)).await;
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true, "per_stream_balance": true});
    let urls = start_with(&gw_url, legs).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status: Value = http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let own: i64 = status["balance"].as_str().unwrap().parse().unwrap();
    assert!(own > 0, "the stream's own balance: {status}");
    assert!(token(&orch_url, &key).await.get("balance").is_none(), "the shared balance is untouched while it runs");
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
    wait_until("the slot to be free", Duration::from_secs(5), || {
        orch.registry.get("passthrough").unwrap().capacity.in_use() == 0
    })
    .await;
    let shared = eventually("the stream's balance to go to the shared one", Duration::from_secs(10), || async {
        token(&orch_url, &key).await["balance"].as_i64().filter(|b| *b > 0)
    })
    .await;
    assert!(shared <= own, "shared {shared} after the stream, which had {own}");
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_are_checked_and_never_counted_twice() {
    let (orch_url, orch) = orchestrator(Duration::from_secs(10)).await;
    let key = SecretKey::generate();
    let t = token(&orch_url, &key).await;
    assert_eq!(t["price"]["pricePerUnit"], 1000);
    let params: TicketParams = serde_json::from_value(t["ticket_params"].clone()).unwrap();
    assert!(t.get("balance").is_none(), "no balance yet: {t}");

    // No payment: 402. An unsigned job for a priced capability: refused too.
    let start = |header: String, payment: Option<String>| {
        let mut r = http().post(format!("{orch_url}/ai/stream/start")).header("Livepeer", header).body("{}");
        if let Some(p) = payment {
            r = r.header("Livepeer-Payment", p);
        }
        r.send()
    };
    assert_eq!(start(signed(&key, "s1"), None).await.unwrap().status(), 402);
    for bad in ["@@@", "AAAA", ""] {
        let r = start(signed(&key, "s1"), Some(bad.into())).await.unwrap();
        assert_eq!(r.status(), 400, "payment {bad:?}");
    }
    // Tickets worth 4 × 500 wei = 2 s of price.
    let price = byoc_payment::Price::wei_per_second(1000).unwrap();
    let payment = byoc_payment::create_payment(&key, &params, &price, 4).unwrap().to_header();
    // Someone else's payment does not count for this sender.
    let other = SecretKey::generate();
    assert_eq!(start(signed(&other, "s0"), Some(payment.clone())).await.unwrap().status(), 400);
    let r = start(signed(&key, "s1"), Some(payment.clone())).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["livepeer-balance"], "2000");
    assert_eq!(orch.streams().len(), 1);
    // The same tickets again: refused, the balance unchanged.
    let r = http()
        .post(format!("{orch_url}/ai/stream/payment"))
        .header("Livepeer", signed(&key, "s1"))
        .header("Livepeer-Payment", payment)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("already used"));
    let t = token(&orch_url, &key).await;
    let balance = t["balance"].as_i64().unwrap();
    assert!((0..=2000).contains(&balance), "balance {balance} after a refused replay");
    byoc_protocol::telemetry::init();
    let metrics = http().get(format!("{orch_url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("byoc_orchestrator_balance_wei{capability=\"passthrough\"}"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_priced_batch_job_through_the_gateway_is_paid_for() {
    // Before, the gateway paid for streams only: a batch job on a priced capability got the
    // orchestrator's 402, whatever the gateway's funds.
    let (orch_url, _orch) = orchestrator(Duration::from_secs(5)).await;
    let (gw, _) = gateway(&orch_url, None).await;
    let header =
        JobRequest { request: "{}".into(), capability: "passthrough".into(), timeout_seconds: 2, ..Default::default() }
            .to_header();
    for _ in 0..2 {
        let r = http()
            .post(format!("{gw}/process/request/passthrough"))
            .header("Livepeer", &header)
            .header("content-type", "application/json")
            .body(r#"{"hello":"byoc"}"#)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let balance = r.headers().get("livepeer-balance").and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("hello"), "{body}");
        // Paid for min_balance_secs (3 s) of 1000 wei/s in 500 wei tickets, less what the job took.
        assert!(balance.is_some_and(|b| b > 0), "{balance:?}");
    }
}
