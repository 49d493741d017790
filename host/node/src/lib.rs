//! The BYOC nodes: the orchestrator (capabilities, signed jobs, streams on trickle) and, later,
//! the gateway (discovery, signed jobs, stream legs as HTTP trickle and SSE). Built on `byoc-trickle` and `byoc-payment`.

mod batch_path;
mod capacity;
pub mod gateway;
mod messages;
pub mod orchestrator;
mod registry;
pub mod telemetry;

pub use batch_path::BatchPath;
pub use capacity::{Capacity, CapacityError, Reservation};
/// Compares secrets in constant time: both are hashed first, so neither their length nor their
/// content leaks through timing.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (byoc_payment::keccak256(a), byoc_payment::keccak256(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Reads a request body of at most `max` bytes; the error is the message of the 413 answer.
pub(crate) async fn read_limited(body: axum::body::Body, max: usize) -> Result<bytes::Bytes, String> {
    axum::body::to_bytes(body, max).await.map_err(|_| format!("request body too large (max {max} bytes)"))
}

pub use registry::{Capability, Price, Registry, WorkerRegistration};
