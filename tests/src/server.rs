//! An in-process trickle server on `127.0.0.1:0`, with a log of the requests it handled.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use byoc_trickle::{TrickleConfig, TrickleStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The base path the orchestrator mounts the trickle routes under.
pub const ORCH_BASE: &str = "/ai/trickle";

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `POST`, `DELETE`...
    pub method: String,
    /// The full path, base path included (`/ai/trickle/ch/3`).
    pub path: String,
    /// The request carried `Lp-Trickle-Reset`.
    pub reset: bool,
    /// The response status, once the response head was produced (a subscribe's head waits for
    /// the segment's first byte).
    pub status: Option<u16>,
}

/// Every request the server handled, in the order their handlers first ran.
///
/// An entry is added after the handler's first poll: by then the handler has done its
/// synchronous work (for a `GET ch/-1`, the live edge has been resolved and the reader attached;
/// for a `POST ch/seq`, the segment has been opened), so waiting for an entry is a race-free way
/// to know that a peer's request has taken effect.
#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<LoggedRequest>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn push(&self, entry: LoggedRequest) -> usize {
        let id = {
            let mut entries = self.lock();
            entries.push(entry);
            entries.len() - 1
        };
        self.bump();
        id
    }

    fn set_status(&self, id: usize, status: u16) {
        if let Some(e) = self.lock().get_mut(id) {
            e.status = Some(status);
        }
        self.bump();
    }

    /// A copy of every entry so far.
    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.lock().clone()
    }

    /// The entries with this method and path.
    pub fn matching(&self, method: &str, path: &str) -> Vec<LoggedRequest> {
        self.lock().iter().filter(|e| e.method == method && e.path == path).cloned().collect()
    }

    /// Waits until `pred` holds for the log, for at most `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[LoggedRequest]) -> bool,
    ) -> Result<()> {
        let mut rx = self.changed.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                if pred(&self.lock()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            let tail: Vec<String> = self
                .snapshot()
                .iter()
                .rev()
                .take(12)
                .map(|e| format!("{} {} {:?}", e.method, e.path, e.status))
                .collect();
            anyhow!("timed out after {timeout:?} waiting for {what}; last requests (newest first): {tail:?}")
        })
    }

    /// Waits until at least `count` `method path` requests were handled.
    pub async fn wait_for(&self, method: &str, path: &str, count: usize, timeout: Duration) -> Result<()> {
        let what = format!("{count} x {method} {path}");
        self.wait_until(&what, timeout, |log| {
            log.iter().filter(|e| e.method == method && e.path == path).count() >= count
        })
        .await
    }
}

/// Logs each request after its handler's first poll, and its status once the response exists.
async fn record(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let entry = LoggedRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        reset: req.headers().contains_key(byoc_trickle::headers::RESET),
        status: None,
    };
    let mut fut = pin!(next.run(req));
    let first = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let id = log.push(entry);
    let resp = match first {
        Some(resp) => resp,
        None => fut.await,
    };
    log.set_status(id, resp.status().as_u16());
    resp
}

/// A trickle server serving on `127.0.0.1:<port>`; stopped when dropped.
pub struct TrickleServer {
    /// The server's channels (create or inspect channels in-process).
    pub store: TrickleStore,
    /// Every request handled so far.
    pub log: RequestLog,
    addr: SocketAddr,
    base_path: String,
    task: JoinHandle<()>,
}

impl TrickleServer {
    /// Serves `byoc_trickle::router` on a fresh loopback port, nested under `base_path`
    /// (`""` for the root, or e.g. [`ORCH_BASE`]).
    pub async fn start(config: TrickleConfig, base_path: &str) -> Result<Self> {
        let store = TrickleStore::new(config);
        let trickle = byoc_trickle::router(store.clone());
        let base_path = base_path.trim_end_matches('/').to_string();
        let app = if base_path.is_empty() { trickle } else { Router::new().nest(&base_path, trickle) };
        let log = RequestLog::default();
        let app = app.layer(axum::middleware::from_fn_with_state(log.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("trickle test server stopped: {e}");
            }
        });
        Ok(TrickleServer { store, log, addr, base_path, task })
    }

    /// The test configuration of the peer tests: go-livepeer's window (5) and HTTP channel
    /// creation (`POST {ch}` with `Expect-Content`), which the Python harness relies on.
    pub fn peer_config() -> TrickleConfig {
        TrickleConfig { window: 5, autocreate: true, ..TrickleConfig::default() }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of a channel: `http://127.0.0.1:<port>{base}/{channel}`.
    pub fn url(&self, channel: &str) -> String {
        format!("http://{}{}/{channel}", self.addr, self.base_path)
    }

    /// The request path of a channel's segment, as it appears in the [`RequestLog`].
    pub fn path(&self, channel: &str, seq: impl std::fmt::Display) -> String {
        format!("{}/{channel}/{seq}", self.base_path)
    }
}

impl Drop for TrickleServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
