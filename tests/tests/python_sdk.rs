//! The official Livepeer Python SDK (livepeer-gateway 1.0.0) as the client of our orchestrator and
//! its bundled plugins: `submit_byoc_job` posts to `/process/request/{capability}` with a JSON
//! body, so every bundled batch plugin must answer its default route (the route `/{name}`).
//!
//! Each test starts an orchestrator in this process, in free mode (no key: every capability is
//! free, unsigned jobs allowed) on 127.0.0.1, offering the bundled plugins (`target/plugins`,
//! built on demand) and, for `http-adapter`, a toy worker on loopback. The SDK runs as a child
//! process (`tests/peers/sdk_batch.py`) with the peers' Python (`BYOC_PEERS_PYTHON`); without it
//! the tests print a skip line, unless `BYOC_REQUIRE_PEERS=1`, where they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use byoc_e2e::nodes::{plugins_dir, root};
use byoc_e2e::peers::python;
use byoc_e2e::peers_required;
use byoc_orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::job::SignaturePolicy;
use byoc_runtime::{CacheDir, PluginOperatorConfig, Runtime, RuntimeConfig};
use byoc_trickle::TrickleStore;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// The SDK's whole run (imports and every job).
const RUN: Duration = Duration::from_secs(120);

/// What the toy worker behind `http-adapter` was asked: path and JSON body.
type WorkerLog = Arc<Mutex<Vec<(String, Value)>>>;

/// A worker that answers every POST with what it got, and logs it.
async fn worker() -> Result<(String, WorkerLog)> {
    async fn answer(State(log): State<WorkerLog>, uri: axum::http::Uri, body: Bytes) -> axum::Json<Value> {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        log.lock().unwrap_or_else(|e| e.into_inner()).push((uri.to_string(), body.clone()));
        axum::Json(json!({"worker": "toy", "path": uri.path(), "got": body}))
    }
    let log = WorkerLog::default();
    let app = Router::new().route("/", post(answer)).route("/{*rest}", post(answer)).with_state(log.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Ok((format!("127.0.0.1:{}", addr.port()), log))
}

/// The bundled plugins, copied to `dir` with `http-adapter` granted `worker` (host:port) only.
fn bundled_plugins(dir: &Path, worker: &str) -> Result<()> {
    let from = plugins_dir();
    for plugin in ["passthrough", "text-transform", "ts-analyzer", "http-adapter"] {
        let to = dir.join(plugin);
        std::fs::create_dir_all(&to)?;
        for file in [format!("{plugin}.wasm"), "manifest.toml".into()] {
            std::fs::copy(from.join(plugin).join(&file), to.join(&file)).with_context(|| format!("{plugin}/{file}"))?;
        }
    }
    let manifest = dir.join("http-adapter/manifest.toml");
    let text = std::fs::read_to_string(&manifest)?;
    let text: Vec<String> = text
        .lines()
        .map(|l| if l.starts_with("outbound_hosts") { format!("outbound_hosts = [{worker:?}]") } else { l.into() })
        .collect();
    std::fs::write(&manifest, text.join("\n"))?;
    Ok(())
}

/// A free-mode orchestrator offering the bundled plugins, served on loopback; `http-adapter`
/// fronts a toy worker. Returns its URL and the worker's log.
async fn orchestrator(plugins: &Path) -> Result<(String, Arc<Orchestrator>, WorkerLog)> {
    let (worker, log) = worker().await?;
    bundled_plugins(plugins, &worker)?;
    let mut config = RuntimeConfig {
        cache_dir: CacheDir::At(root().join("target/runtime-test-cache")),
        max_instances: 16,
        max_memory_mib: 256,
        ..RuntimeConfig::default()
    };
    config.operator.plugins.insert(
        "http-adapter".into(),
        PluginOperatorConfig {
            config: BTreeMap::from([("worker_url".into(), format!("http://{worker}"))]),
            ..Default::default()
        },
    );
    let runtime = Arc::new(Runtime::load(plugins, config).await?);

    byoc_protocol::telemetry::init();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", l.local_addr()?);
    let orch = Orchestrator::new(
        OrchestratorConfig {
            service_url: url.clone(),
            signatures: SignaturePolicy::AllowUnsigned,
            ..OrchestratorConfig::default()
        },
        TrickleStore::default(),
    )?;
    let offered = orch.offer_plugins(&runtime, 4);
    ensure!(offered.len() == 4, "offered {offered:?}");
    let app = byoc_orchestrator::router(orch.clone());
    tokio::spawn(byoc_net::serve("orchestrator", l, app, byoc_net::Limits::default(), std::future::pending()));
    Ok((url, orch, log))
}

/// `tests/peers/sdk_batch.py`.
fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers").join("sdk_batch.py")
}

