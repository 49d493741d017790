//! What the tests share: an orchestrator served on loopback, and bounded waits.

use std::sync::Arc;

use axum::Router;
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, router};
use byoc_payment::job::SignaturePolicy;
use byoc_trickle::TrickleStore;

pub use byoc_e2e::wait::wait_until_within;

/// An orchestrator serving on loopback.
pub struct Served {
    pub url: String,
    pub orch: Arc<Orchestrator>,
}

/// Serves `app` on a free loopback port; returns its base URL.
pub async fn listen(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

/// An orchestrator on loopback in free mode (unsigned jobs accepted) with registration secret
/// `secret`, as `cfg` adjusts it.
pub async fn orchestrator(secret: &str, cfg: impl FnOnce(&mut OrchestratorConfig)) -> Served {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let mut config = OrchestratorConfig {
        service_url: url.clone(),
        secret: Some(secret.into()),
        signatures: SignaturePolicy::AllowUnsigned,
        ..OrchestratorConfig::default()
    };
    cfg(&mut config);
    let orch = Orchestrator::new(config, TrickleStore::default()).unwrap();
    let app = router(orch.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Served { url, orch }
}

/// The Python interpreter named by the environment variable `var` (`cargo xtask test` sets it);
/// `None` (the test is skipped, saying it needs `what`) when it is unset or empty, unless
/// `BYOC_REQUIRE_PEERS=1` makes that a failure.
pub fn python(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("BYOC_REQUIRE_PEERS").is_ok_and(|v| v == "1") => {
            panic!("BYOC_REQUIRE_PEERS=1 but {var} is not set")
        }
        _ => {
            eprintln!("skipped: needs {what} ({var}); run through `cargo xtask test`");
            None
        }
    }
}
