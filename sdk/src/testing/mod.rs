//! A test harness that runs a plugin natively in `cargo test`: no wasm, no network.
//!
//! [`Harness`] runs byte-level plugins and [`FrameHarness`] frame plugins. [`Harness`] calls a plugin's trait methods the way the host calls its exports, with a
//! [`Context`] backed by a [`TestHost`] that records everything the plugin outputs
//! (segments, data lines, events, logs, HTTP requests) and answers config, secrets, time and
//! HTTP from what the test set up. It enforces the host's rules, so a plugin that publishes
//! on an undeclared leg, outside a session or out of order fails here as it would in the host.
//!
//! ```
//! use byoc_sdk::testing::Harness;
//! use byoc_sdk::*;
//!
//! struct Echo;
//! impl Describe for Echo {
//!     fn describe() -> CapabilityInfo {
//!         CapabilityInfo::new("echo", "0.1.0", "echoes segments")
//!             .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT)
//!     }
//! }
//! impl Batch for Echo {}
//! impl Stream for Echo {
//!     type Session = EchoSession;
//!     fn open(_ctx: &Context<'_>, _params: &str) -> Result<EchoSession, Error> {
//!         Ok(EchoSession)
//!     }
//! }
//! struct EchoSession;
//! impl StreamSession for EchoSession {
//!     fn on_segment_start(&mut self, ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
//!         ctx.segment_start()?;
//!         Ok(())
//!     }
//!     fn on_chunk(&mut self, ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
//!         Ok(ctx.segment_chunk(bytes)?)
//!     }
//!     fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
//!         Ok(ctx.segment_end()?)
//!     }
//! }
//!
//! let harness = Harness::<Echo>::new().with_chunk_size(2);
//! let mut session = harness.open("{}").unwrap();
//! session.segment(7, b"hello").unwrap();
//! session.close().unwrap();
//! let out = session.outputs();
//! assert_eq!(out.segments[0].bytes, b"hello");
//! assert_eq!(out.segments[0].chunks, 3);
//! assert!(out.segments[0].complete);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use crate::{
    AccessError, Batch, CapabilityInfo, Context, Describe, Error, Host, HttpError, HttpRequest, HttpResponse, Legs,
    LogLevel, PublishError, Request, Response, Stream, StreamSession,
};

mod frames;

pub use frames::{FrameHarness, FrameHarnessSession, color_bars};

/// Default size of the chunks [`HarnessSession::segment`] splits a segment into: small enough
/// that chunks split MPEG-TS packets (as network reads do), large enough to be quick.
pub const DEFAULT_CHUNK_SIZE: usize = 4096;

/// One log record a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level.
    pub level: LogLevel,
    /// Message.
    pub message: String,
}

/// One output video segment a plugin published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSegment {
    /// Output sequence number assigned by the host (0, 1, …).
    pub seq: u64,
    /// All bytes of the segment's chunks, concatenated.
    pub bytes: Vec<u8>,
    /// How many `segment-chunk` calls made it.
    pub chunks: usize,
    /// Whether `segment-end` was called.
    pub complete: bool,
}

/// Everything a plugin output through its [`Context`], in order per kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// Output video segments.
    pub segments: Vec<OutputSegment>,
    /// Data lines.
    pub data: Vec<String>,
    /// Events, parsed (each is a JSON object).
    pub events: Vec<serde_json::Value>,
    /// Log records.
    pub logs: Vec<LogRecord>,
    /// Outbound HTTP requests, including denied ones.
    pub http_requests: Vec<HttpRequest>,
}

