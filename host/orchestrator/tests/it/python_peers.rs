//! The orchestrator against real third-party Python peers: pytrickle's capability registration
//! (what a pytrickle worker runs at start-up) and livepeer-gateway's BYOC batch client. Needs
//! the peers venv (`cargo xtask test` provides it).

use std::process::Command;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

use crate::common::{self, Served, listen, orchestrator};

fn python() -> Option<String> {
    common::python("BYOC_PEERS_PYTHON", "the peers venv")
}

fn run_python(py: &str, script: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(py);
    cmd.arg("-c").arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "python failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// pytrickle's `RegisterCapability`, imported without the package `__init__` (which needs torch).
const REGISTER: &str = r#"
import asyncio, importlib.util, logging, sys, types
spec = importlib.util.find_spec("pytrickle")
root = spec.submodule_search_locations[0]
for name, path in (("pytrickle", root), ("pytrickle.utils", root + "/utils")):
    m = types.ModuleType(name); m.__path__ = [path]; sys.modules[name] = m
from pytrickle.utils.register import RegisterCapability
result = asyncio.run(RegisterCapability.register(logger=logging.getLogger("peer")))
print("REGISTERED" if result else "FAILED")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_pytrickle_worker_registers_itself() {
    let Some(py) = python() else { return };
    let Served { url, orch } = orchestrator("peer-secret", |_| {}).await;
    let register = |secret: &'static str, name: &'static str, extra: &[(&'static str, &'static str)]| {
        let (py, url) = (py.clone(), url.clone());
        let mut env =
            vec![("ORCH_SECRET", secret), ("CAPABILITY_NAME", name), ("CAPABILITY_URL", "http://127.0.0.1:9")];
        env.extend_from_slice(extra);
        tokio::task::spawn_blocking(move || {
            let mut env: Vec<(&str, &str)> = env;
            env.push(("ORCH_URL", &url));
            run_python(&py, REGISTER, &env)
        })
    };
    let out = register("peer-secret", "py-worker", &[("CAPABILITY_CAPACITY", "2")]).await.unwrap();
    assert!(out.contains("REGISTERED"), "{out}");
    let cap = orch.registry.get("py-worker").expect("registered");
    assert_eq!(cap.capacity.limit(), 2);
    // With a wrong secret, pytrickle sees the 400 it treats as "secret incorrect".
    let out = register("wrong", "other", &[]).await.unwrap();
    assert!(out.contains("FAILED"), "{out}");
    assert!(orch.registry.get("other").is_none());
}

const SUBMIT: &str = r#"
import json, os
from livepeer_gateway.byoc import ByocJobRequest, submit_byoc_job
resp = submit_byoc_job(ByocJobRequest(capability="echo-cap", payload={"prompt": "hello", "n": 3}, timeout_seconds=30),
                       orch_url=os.environ["ORCH"])
print(json.dumps({"status": resp.status_code, "data": resp.data,
                  "balance": {k.lower(): v for k, v in resp.headers.items()}.get("livepeer-balance")}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn livepeer_gateway_submits_a_batch_job() {
    let Some(py) = python() else { return };
    let worker = listen(Router::new().route(
        "/echo-cap",
        post(|body: Bytes| async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            axum::Json(serde_json::json!({"echo": v}))
        }),
    ))
    .await;
    let Served { url, orch } = orchestrator("peer-secret", |_| {}).await;
    orch.registry
        .register_worker(&byoc_orchestrator::WorkerRegistration {
            name: "echo-cap".into(),
            url: worker,
            capacity: 1,
            ..Default::default()
        })
        .unwrap();
    let out = tokio::task::spawn_blocking(move || run_python(&py, SUBMIT, &[("ORCH", &url)])).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["data"], serde_json::json!({"echo": {"prompt": "hello", "n": 3}}));
    assert_eq!(v["balance"], "0");
    assert_eq!(orch.registry.get("echo-cap").unwrap().capacity.in_use(), 0);
}
