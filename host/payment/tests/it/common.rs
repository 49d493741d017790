//! What the Python cross-checks share: the peers venv's python and a one-shot JSON peer.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The venv's python, or `None` (test skipped) when run outside `cargo xtask test`; `what` names
/// the skipped checks.
pub fn python(what: &str) -> Option<String> {
    match std::env::var("BYOC_PEERS_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("BYOC_REQUIRE_PEERS").is_ok_and(|v| v == "1") => {
            panic!("BYOC_REQUIRE_PEERS=1 but BYOC_PEERS_PYTHON is not set")
        }
        Err(_) => {
            eprintln!("skipped: {what} need the peers venv; run through `cargo xtask test`");
            None
        }
    }
}

/// Runs `tests/{script}` once: `cmd` as JSON on stdin, its JSON answer from stdout.
pub fn run_peer(py: &str, script: &str, cmd: &Value) -> Value {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(py)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(cmd.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}