impl Outputs {
    /// The events whose `type` field equals `kind`.
    ///
    /// ```
    /// let out = byoc_sdk::testing::Outputs {
    ///     events: vec![serde_json::json!({"type": "a"}), serde_json::json!({"type": "b"})],
    ///     ..Default::default()
    /// };
    /// assert_eq!(out.events_of_type("b").len(), 1);
    /// ```
    pub fn events_of_type(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e.get("type").and_then(serde_json::Value::as_str) == Some(kind)).collect()
    }

    /// The data lines parsed as JSON; lines that are not JSON are skipped.
    ///
    /// ```
    /// let out = byoc_sdk::testing::Outputs { data: vec!["{}".into(), "x".into()], ..Default::default() };
    /// assert_eq!(out.data_json().len(), 1);
    /// ```
    pub fn data_json(&self) -> Vec<serde_json::Value> {
        self.data.iter().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

/// Answers a plugin's outbound HTTP requests in tests.
pub type Responder = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, HttpError>>;

/// What the operator granted and configured, and the clock: shared by a harness and all
/// of its sessions.
#[derive(Default)]
struct Env {
    config: RefCell<HashMap<String, Option<String>>>,
    secrets: RefCell<HashMap<String, Option<String>>>,
    outbound_hosts: RefCell<Vec<String>>,
    responder: RefCell<Option<Responder>>,
    clock_ns: Cell<u64>,
    max_output_bytes_per_call: Cell<Option<usize>>,
}

#[derive(Default)]
struct Recording {
    outputs: Outputs,
    tick_ms: u32,
    open_segment: bool,
    next_seq: u64,
    bytes_this_call: usize,
}

/// A [`Host`] that records output in memory and serves grants set up by the test.
///
/// [`Harness`] makes one per session (and one for batch calls); use it directly to unit-test
/// a function that takes a [`Context`]:
///
/// ```
/// use byoc_sdk::{testing::TestHost, Context, Legs};
///
/// let host = TestHost::session(Legs::DATA);
/// host.grant_config("mode", Some("fast"));
/// let ctx = Context::new(&host);
/// assert_eq!(ctx.config("mode").unwrap().as_deref(), Some("fast"));
/// ctx.publish_data("line").unwrap();
/// assert!(ctx.segment_start().is_err(), "video-out was not declared");
/// assert_eq!(host.outputs().data, ["line"]);
/// ```
pub struct TestHost {
    env: Rc<Env>,
    legs: Legs,
    in_session: bool,
    frame_session: bool,
    recording: RefCell<Recording>,
}

impl TestHost {
    /// A host for batch calls: publishing fails with [`PublishError::NotInSession`].
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// assert!(byoc_sdk::Context::new(&host).publish_data("x").is_err());
    /// ```
    pub fn batch() -> Self {
        Self::with_env(Rc::default(), Legs::NONE, false)
    }

    /// A host for a session of a capability that declared `legs`.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::session(byoc_sdk::Legs::EVENTS);
    /// assert!(byoc_sdk::Context::new(&host).publish_data("x").is_err());
    /// ```
    pub fn session(legs: Legs) -> Self {
        Self::with_env(Rc::default(), legs, true)
    }

    fn with_env(env: Rc<Env>, legs: Legs, in_session: bool) -> Self {
        Self { env, legs, in_session, frame_session: false, recording: RefCell::default() }
    }

    /// A host for a frame session of a capability that declared `legs`: as
    /// [`session`](Self::session), but video segments cannot be published (the host encodes
    /// the frames the plugin returns), as in the real host.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::frame_session(byoc_sdk::Legs::VIDEO_OUT);
    /// let err = byoc_sdk::Context::new(&host).segment_start().unwrap_err();
    /// assert_eq!(err, byoc_sdk::PublishError::Unsupported);
    /// ```
    pub fn frame_session(legs: Legs) -> Self {
        Self::for_frames(Rc::default(), legs)
    }

    fn for_frames(env: Rc<Env>, legs: Legs) -> Self {
        Self { frame_session: true, ..Self::with_env(env, legs, true) }
    }

    /// The tick interval the plugin asked for with [`Context::set_tick`], or `None` when
    /// ticks are off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let host = byoc_sdk::testing::TestHost::session(byoc_sdk::Legs::DATA);
    /// byoc_sdk::Context::new(&host).set_tick(Duration::from_millis(3));
    /// assert_eq!(host.tick_interval(), Some(Duration::from_millis(10)), "clamped like the host");
    /// ```
    pub fn tick_interval(&self) -> Option<Duration> {
        let ms = self.recording.borrow().tick_ms;
        (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
    }

    /// Grants a config key, with a value or unset.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// host.grant_config("k", None);
    /// assert_eq!(byoc_sdk::Context::new(&host).config("k"), Ok(None));
    /// ```
    pub fn grant_config(&self, key: &str, value: Option<&str>) {
        self.env.config.borrow_mut().insert(key.to_owned(), value.map(str::to_owned));
    }

    /// Grants a secret, with a value or unset.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// host.grant_secret("token", Some("s3cret"));
    /// assert!(byoc_sdk::Context::new(&host).secret("token").is_ok());
    /// ```
    pub fn grant_secret(&self, key: &str, value: Option<&str>) {
        self.env.secrets.borrow_mut().insert(key.to_owned(), value.map(str::to_owned));
    }

    /// Grants outbound HTTP to an authority (`host:port`, or `host` for the scheme's
    /// default port), as a manifest's `outbound_hosts` does.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// host.grant_outbound_host("127.0.0.1:9000");
    /// ```
    pub fn grant_outbound_host(&self, authority: &str) {
        self.env.outbound_hosts.borrow_mut().push(authority.to_ascii_lowercase());
    }

    /// Sets the closure that answers outbound HTTP requests to granted hosts.
    ///
    /// ```
    /// use byoc_sdk::{testing::TestHost, Context, HttpRequest, HttpResponse, Method};
    /// let host = TestHost::batch();
    /// host.grant_outbound_host("w:1");
    /// host.set_responder(|_req| Ok(HttpResponse::new(200, b"ok".to_vec())));
    /// let resp = Context::new(&host).http(&HttpRequest::new(Method::Get, "http://w:1/")).unwrap();
    /// assert_eq!(resp.body, b"ok");
    /// ```
    pub fn set_responder(&self, responder: impl FnMut(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static) {
        *self.env.responder.borrow_mut() = Some(Box::new(responder));
    }

    /// Caps the bytes a single plugin call may publish, like the manifest's
    /// `max_output_bytes_per_call`; [`begin_call`](Self::begin_call) resets the count.
    ///
    /// ```
    /// use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::DATA);
    /// host.set_max_output_bytes_per_call(Some(4));
    /// assert!(Context::new(&host).publish_data("12345").is_err());
    /// ```
    pub fn set_max_output_bytes_per_call(&self, limit: Option<usize>) {
        self.env.max_output_bytes_per_call.set(limit);
    }

    /// Moves the monotonic clock forward.
    ///
    /// ```
    /// use std::time::Duration;
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// host.advance(Duration::from_millis(5));
    /// assert_eq!(byoc_sdk::Context::new(&host).now(), Duration::from_millis(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.env.clock_ns.set(self.env.clock_ns.get().saturating_add(ns));
    }

    /// Marks the start of a plugin call (resets the per-call output count).
    pub fn begin_call(&self) {
        self.recording.borrow_mut().bytes_this_call = 0;
    }

    /// A copy of everything recorded so far.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// byoc_sdk::Context::new(&host).info("hi");
    /// assert_eq!(host.outputs().logs[0].message, "hi");
    /// ```
    pub fn outputs(&self) -> Outputs {
        self.recording.borrow().outputs.clone()
    }

    /// Takes everything recorded so far, leaving the record empty.
    ///
    /// ```
    /// let host = byoc_sdk::testing::TestHost::batch();
    /// byoc_sdk::Context::new(&host).info("hi");
    /// assert_eq!(host.take_outputs().logs.len(), 1);
    /// assert!(host.outputs().logs.is_empty());
    /// ```
    pub fn take_outputs(&self) -> Outputs {
        std::mem::take(&mut self.recording.borrow_mut().outputs)
    }

    fn check_leg(&self, leg: Legs) -> Result<(), PublishError> {
        if !self.in_session {
            Err(PublishError::NotInSession)
        } else if self.frame_session && leg == Legs::VIDEO_OUT {
            Err(PublishError::Unsupported)
        } else if !self.legs.contains(leg) {
            Err(PublishError::LegNotDeclared)
        } else {
            Ok(())
        }
    }

    /// Counts `len` output bytes against the per-call cap.
    fn charge(&self, recording: &mut Recording, len: usize) -> Result<(), PublishError> {
        let total = recording.bytes_this_call.saturating_add(len);
        if let Some(limit) = self.env.max_output_bytes_per_call.get()
            && total > limit
        {
            return Err(PublishError::LimitExceeded(format!("max_output_bytes_per_call = {limit}")));
        }
        recording.bytes_this_call = total;
        Ok(())
    }

    fn is_granted_host(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        self.env.outbound_hosts.borrow().contains(&authority)
    }
}

fn access(map: &RefCell<HashMap<String, Option<String>>>, key: &str) -> Result<Option<String>, AccessError> {
    map.borrow().get(key).cloned().ok_or(AccessError::NotGranted)
}

impl Host for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.recording.borrow_mut().outputs.logs.push(LogRecord { level, message: message.to_owned() });
    }

    fn config(&self, key: &str) -> Result<Option<String>, AccessError> {
        access(&self.env.config, key)
    }

    fn secret(&self, key: &str) -> Result<Option<String>, AccessError> {
        access(&self.env.secrets, key)
    }

    fn monotonic_now_ns(&self) -> u64 {
        self.env.clock_ns.get()
    }

    fn set_tick(&self, every_ms: u32) {
        // As in the host: only in a session, and at least 10 ms.
        if self.in_session {
            self.recording.borrow_mut().tick_ms = if every_ms == 0 { 0 } else { every_ms.max(10) };
        }
    }

    fn segment_start(&self) -> Result<u64, PublishError> {
        self.check_leg(Legs::VIDEO_OUT)?;
        let mut rec = self.recording.borrow_mut();
        if rec.open_segment {
            return Err(PublishError::OutOfOrder);
        }
        let seq = rec.next_seq;
        rec.next_seq = seq.saturating_add(1);
        rec.open_segment = true;
        rec.outputs.segments.push(OutputSegment { seq, bytes: Vec::new(), chunks: 0, complete: false });
        Ok(seq)
    }

    fn segment_chunk(&self, bytes: &[u8]) -> Result<(), PublishError> {
        self.check_leg(Legs::VIDEO_OUT)?;
        let mut rec = self.recording.borrow_mut();
        if !rec.open_segment {
            return Err(PublishError::OutOfOrder);
        }
        self.charge(&mut rec, bytes.len())?;
        let segment = rec.outputs.segments.last_mut().ok_or(PublishError::OutOfOrder)?;
        segment.bytes.extend_from_slice(bytes);
        segment.chunks += 1;
        Ok(())
    }

    fn segment_end(&self) -> Result<(), PublishError> {
        self.check_leg(Legs::VIDEO_OUT)?;
        let mut rec = self.recording.borrow_mut();
        if !rec.open_segment {
            return Err(PublishError::OutOfOrder);
        }
        rec.open_segment = false;
        if let Some(segment) = rec.outputs.segments.last_mut() {
            segment.complete = true;
        }
        Ok(())
    }

    fn publish_data(&self, line: &str) -> Result<(), PublishError> {
        self.check_leg(Legs::DATA)?;
        if line.contains(['\n', '\r']) {
            return Err(PublishError::Invalid("a data line must not contain a line break".to_owned()));
        }
        let mut rec = self.recording.borrow_mut();
        self.charge(&mut rec, line.len())?;
        rec.outputs.data.push(line.to_owned());
        Ok(())
    }

    fn publish_event(&self, json: &str) -> Result<(), PublishError> {
        self.check_leg(Legs::EVENTS)?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| PublishError::Invalid(format!("event is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(PublishError::Invalid("an event must be a JSON object".to_owned()));
        }
        let mut rec = self.recording.borrow_mut();
        self.charge(&mut rec, json.len())?;
        rec.outputs.events.push(value);
        Ok(())
    }

    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.recording.borrow_mut().outputs.http_requests.push(request.clone());
        let parts = request.url_parts()?;
        if !self.is_granted_host(parts.authority) {
            return Err(HttpError::Denied(format!("{} is not a granted outbound host", parts.authority)));
        }
        let mut responder = self.env.responder.borrow_mut();
        let respond = responder
            .as_mut()
            .ok_or_else(|| HttpError::Connect("the test harness has no HTTP responder".to_owned()))?;
        let response = respond(request)?;
        if response.body.len() > request.max_response_bytes {
            return Err(HttpError::TooLarge { limit: request.max_response_bytes });
        }
        Ok(response)
    }
}

