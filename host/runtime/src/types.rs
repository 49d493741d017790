//! Plain data at the runtime's API: what a capability is, batch requests and responses, the
//! errors a plugin returns and the output a session produces. Each type mirrors one WIT type
//! of `byoc:capability/types`; none of them names wasmtime.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Severity of a log record written by a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Development diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Recovered from something unexpected.
    Warn,
    /// A failure the operator should look at.
    Error,
}

impl LogLevel {
    /// Its name, as plugins and logs spell it (`trace` … `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// The legs of a live stream a capability uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Legs {
    /// Consumes input video segments.
    pub video_in: bool,
    /// Publishes video segments.
    pub video_out: bool,
    /// Publishes data lines.
    pub data: bool,
    /// Publishes JSON events.
    pub events: bool,
}

impl Legs {
    /// Whether no leg is set (a batch-only capability).
    pub fn is_empty(&self) -> bool {
        !(self.video_in || self.video_out || self.data || self.events)
    }
}

/// A price in wei per second of compute, as the rational `per_unit / scaling` (go-livepeer's
/// `price_per_unit` and `price_scaling`); a `scaling` of 0 means 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    /// Numerator, in wei.
    pub per_unit: u64,
    /// Denominator, in seconds.
    pub scaling: u64,
}

/// What a capability is, as its `describe()` returned it when the plugin was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityInfo {
    /// Capability name (equal to the manifest's `name`).
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Default price per second of compute.
    pub price: Price,
    /// Hint: concurrent sessions one node should accept; 0 means no hint.
    pub capacity: u32,
    /// The stream legs the capability uses.
    pub legs: Legs,
    /// JSON Schema of the params, as text, if the capability takes params.
    pub params_schema: Option<String>,
    /// For a frame plugin, the frames it wants (the host decodes and encodes for it);
    /// `None` for a byte-level plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<byoc_frames::FrameNeeds>,
}

/// One HTTP header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Field name.
    pub name: String,
    /// Field value.
    pub value: String,
}

/// A batch request (`/process/request/{path}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The `{path}` part with a leading `/` and the query string, `/` when empty.
    pub path: String,
    /// The request's content type, empty when it has none.
    pub content_type: String,
    /// End-to-end request headers.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Bytes,
}

impl Request {
    /// A request with no headers.
    pub fn new(path: impl Into<String>, content_type: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self { path: path.into(), content_type: content_type.into(), headers: Vec::new(), body: body.into() }
    }
}

/// One server-sent event of a streamed batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseEvent {
    /// Event type; `None` for the default `message`.
    pub event: Option<String>,
    /// Event id.
    pub id: Option<String>,
    /// Payload; may contain newlines.
    pub data: String,
}

/// The body of a batch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// A complete body.
    Bytes(Bytes),
    /// Server-sent events, in order.
    Events(Vec<SseEvent>),
}

/// A batch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Content type (ignored for [`ResponseBody::Events`]).
    pub content_type: String,
    /// Additional headers.
    pub headers: Vec<Header>,
    /// The body.
    pub body: ResponseBody,
}

/// An error a plugin returned from a call (the WIT's `capability-error`). It does not end a
/// session: the plugin is still healthy and the next call goes to the same instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum CapabilityError {
    /// Params are malformed or invalid (HTTP 400).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The input cannot be processed (400).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The batch path names nothing this capability serves (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation is not offered (501).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A needed grant is missing (403).
    #[error("denied: {0}")]
    Denied(String),
    /// An external service failed (502).
    #[error("upstream failure: {0}")]
    Upstream(String),
    /// A size limit of the capability was exceeded (413).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Any other failure inside the plugin (500).
    #[error("internal plugin error: {0}")]
    Internal(String),
}

impl CapabilityError {
    /// The HTTP status the WIT maps this error to.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidParams(_) | Self::InvalidInput(_) => 400,
            Self::NotFound(_) => 404,
            Self::Unsupported(_) => 501,
            Self::Denied(_) => 403,
            Self::Upstream(_) => 502,
            Self::LimitExceeded(_) => 413,
            Self::Internal(_) => 500,
        }
    }
}

/// Output of a session, in the order the plugin produced it.
#[derive(Clone, PartialEq, Eq)]
pub enum Output {
    /// An output video segment starts; `seq` numbers the session's segments 0, 1, 2, …
    /// (across restarts of the session too).
    SegmentStart {
        /// Sequence number on the output channel.
        seq: u64,
    },
    /// Bytes of the open output segment.
    SegmentChunk(Bytes),
    /// The open output segment is complete (or was cut short: see [`Session`](crate::Session)).
    SegmentEnd,
    /// A data line (no framing).
    Data(String),
    /// An event: a JSON object, as text.
    Event(String),
    /// A log record.
    Log {
        /// Severity.
        level: LogLevel,
        /// The message.
        msg: String,
    },
}

impl fmt::Debug for Output {
    // Chunks are summarised: a test failure printing megabytes of video helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SegmentStart { seq } => f.debug_struct("SegmentStart").field("seq", seq).finish(),
            Self::SegmentChunk(bytes) => write!(f, "SegmentChunk({} bytes)", bytes.len()),
            Self::SegmentEnd => f.write_str("SegmentEnd"),
            Self::Data(line) => f.debug_tuple("Data").field(line).finish(),
            Self::Event(json) => f.debug_tuple("Event").field(json).finish(),
            Self::Log { level, msg } => f.debug_struct("Log").field("level", level).field("msg", msg).finish(),
        }
    }
}
