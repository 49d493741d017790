//! The client a person uses, as a process against a running `byoc dev`: `byoc capabilities` lists the
//! bundled plugins; `byoc stream start` starts a `ts-analyzer` stream (its legs the capability's own) and
//! keeps a record of it; `byoc stream push` publishes a file in real time over RTMP; `byoc stream watch`
//! shows its data lines; `byoc stream status` says where it runs and what the secret may do; `byoc
//! stream stop` stops it, and the gateway then answers `status` with 410 and why.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use byoc_e2e::media::tool_available;
use byoc_e2e::nodes::{plugins_dir, root};
use common::{Node, byoc_with_env};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_cli_drives_a_stream_end_to_end() {
    if !tool_available("the_client_cli_drives_a_stream_end_to_end", "ffmpeg") {
        return;
    }
    let plugins = plugins_dir();
    let dev = Node::start(
        &["dev", "--listen", "127.0.0.1:0", "--rtmp-listen", "127.0.0.1:0", "--plugins", plugins.to_str().unwrap()],
        "byoc dev: gateway",
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let gw = dev.url.as_str();
    let st = state.path();

    let (ok, out, err) = client(gw, st, &["capabilities"]).await;
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.starts_with("ts-analyzer")).unwrap_or_else(|| panic!("{out}"));
    // Free mode: nothing is charged, whatever the plugin announces.
    assert!(line.contains("video in, data, events") && line.contains("free"), "{line}");

    let (ok, out, err) = client(gw, st, &["stream", "start", "ts-analyzer", "--name", "cli", "--json"]).await;
    assert!(ok, "{err}");
    let started: Value = serde_json::from_str(&out).unwrap();
    let id = started["stream_id"].as_str().unwrap().to_string();
    assert!(started["rtmp_url"].as_str().unwrap().starts_with("rtmp://"), "{started}");
    assert!(!started["data_url"].as_str().unwrap().is_empty(), "data is ts-analyzer's own leg: {started}");
    assert_eq!(started["whep_url"], "", "ts-analyzer has no video out");
    let record = state.path().join(format!("streams/{id}.json"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&record).unwrap().permissions().mode() & 0o777, 0o600, "the record holds secrets");
    }

    // Real time, looped: the watcher sees data lines while the file plays.
    let fixture = root().join("plugins/ts-analyzer/tests/fixtures/h264-aac-2s.ts");
    let mut push = tokio::process::Command::new(env!("CARGO_BIN_EXE_byoc"))
        .args(["stream", "push", &id, fixture.to_str().unwrap(), "--loop", "--gateway", gw])
        .env("BYOC_STATE_DIR", state.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let id_s = id.as_str();
    let (ok, out, err) = client(gw, st, &["stream", "watch", id_s, "--count", "4", "--json"]).await;
    assert!(ok, "{err}");
    let messages: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(messages.len(), 4, "{out}");
    let data = messages.iter().find(|m| m["channel"] == "data").unwrap_or_else(|| panic!("no data line: {out}"));
    assert!(data["message"].to_string().contains("h264"), "{data}");

    let (ok, out, err) = client(gw, st, &["stream", "status", id_s, "--json"]).await;
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((status["state"].as_str(), status["access"].as_str()), (Some("running"), Some("control")));

    // The viewer token watches, and cannot stop the stream.
    let viewer = started["viewer_token"].as_str().unwrap();
    let v = viewer;
    let (ok, _, err) = client(gw, st, &["stream", "stop", id_s, "--token", v]).await;
    assert!(!ok && err.contains("403") && err.contains("viewer token"), "{err}");
    let (ok, out, _) = client(gw, st, &["stream", "status", id_s, "--token", v, "--json"]).await;
    assert!(ok && out.contains("\"view\""), "{out}");

    let (ok, out, err) = client(gw, st, &["stream", "stop", id_s]).await;
    assert!(ok, "{err}");
    assert!(out.contains("stopped"), "{out}");
    assert!(!record.exists(), "the record goes with the stream");
    let _ = push.start_kill();
    let (ok, _, err) = client(gw, st, &["stream", "status", id_s, "--token", v]).await;
    assert!(!ok && err.contains("410") && err.contains("stopped by the client"), "{err}");
    drop(dev);
}

/// `byoc ARGS --gateway GW`, its stream records under `state`.
async fn client(gw: &str, state: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = args.to_vec();
    all.extend(["--gateway", gw]);
    byoc_with_env(&all, &[("BYOC_STATE_DIR", state.to_str().unwrap())], LIMIT).await
}

/// A command that fails says why once, on one line, naming the flag behind a taken port, and prints no
/// backtrace even when `RUST_BACKTRACE` is set for every program (only `BYOC_BACKTRACE=1` asks for one).
#[tokio::test]
async fn a_failure_is_one_line_naming_the_flag_without_a_backtrace() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let args = ["trickle", "--listen", addr.as_str()];
    let (ok, _, err) = byoc_with_env(&args, &[("RUST_BACKTRACE", "1")], LIMIT).await;
    assert!(!ok);
    let said: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].starts_with(&format!("error: binding {addr} (--listen): ")), "{err}");
    assert!(said[0].to_lowercase().contains("address already in use"), "{err}");
    let (_, _, err) = byoc_with_env(&args, &[("RUST_BACKTRACE", "1"), ("BYOC_BACKTRACE", "1")], LIMIT).await;
    assert!(err.lines().count() > 3, "a backtrace when asked: {err}");
}

/// `byoc stream push` of a stream with no record here says to pass `--rtmp-url`, and refuses one that
/// is not RTMP, before anything is started.
#[tokio::test]
async fn a_push_without_a_record_asks_for_the_rtmp_url() {
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let fixture = root().join("plugins/ts-analyzer/tests/fixtures/h264-aac-2s.ts");
    let push = ["stream", "push", "elsewhere-1", fixture.to_str().unwrap()];
    let (ok, _, err) = byoc_with_env(&push, &[("BYOC_STATE_DIR", st)], LIMIT).await;
    assert!(!ok && err.contains("has no rtmp_url here") && err.contains("pass --rtmp-url"), "{err}");
    let with_url = [&push[..], &["--rtmp-url", "http://127.0.0.1:9/live/x"]].concat();
    let (ok, _, err) = byoc_with_env(&with_url, &[("BYOC_STATE_DIR", st)], LIMIT).await;
    assert!(!ok && err.contains("--rtmp-url must be an rtmp:// or rtmps:// URL"), "{err}");
}