/// Runs plugin `P` natively: batch calls and sessions, with grants set up by the test.
///
/// The builder methods grant what the operator would (config, secrets, outbound hosts) and
/// answer HTTP with a closure; [`process`](Self::process) and [`open`](Self::open) then call
/// the plugin like the host does. The [module docs](self) drive a session.
///
/// ```
/// use byoc_sdk::testing::Harness;
/// use byoc_sdk::*;
///
/// /// Forwards a batch body to a worker configured by the operator.
/// struct Forward;
/// impl Describe for Forward {
///     fn describe() -> CapabilityInfo { CapabilityInfo::new("forward", "0.1.0", "") }
/// }
/// impl Batch for Forward {
///     fn process(ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
///         let url = ctx.require_config("worker_url")?;
///         let token = ctx.secret("token")?.unwrap_or_default();
///         let answer = ctx.http(
///             &HttpRequest::new(Method::Post, url).header("x-token", token).body(request.body),
///         )?;
///         ctx.info(&format!("worker answered {}", answer.status));
///         Ok(Response::bytes("text/plain", answer.body))
///     }
/// }
/// impl Stream for Forward { type Session = NoSession; }
///
/// let harness = Harness::<Forward>::new()
///     .with_config("worker_url", "http://127.0.0.1:9000/run")
///     .with_secret("token", "t")
///     .with_outbound_host("127.0.0.1:9000")
///     .with_http(|req| Ok(HttpResponse::new(200, req.body.to_ascii_uppercase())));
/// let response = harness.process(Request::new("/", "text/plain", b"hi".to_vec())).unwrap();
/// assert_eq!(response.body, Body::Bytes(b"HI".to_vec()));
///
/// let recorded = harness.batch_outputs();
/// assert_eq!(recorded.http_requests[0].url, "http://127.0.0.1:9000/run");
/// assert_eq!(recorded.logs[0].message, "worker answered 200");
///
/// // Without the grant, the same call is denied, as in the host.
/// let denied = Harness::<Forward>::new()
///     .with_config("worker_url", "http://127.0.0.1:9000/run")
///     .with_http(|_| Ok(HttpResponse::new(200, vec![])));
/// assert!(matches!(denied.process(Request::new("/", "", vec![])), Err(Error::Denied(_))));
/// ```
pub struct Harness<P> {
    env: Rc<Env>,
    batch: TestHost,
    chunk_size: usize,
    _plugin: PhantomData<fn() -> P>,
}

