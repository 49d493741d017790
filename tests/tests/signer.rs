//! `byoc signer` end to end: the official Python SDK (livepeer-gateway 1.0.0) pays a priced
//! orchestrator through it (`submit_byoc_job(..., orch_url=..., signer_url=...)`), twice, and finds the
//! orchestrator through its `/discover-orchestrators`; and payments the signer made are refused where
//! they must be: a replayed state by the signer, a payment for orchestrator A by orchestrator B, with
//! the balances unchanged. And our own gateway without a key of its own (`byoc gateway --signer`):
//! its batch jobs are signed and paid by the signer.
//!
//! Orchestrators run in this process, priced, with the bundled `text-transform` plugin, each on a
//! loopback address of its own at port 8935 (the SDK's fixed gRPC port), TLS and plain HTTP on the
//! one port as `byoc orchestrator` serves them. The signer runs in this process too, behind an API
//! key. The SDK runs as a child process (`tests/peers/sdk_paid.py`, `BYOC_PEERS_PYTHON`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use byoc_e2e::nodes::plugins_dir;
use byoc_e2e::peers::python;
use byoc_net::{Limits, TlsConfig, Transport};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, Price};
use byoc_payment::SecretKey;
use byoc_payment::job::{EthAddressCredential, JobRequest};
use byoc_runtime::{CacheDir, Runtime, RuntimeConfig};
use byoc_signer::{Signer, SignerConfig};
use byoc_trickle::TrickleStore;
use serde_json::{Value, json};

const API_KEY: &str = "e2e-signer-key";
/// 1e10 wei a second: 60 s is 6e11 wei, one ticket of the orchestrator's default EV (1e12).
const PRICE: u128 = 10_000_000_000;

/// A priced orchestrator offering `text-transform` on `addr` (TLS and plain HTTP on one port).
async fn orchestrator(addr: &str, plugins: &Path) -> Result<(String, Arc<Orchestrator>)> {
    let to = plugins.join("text-transform");
    std::fs::create_dir_all(&to)?;
    for file in ["text-transform.wasm", "manifest.toml"] {
        std::fs::copy(plugins_dir().join("text-transform").join(file), to.join(file))?;
    }
    let config = RuntimeConfig {
        cache_dir: CacheDir::At(byoc_e2e::nodes::root().join("target/runtime-test-cache")),
        max_instances: 8,
        max_memory_mib: 256,
        ..RuntimeConfig::default()
    };
    let runtime = Arc::new(Runtime::load(plugins, config).await?);
    byoc_protocol::telemetry::init();
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let bound = l.local_addr()?;
    let url = format!("http://{bound}");
    let orch = Orchestrator::new(
        OrchestratorConfig {
            service_url: url.clone(),
            key: Some(SecretKey::generate()),
            // The SDK does not stamp `issued_at` into its jobs.
            accept_unstamped_jobs: true,
            ..OrchestratorConfig::default()
        },
        TrickleStore::default(),
    )?;
    orch.offer_plugins(&runtime, 4);
    orch.registry.set_price("text-transform", Price { per_unit: PRICE, scaling: 1 });
    let tls = TlsConfig::self_signed(&["localhost".into(), bound.ip().to_string()])?;
    let app = byoc_orchestrator::router(orch.clone());
    tokio::spawn(byoc_net::serve_with(
        "orchestrator",
        l,
        app,
        Limits::default(),
        Transport::Sniffed(tls),
        std::future::pending(),
    ));
    Ok((url, orch))
}

/// The signer on `ip`, listing `orchestrators`.
async fn signer(ip: &str, orchestrators: Vec<String>) -> Result<(String, Arc<Signer>)> {
    let mut config = SignerConfig::new(SecretKey::generate());
    config.api_key = Some(API_KEY.into());
    config.orchestrators = orchestrators;
    config.discovery_interval = Duration::from_millis(200);
    let signer = Signer::new(config)?;
    signer.spawn_discovery(tokio_util::sync::CancellationToken::new());
    let l = tokio::net::TcpListener::bind(format!("{ip}:0")).await?;
    let url = format!("http://{}", l.local_addr()?);
    let app = byoc_signer::router(signer.clone());
    tokio::spawn(byoc_net::serve("signer", l, app, Limits::default(), std::future::pending()));
    Ok((url, signer))
}

fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers").join("sdk_paid.py")
}

