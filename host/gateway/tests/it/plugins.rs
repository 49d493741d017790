//! Streams and batch jobs served by real WebAssembly plugins (from `plugins/`, built for
//! wasm32-wasip2) inside the orchestrator, driven through the gateway over loopback HTTP.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, http, wait_until_within};

use byoc_orchestrator::Orchestrator;
use byoc_runtime::{CacheDir, Runtime, RuntimeConfig};
use serde_json::{Value, json};

use byoc_e2e::clients::sse_until;
use byoc_e2e::nodes::root;

/// How long a test waits for a line on an SSE stream.
const SSE_LIMIT: Duration = Duration::from_secs(30);

pub(crate) struct Nodes {
    pub(crate) gw: String,
    pub(crate) orch: Arc<Orchestrator>,
    pub(crate) orch_url: String,
}

pub(crate) fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: CacheDir::At(root().join("target/runtime-test-cache")),
        max_instances: 16,
        max_memory_mib: 256,
        ..RuntimeConfig::default()
    }
}

/// The bundled plugins behind an orchestrator and a gateway.
pub(crate) async fn nodes() -> Nodes {
    let runtime = common::bundled_plugins(runtime_config()).await;
    let n = nodes_with(&runtime).await;
    assert!(n.orch.registry.names().contains(&"passthrough".to_string()));
    n
}

/// The plugins loaded in `runtime` behind an orchestrator and a gateway, on loopback.
pub(crate) async fn nodes_with(runtime: &Arc<Runtime>) -> Nodes {
    let (orch_url, orch) = common::serve_orchestrator(runtime, 4, |c| {
        c.heartbeat_every = Duration::from_millis(200);
        c.secret = Some("node-secret".into());
    })
    .await;
    let (gw, _) = common::serve_gateway(vec![orch_url.clone()]).await;
    Nodes { gw, orch, orch_url }
}

fn job(capability: &str, params: Value) -> String {
    byoc_e2e::nodes::job_header(capability, &params)
}

/// Asks the gateway to start a stream of `capability` with these legs and this start body.
pub(crate) async fn start_answer(gw: &str, capability: &str, legs: Value, body: &'static str) -> reqwest::Response {
    let r = http().post(format!("{gw}/process/stream/start")).header("Livepeer", job(capability, legs)).body(body);
    r.send().await.unwrap()
}