impl<P: Describe + Batch + Stream> Default for Harness<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Describe + Batch + Stream> Harness<P> {
    /// A harness with nothing granted.
    ///
    /// ```
    /// # use byoc_sdk::*;
    /// # struct P;
    /// # impl Describe for P { fn describe() -> CapabilityInfo { CapabilityInfo::new("p", "0.1.0", "") } }
    /// # impl Batch for P {}
    /// # impl Stream for P { type Session = NoSession; }
    /// let harness = byoc_sdk::testing::Harness::<P>::new();
    /// assert!(harness.open("{}").is_err(), "P has no sessions");
    /// ```
    pub fn new() -> Self {
        let env = Rc::new(Env::default());
        Self {
            batch: TestHost::with_env(Rc::clone(&env), Legs::NONE, false),
            env,
            chunk_size: DEFAULT_CHUNK_SIZE,
            _plugin: PhantomData,
        }
    }

    /// Grants a config key and sets its value.
    pub fn with_config(self, key: &str, value: &str) -> Self {
        self.batch.grant_config(key, Some(value));
        self
    }

    /// Grants a config key the operator left unset.
    pub fn with_unset_config(self, key: &str) -> Self {
        self.batch.grant_config(key, None);
        self
    }

    /// Grants a secret and sets its value.
    pub fn with_secret(self, key: &str, value: &str) -> Self {
        self.batch.grant_secret(key, Some(value));
        self
    }

