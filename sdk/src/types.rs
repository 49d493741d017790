//! Plain data of the contract: what a capability is ([`CapabilityInfo`]), batch requests and
//! responses, log levels. Each type mirrors one WIT type of `byoc:capability/types`.

use std::fmt;

use serde::Serialize;

use crate::Error;
use crate::frames::FrameNeeds;

/// Severity of a log record (`log-level` in the WIT).
///
/// ```
/// use byoc_sdk::LogLevel;
/// assert!(LogLevel::Warn > LogLevel::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// The stream legs a capability uses (`legs` flags in the WIT).
///
/// ```
/// use byoc_sdk::Legs;
/// let legs = Legs::VIDEO_IN | Legs::EVENTS;
/// assert!(legs.contains(Legs::EVENTS));
/// assert!(!legs.contains(Legs::VIDEO_OUT));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Legs(u8);

impl Legs {
    /// No leg: a batch-only capability.
    pub const NONE: Self = Self(0);
    /// Consumes input video segments.
    pub const VIDEO_IN: Self = Self(1);
    /// Publishes video segments.
    pub const VIDEO_OUT: Self = Self(1 << 1);
    /// Publishes data lines.
    pub const DATA: Self = Self(1 << 2);
    /// Publishes JSON events.
    pub const EVENTS: Self = Self(1 << 3);

    const NAMES: [(Self, &'static str); 4] =
        [(Self::VIDEO_IN, "video-in"), (Self::VIDEO_OUT, "video-out"), (Self::DATA, "data"), (Self::EVENTS, "events")];

    /// Whether every leg of `other` is in `self`.
    ///
    /// ```
    /// use byoc_sdk::Legs;
    /// assert!((Legs::DATA | Legs::EVENTS).contains(Legs::DATA));
    /// ```
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no leg is set.
    ///
    /// ```
    /// assert!(byoc_sdk::Legs::NONE.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the legs set, as written in the WIT (`video-in`, …).
    ///
    /// ```
    /// use byoc_sdk::Legs;
    /// assert_eq!((Legs::VIDEO_IN | Legs::DATA).names(), vec!["video-in", "data"]);
    /// ```
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(leg, _)| self.contains(*leg)).map(|(_, name)| *name).collect()
    }
}

impl std::ops::BitOr for Legs {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Legs {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Legs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A price in wei per second of compute, as the rational `per_unit / scaling` (`price` in
/// the WIT); the same two numbers as go-livepeer's `price_per_unit` and `price_scaling`.
///
/// ```
/// use byoc_sdk::Price;
/// assert_eq!(Price::wei_per_second(1_000), Price { per_unit: 1_000, scaling: 1 });
/// assert_eq!(Price::FREE.per_unit, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Price {
    /// Numerator, in wei.
    pub per_unit: u64,
    /// Denominator, in seconds; 0 is read as 1.
    pub scaling: u64,
}

impl Price {
    /// No charge.
    pub const FREE: Self = Self { per_unit: 0, scaling: 1 };

    /// A whole number of wei per second.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Price::wei_per_second(7).scaling, 1);
    /// ```
    pub const fn wei_per_second(wei: u64) -> Self {
        Self { per_unit: wei, scaling: 1 }
    }
}

/// What a capability is (`capability-info` in the WIT), returned by
/// [`Describe::describe`](crate::Describe::describe).
///
/// ```
/// use byoc_sdk::{CapabilityInfo, Legs, Price};
///
/// let info = CapabilityInfo::new("echo", "0.1.0", "Echoes video")
///     .price(Price::wei_per_second(100))
///     .capacity(8)
///     .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT)
///     .params_schema(r#"{"type":"object"}"#);
/// assert_eq!(info.capacity, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityInfo {
    /// Capability name as advertised (lowercase ASCII, digits, `-`).
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Default price per second.
    pub price: Price,
    /// Concurrency hint; 0 means none.
    pub capacity: u32,
    /// Stream legs used.
    pub legs: Legs,
    /// JSON Schema of the params object, if the capability takes params.
    pub params_schema: Option<String>,
    /// `Some` for a frame plugin: the frames it wants decoded (see [`crate::frames`]).
    pub frames: Option<FrameNeeds>,
}

impl CapabilityInfo {
    /// A free, batch-only capability with no params; refine it with the builder methods.
    ///
    /// ```
    /// let info = byoc_sdk::CapabilityInfo::new("x", "0.1.0", "does x");
    /// assert!(info.legs.is_empty());
    /// ```
    pub fn new(name: impl Into<String>, version: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            price: Price::FREE,
            capacity: 0,
            legs: Legs::NONE,
            params_schema: None,
            frames: None,
        }
    }

