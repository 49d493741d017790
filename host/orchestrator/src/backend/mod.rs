//! Where a capability's work is done: a WebAssembly plugin in this process ([`plugin`]) or an
//! external HTTP worker ([`worker`]). The stream and batch handlers speak to both through this
//! one interface: [`Backend`] (what a capability is served by), [`StreamBackend`] (one stream's
//! connection to it), and what passes between them and the handlers (`call`).
//!
//! `plugin` and `worker` use `call` and never this file; this file dispatches to them.

mod call;
mod frames;
pub(crate) mod plugin;
mod session;
pub(crate) mod worker;

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use crate::error::ApiError;

pub(crate) use call::{BackendError, BatchAnswer, BatchJob, StreamLife, StreamStart};
pub use frames::frame_pipeline_config;
pub use plugin::PluginRef;
pub use worker::Worker;

/// Where a capability's work is done.
#[derive(Debug, Clone)]
pub enum Backend {
    /// An external worker: `POST {url}/stream/start` etc., `Authorization: Bearer {token}`.
    Worker(Worker),
    /// A WebAssembly plugin hosted in this process. The current version is looked up for each
    /// new job, so a hot reload serves new jobs while running ones finish on the old code.
    Plugin(PluginRef),
}

impl Backend {
    /// The plugin's current version, for a new job (`None` for a worker).
    pub fn plugin(&self) -> Option<byoc_runtime::Plugin> {
        match self {
            Backend::Plugin(p) => p.current(),
            Backend::Worker(_) => None,
        }
    }

    /// A new stream's connection to this backend, not started yet (503 when the plugin is no
    /// longer loaded).
    pub(crate) fn stream(&self, http: &reqwest::Client, id: &str) -> Result<StreamBackend, ApiError> {
        match self {
            Backend::Plugin(p) => Ok(StreamBackend::Plugin(plugin::PluginStream::new(p.loaded()?))),
            Backend::Worker(w) => Ok(StreamBackend::Worker(w.stream(http, id))),
        }
    }

    /// Runs one batch job.
    pub(crate) async fn batch(&self, http: &reqwest::Client, job: BatchJob<'_>) -> Result<BatchAnswer, BackendError> {
        match self {
            Backend::Plugin(p) => {
                let plugin = p.loaded().map_err(BackendError::refused)?;
                Ok(plugin::batch(&plugin, job).await)
            }
            Backend::Worker(w) => w.batch(http, job).await,
        }
    }
}

/// One stream's connection to its backend.
pub(crate) enum StreamBackend {
    /// A plugin session in this process.
    Plugin(plugin::PluginStream),
    /// An external worker told over HTTP.
    Worker(worker::WorkerStream),
}

impl StreamBackend {
    /// Starts serving the stream.
    pub(crate) async fn start(&self, start: StreamStart<'_>) -> Result<(), BackendError> {
        match self {
            StreamBackend::Plugin(p) => p.start(start).await,
            StreamBackend::Worker(w) => w.start(start).await,
        }
    }

    /// Hands the gateway's update (`/ai/stream/update` body) on; the answer is the client's.
    pub(crate) async fn update(&self, body: Bytes, timeout: Duration) -> Result<Response, ApiError> {
        match self {
            StreamBackend::Plugin(p) => p.update(body).await,
            StreamBackend::Worker(w) => w.update(body, timeout).await,
        }
    }

    /// The gateway stopped the (already removed) stream; the answer is the client's.
    pub(crate) async fn stop(&self, body: Bytes, content_type: Option<&HeaderValue>) -> Response {
        match self {
            // A plugin session is closed by its tasks when the stream is removed.
            StreamBackend::Plugin(_) => StatusCode::OK.into_response(),
            StreamBackend::Worker(w) => w.stop(body, content_type).await,
        }
    }

    /// The (already removed) stream ended for another reason: the backend is told, best effort.
    pub(crate) async fn end(&self, why: &str) {
        if let StreamBackend::Worker(w) = self {
            w.end(why).await;
        }
    }
}