/// Starts a stream of `capability` with these legs and this start body; returns start's answer (its URLs).
pub(crate) async fn start(gw: &str, capability: &str, legs: Value, body: &'static str) -> Value {
    let r = start_answer(gw, capability, legs, body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn video_through_passthrough_and_ts_analyzer_plugins() {
    byoc_protocol::telemetry::init();
    let n = nodes().await;
    let fixture = std::fs::read(root().join("plugins/ts-analyzer/tests/fixtures/h264-aac-2s.ts")).unwrap();
    // No legs named: each capability's own (passthrough: video in and out; ts-analyzer: video in, data).
    let legs = json!({});

    // passthrough: the same bytes come back out, segment for segment.
    let urls = start(&n.gw, "passthrough", legs.clone(), "{}").await;
    let secret = urls["stream_secret"].as_str().unwrap();
    let ingest = urls["ingest_url"].as_str().unwrap();
    let egress = urls["egress_url"].as_str().unwrap();
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    for seq in 0..2 {
        let r = http().post(format!("{ingest}/{seq}")).bearer_auth(secret).body(fixture.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let out = http().get(format!("{egress}/{seq}")).bearer_auth(secret).send().await.unwrap();
        assert_eq!(out.headers()["lp-trickle-seq"], seq.to_string().as_str());
        assert_eq!(out.bytes().await.unwrap(), fixture, "segment {seq} differs after passthrough");
    }
    sse_until(&mut events, "stream_started", SSE_LIMIT).await;
    sse_until(&mut events, "heartbeat", SSE_LIMIT).await;
    let stop = http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(stop.status(), 200);
    assert!(n.orch.streams().is_empty());
    assert_eq!(n.orch.registry.get("passthrough").unwrap().capacity.in_use(), 0);

    // ts-analyzer: what it saw in the segment arrives as data over SSE.
    let urls = start(&n.gw, "ts-analyzer", legs, "{}").await;
    let mut data = http().get(urls["data_url"].as_str().unwrap()).send().await.unwrap();
    let r = http()
        .post(format!("{}/0", urls["ingest_url"].as_str().unwrap()))
        .bearer_auth(urls["stream_secret"].as_str().unwrap())
        .body(fixture.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report = sse_until(&mut data, "h264", SSE_LIMIT).await;
    assert!(report.contains("data: "), "{report}");

    // What happened shows in each node's metrics, each page with its own families (one process-wide
    // registry here, as in `byoc dev`), every family with its help text.
    let metrics = http().get(format!("{}/metrics", n.orch_url)).send().await.unwrap().text().await.unwrap();
    for needle in [
        "byoc_plugin_call_seconds_bucket{call=\"chunk\"",
        "byoc_capacity_in_use{capability=\"ts-analyzer\"} 1",
        "byoc_capacity_limit{capability=\"passthrough\"} 4",
        "# HELP byoc_capacity_in_use Slots in use per capability, at scrape time.",
    ] {
        assert!(metrics.contains(needle), "no {needle} in /metrics:\n{metrics}");
    }
    assert!(!metrics.contains("byoc_gateway_"), "gateway families on the orchestrator's page:\n{metrics}");
    let gw_metrics = http().get(format!("{}/metrics", n.gw)).send().await.unwrap().text().await.unwrap();
    for needle in ["byoc_gateway_segments_in_total", "byoc_gateway_segments_out_total"] {
        assert!(gw_metrics.contains(needle), "no {needle} in the gateway's /metrics:\n{gw_metrics}");
    }
    assert!(!gw_metrics.contains("byoc_plugin_") && !gw_metrics.contains("byoc_capacity_"), "{gw_metrics}");
    for page in [&metrics, &gw_metrics] {
        for family in page.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()) {
            assert!(page.contains(&format!("# HELP {family} ")), "{family} has no help text:\n{page}");
        }
    }
    http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_and_live_control_through_text_transform() {
    let n = nodes().await;
    let batch = |route: &'static str, body: &'static str| {
        http()
            .post(format!("{}/process/request/{route}", n.gw))
            .header("Livepeer", job("text-transform", json!({})))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = batch("upper", r#"{"text":"hello world"}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"mode": "upper", "text": "HELLO WORLD"}));
    // A streamed (SSE) answer, ending with [DONE].
    let r = batch("reverse", r#"{"text":"ab\ncd","stream":true}"#).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.contains("\"ba\"") && text.contains("\"dc\"") && text.trim_end().ends_with("data: [DONE]"), "{text}");
    // A plugin's own refusal keeps its status (404 for an unknown mode), and is final.
    assert_eq!(batch("sideways", r#"{"text":"x"}"#).await.unwrap().status(), 404);
    assert_eq!(n.orch.registry.get("text-transform").unwrap().capacity.in_use(), 0);

    // As a data-only stream, with its mode changed live through update (control).
    let legs = json!({"enable_data_output": true});
    let urls = start(&n.gw, "text-transform", legs, r#"{"params": {"mode": "upper"}}"#).await;
    let mut data = http().get(urls["data_url"].as_str().unwrap()).send().await.unwrap();
    let up = http()
        .post(urls["update_url"].as_str().unwrap())
        .body(r#"{"mode":"lower","text":"MiXeD"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    let got = sse_until(&mut data, "mixed", SSE_LIMIT).await;
    assert!(got.contains("\"lower\""), "{got}");
    http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    // Unknown capability: every orchestrator refuses, a clear 503.
    let r = http()
        .post(format!("{}/process/request/x", n.gw))
        .header("Livepeer", job("nope", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

/// `GET /capabilities` lists the plugins with their legs, schema and capacity; a start that names no leg
/// gets the capability's own, one that names a leg the capability lacks is a 400 naming it; an unknown
/// capability is a 404, a known one with no room a 503.
#[tokio::test(flavor = "multi_thread")]
async fn capabilities_are_listed_and_legs_default_to_the_capabilitys() {
    let n = nodes().await;
    let list: Value = http().get(format!("{}/capabilities", n.gw)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["orchestrators_answered"], 1, "{list}");
    let caps = list["capabilities"].as_array().unwrap();
    let find = |name: &str| caps.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name}: {list}"));
    let ts = find("ts-analyzer");
    assert_eq!(ts["legs"], json!({"video_in": true, "video_out": false, "data": true, "events": true}));
    assert_eq!(ts["params_schema"]["properties"]["data"]["type"], "boolean");
    assert_eq!(ts["orchestrators"], 1);
    assert_eq!(ts["available_capacity"], n.orch.registry.available("ts-analyzer"));
    assert!(ts["description"].as_str().unwrap().contains("MPEG-TS"));
    assert_eq!(
        find("text-transform")["legs"],
        json!({"video_in": false, "video_out": false, "data": true, "events": true})
    );

    // No leg named: text-transform's own (data and events), nothing else.
    let urls = start(&n.gw, "text-transform", json!({}), "{}").await;
    assert!(urls["data_url"].as_str().unwrap().contains("/data?token="), "{urls}");
    for off in ["ingest_url", "egress_url", "whep_url", "rtmp_url"] {
        assert_eq!(urls[off], "", "{off}: {urls}");
    }
    http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    // A leg named off stays off.
    let urls = start(&n.gw, "ts-analyzer", json!({"enable_data_output": false}), "{}").await;
    assert_eq!(urls["data_url"], "");
    assert_ne!(urls["ingest_url"], "");
    http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();

    let r = start_answer(&n.gw, "text-transform", json!({"enable_video_ingress": true}), "{}").await;
    assert_eq!(r.status(), 400);
    let why: Value = r.json().await.unwrap();
    assert_eq!(why["error"], "capability text-transform has no video in: enable_video_ingress cannot be true");

    let r = start_answer(&n.gw, "nosuch", json!({}), "{}").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("unknown capability nosuch"));

    // Known, but full: 503 with why.
    let limit = n.orch.registry.get("passthrough").unwrap().capacity.limit();
    let mut running = Vec::new();
    for _ in 0..limit {
        running.push(start(&n.gw, "passthrough", json!({}), "{}").await);
    }
    let r = start_answer(&n.gw, "passthrough", json!({}), "{}").await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("no capacity for passthrough"));
    for urls in running {
        http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    }
}

/// A call that puts out more than the session's output queue holds completes: the orchestrator
/// writes what a session puts out while the call runs, not only once it has returned (one task
/// reads the input, makes the calls and writes the outputs). With a queue of one, ts-analyzer's
/// segment end (an event, then the data line) waits on the queue until the first is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_putting_out_more_than_the_output_queue_holds_completes() {
    let runtime = common::bundled_plugins(RuntimeConfig { output_buffer: 1, ..runtime_config() }).await;
    let n = nodes_with(&runtime).await;
    let fixture = std::fs::read(root().join("plugins/ts-analyzer/tests/fixtures/h264-aac-2s.ts")).unwrap();
    let urls = start(&n.gw, "ts-analyzer", json!({}), "{}").await;
    let mut data = http().get(urls["data_url"].as_str().unwrap()).send().await.unwrap();
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    let secret = urls["stream_secret"].as_str().unwrap();
    let ingest = urls["ingest_url"].as_str().unwrap();
    let r = http().post(format!("{ingest}/0")).bearer_auth(secret).body(fixture).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let log = sse_until(&mut events, "ts-analyzer.streams", SSE_LIMIT).await;
    assert!(!log.contains("\"type\":\"error\""), "{log}");
    let report = sse_until(&mut data, "h264", SSE_LIMIT).await;
    assert!(report.contains("\"seq\":0"), "{report}");
    http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
}

/// A plugin that traps mid-stream fails only its own stream: restarts per its policy, then the
/// stream ends with error events and its capacity returns, while another stream goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_trap_mid_stream_is_contained() {
    let hostile = root().join("target/hostile-plugins/hostile");
    if !hostile.join("hostile.wasm").is_file() {
        assert!(
            std::env::var("BYOC_REQUIRE_PEERS").is_err(),
            "target/hostile-plugins missing: `cargo xtask test` builds it"
        );
        eprintln!("skipped: hostile plugins not built (run through `cargo xtask test`)");
        return;
    }
    let runtime = Arc::new(Runtime::new(runtime_config()).unwrap());
    runtime.load_plugin(&hostile).await.unwrap();
    let Nodes { gw: gw_url, orch, .. } = nodes_with(&runtime).await;
    let legs = json!({"enable_data_output": true});
    let start = || {
        http()
            .post(format!("{gw_url}/process/stream/start"))
            .header("Livepeer", job("hostile", legs.clone()))
            .body("{}")
            .send()
    };
    let victim: Value = start().await.unwrap().json().await.unwrap();
    let bystander: Value = start().await.unwrap().json().await.unwrap();
    assert_eq!(orch.registry.get("hostile").unwrap().capacity.in_use(), 2);
    let mut events = http().get(victim["events_url"].as_str().unwrap()).send().await.unwrap();
    // The manifest allows two restarts; the third trap fails the stream.
    for _ in 0..3 {
        let r = http().post(victim["update_url"].as_str().unwrap()).body("trap").send().await.unwrap();
        assert!(r.status().is_success() || r.status().as_u16() == 410 || r.status().as_u16() == 404, "{}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = sse_until(&mut events, "stream_ended", SSE_LIMIT).await;
    assert!(log.contains("\"kind\":\"trap\""), "{log}");
    assert!(log.contains("plugin_restarted"), "{log}");
    wait_until_within("the failed stream to be removed", Duration::from_secs(10), || orch.streams().len() == 1).await;
    assert_eq!(orch.registry.get("hostile").unwrap().capacity.in_use(), 1);
    // The other stream still works.
    let mut data = http().get(bystander["data_url"].as_str().unwrap()).send().await.unwrap();
    let r = http().post(bystander["update_url"].as_str().unwrap()).body("echo still here").send().await.unwrap();
    assert_eq!(r.status(), 200);
    sse_until(&mut data, "still here", SSE_LIMIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_reloads_its_plugins_on_request() {
    let n = nodes().await;
    let url = format!("{}/plugins/reload", n.orch_url);
    assert_eq!(http().post(&url).send().await.unwrap().status(), 400, "the node's secret is required");
    let r = http().post(&url).header("Authorization", "node-secret").body("passthrough").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report[0]["name"], "passthrough");
    assert_eq!(report[0]["ok"], true);
    let r = http().post(&url).header("Authorization", "node-secret").body("no-such-plugin").send().await.unwrap();
    assert_eq!(r.status(), 422);
    let all: Value =
        http().post(&url).header("Authorization", "node-secret").send().await.unwrap().json().await.unwrap();
    assert!(all.as_array().unwrap().len() >= 3, "{all}");
}