    /// Grants outbound HTTP to `authority` (`host:port`).
    pub fn with_outbound_host(self, authority: &str) -> Self {
        self.batch.grant_outbound_host(authority);
        self
    }

    /// Answers outbound HTTP requests (to granted hosts) with `responder`.
    pub fn with_http(self, responder: impl FnMut(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static) -> Self {
        self.batch.set_responder(responder);
        self
    }

    /// Sets the chunk size [`HarnessSession::segment`] uses (at least 1).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Caps output bytes per call, like the manifest's `max_output_bytes_per_call`.
    pub fn with_max_output_bytes_per_call(self, limit: usize) -> Self {
        self.batch.set_max_output_bytes_per_call(Some(limit));
        self
    }

    /// Moves the monotonic clock forward (shared by all sessions of this harness).
    pub fn advance(&self, by: Duration) {
        self.batch.advance(by);
    }

    /// Calls `describe` and checks the result the way the host does on load.
    pub fn describe(&self) -> Result<CapabilityInfo, Error> {
        let info = P::describe();
        info.validate()?;
        Ok(info)
    }

    /// Calls `process` like a batch request does.
    pub fn process(&self, request: Request) -> Result<Response, Error> {
        self.batch.begin_call();
        P::process(&Context::new(&self.batch), request)
    }

    /// What batch calls recorded (logs and HTTP requests; they cannot publish).
    pub fn batch_outputs(&self) -> Outputs {
        self.batch.outputs()
    }

    /// Opens a session like a stream start does, with `params` as JSON text.
    pub fn open(&self, params: &str) -> Result<HarnessSession<P>, Error> {
        let host = TestHost::with_env(Rc::clone(&self.env), P::describe().legs, true);
        host.begin_call();
        let session = P::open(&Context::new(&host), params)?;
        Ok(HarnessSession { session, host, chunk_size: self.chunk_size, in_segment: false, closed: false })
    }
}

/// A session opened by [`Harness::open`]: drive it with segments and control messages, then
/// read what it output.
///
/// Calls in an order the host never makes (a chunk outside a segment, anything after
/// `close`) return [`Error::Internal`] with a message starting with `harness:`.
///
/// ```
/// use byoc_sdk::testing::Harness;
/// use byoc_sdk::*;
///
/// /// Counts bytes per segment; a control message `{"label": …}` renames the counter.
/// struct Count;
/// impl Describe for Count {
///     fn describe() -> CapabilityInfo {
///         CapabilityInfo::new("count", "0.1.0", "").legs(Legs::VIDEO_IN | Legs::EVENTS)
///     }
/// }
/// impl Batch for Count {}
/// impl Stream for Count {
///     type Session = CountSession;
///     fn open(_: &Context<'_>, _: &str) -> Result<CountSession, Error> {
///         Ok(CountSession { label: "bytes".into(), n: 0 })
///     }
/// }
/// struct CountSession { label: String, n: usize }
/// impl StreamSession for CountSession {
///     fn on_segment_start(&mut self, _: &Context<'_>, _: u64) -> Result<(), Error> {
///         self.n = 0;
///         Ok(())
///     }
///     fn on_chunk(&mut self, _: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
///         self.n += bytes.len();
///         Ok(())
///     }
///     fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
///         ctx.publish_event(&serde_json::json!({"type": "count", &self.label: self.n}))
///     }
///     fn on_control(&mut self, _: &Context<'_>, message: &str) -> Result<(), Error> {
///         #[derive(serde::Deserialize)]
///         struct Update { label: String }
///         self.label = params::parse::<Update>(message)?.label;
///         Ok(())
///     }
/// }
///
/// let harness = Harness::<Count>::new();
/// let mut session = harness.open("{}").unwrap();
/// session.segment(0, &[0u8; 10]).unwrap();
/// session.control(r#"{"label": "size"}"#).unwrap();
/// session.segment_start(1).unwrap();
/// session.chunk(&[0u8; 3]).unwrap();
/// session.segment_end().unwrap();
/// session.close().unwrap();
/// assert!(session.chunk(b"late").is_err(), "closed");
///
/// let events = session.take_outputs().events;
/// assert_eq!(events[0]["bytes"], 10);
/// assert_eq!(events[1]["size"], 3);
/// assert_eq!(session.session().n, 3);
/// ```
pub struct HarnessSession<P: Stream> {
    session: P::Session,
    host: TestHost,
    chunk_size: usize,
    in_segment: bool,
    closed: bool,
}

impl<P: Stream> HarnessSession<P> {
    fn misuse(what: &str) -> Error {
        Error::internal(format!("harness: {what}"))
    }