    /// Sets the default price.
    ///
    /// ```
    /// use byoc_sdk::{CapabilityInfo, Price};
    /// let info = CapabilityInfo::new("x", "0.1.0", "").price(Price::wei_per_second(3));
    /// assert_eq!(info.price.per_unit, 3);
    /// ```
    pub fn price(mut self, price: Price) -> Self {
        self.price = price;
        self
    }

    /// Sets the concurrency hint.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::CapabilityInfo::new("x", "0.1.0", "").capacity(4).capacity, 4);
    /// ```
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the stream legs.
    ///
    /// ```
    /// use byoc_sdk::{CapabilityInfo, Legs};
    /// let info = CapabilityInfo::new("x", "0.1.0", "").legs(Legs::DATA);
    /// assert_eq!(info.legs, Legs::DATA);
    /// ```
    pub fn legs(mut self, legs: Legs) -> Self {
        self.legs = legs;
        self
    }

    /// Sets the params JSON Schema (JSON text).
    ///
    /// ```
    /// let info = byoc_sdk::CapabilityInfo::new("x", "0.1.0", "").params_schema("{}");
    /// assert_eq!(info.params_schema.as_deref(), Some("{}"));
    /// ```
    pub fn params_schema(mut self, schema: impl Into<String>) -> Self {
        self.params_schema = Some(schema.into());
        self
    }

    /// Makes this a frame plugin: the host decodes the stream into the frames described and
    /// calls the [`FrameProcessor`](crate::frames::FrameProcessor) (export it with
    /// `export!(frames …)`). A frame plugin declares the `video-in` and `video-out` legs.
    ///
    /// ```
    /// use byoc_sdk::frames::{FrameNeeds, PixelFormat, VideoNeeds};
    /// use byoc_sdk::{CapabilityInfo, Legs};
    /// let info = CapabilityInfo::new("fx", "0.1.0", "")
    ///     .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT)
    ///     .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420).max_size(1920, 1080)));
    /// assert!(info.validate().is_ok());
    /// ```
    pub fn frames(mut self, needs: FrameNeeds) -> Self {
        self.frames = Some(needs);
        self
    }

    /// Checks what the host checks when it loads a plugin: a name of lowercase ASCII
    /// letters, digits and `-`; a non-empty version; a params schema that is a JSON object;
    /// for a frame plugin, the `video-in` and `video-out` legs.
    ///
    /// ```
    /// use byoc_sdk::frames::FrameNeeds;
    /// use byoc_sdk::CapabilityInfo;
    /// assert!(CapabilityInfo::new("ts-analyzer", "0.1.0", "").validate().is_ok());
    /// assert!(CapabilityInfo::new("TS Analyzer", "0.1.0", "").validate().is_err());
    /// assert!(CapabilityInfo::new("x", "0.1.0", "").params_schema("[").validate().is_err());
    /// assert!(CapabilityInfo::new("x", "0.1.0", "").frames(FrameNeeds::default()).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let name_ok = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(Error::internal(format!(
                "capability name {:?} must be lowercase ASCII letters, digits and '-'",
                self.name
            )));
        }
        if self.version.trim().is_empty() {
            return Err(Error::internal("capability version is empty"));
        }
        if self.frames.is_some() && !self.legs.contains(Legs::VIDEO_IN | Legs::VIDEO_OUT) {
            return Err(Error::internal("a frame plugin must declare the video-in and video-out legs"));
        }
        if let Some(schema) = &self.params_schema {
            let value: serde_json::Value =
                serde_json::from_str(schema).map_err(|e| Error::internal(format!("params schema is not JSON: {e}")))?;
            if !value.is_object() {
                return Err(Error::internal("params schema must be a JSON object"));
            }
        }
        Ok(())
    }
}

