//! The wire vocabulary both byoc services speak: the gateway (`byoc-gateway`) and the orchestrator
//! (`byoc-orchestrator`) depend on this crate and on nothing of each other.
//!
//! - [`headers`]: the BYOC protocol's header names (`Livepeer`, `Livepeer-Payment`, `X-*-Url`, …).
//! - [`JobParameters`] / [`OrchestratorFilter`]: the job's `parameters` JSON (enabled legs,
//!   orchestrator selection, balances), one definition for both sides.
//! - [`Offered`]: a capability as an orchestrator lists it (`GET /capabilities`, the job token), and
//!   [`with_default_legs`]: a start's legs defaulting to the capability's.
//! - [`BatchPath`]: a batch job's route as checked segments, never joined as text.
//! - [`messages`]: splitting a message channel's segment into messages.
//! - [`params`]: a stream's params across updates (the keys only its start sets).
//! - [`telemetry`]: the process-wide Prometheus recorder and `GET /metrics`.
//! - [`valid_id_part`] / [`valid_stream_id`]: what a stream id may be (never a path that climbs).
//! - Small shared rules: [`same_secret`] (constant time), [`read_limited`] bodies, job timeouts
//!   ([`check_timeout`]), [`now_ms`].

mod batch_path;
mod ids;
mod job;
pub mod messages;
mod offered;
pub mod params;
pub mod telemetry;

pub use batch_path::BatchPath;
pub use ids::{ID_PART_MAX, valid_id_part, valid_stream_id};
pub use job::{JobParameters, OrchestratorFilter};
pub use offered::{Offered, OfferedList, OfferedPrice, StreamLegs, with_default_legs};

/// Header names of the BYOC protocol.
pub mod headers {
    /// The signed job request, base64 JSON.
    pub const LIVEPEER: &str = "Livepeer";
    /// The sender's address and its signature of it, base64 JSON.
    pub const ETH_ADDRESS: &str = "Livepeer-Eth-Address";
    /// The capability a job is for.
    pub const CAPABILITY: &str = "Livepeer-Capability";
    /// The sender's balance with the orchestrator, in wei, on responses.
    pub const BALANCE: &str = "Livepeer-Balance";
    /// The probabilistic micropayment, base64 protobuf.
    pub const PAYMENT: &str = "Livepeer-Payment";
    /// Segment credentials: the sender's signature over a segment, carrying the orchestrator's
    /// session token, base64 protobuf (`SegData`).
    pub const SEGMENT: &str = "Livepeer-Segment";
    /// Free-form JSON metadata passed along with a job.
    pub const METADATA: &str = "X-Metadata";
    /// The orchestrator's id for a started stream.
    pub const STREAM_ID: &str = "X-Stream-Id";
    /// The trickle channel the gateway publishes the stream's video to.
    pub const PUBLISH_URL: &str = "X-Publish-Url";
    /// The trickle channel the gateway reads the processed video from.
    pub const SUBSCRIBE_URL: &str = "X-Subscribe-Url";
    /// The trickle channel the gateway writes control messages to.
    pub const CONTROL_URL: &str = "X-Control-Url";
    /// The trickle channel the gateway reads events from.
    pub const EVENTS_URL: &str = "X-Events-Url";
    /// The trickle channel the gateway reads data lines from.
    pub const DATA_URL: &str = "X-Data-Url";
}

/// Compares secrets in constant time: both are hashed first, so neither their length nor their
/// content leaks through timing.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (byoc_payment::keccak256(a), byoc_payment::keccak256(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Longest job timeout accepted, in seconds.
pub const MAX_JOB_TIMEOUT_SECS: i64 = 3600;

/// A job's `timeout_seconds` must be 1 to [`MAX_JOB_TIMEOUT_SECS`]; the error is the 400's message.
pub fn check_timeout(job: &byoc_payment::job::JobRequest) -> Result<(), &'static str> {
    if (1..=MAX_JOB_TIMEOUT_SECS).contains(&job.timeout_seconds) {
        Ok(())
    } else {
        Err("timeout_seconds must be between 1 and 3600")
    }
}

/// Reads a request body of at most `max` bytes; the error is the message of the 413 answer.
pub async fn read_limited(body: axum::body::Body, max: usize) -> Result<bytes::Bytes, String> {
    axum::body::to_bytes(body, max).await.map_err(|_| format!("request body too large (max {max} bytes)"))
}
