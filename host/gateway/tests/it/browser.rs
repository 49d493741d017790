//! A real browser on both media legs: headless Chromium opens a stream's page (the console for one
//! stream, with the control secret), publishes its fake camera and microphone with WHIP, and plays
//! the stream's output (through the `passthrough` plugin) with WHEP, all in one page; the page logs
//! its WebRTC stats.
//!
//! Chromium gathers no loopback candidates, so WebRTC needs a real interface. To keep every packet
//! inside the test, the test re-runs itself in a private network namespace (`unshare -n`) with a veth
//! pair made there: HTTP stays on 127.0.0.1, the gateway's UDP port is on the veth address.
//!
//! Skipped (with a note) when Chromium is not installed, unless the run requires every peer
//! (`BYOC_REQUIRE_PEERS=1`, as `cargo xtask test` sets after installing Chromium), or when network
//! namespaces cannot be made here (`unshare -n` needs root or CAP_SYS_ADMIN).

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// Set (by the outer run) in the child that runs inside the namespace.
const IN_NETNS: &str = "BYOC_BROWSER_IN_NETNS";
/// The gateway's UDP address inside the namespace (one end of the veth pair).
pub const MEDIA_ADDR: &str = "10.200.0.1";
/// How long the page runs both legs before it reports.
const REPORT_AFTER_SECS: u64 = 14;

/// The Chromium binary, if one runs.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn sh(cmd: &str) {
    let st = std::process::Command::new("sh").args(["-c", cmd]).status().expect("sh");
    assert!(st.success(), "`{cmd}` failed in the test's network namespace");
}

#[test]
fn chromium_publishes_with_whip_and_plays_with_whep() {
    in_network_namespace("browser::chromium_publishes_with_whip_and_plays_with_whep", 150, browser_run);
}

/// Runs `run` (with Chromium, inside a network namespace of its own, within `secs`): the test `name`
/// re-runs itself there, as root of the namespace. Skipped (with a note) when Chromium or network
/// namespaces are missing, as the module says.
pub fn in_network_namespace<F: Future<Output = ()>>(name: &str, secs: u64, run: impl FnOnce() -> F) {
    if std::env::var_os(IN_NETNS).is_some() {
        sh("ip link set lo up");
        sh("ip link add byoc0 type veth peer name byoc1");
        sh(&format!("ip addr add {MEDIA_ADDR}/24 dev byoc0 && ip addr add 10.200.0.2/24 dev byoc1"));
        sh("ip link set byoc0 up && ip link set byoc1 up");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(secs), run()).await.expect("the browser run took too long")
        });
        println!("BROWSER OK");
        return;
    }
    if chromium().is_none() {
        assert!(!byoc_e2e::peers_required(), "{name}: chromium is required (BYOC_REQUIRE_PEERS=1) but does not run");
        eprintln!("{name}: skipped: chromium not found (optional; `cargo xtask test` installs it)");
        return;
    }
    let netns = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !netns {
        eprintln!("{name}: skipped: cannot make a network namespace here (`unshare -n` needs root or CAP_SYS_ADMIN)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .arg("-n")
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_NETNS, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "the run inside the network namespace failed");
    assert!(text.contains("BROWSER OK"), "the run inside the namespace did not reach its checks");
}

async fn browser_run() {
    let nodes = common::media_nodes(format!("{MEDIA_ADDR}:0").parse().unwrap()).await;
    let urls = common::start_video(&nodes.url, json!({})).await;
    let shared = urls["player_url"].as_str().unwrap();
    assert!(shared.contains("/player?token="), "{urls}");
    // The page asks for one of the stream's secrets like every per-stream route; publishing needs
    // the control secret (the shared link holds the viewer token).
    let bare = shared.split('?').next().unwrap();
    let player = format!("{bare}?token={}", urls["stream_secret"].as_str().unwrap());
    assert_eq!(common::http().get(bare).send().await.unwrap().status(), 401);
    let page = common::http().get(&player).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");

    let profile = tempfile::tempdir().unwrap();
    let url = format!("{player}&publish=1&play=1&report={REPORT_AFTER_SECS}");
    let mut browser = tokio::process::Command::new(chromium().unwrap())
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        .args(["--autoplay-policy=no-user-gesture-required", "--enable-logging=stderr", "--v=0"])
        .arg("--remote-debugging-port=0")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium");
    let mut lines = tokio::io::BufReader::new(browser.stderr.take().unwrap()).lines();
    let mut console = Vec::new();
    let wait = Duration::from_secs(REPORT_AFTER_SECS + 60);
    let result = tokio::time::timeout(wait, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("CONSOLE") {
                console.push(line.clone());
            }
            if let Some(at) = line.find("RESULT ") {
                let rest = &line[at + "RESULT ".len()..];
                let end = rest.rfind('}').map_or(rest.len(), |e| e + 1);
                return serde_json::from_str::<Value>(&rest[..end]).ok();
            }
        }
        None
    })
    .await;
    let _ = browser.start_kill();
    let _ = browser.wait().await;
    let result = result.ok().flatten().unwrap_or_else(|| panic!("no RESULT from the page; console: {console:#?}"));
    eprintln!("page result: {result}");

    let (whip, whep) = (&result["whip"], &result["whep"]);
    assert_eq!(whip["state"], "connected", "WHIP: {result}; console: {console:#?}");
    assert_eq!(whep["state"], "connected", "WHEP: {result}; console: {console:#?}");
    assert!(whip["frames_encoded"].as_u64().unwrap_or(0) >= 100, "the browser sent too little: {result}");
    // The output starts after the first segments went through the plugin; the fake camera runs at
    // about 20 fps, so a few seconds of output is at least 40 frames.
    let decoded = whep["frames_decoded"].as_u64().unwrap_or(0);
    assert!(decoded >= 40, "the browser decoded too little of the output: {result}; console: {console:#?}");
    // Passthrough: the output has the publisher's picture size.
    assert!(whip["width"].as_u64().is_some_and(|w| w > 0), "{result}");
    assert_eq!((whep["width"].as_u64(), whep["height"].as_u64()), (whip["width"].as_u64(), whip["height"].as_u64()));

    assert_eq!(common::http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}