/// One HTTP header field.
///
/// ```
/// let h = byoc_sdk::Header::new("content-type", "text/plain");
/// assert_eq!(h.name, "content-type");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name.
    pub name: String,
    /// Field value.
    pub value: String,
}

impl Header {
    /// A header from a name and a value.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Header::new("a", "b").value, "b");
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}

/// The first value of header `name` (case-insensitive) in `headers`.
pub(crate) fn find_header<'h>(headers: &'h [Header], name: &str) -> Option<&'h str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// A batch request (`request` in the WIT).
///
/// ```
/// use byoc_sdk::Request;
///
/// let req = Request::new("/upper", "application/json", br#"{"text":"hi"}"#.to_vec())
///     .with_header("accept", "text/event-stream");
/// assert_eq!(req.header("Accept"), Some("text/event-stream"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Path below `/process/request`, with a leading `/` and any query string.
    pub path: String,
    /// Content type, or empty.
    pub content_type: String,
    /// Other headers.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no extra headers.
    ///
    /// ```
    /// let req = byoc_sdk::Request::new("/", "text/plain", b"hello".to_vec());
    /// assert_eq!(req.body, b"hello");
    /// ```
    pub fn new(path: impl Into<String>, content_type: impl Into<String>, body: Vec<u8>) -> Self {
        Self { path: path.into(), content_type: content_type.into(), headers: Vec::new(), body }
    }

    /// Adds a header.
    ///
    /// ```
    /// let req = byoc_sdk::Request::new("/", "", vec![]).with_header("x-a", "1");
    /// assert_eq!(req.headers.len(), 1);
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// The first value of a header, compared case-insensitively.
    ///
    /// ```
    /// let req = byoc_sdk::Request::new("/", "", vec![]).with_header("X-Id", "7");
    /// assert_eq!(req.header("x-id"), Some("7"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path without its query string.
    ///
    /// ```
    /// let req = byoc_sdk::Request::new("/upper?x=1", "", vec![]);
    /// assert_eq!(req.route(), "/upper");
    /// ```
    pub fn route(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    /// The route below the capability's own name: a first segment equal to `name` is dropped, so
    /// `/{name}` (what the Livepeer Python SDK posts to) is the default route `/`, and
    /// `/{name}/upper` is `/upper`, the same as `/upper`. Without the query string.
    ///
    /// ```
    /// let route = |path: &str| byoc_sdk::Request::new(path, "", vec![]).route_below("text-transform").to_owned();
    /// assert_eq!(route("/text-transform"), "/");
    /// assert_eq!(route("/text-transform?x=1"), "/");
    /// assert_eq!(route("/text-transform/upper"), "/upper");
    /// assert_eq!(route("/upper"), "/upper");
    /// assert_eq!(route("/text-transformer"), "/text-transformer");
    /// ```
    pub fn route_below(&self, name: &str) -> &str {
        let route = self.route();
        match route.trim_start_matches('/').strip_prefix(name) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => route,
        }
    }

    /// The body as UTF-8 text, or [`Error::InvalidInput`].
    ///
    /// ```
    /// let req = byoc_sdk::Request::new("/", "", vec![0xff]);
    /// assert!(req.text().is_err());
    /// ```
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|e| Error::invalid_input(format!("body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`, or [`Error::InvalidInput`].
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Body { text: String }
    /// let req = byoc_sdk::Request::new("/", "application/json", br#"{"text":"hi"}"#.to_vec());
    /// assert_eq!(req.json::<Body>().unwrap().text, "hi");
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::invalid_input(format!("body is not valid JSON: {e}")))
    }
}

/// One server-sent event (`sse-event` in the WIT).
///
/// ```
/// let ev = byoc_sdk::SseEvent::data("hello").with_event("greeting");
/// assert_eq!(ev.event.as_deref(), Some("greeting"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Event type; `None` for the default `message`.
    pub event: Option<String>,
    /// Event id.
    pub id: Option<String>,
    /// Payload; may contain newlines.
    pub data: String,
}

