//! The external worker as seen from the plugin: where it is (config), how to reach it
//! (HTTP with an optional bearer token) and how its answers map to our errors and outputs.

use std::time::Duration;

use byoc_sdk::{Context, Error, HttpError, HttpRequest, HttpResponse, Method};
use serde::Deserialize;
use serde_json::Value;

/// Config key: the worker's base URL, e.g. `http://127.0.0.1:9000`.
pub const CONFIG_WORKER_URL: &str = "worker_url";
/// Config key (optional): per-request timeout in milliseconds.
pub const CONFIG_TIMEOUT_MS: &str = "timeout_ms";
/// Secret (optional): sent as `Authorization: Bearer <token>`.
pub const SECRET_WORKER_TOKEN: &str = "worker_token";

/// Timeout when `timeout_ms` is not configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers a proxy must not forward (hop-by-hop, RFC 9110 §7.6.1), plus those we set
/// ourselves. The client's `authorization` is for the orchestrator, never the worker.
const DROPPED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "authorization",
];

/// Whether a header may be forwarded between client and worker.
pub fn forwardable(name: &str) -> bool {
    !DROPPED_HEADERS.iter().any(|dropped| dropped.eq_ignore_ascii_case(name))
}

/// A configured worker.
#[derive(Debug, Clone)]
pub struct Worker {
    base_url: String,
    /// Whether `base_url` has a path of its own (`http://h:9000/v1`), not just the root.
    has_path: bool,
    token: Option<String>,
    timeout: Duration,
}

impl Worker {
    /// Reads the worker's location and credentials from the granted config and secrets.
    pub fn from_config(ctx: &Context<'_>) -> Result<Self, Error> {
        let base_url = ctx.require_config(CONFIG_WORKER_URL)?;
        let base_url = base_url.trim_end_matches('/');
        // Validate once here so that a misconfiguration fails at open, not per segment.
        let parts = byoc_sdk::UrlParts::parse(base_url)
            .map_err(|e| Error::invalid_params(format!("config `{CONFIG_WORKER_URL}` is not a URL: {e}")))?;
        let has_path = parts.path_and_query != "/";
        let timeout = match ctx.config(CONFIG_TIMEOUT_MS) {
            Ok(Some(ms)) => Duration::from_millis(ms.trim().parse().map_err(|_| {
                Error::invalid_params(format!("config `{CONFIG_TIMEOUT_MS}` must be a number of milliseconds"))
            })?),
            // Optional: unset and not granted both mean the default.
            Ok(None) | Err(_) => DEFAULT_TIMEOUT,
        };
        let token = ctx.secret(SECRET_WORKER_TOKEN).ok().flatten();
        Ok(Self { base_url: base_url.to_owned(), has_path, token, timeout })
    }

    /// A request to `path` (starting with `/`) on the worker, with auth and timeout set. An
    /// empty path (or only a query, `?…`) is the worker URL itself: its root, or the path the
    /// operator configured (`worker_url = "http://h:9000/v1/run"` is called as is).
    pub fn request(&self, method: Method, path: &str) -> HttpRequest {
        let path = if path.starts_with('/') || (self.has_path && (path.is_empty() || path.starts_with('?'))) {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let request = HttpRequest::new(method, format!("{}{path}", self.base_url)).timeout(self.timeout);
        match &self.token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// Sends a request; transport failures become typed errors naming the worker.
    pub fn send(&self, ctx: &Context<'_>, request: &HttpRequest) -> Result<HttpResponse, Error> {
        ctx.http(request).map_err(|e| match e {
            HttpError::Denied(m) => {
                Error::denied(format!("worker {} is not a granted outbound host: {m}", self.base_url))
            }
            other => Error::upstream(format!("worker {}: {other}", self.base_url)),
        })
    }

    /// Sends a request whose non-2xx answer is a failure: 400 and 422 are the caller's
    /// fault (`invalid`), anything else the worker's (`upstream`).
    pub fn call(
        &self,
        ctx: &Context<'_>,
        request: &HttpRequest,
        invalid: fn(String) -> Error,
    ) -> Result<HttpResponse, Error> {
        let response = self.send(ctx, request)?;
        if response.is_success() {
            return Ok(response);
        }
        let detail = String::from_utf8_lossy(&response.body);
        let detail = detail.chars().take(500).collect::<String>();
        let message = format!("worker answered {}: {detail}", response.status);
        Err(match response.status {
            400 | 422 => invalid(message),
            _ => Error::upstream(message),
        })
    }
}

/// Data lines and events a worker returns as JSON (`{"data": [...], "events": [...]}`);
/// both lists are optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkerOutput {
    /// Data lines: strings are published as is, other values as JSON.
    pub data: Vec<Value>,
    /// Events: JSON objects.
    pub events: Vec<Value>,
}

impl WorkerOutput {
    /// Parses a response body if it is JSON; any other response carries no output.
    pub fn from_response(response: &HttpResponse) -> Result<Self, Error> {
        let is_json = response.content_type().is_some_and(|ct| ct.starts_with("application/json"));
        if !is_json || response.body.is_empty() {
            return Ok(Self::default());
        }
        response.json()
    }

    /// Publishes the data lines and events.
    pub fn publish(self, ctx: &Context<'_>) -> Result<(), Error> {
        for line in self.data {
            match line {
                Value::String(text) => ctx.publish_data(&text)?,
                other => ctx.publish_data_json(&other)?,
            }
        }
        for event in self.events {
            ctx.publish_event(&event)?;
        }
        Ok(())
    }
}
