//! The plugin's view of its host: the [`Host`] trait abstracts the WIT imports, and
//! [`Context`] is the handle every plugin method receives.
//!
//! Plugin code never calls imports directly. In a wasm build the SDK passes a `Context`
//! backed by the real imports; in `cargo test` the [harness](crate::testing) passes one
//! backed by an in-memory recorder. The same plugin code runs against both.

use std::time::Duration;

use serde::Serialize;

use crate::{AccessError, Error, HttpError, HttpRequest, HttpResponse, LogLevel, PublishError};

/// The host services available to a plugin: one method per WIT import.
///
/// Implemented by the SDK for wasm (the `byoc:capability` imports and `wasi:http`) and by the
/// test harness. Implement it yourself only for a custom fake. Methods take `&self`: a host
/// is shared, and implementations use interior mutability where they record state.
pub trait Host {
    /// `host.log`.
    fn log(&self, level: LogLevel, message: &str);
    /// `host.get-config`.
    fn config(&self, key: &str) -> Result<Option<String>, AccessError>;
    /// `host.get-secret`.
    fn secret(&self, key: &str) -> Result<Option<String>, AccessError>;
    /// `host.monotonic-now`, in nanoseconds.
    fn monotonic_now_ns(&self) -> u64;
    /// `output.segment-start`; returns the output sequence number.
    fn segment_start(&self) -> Result<u64, PublishError>;
    /// `output.segment-chunk`.
    fn segment_chunk(&self, bytes: &[u8]) -> Result<(), PublishError>;
    /// `output.segment-end`.
    fn segment_end(&self) -> Result<(), PublishError>;
    /// `output.publish-data`.
    fn publish_data(&self, line: &str) -> Result<(), PublishError>;
    /// `output.publish-event`; `json` is a JSON object.
    fn publish_event(&self, json: &str) -> Result<(), PublishError>;
    /// `host.set-tick`: asks for `on-tick` every `every_ms` milliseconds; 0 stops them.
    /// The default does nothing (a host without timers).
    fn set_tick(&self, every_ms: u32) {
        let _ = every_ms;
    }
    /// Outbound HTTP, run to completion. Used by [`Context::http`] in native builds; in
    /// wasm builds `Context::http` calls `wasi:http` directly (see there), so the default,
    /// which refuses every request, is only seen by a custom host without HTTP.
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect(format!("this host has no HTTP client (request to {})", request.url)))
    }
}

/// The handle a plugin method receives to reach its host: logging, config and secrets,
/// time, publishing output and outbound HTTP.
///
/// ```
/// use byoc_sdk::{Context, Error};
///
/// // Plugin code takes a `&Context` and works the same natively and in wasm.
/// fn greet(ctx: &Context<'_>) -> Result<(), Error> {
///     let name = ctx.config("greeting_name")?.unwrap_or_else(|| "world".to_owned());
///     ctx.info(&format!("hello, {name}"));
///     ctx.publish_event(&serde_json::json!({"type": "greeted", "name": name}))?;
///     Ok(())
/// }
/// # let _ = greet;
/// ```
#[derive(Clone, Copy)]
pub struct Context<'a> {
    host: &'a dyn Host,
}

impl<'a> Context<'a> {
    /// A context over any [`Host`] implementation.
    ///
    /// ```
    /// # fn f(host: &dyn byoc_sdk::Host) {
    /// let ctx = byoc_sdk::Context::new(host);
    /// # let _ = ctx; }
    /// ```
    pub fn new(host: &'a dyn Host) -> Self {
        Self { host }
    }

