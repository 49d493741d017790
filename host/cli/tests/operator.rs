//! What an operator sees when starting nodes, as processes: a missing tool is named once with the
//! features it turns off; logs to a pipe carry no colour codes; with `--log-format json` every stderr
//! line is a JSON event and the startup banner is one of them; `byoc dev` with no plugins says how to
//! get them; an invalid `RUST_LOG` is an error, not a silent default; SIGTERM as soon as a node says
//! it is listening shuts it down gracefully.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::byoc_with_env;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `byoc ARGS` with `env` until stdout prints a line starting with `last`, then stops it:
/// (stdout, stderr).
/// Runs `byoc args` until its stdout prints a line starting with `last` and, when `err_last` is given,
/// its stderr a line containing it (the two pipes are read apart: one may run ahead of the other).
async fn run_until(args: &[&str], env: &[(&str, &str)], last: &str, err_last: Option<&str>) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_byoc"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byoc");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let (err_seen_tx, mut err_seen) = tokio::sync::watch::channel(err_last.is_none());
    let err_marker = err_last.map(str::to_string);
    let err = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            if err_marker.as_deref().is_some_and(|m| line.contains(m)) {
                let _ = err_seen_tx.send(true);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut out = String::new();
    let seen = tokio::time::timeout(LIMIT, async {
        while let Ok(Some(line)) = stdout.next_line().await {
            out.push_str(&line);
            out.push('\n');
            if line.starts_with(last) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let _ = tokio::time::timeout(LIMIT, err_seen.wait_for(|seen| *seen)).await;
    // SIGTERM: the node shuts down as an operator's would.
    let _ = Command::new("kill").arg(child.id().unwrap().to_string()).status().await;
    let _ = tokio::time::timeout(LIMIT, child.wait()).await;
    let err = tokio::time::timeout(LIMIT, err).await.unwrap().unwrap();
    assert!(seen, "byoc {args:?} never printed {last:?}; stdout:\n{out}\nstderr:\n{err}");
    (out, err)
}

#[tokio::test]
async fn a_gateway_without_ffmpeg_names_what_is_off_and_logs_to_a_pipe_without_colour() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    let args = ["gateway", "--listen", "127.0.0.1:0", "--orchestrator", "http://127.0.0.1:9"];
    let env = [("PATH", path), ("RUST_LOG", "info")];
    let (_, err) = run_until(&args, &env, "gateway listening on ", None).await;
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("ffmpeg not found")).collect();
    assert_eq!(warnings.len(), 1, "said once: {err}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("RTMP output"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes on a pipe: {err:?}");
}

#[tokio::test]
async fn byoc_dev_in_json_mode_logs_its_banner_and_says_how_to_get_plugins() {
    let empty = tempfile::tempdir().unwrap();
    let state = empty.path().join("dev.json");
    let plugins = empty.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let args = [
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--rtmp-listen",
        "127.0.0.1:0",
        "--plugins",
        plugins.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    let (out, err) = run_until(&args, &[("RUST_LOG", "info")], "byoc dev: free mode", Some("byoc dev ready")).await;
    assert!(
        out.contains("byoc dev: capabilities  none yet: build the bundled ones with `cargo xtask plugins`"),
        "{out}"
    );
    let events: Vec<Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let message = |e: &Value| e["fields"]["message"].as_str().unwrap_or_default().to_string();
    let ready = events.iter().find(|e| message(e) == "byoc dev ready").unwrap_or_else(|| panic!("{err}"));
    let gateway = ready["fields"]["gateway"].as_str().unwrap();
    assert!(gateway.starts_with("http://127.0.0.1:") && out.contains(gateway), "{ready}");
    assert_eq!(ready["fields"]["console"].as_str(), Some(format!("{gateway}/").as_str()), "{ready}");
    assert!(ready["fields"]["plugins"].as_str().unwrap().contains("hot reload"), "{ready}");
    let none = events.iter().find(|e| message(e).starts_with("no plugin in the plugin directory")).unwrap();
    assert_eq!(none["level"], "WARN", "{none}");
    assert!(message(none).contains("byoc plugin new"), "{none}");
}

#[tokio::test]
async fn an_invalid_rust_log_is_an_error_naming_it() {
    let args = ["capabilities", "--gateway", "http://127.0.0.1:9"];
    let (ok, _, err) = byoc_with_env(&args, &[("RUST_LOG", "byoc=loud")], LIMIT).await;
    assert!(!ok, "{err}");
    let said: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].starts_with("error: RUST_LOG=\"byoc=loud\" is not a log filter"), "{err}");
    assert_eq!(said[0].matches("level filter").count(), 1, "the cause once: {err}");
}

#[tokio::test]
async fn byoc_signer_logs_its_banner_never_its_key_and_wants_an_api_key_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let hex = byoc_payment::random_hex(32);
    let key = dir.path().join("signer.hex");
    byoc_payment::keyfile::write_private(&key, &hex).unwrap();
    let key = key.to_str().unwrap();
    let args = ["signer", "--key", key, "--listen", "127.0.0.1:0", "--log-format", "json"];
    let env = [("RUST_LOG", "info"), ("BYOC_SIGNER_API_KEY", "")];
    let (out, err) = run_until(&args, &env, "signer listening on ", None).await;
    let address = byoc_payment::SecretKey::from_hex(&hex).unwrap().address().to_checksum();
    assert!(out.contains(&address), "{out}");
    let banner = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["fields"]["message"] == "signer listening")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(banner["fields"]["address"].as_str(), Some(address.as_str()), "{banner}");
    assert!(banner["fields"]["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{banner}");
    assert!(!out.contains(&hex) && !err.contains(&hex), "the key was shown");

    let public = ["signer", "--key", key, "--listen", "0.0.0.0:0"];
    let (ok, _, err) = byoc_with_env(&public, &env, LIMIT).await;
    assert!(!ok && err.contains("without an API key: set BYOC_SIGNER_API_KEY"), "{err}");
    let (ok, _, err) = byoc_with_env(&["signer", "--listen", "127.0.0.1:0"], &env, LIMIT).await;
    assert!(!ok && err.contains("--key FILE"), "{err}");
}

/// A supervisor may send SIGTERM as soon as a node says it is listening. The node must already be
/// listening for it then and shut down gracefully (exit 0), not die of the signal's default action.
/// The window is short, so a few rounds of each node.
#[tokio::test]
async fn sigterm_right_after_the_listening_line_shuts_a_node_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signer.hex");
    byoc_payment::keyfile::write_private(&key, &byoc_payment::random_hex(32)).unwrap();
    let key = key.to_str().unwrap();
    let nodes: [(&[&str], &str); 2] = [
        (&["trickle", "--listen", "127.0.0.1:0"], "trickle server listening on "),
        (&["signer", "--key", key, "--listen", "127.0.0.1:0"], "signer listening on "),
    ];
    for round in 0..10 {
        for (args, line) in nodes {
            // Returns once the line is printed (or panics naming it).
            let mut node = common::Node::start_with_env(args, &[("BYOC_SIGNER_API_KEY", "")], line).await;
            let pid = rustix::process::Pid::from_raw(node.child.id().unwrap() as i32).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            let status = tokio::time::timeout(LIMIT, node.child.wait()).await.unwrap().unwrap();
            assert!(status.success(), "byoc {args:?}, round {round}: {status} (killed by the signal, not shut down)");
        }
    }
}
