//! What passes between the handlers and a backend: a batch job and its answer, a stream's start
//! and life, and a backend's refusal.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use byoc_payment::Address;
use byoc_protocol::BatchPath;
use byoc_trickle::TrickleStore;
use http::HeaderMap;
use tokio_util::sync::CancellationToken;

use crate::channels::StreamChannels;
use crate::error::ApiError;

/// One batch job, as the handler hands it to a backend.
pub(crate) struct BatchJob<'a> {
    /// The capability's name (for logs and metrics).
    pub(crate) capability: &'a str,
    /// Who sent the job (for logs).
    pub(crate) sender: Option<Address>,
    /// The checked path below `/process/request/`.
    pub(crate) route: &'a BatchPath,
    /// The client's request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The client's request body, not read yet.
    pub(crate) body: Body,
    /// How long the job may take.
    pub(crate) timeout: Duration,
    /// The largest body a backend that reads it whole accepts.
    pub(crate) max_body_bytes: usize,
}

/// What a batch job gave.
pub(crate) enum BatchAnswer {
    /// The whole answer (a refusal included): the job is charged at once.
    Complete(Response),
    /// An answer still streaming from the backend: the job keeps its slot, and its time is
    /// charged, until the whole body has gone (or the client left).
    Streaming(Response),
}

/// Why a backend did not do what it was asked.
#[derive(Debug)]
pub(crate) struct BackendError {
    /// The answer to the client.
    pub(crate) error: ApiError,
    /// Why, in a few words (a stream that could not start records it as why it ended).
    pub(crate) why: &'static str,
    /// The worker refused our token or could not be reached on a batch job: its registration
    /// is dropped, and it must register again.
    pub(crate) worker_gone: bool,
}

impl BackendError {
    /// A refusal that says all there is to say.
    pub(crate) fn refused(error: ApiError) -> BackendError {
        BackendError { error, why: "refused", worker_gone: false }
    }
}

/// How a stream's tasks learn that it is over, and how a plugin session says it failed for good.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamLife {
    /// Cancelled when the stream ends, whatever ends it: every task of the stream returns.
    pub(crate) ended: CancellationToken,
    /// Cancelled by the stream's plugin session when it fails for good; the stream's monitor
    /// then ends the stream (one place ends streams).
    pub(crate) failed: CancellationToken,
}

/// What a backend needs to start serving a stream whose channels exist.
pub(crate) struct StreamStart<'a> {
    /// The stream's id.
    pub(crate) id: &'a str,
    /// The stream's channels, all created.
    pub(crate) channels: &'a StreamChannels,
    /// The gateway's start body (a JSON object; its `params` are the stream's parameters).
    pub(crate) request: serde_json::Map<String, serde_json::Value>,
    /// The URL this node is reached at (channel URLs are built from it).
    pub(crate) service_url: &'a str,
    /// The node's trickle channels.
    pub(crate) trickle: &'a TrickleStore,
    /// How often a plugin stream publishes a heartbeat event.
    pub(crate) heartbeat_every: Duration,
    /// How long a worker may take to answer the start.
    pub(crate) timeout: Duration,
    /// The stream's cancellation tokens.
    pub(crate) life: &'a StreamLife,
    /// What a frame plugin's stream may ask of the video encoder (`params.encoder`).
    pub(crate) encode_limits: &'a byoc_frames::EncodeLimits,
}