    fn ensure_open(&self) -> Result<(), Error> {
        if self.closed { Err(Self::misuse("the session is closed")) } else { Ok(()) }
    }

    /// Delivers a whole input segment: start, chunks of the harness's chunk size, end.
    pub fn segment(&mut self, seq: u64, bytes: &[u8]) -> Result<(), Error> {
        self.segment_start(seq)?;
        for chunk in bytes.chunks(self.chunk_size) {
            self.chunk(chunk)?;
        }
        self.segment_end()
    }

    /// Calls `on_segment_start`.
    pub fn segment_start(&mut self, seq: u64) -> Result<(), Error> {
        self.ensure_open()?;
        if self.in_segment {
            return Err(Self::misuse("segment start inside a segment"));
        }
        self.in_segment = true;
        self.host.begin_call();
        self.session.on_segment_start(&Context::new(&self.host), seq)
    }

    /// Calls `on_chunk`.
    pub fn chunk(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.ensure_open()?;
        if !self.in_segment {
            return Err(Self::misuse("chunk outside a segment"));
        }
        self.host.begin_call();
        self.session.on_chunk(&Context::new(&self.host), bytes)
    }

    /// Calls `on_segment_end`.
    pub fn segment_end(&mut self) -> Result<(), Error> {
        self.ensure_open()?;
        if !self.in_segment {
            return Err(Self::misuse("segment end outside a segment"));
        }
        self.in_segment = false;
        self.host.begin_call();
        self.session.on_segment_end(&Context::new(&self.host))
    }