    /// The underlying host.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// let ctx = Context::new(&host);
    /// ctx.host().log(byoc_sdk::LogLevel::Info, "direct");
    /// assert_eq!(host.outputs().logs.len(), 1);
    /// ```
    pub fn host(&self) -> &'a dyn Host {
        self.host
    }

    /// Writes a log record.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// Context::new(&host).log(byoc_sdk::LogLevel::Trace, "details");
    /// assert_eq!(host.outputs().logs[0].level, byoc_sdk::LogLevel::Trace);
    /// ```
    pub fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, message);
    }

    /// Logs at [`LogLevel::Debug`].
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// Context::new(&host).debug("x");
    /// assert_eq!(host.outputs().logs[0].level, byoc_sdk::LogLevel::Debug);
    /// ```
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message);
    }

    /// Logs at [`LogLevel::Info`].
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// Context::new(&host).info("x");
    /// assert_eq!(host.outputs().logs[0].level, byoc_sdk::LogLevel::Info);
    /// ```
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at [`LogLevel::Warn`].
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// Context::new(&host).warn("x");
    /// assert_eq!(host.outputs().logs[0].level, byoc_sdk::LogLevel::Warn);
    /// ```
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message);
    }

    /// Logs at [`LogLevel::Error`].
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// Context::new(&host).error("x");
    /// assert_eq!(host.outputs().logs[0].level, byoc_sdk::LogLevel::Error);
    /// ```
    pub fn error(&self, message: &str) {
        self.log(LogLevel::Error, message);
    }

    /// A granted config value; `Ok(None)` if granted but unset.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// use byoc_sdk::AccessError;
    /// let host = TestHost::batch();
    /// host.grant_config("model", Some("small"));
    /// let ctx = Context::new(&host);
    /// assert_eq!(ctx.config("model"), Ok(Some("small".to_owned())));
    /// assert_eq!(ctx.config("other"), Err(AccessError::NotGranted));
    /// ```
    pub fn config(&self, key: &str) -> Result<Option<String>, AccessError> {
        self.host.config(key)
    }

    /// A config value that must be set: unset is [`Error::InvalidParams`] (the operator must
    /// configure it), not granted is [`Error::Denied`].
    ///
    /// ```
    /// # use byoc_sdk::{Context, Error};
    /// fn base_url(ctx: &Context<'_>) -> Result<String, Error> {
    ///     ctx.require_config("worker_url")
    /// }
    /// # let _ = base_url;
    /// ```
    pub fn require_config(&self, key: &str) -> Result<String, Error> {
        match self.host.config(key) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(Error::invalid_params(format!("config key `{key}` is not set by the operator"))),
            Err(AccessError::NotGranted) => {
                Err(Error::denied(format!("config key `{key}` is not granted to this plugin")))
            }
        }
    }

    /// A granted secret; `Ok(None)` if granted but unset. Never log or publish it.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// host.grant_secret("token", None);
    /// assert_eq!(Context::new(&host).secret("token"), Ok(None));
    /// ```
    pub fn secret(&self, key: &str) -> Result<Option<String>, AccessError> {
        self.host.secret(key)
    }

    /// Monotonic time since an arbitrary point fixed for the instance.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::batch();
    /// let ctx = Context::new(&host);
    /// let start = ctx.now();
    /// host.advance(std::time::Duration::from_millis(3));
    /// assert_eq!(ctx.now() - start, std::time::Duration::from_millis(3));
    /// ```
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.host.monotonic_now_ns())
    }

    /// Asks for the session's `on_tick` ([`StreamSession::on_tick`](crate::StreamSession::on_tick),
    /// [`FrameProcessor::on_tick`](crate::frames::FrameProcessor::on_tick)) every `every`,
    /// with or without input flowing; [`Duration::ZERO`] stops the ticks. The host clamps
    /// the interval to at least 10 ms (whole milliseconds; a longer one is capped at
    /// `u32::MAX` ms). Ticks missed while the plugin was busy are not made up.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// use std::time::Duration;
    /// let host = TestHost::session(Legs::DATA);
    /// Context::new(&host).set_tick(Duration::from_secs(1));
    /// assert_eq!(host.tick_interval(), Some(Duration::from_secs(1)));
    /// Context::new(&host).set_tick(Duration::ZERO);
    /// assert_eq!(host.tick_interval(), None);
    /// ```
    pub fn set_tick(&self, every: Duration) {
        let ms = u32::try_from(every.as_millis()).unwrap_or(u32::MAX);
        // A non-zero interval below a millisecond must not turn into "stop".
        let ms = if ms == 0 && !every.is_zero() { 1 } else { ms };
        self.host.set_tick(ms);
    }

    /// Starts an output segment and returns its output sequence number.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::VIDEO_OUT);
    /// let ctx = Context::new(&host);
    /// assert_eq!(ctx.segment_start(), Ok(0));
    /// assert!(ctx.segment_start().is_err(), "the first one is still open");
    /// ```
    pub fn segment_start(&self) -> Result<u64, PublishError> {
        self.host.segment_start()
    }

    /// Appends bytes to the open output segment.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::VIDEO_OUT);
    /// let ctx = Context::new(&host);
    /// assert!(ctx.segment_chunk(b"x").is_err(), "no segment started");
    /// ctx.segment_start().unwrap();
    /// ctx.segment_chunk(b"x").unwrap();
    /// assert_eq!(host.outputs().segments[0].bytes, b"x");
    /// ```
    pub fn segment_chunk(&self, bytes: &[u8]) -> Result<(), PublishError> {
        self.host.segment_chunk(bytes)
    }

    /// Completes the open output segment.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::VIDEO_OUT);
    /// let ctx = Context::new(&host);
    /// ctx.segment_start().unwrap();
    /// ctx.segment_end().unwrap();
    /// assert!(host.outputs().segments[0].complete);
    /// ```
    pub fn segment_end(&self) -> Result<(), PublishError> {
        self.host.segment_end()
    }

    /// Publishes a whole output segment at once (start, one chunk, end) and returns its
    /// output sequence number.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::VIDEO_OUT);
    /// let ctx = Context::new(&host);
    /// assert_eq!(ctx.publish_segment(b"ts"), Ok(0));
    /// assert_eq!(ctx.publish_segment(b"ts"), Ok(1));
    /// ```
    pub fn publish_segment(&self, bytes: &[u8]) -> Result<u64, PublishError> {
        let seq = self.host.segment_start()?;
        self.host.segment_chunk(bytes)?;
        self.host.segment_end()?;
        Ok(seq)
    }

    /// Publishes one data line (no `\n` or `\r`).
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::DATA);
    /// let ctx = Context::new(&host);
    /// ctx.publish_data("ok").unwrap();
    /// assert!(ctx.publish_data("two\nlines").is_err());
    /// ```
    pub fn publish_data(&self, line: &str) -> Result<(), PublishError> {
        self.host.publish_data(line)
    }

    /// Publishes `value` serialized as a single JSON line on the data leg.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::DATA);
    /// Context::new(&host).publish_data_json(&serde_json::json!({"n": 1})).unwrap();
    /// assert_eq!(host.outputs().data, [r#"{"n":1}"#]);
    /// ```
    pub fn publish_data_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let line =
            serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot serialize data line: {e}")))?;
        Ok(self.host.publish_data(&line)?)
    }

    /// Publishes an event; `value` must serialize to a JSON object, conventionally with a
    /// string field `type`.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// let host = TestHost::session(Legs::EVENTS);
    /// let ctx = Context::new(&host);
    /// ctx.publish_event(&serde_json::json!({"type": "ready"})).unwrap();
    /// assert!(ctx.publish_event(&[1, 2]).is_err(), "not an object");
    /// ```
    pub fn publish_event<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let json = serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot serialize event: {e}")))?;
        Ok(self.host.publish_event(&json)?)
    }

    /// Sends an outbound HTTP request and waits for the whole response.
    ///
    /// In wasm builds this calls `wasi:http/outgoing-handler` directly rather than through
    /// [`Host::http`]: a call through the host's vtable would link `wasi:http` into every
    /// plugin, while a direct call links it only into plugins that send requests, so a
    /// component's imports show whether it can reach the network at all.
    ///
    /// ```
    /// # use byoc_sdk::{testing::TestHost, Context, Legs};
    /// use byoc_sdk::{HttpError, HttpRequest, Method};
    /// let host = TestHost::batch();
    /// let ctx = Context::new(&host);
    /// let denied = ctx.http(&HttpRequest::new(Method::Get, "http://not-granted:80/"));
    /// assert!(matches!(denied, Err(HttpError::Denied(_))));
    /// ```
    pub fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::wasm::send_http(request)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.host.http(request)
        }
    }
}