impl SseEvent {
    /// An event with only a payload.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::SseEvent::data("x").data, "x");
    /// ```
    pub fn data(data: impl Into<String>) -> Self {
        Self { event: None, id: None, data: data.into() }
    }

    /// An event whose payload is `value` as JSON.
    ///
    /// ```
    /// let ev = byoc_sdk::SseEvent::json(&serde_json::json!({"n": 1})).unwrap();
    /// assert_eq!(ev.data, r#"{"n":1}"#);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_string(value)
            .map(Self::data)
            .map_err(|e| Error::internal(format!("cannot serialize event: {e}")))
    }

    /// Sets the event type.
    ///
    /// ```
    /// assert!(byoc_sdk::SseEvent::data("").with_event("done").event.is_some());
    /// ```
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the event id.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::SseEvent::data("").with_id("3").id.as_deref(), Some("3"));
    /// ```
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// The body of a batch response (`response-body` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A complete body.
    Bytes(Vec<u8>),
    /// Server-sent events, sent as `text/event-stream`.
    Events(Vec<SseEvent>),
}

/// A batch response (`response` in the WIT).
///
/// ```
/// use byoc_sdk::{Body, Response};
///
/// let resp = Response::json(&serde_json::json!({"ok": true})).unwrap();
/// assert_eq!(resp.status, 200);
/// assert_eq!(resp.content_type, "application/json");
/// assert_eq!(resp.body, Body::Bytes(br#"{"ok":true}"#.to_vec()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Content type (ignored for [`Body::Events`]).
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A 200 response with a byte body.
    ///
    /// ```
    /// let resp = byoc_sdk::Response::bytes("video/mp2t", vec![0x47]);
    /// assert_eq!(resp.status, 200);
    /// ```
    pub fn bytes(content_type: impl Into<String>, body: Vec<u8>) -> Self {
        Self { status: 200, content_type: content_type.into(), headers: Vec::new(), body: Body::Bytes(body) }
    }

    /// A 200 `text/plain; charset=utf-8` response.
    ///
    /// ```
    /// let resp = byoc_sdk::Response::text("hi");
    /// assert_eq!(resp.content_type, "text/plain; charset=utf-8");
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Self::bytes("text/plain; charset=utf-8", text.into().into_bytes())
    }

    /// A 200 `application/json` response with `value` serialized.
    ///
    /// ```
    /// assert!(byoc_sdk::Response::json(&[1, 2, 3]).is_ok());
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_vec(value)
            .map(|body| Self::bytes("application/json", body))
            .map_err(|e| Error::internal(format!("cannot serialize response: {e}")))
    }

    /// A 200 `text/event-stream` response made of `events`.
    ///
    /// ```
    /// use byoc_sdk::{Response, SseEvent};
    /// let resp = Response::events(vec![SseEvent::data("a"), SseEvent::data("[DONE]")]);
    /// assert_eq!(resp.content_type, "text/event-stream");
    /// ```
    pub fn events(events: Vec<SseEvent>) -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream".to_owned(),
            headers: Vec::new(),
            body: Body::Events(events),
        }
    }

    /// Sets the status.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Response::text("").with_status(201).status, 201);
    /// ```
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// let resp = byoc_sdk::Response::text("").with_header("x-took-ms", "3");
    /// assert_eq!(resp.header("X-Took-Ms"), Some("3"));
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// The first value of a header, compared case-insensitively.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Response::text("").header("x"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_debug_lists_wit_names() {
        assert_eq!(format!("{:?}", Legs::VIDEO_OUT | Legs::EVENTS), r#"{"video-out", "events"}"#);
    }

    #[test]
    fn request_route_strips_the_query_only() {
        assert_eq!(Request::new("/a/b?c=d?e", "", vec![]).route(), "/a/b");
        assert_eq!(Request::new("", "", vec![]).route(), "");
    }

    #[test]
    fn request_json_reports_bad_bodies_as_invalid_input() {
        let req = Request::new("/", "application/json", b"{nope".to_vec());
        assert!(matches!(req.json::<serde_json::Value>(), Err(Error::InvalidInput(_))));
    }
}