    /// Calls `on_control` with a JSON message.
    pub fn control(&mut self, message: &str) -> Result<(), Error> {
        self.ensure_open()?;
        self.host.begin_call();
        self.session.on_control(&Context::new(&self.host), message)
    }

    /// Calls `on_tick`, as the host does every [`tick_interval`](Self::tick_interval)
    /// (the harness ticks only when asked, whether or not the plugin asked for ticks).
    pub fn tick(&mut self) -> Result<(), Error> {
        self.ensure_open()?;
        self.host.begin_call();
        self.session.on_tick(&Context::new(&self.host))
    }

    /// The tick interval the plugin asked for, or `None` when ticks are off.
    pub fn tick_interval(&self) -> Option<Duration> {
        self.host.tick_interval()
    }

    /// Calls `close`; the session accepts no further calls.
    pub fn close(&mut self) -> Result<(), Error> {
        self.ensure_open()?;
        self.closed = true;
        self.host.begin_call();
        self.session.close(&Context::new(&self.host))
    }

    /// Moves the monotonic clock forward.
    pub fn advance(&self, by: Duration) {
        self.host.advance(by);
    }

    /// A copy of everything the session output so far.
    pub fn outputs(&self) -> Outputs {
        self.host.outputs()
    }

    /// Takes everything the session output so far.
    pub fn take_outputs(&self) -> Outputs {
        self.host.take_outputs()
    }

    /// The plugin's session value, to inspect its state.
    pub fn session(&self) -> &P::Session {
        &self.session
    }
}