/// Runs the SDK peer; its JSON lines.
async fn sdk(py: &Path, args: &[&str]) -> Result<Vec<Value>> {
    let run = tokio::process::Command::new(py).arg("-u").arg(driver()).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), run).await.context("the SDK did not finish")??;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "the SDK peer failed ({})\n{stdout}\n{stderr}", out.status);
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("{l}\n{stderr}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_pays_through_byoc_signer_each_call_and_finds_the_orchestrator_through_it() -> Result<()> {
    let test = "the_sdk_pays_through_byoc_signer_each_call_and_finds_the_orchestrator_through_it";
    let Some(py) = python(test) else { return Ok(()) };
    let plugins = tempfile::tempdir()?;
    let (orch_url, _orch) = orchestrator("127.0.0.3:8935", plugins.path()).await?;
    let (signer_url, _signer) = signer("127.0.0.3", vec![orch_url.clone()]).await?;
    // Discovery has a snapshot once the orchestrator answered its first poll.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let lines = sdk(&py, &["jobs", &orch_url, &signer_url, API_KEY]).await?;
    ensure!(lines.len() == 3, "{lines:?}");
    let mut balances = Vec::new();
    for line in &lines[..2] {
        ensure!(line["status"] == 200, "a paid call failed: {line}");
        assert_eq!(line["data"], json!({"mode": "upper", "text": "HELLO BYOC"}));
        let balance: i128 = line["balance"].as_str().context("Livepeer-Balance")?.parse()?;
        balances.push(balance);
    }
    // Each call brought a new payment (60 s of the price, one ticket of EV 1e12) and was charged.
    assert!(balances[0] > 0 && balances[0] < 1_000_000_000_000, "{balances:?}");
    assert!(balances[1] > balances[0], "the second call paid again: {balances:?}");
    assert_eq!(lines[2]["discovered"], json!([orch_url]));
    Ok(())
}

/// The signer's `/sign-orchestrator-info` answer as a `Livepeer-Eth-Address` header.
async fn credential(http: &reqwest::Client, signer: &str) -> Result<String> {
    let v: Value = http
        .post(format!("{signer}/sign-orchestrator-info"))
        .bearer_auth(API_KEY)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let cred = EthAddressCredential {
        addr: v["address"].as_str().context("address")?.into(),
        sig: v["signature"].as_str().context("signature")?.into(),
    };
    Ok(cred.to_header())
}

/// The signer's balance at `orch` for `text-transform` (its `/process/token` answer).
async fn balance(http: &reqwest::Client, orch: &str, cred: &str) -> Result<i64> {
    let v: Value = http
        .get(format!("{orch}/process/token"))
        .header("Livepeer-Eth-Address", cred)
        .header("Livepeer-Capability", "text-transform")
        .send()
        .await?
        .json()
        .await?;
    ensure!(v["sender_address"].is_object(), "not a token: {v}");
    // A zero balance is left out of the token.
    Ok(v["balance"].as_i64().unwrap_or(0))
}

