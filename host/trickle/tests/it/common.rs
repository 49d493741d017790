//! A trickle server on loopback for the integration tests.

#![allow(dead_code)]

use std::time::Duration;

use byoc_trickle::{TrickleConfig, TrickleStore, router};

pub struct Server {
    pub base: String,
    pub store: TrickleStore,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, ch: &str) -> String {
        format!("{}/{ch}", self.base)
    }
}

/// Serves `config` under `/ai/trickle` (as the orchestrator mounts it) on 127.0.0.1:0.
pub async fn serve(config: TrickleConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, config).await
}

pub async fn serve_on(listener: tokio::net::TcpListener, config: TrickleConfig) -> Server {
    let store = TrickleStore::new(config);
    let app = axum::Router::new().nest("/ai/trickle", router(store.clone()));
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { base: format!("http://{addr}/ai/trickle"), store, task }
}

pub async fn serve_default() -> Server {
    serve(TrickleConfig::default()).await
}

pub fn http() -> reqwest::Client {
    byoc_trickle::http_client().unwrap()
}

/// Bounded wait for async conditions in tests.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(10), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}
