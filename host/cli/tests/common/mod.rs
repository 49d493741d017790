//! What the multi-process tests share: `byoc` child processes and the client calls they make.

#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `byoc` child process, killed (SIGKILL) when dropped.
pub struct Node {
    pub child: Child,
    pub url: String,
}

impl Node {
    /// Starts `byoc ARGS` and waits (bounded) for the line announcing where it listens. An
    /// orchestrator compiles every bundled plugin before it listens: with a cold cache, in a debug
    /// build, on a loaded 2-core machine, that is most of a minute.
    pub async fn start(args: &[&str], announce: &str) -> Node {
        Node::start_with_env(args, &[], announce).await
    }

    /// [`Node::start`] with more environment variables.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)], announce: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_byoc"))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", std::env::var("BYOC_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn byoc");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(180), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix(announce) {
                    return rest.split_whitespace().next().map(str::to_string);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("byoc {args:?} did not announce {announce:?}"));
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node { child, url }
    }

    pub async fn orchestrator(plugins: &Path) -> Node {
        let plugins = plugins.to_str().unwrap();
        let args = ["orchestrator", "--listen", "127.0.0.1:0", "--allow-unsigned", "--plugins", plugins];
        Node::start(&[&args[..], &["--plugin-capacity", "1"]].concat(), "orchestrator listening on ").await
    }

    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

pub fn http() -> reqwest::Client {
    byoc_trickle::http_client().unwrap()
}

pub fn job(capability: &str, parameters: Value) -> String {
    byoc_e2e::nodes::job_header(capability, &parameters)
}

/// Job parameters naming no leg (the capability's own are on), plus `extra`.
pub fn legs(extra: Value) -> Value {
    let mut p = json!({});
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    p
}

pub async fn start(gw: &str, capability: &str, parameters: Value, name: &str) -> reqwest::Response {
    start_with(gw, capability, parameters, name, json!({})).await
}

pub async fn start_with(gw: &str, capability: &str, parameters: Value, name: &str, params: Value) -> reqwest::Response {
    http()
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", job(capability, parameters))
        .json(&json!({"stream_name": name, "params": params}))
        .send()
        .await
        .unwrap()
}

pub async fn started(gw: &str, capability: &str, parameters: Value, name: &str) -> Value {
    let r = start(gw, capability, parameters, name).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "start {name}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub async fn status_of(urls: &Value) -> Value {
    http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap()
}

/// Publishes one segment into the stream (at the live edge) and reads the output segment it
/// becomes; `None` if nothing came back within `limit`.
pub async fn round_trip(urls: &Value, segment: &[u8], limit: Duration) -> Option<Vec<u8>> {
    let secret = urls["stream_secret"].as_str().unwrap();
    let egress =
        http().get(format!("{}/-1", urls["egress_url"].as_str().unwrap())).bearer_auth(secret).timeout(limit).send();
    let egress = tokio::spawn(egress);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ingest = http()
        .post(format!("{}/-1", urls["ingest_url"].as_str().unwrap()))
        .bearer_auth(secret)
        .timeout(limit)
        .body(segment.to_vec())
        .send()
        .await;
    if !ingest.is_ok_and(|r| r.status() == 200) {
        egress.abort();
        return None;
    }
    let resp = egress.await.ok()?.ok()?;
    if resp.status() != 200 {
        return None;
    }
    tokio::time::timeout(limit, resp.bytes()).await.ok()?.ok().map(|b| b.to_vec())
}

pub fn byoc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_byoc")).args(args).output().expect("run byoc")
}

/// Runs `byoc ARGS` to completion (bounded), returning its exit success, stdout and stderr.
pub async fn byoc_within(args: &[&str], limit: Duration) -> (bool, String, String) {
    byoc_with_env(args, &[], limit).await
}

/// [`byoc_within`] with extra environment variables.
pub async fn byoc_with_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_byoc"));
    command.args(args).envs(env.iter().copied()).stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("byoc {args:?} still running after {limit:?}"))
        .expect("run byoc");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Whether rustup has the `wasm32-wasip2` target (building a plugin needs it; adding it needs the
/// network). When it does not: a panic if the run requires every tool (`BYOC_REQUIRE_PEERS=1`),
/// else a skip line and false.
pub fn wasm_target_available(test: &str) -> bool {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"));
    if !installed {
        if byoc_e2e::peers_required() {
            panic!("{test}: the wasm32-wasip2 target is required (BYOC_REQUIRE_PEERS=1) but rustup does not have it");
        }
        eprintln!("{test}: skipped: no wasm32-wasip2 target (`rustup target add wasm32-wasip2`)");
    }
    installed
}
