//! The orchestrator against real third-party Python peers: pytrickle's capability registration
//! (what a pytrickle worker runs at start-up) and livepeer-gateway's BYOC batch client. Needs
//! the peers venv (`cargo xtask test` provides it).

use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, router};
use byoc_payment::job::SignaturePolicy;
use byoc_trickle::TrickleStore;

fn python() -> Option<String> {
    match std::env::var("BYOC_PEERS_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("BYOC_REQUIRE_PEERS").is_ok_and(|v| v == "1") => {
            panic!("BYOC_REQUIRE_PEERS=1 but BYOC_PEERS_PYTHON is not set")
        }
        Err(_) => {
            eprintln!("skipped: needs the peers venv; run through `cargo xtask test`");
            None
        }
    }
}

async fn listen(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

async fn orchestrator() -> (String, Arc<Orchestrator>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let config = OrchestratorConfig {
        service_url: url.clone(),
        secret: Some("peer-secret".into()),
        signatures: SignaturePolicy::AllowUnsigned,
        ..OrchestratorConfig::default()
    };
    let orch = Orchestrator::new(config, TrickleStore::default()).unwrap();
    let app = router(orch.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, orch)
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
    let (url, orch) = orchestrator().await;
    let out = tokio::task::spawn_blocking({
        let (py, url) = (py.clone(), url.clone());
        move || {
            run_python(
                &py,
                REGISTER,
                &[
                    ("ORCH_URL", &url),
                    ("ORCH_SECRET", "peer-secret"),
                    ("CAPABILITY_NAME", "py-worker"),
                    ("CAPABILITY_URL", "http://127.0.0.1:9"),
                    ("CAPABILITY_CAPACITY", "2"),
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(out.contains("REGISTERED"), "{out}");
    let cap = orch.registry.get("py-worker").expect("registered");
    assert_eq!(cap.capacity.limit(), 2);
    // With a wrong secret, pytrickle sees the 400 it treats as "secret incorrect".
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            &py,
            REGISTER,
            &[
                ("ORCH_URL", &url),
                ("ORCH_SECRET", "wrong"),
                ("CAPABILITY_NAME", "other"),
                ("CAPABILITY_URL", "http://127.0.0.1:9"),
            ],
        )
    })
    .await
    .unwrap();
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
    let (url, orch) = orchestrator().await;
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