/// Runs `jobs` (`{"capability", "payload"}`) through the SDK against `orch`; one result a job, in
/// order. `None`: the SDK is not installed and the run does not require it (a skip line is printed).
async fn submit(py: &Path, test: &str, orch: &str, jobs: &[Value]) -> Result<Option<Vec<Value>>> {
    let mut child = tokio::process::Command::new(py)
        .arg("-u")
        .arg(driver())
        .arg(orch)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", py.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input: String = jobs.iter().map(|j| format!("{j}\n")).collect();
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(RUN, child.wait_with_output()).await.context("the SDK did not finish")??;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if stderr.contains("No module named 'livepeer_gateway'") && !peers_required() {
        eprintln!("{test}: skipped: livepeer-gateway is not installed for {}", py.display());
        return Ok(None);
    }
    if !out.status.success() || stdout.lines().last() != Some("DONE") {
        bail!("the SDK driver failed ({})\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}", out.status);
    }
    let results: Vec<Value> =
        stdout.lines().filter(|l| l.starts_with('{')).map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(results.len() == jobs.len(), "{} results for {} jobs:\n{stdout}", results.len(), jobs.len());
    Ok(Some(results))
}

fn job(capability: &str, payload: Value) -> Value {
    json!({"capability": capability, "payload": payload})
}

/// The answer of a job that succeeded: its JSON data (status 200, free: balance 0).
fn answer(result: &Value) -> Result<&Value> {
    ensure!(result["status"] == 200 && result["balance"] == "0", "not a free 200 answer: {result}");
    Ok(&result["data"])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_calls_every_bundled_batch_plugin_by_its_name() -> Result<()> {
    let test = "the_sdk_calls_every_bundled_batch_plugin_by_its_name";
    let Some(py) = python(test) else { return Ok(()) };
    let plugins = tempfile::tempdir()?;
    let (url, orch, worker_log) = orchestrator(plugins.path()).await?;

    let segment = std::fs::read(root().join("plugins/ts-analyzer/tests/fixtures/h264-aac-2s.ts"))?;
    let jobs = [
        job("text-transform", json!({"text": "hello byoc", "mode": "upper"})),
        job("text-transform", json!({"text": "hello byoc"})),
        job("text-transform", json!({"text": "Hello BYOC", "mode": "lower"})),
        job("text-transform", json!({"text": "one two\nthree", "mode": "word-count"})),
        job("ts-analyzer", json!({"ts_base64": base64(&segment)})),
        job("http-adapter", json!({"prompt": "a cat"})),
        job("passthrough", json!({"any": ["json", 1]})),
    ];
    let Some(results) = submit(&py, test, &url, &jobs).await? else { return Ok(()) };

    assert_eq!(answer(&results[0])?, &json!({"mode": "upper", "text": "HELLO BYOC"}));
    assert_eq!(answer(&results[1])?, &json!({"mode": "upper", "text": "HELLO BYOC"}), "upper by default");
    assert_eq!(answer(&results[2])?, &json!({"mode": "lower", "text": "hello byoc"}));
    assert_eq!(answer(&results[3])?, &json!({"mode": "word-count", "words": 3, "lines": 2, "chars": 13}));

    let analysis = answer(&results[4])?;
    assert_eq!(analysis["report"]["bytes"], segment.len());
    assert_eq!(analysis["report"]["keyframes"], 2);
    let codecs: Vec<&Value> = analysis["streams"].as_array().context("streams")?.iter().map(|s| &s["codec"]).collect();
    assert_eq!(codecs, [&json!("h264"), &json!("aac")]);

    // The adapter's default route is its worker's URL: the worker needs no capability name.
    assert_eq!(answer(&results[5])?, &json!({"worker": "toy", "path": "/", "got": {"prompt": "a cat"}}));
    let asked = worker_log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(asked, [("/".to_string(), json!({"prompt": "a cat"}))]);

    assert_eq!(answer(&results[6])?, &json!({"any": ["json", 1]}));

    // Every slot was given back.
    for cap in ["text-transform", "ts-analyzer", "http-adapter", "passthrough"] {
        assert_eq!(orch.registry.get(cap).context(cap)?.capacity.in_use(), 0, "{cap}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_reports_a_bad_request_as_the_plugin_explains_it() -> Result<()> {
    let test = "the_sdk_reports_a_bad_request_as_the_plugin_explains_it";
    let Some(py) = python(test) else { return Ok(()) };
    let plugins = tempfile::tempdir()?;
    let (url, _orch, _) = orchestrator(plugins.path()).await?;

    let jobs = [
        job("text-transform", json!({"text": "hello", "mode": "shout"})),
        job("ts-analyzer", json!({"prompt": "not a segment"})),
        job("text-transform", json!({"text": "still serving"})),
    ];
    let Some(results) = submit(&py, test, &url, &jobs).await? else { return Ok(()) };

    // The SDK raises on a 4xx, with the orchestrator's answer in its message.
    let error = |i: usize| results[i]["error"].as_str().unwrap_or_default().to_owned();
    let unknown_mode = error(0);
    assert!(unknown_mode.contains("HTTP 400"), "{}", results[0]);
    assert!(
        unknown_mode.contains("shout") && unknown_mode.contains("upper, lower, reverse or word-count"),
        "{unknown_mode}"
    );
    let not_a_segment = error(1);
    assert!(not_a_segment.contains("HTTP 400") && not_a_segment.contains("ts_base64"), "{}", results[1]);
    assert_eq!(answer(&results[2])?["text"], "STILL SERVING");
    Ok(())
}

/// Standard base64 (what the SDK user would get from Python's `base64.b64encode`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
