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

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Longest job timeout accepted, in seconds.
pub(crate) const MAX_JOB_TIMEOUT_SECS: i64 = 3600;

/// A job's `timeout_seconds` must be 1 to [`MAX_JOB_TIMEOUT_SECS`]; the error is the 400's message.
pub(crate) fn check_timeout(job: &byoc_payment::job::JobRequest) -> Result<(), &'static str> {
    if (1..=MAX_JOB_TIMEOUT_SECS).contains(&job.timeout_seconds) {
        Ok(())
    } else {
        Err("timeout_seconds must be between 1 and 3600")
    }
}

/// Reads a request body of at most `max` bytes; the error is the message of the 413 answer.
pub(crate) async fn read_limited(body: axum::body::Body, max: usize) -> Result<bytes::Bytes, String> {
    axum::body::to_bytes(body, max).await.map_err(|_| format!("request body too large (max {max} bytes)"))
}

pub use registry::{Capability, Price, Registry, WorkerRegistration};
