//! byoc-gateway: the only thing a client talks to. It finds an orchestrator for the capability,
//! signs the job, starts the stream there and carries the stream's legs (its enabled inputs and
//! outputs: ingest and egress over HTTP trickle, RTMP and WebRTC, data as SSE), its control (updates
//! and keepalives) and its events (SSE).
//!
//! Unlike go-livepeer's gateway, `start` answers 200 only once an orchestrator has accepted the
//! stream (a rejection moves on to the next one; none left gives 503 with the reasons), and every
//! per-stream route needs the stream's own secret, handed out once by `start`.
//!
//! Layers: a module imports only modules of lower layers (and earlier ones of its own layer, as
//! listed), never a later one; this file, the router, is the top.
//! 1. The model: `error` (the API's error answer), `config`, `answer` (an orchestrator's answer read
//!    with a bound), `discovery` (orchestrator tokens, sources, and the catalog of what they offer),
//!    `model` (a stream, its attachment to an orchestrator, its SSE feeds).
//! 2. The gateway: `signer` (its own key or a remote signer), `client` (signed jobs to orchestrators), `state` (the `Gateway`: settings, client,
//!    streams), `urls` (what `start` hands out), `payments`.
//! 3. Work on a stream: `media` (the plumbing of the gateway's own media legs), `watchers` (the
//!    background work of an attachment; they report a loss, never act on it), `failover` (start on
//!    an orchestrator, attach, move on a loss, end).
//! 4. The servers: `auth` and `request` (what a request must carry), the HTTP handlers `start` (and the
//!    capability list), `handlers`, `batch`, `webrtc` and `console` (the browser page), and the RTMP
//!    server `rtmp`.

mod answer;
mod auth;
mod batch;
mod client;
mod config;
mod console;
mod discovery;
mod error;
mod failover;
mod handlers;
mod media;
mod model;
mod payments;
mod request;
mod rtmp;
mod signer;
mod start;
mod state;
#[cfg(test)]
mod tests;
mod urls;
mod watchers;
mod webrtc;

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

pub use config::{GatewayConfig, MediaLimits};
pub use discovery::{Candidate, OrchestratorFilter, OrchestratorSource, Token, Webhook, discover};
pub use rtmp::serve_rtmp;
pub use signer::RemoteSigner;
pub use state::Gateway;
pub use webrtc::serve_webrtc;

/// The OpenAPI description of this API (kept true by a test of `tests/it/gateway.rs`).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The gateway's routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/", get(console::console))
        .route("/process/stream/start", post(start::start))
        .route("/process/stream/{id}/update", post(handlers::update))
        .route("/process/stream/{id}/stop", post(handlers::stop))
        .route("/process/stream/{id}/status", get(handlers::status))
        .route("/process/stream/{id}/data", get(handlers::data))
        .route("/process/stream/{id}/events", get(handlers::events))
        .route("/process/stream/{id}/ingest/{seq}", post(handlers::ingest))
        .route("/process/stream/{id}/egress/{seq}", get(handlers::egress))
        .route("/process/stream/{id}/whip", post(webrtc::whip))
        .route("/process/stream/{id}/whep", post(webrtc::whep))
        .route("/process/stream/{id}/player", get(console::player))
        .route("/process/stream/{id}/whip/{session}", delete(webrtc::end_session))
        .route("/process/stream/{id}/whep/{session}", delete(webrtc::end_session))
        .route("/process/request/{*path}", post(batch::batch))
        .route("/capabilities", get(start::capabilities))
        .route("/metrics", get(|| byoc_protocol::telemetry::metrics(byoc_protocol::telemetry::Node::Gateway)))
        .route("/openapi.json", get(openapi))
        .with_state(gw)
}