/// A payment from the signer for `info` (base64), with `state`: status and answer.
async fn payment(http: &reqwest::Client, signer: &str, info: &str, state: Option<&Value>) -> Result<(u16, Value)> {
    let mut body = json!({"orchestrator": info, "type": "lv2v", "capability": "text-transform"});
    if let Some(s) = state {
        body["state"] = s.clone();
    }
    let resp = http.post(format!("{signer}/generate-live-payment")).bearer_auth(API_KEY).json(&body).send().await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

/// A text-transform job signed by the signer, posted to `orch` with `paid`'s headers: status and body.
async fn job(http: &reqwest::Client, signer: &str, orch: &str, paid: &Value) -> Result<(u16, String)> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let request = &format!(r#"{{"text": "hi", "issued_at": {now}}}"#);
    let signed: Value = http
        .post(format!("{signer}/sign-byoc-job"))
        .bearer_auth(API_KEY)
        .json(&json!({"id": "j", "capability": "text-transform", "request": request, "parameters": "", "timeout_seconds": 30}))
        .send()
        .await?
        .json()
        .await?;
    let header = JobRequest {
        id: "j".into(),
        request: request.clone(),
        capability: "text-transform".into(),
        timeout_seconds: 30,
        sender: signed["sender"].as_str().context("sender")?.into(),
        sig: signed["signature"].as_str().context("signature")?.into(),
        ..Default::default()
    }
    .to_header();
    let resp = http
        .post(format!("{orch}/process/request/text-transform"))
        .header("Livepeer", header)
        .header("Livepeer-Payment", paid["payment"].as_str().context("payment")?)
        .header("Livepeer-Segment", paid["segCreds"].as_str().context("segCreds")?)
        .body(request.clone())
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_state_and_a_payment_for_another_orchestrator_are_refused_and_pay_nothing() -> Result<()> {
    let test = "a_replayed_state_and_a_payment_for_another_orchestrator_are_refused_and_pay_nothing";
    let Some(py) = python(test) else { return Ok(()) };
    let (pa, pb) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, _) = orchestrator("127.0.0.4:8935", pa.path()).await?;
    let (b, _) = orchestrator("127.0.0.5:8935", pb.path()).await?;
    let (signer_url, _signer) = signer("127.0.0.4", vec![]).await?;
    let http = reqwest::Client::new();
    let cred = credential(&http, &signer_url).await?;
    // The SDK's own gRPC client fetches each orchestrator's info, its request signed by the signer.
    let info = |grpc: &'static str| {
        let (py, signer_url) = (py.clone(), signer_url.clone());
        async move {
            let lines = sdk(&py, &["info", grpc, &signer_url, API_KEY]).await?;
            lines.first().and_then(|l| l["info"].as_str()).map(str::to_string).context("info")
        }
    };

    let (status, first) = payment(&http, &signer_url, &info("https://127.0.0.4:8935").await?, None).await?;
    ensure!(status == 200, "{first}");
    let (status, body) = job(&http, &signer_url, &a, &first).await?;
    ensure!(status == 200, "{status} {body}");
    let after_first = balance(&http, &a, &cred).await?;
    assert!(after_first > 0, "{after_first}");

    let (status, second) =
        payment(&http, &signer_url, &info("https://127.0.0.4:8935").await?, Some(&first["state"])).await?;
    ensure!(status == 200, "{second}");
    let (status, body) = job(&http, &signer_url, &a, &second).await?;
    ensure!(status == 200, "{status} {body}");
    let after_second = balance(&http, &a, &cred).await?;
    assert!(after_second > after_first, "paid again: {after_first} then {after_second}");

    // The first state again: refused by the signer; A's balance does not move.
    let (status, replay) =
        payment(&http, &signer_url, &info("https://127.0.0.4:8935").await?, Some(&first["state"])).await?;
    assert_eq!(status, 400, "{replay}");
    assert!(replay["error"].as_str().unwrap_or_default().contains("replayed state"), "{replay}");
    assert_eq!(balance(&http, &a, &cred).await?, after_second);

    // A payment made for A, posted to B: B refuses it (the tickets are not for B) and credits nothing.
    let (status, for_a) = payment(&http, &signer_url, &info("https://127.0.0.4:8935").await?, None).await?;
    ensure!(status == 200, "{for_a}");
    let (status, body) = job(&http, &signer_url, &b, &for_a).await?;
    assert!((400..500).contains(&status), "B took A's payment: {status} {body}");
    assert_eq!(balance(&http, &b, &cred).await?, 0, "B credited nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_with_a_remote_signer_holds_no_key_and_its_jobs_are_signed_and_paid_by_the_signer() -> Result<()> {
    let plugins = tempfile::tempdir()?;
    let (orch_url, _orch) = orchestrator("127.0.0.6:0", plugins.path()).await?;
    let (signer_url, signer) = signer("127.0.0.6", vec![]).await?;
    let http = reqwest::Client::new();

    // A wrong API key: the gateway does not start (go-livepeer's gateway also fails fast).
    let wrong = [("authorization".to_string(), "Bearer nope".to_string())];
    let refused = byoc_gateway::RemoteSigner::connect(&signer_url, &wrong).await.expect_err("a wrong key");
    assert!(refused.contains("401"), "{refused}");

    let auth = [("authorization".to_string(), format!("Bearer {API_KEY}"))];
    let remote = byoc_gateway::RemoteSigner::connect(&signer_url, &auth).await.map_err(anyhow::Error::msg)?;
    assert_eq!(remote.address(), signer.address());
    let gw = byoc_gateway::Gateway::new(byoc_gateway::GatewayConfig {
        orchestrators: vec![orch_url.clone()],
        signer: Some(remote),
        ..byoc_gateway::GatewayConfig::default()
    })?;
    assert_eq!(gw.address(), signer.address(), "the gateway's jobs go out as the signer");
    let l = tokio::net::TcpListener::bind("127.0.0.6:0").await?;
    let gw_url = format!("http://{}", l.local_addr()?);
    tokio::spawn(byoc_net::serve("gateway", l, byoc_gateway::router(gw), Limits::default(), std::future::pending()));

    let cred = credential(&http, &signer_url).await?;
    let mut balances = vec![balance(&http, &orch_url, &cred).await?];
    for _ in 0..2 {
        let resp = http
            .post(format!("{gw_url}/process/request/text-transform"))
            .header("Livepeer", byoc_e2e::nodes::job_header("text-transform", &json!({})))
            .json(&json!({"text": "hello byoc", "mode": "upper"}))
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        ensure!(status == 200, "{status} {text}");
        let body: Value = serde_json::from_str(&text).with_context(|| text.clone())?;
        assert_eq!(body["text"], "HELLO BYOC", "{body}");
        balances.push(balance(&http, &orch_url, &cred).await?);
    }
    // The first job found the balance empty and paid (through the signer, for the signer's address);
    // the second found enough left (the gateway tops up below 120 s of price) or paid again.
    assert_eq!(balances[0], 0, "{balances:?}");
    assert!(balances[1] > 0, "the signer's payment was credited to its address: {balances:?}");
    assert!(balances[2] > 0, "{balances:?}");
    Ok(())
}
