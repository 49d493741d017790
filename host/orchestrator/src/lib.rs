//! The orchestrator: capability registration, job tokens, batch jobs and streams, with its
//! trickle server under `/ai/trickle/`. Same paths, headers, JSON and status codes as
//! go-livepeer's BYOC orchestrator, minus its bugs (see the README).
//!
//! Layering: a module uses only modules on lines above its own; nothing uses `lib.rs`.
//!
//! 1. `error` (the one refusal type), `capacity`, `channels`: depend on no other module.
//! 2. `backend`: where a capability's work is done; uses `error`, `channels`. Inside it,
//!    `backend/mod.rs` dispatches to `plugin` and `worker`, which use only `call` (what passes
//!    between the handlers and a backend), never `mod.rs` nor each other.
//! 3. `registry`: the capabilities; uses `backend`, `capacity`.
//! 4. `payments`: priced mode; uses `error`, `registry`.
//! 5. `streams`: the running streams; uses `backend`, `capacity`, `channels`, `payments`, `registry`.
//! 6. `orchestrator`: the shared state and the job checks; uses everything above.
//! 7. `capabilities`, `batch`, `stream`: the HTTP handlers; `grpc`: `net.Orchestrator/GetOrchestrator`
//!    (every `application/grpc` request). They use everything above, not each other.
//! 8. `lib.rs`: the router and the public re-exports.

mod backend;
mod batch;
mod capabilities;
mod capacity;
mod channels;
mod error;
mod grpc;
mod orchestrator;
mod payments;
mod registry;
mod stream;
mod streams;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{any, get, post};

pub use backend::{Backend, PluginRef, Worker, frame_pipeline_config};
pub use capacity::{Capacity, CapacityError, Reservation};
pub use channels::StreamChannels;
pub use orchestrator::{CLOCK_SKEW, Orchestrator, OrchestratorConfig, OrchestratorError};
pub use payments::{OnChainSettings, PaymentSettings};
pub use registry::{Capability, Price, RegisterError, Registry, ReserveError, Reserved, WorkerRegistration};
pub use streams::StreamInfo;

/// Header names of the BYOC protocol (see `byoc-protocol`).
pub use byoc_protocol::headers;

/// The orchestrator's routes, including its trickle server under `/ai/trickle`, and gRPC
/// `net.Orchestrator/GetOrchestrator` (any request whose content type is `application/grpc`).
pub fn router(orch: Arc<Orchestrator>) -> Router {
    Router::new()
        .route("/capability/register", post(capabilities::register))
        .route("/capability/unregister", post(capabilities::unregister))
        .route("/process/token", get(capabilities::token))
        .route("/capabilities", get(capabilities::list))
        .route("/process/request/{*path}", post(batch::process))
        .route("/ai/stream/start", any(stream::start))
        .route("/ai/stream/stop", any(stream::stop))
        .route("/ai/stream/update", any(stream::update))
        .route("/ai/stream/payment", any(stream::payment))
        .route("/plugins/reload", post(capabilities::reload_plugins))
        .route("/metrics", get(metrics))
        .with_state(orch.clone())
        .nest("/ai/trickle", byoc_trickle::router(orch.trickle.clone()))
        .layer(axum::middleware::from_fn_with_state(orch, grpc::route))
}

/// `GET /metrics`, with the capacity of every capability read at the time of the scrape.
async fn metrics(State(orch): State<Arc<Orchestrator>>) -> Response {
    for name in orch.registry.names() {
        if let Some(cap) = orch.registry.get(&name) {
            let (in_use, limit) = (f64::from(cap.capacity.in_use()), f64::from(cap.capacity.limit()));
            let label = byoc_protocol::telemetry::capability_label(&name);
            metrics::gauge!("byoc_capacity_in_use", "capability" => label.clone()).set(in_use);
            metrics::gauge!("byoc_capacity_limit", "capability" => label).set(limit);
        }
    }
    if let Some(p) = &orch.payments {
        for (capability, wei) in p.totals() {
            let label = byoc_protocol::telemetry::capability_label(&capability);
            metrics::gauge!("byoc_orchestrator_balance_wei", "capability" => label).set(wei);
        }
    }
    byoc_protocol::telemetry::metrics(byoc_protocol::telemetry::Node::Orchestrator).await
}
