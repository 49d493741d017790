//! The per-instance store state and the host side of the plugin's imports: `host` (log,
//! config, secrets, time), `output` (segments, data, events, with per-call caps), WASI
//! (deny-all), `wasi:http` (granted hosts only) and the memory limiter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::bindings::v2::byoc::capability::{host, output};
use crate::bindings::{AccessError, PublishError, WitLogLevel};
use crate::manifest::HostPattern;
use crate::types::{Legs, LogLevel, Output};

/// A host-side reason to stop a call, raised as the call's error and recognised by
/// `instance.rs` (a guest trap is a `wasmtime::Trap` instead).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// The call's deadline passed while wasm was running (epoch check).
    #[error("call deadline exceeded")]
    Deadline,
    /// The guest tried to grow a memory past its cap.
    #[error("memory limit exceeded: growing to {desired} bytes, limit {limit}")]
    Memory { desired: usize, limit: usize },
}

/// What one plugin version grants every instance (shared, immutable).
#[derive(Clone)]
pub(crate) struct Grant {
    pub name: String,
    pub legs: Legs,
    pub config: BTreeMap<String, Option<String>>,
    pub secrets: BTreeMap<String, Option<String>>,
    pub outbound: Arc<Vec<HostPattern>>,
    pub memory_bytes: usize,
    pub max_output_bytes: u64,
}

/// Every output message counts at least this much against the per-call cap, so that a flood
/// of empty messages is bounded too.
const MIN_OUTPUT_COST: u64 = 64;

/// Output bookkeeping of one instance.
pub(crate) struct OutputState {
    /// `None` outside a session (`describe`, `process`): output imports fail.
    pub sink: Option<mpsc::Sender<Output>>,
    pub segment_open: bool,
    pub next_seq: u64,
    /// Bytes produced in the current call.
    pub used: u64,
    /// Set once the current call hit the cap; the call then fails the session.
    pub breached: bool,
}

/// The `T` of `Store<T>`.
pub(crate) struct HostState {
    pub grant: Arc<Grant>,
    wasi: WasiCtx,
    /// Host resources the guest holds handles to: WASI's, and frames.
    pub table: ResourceTable,
    http: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
    pub limiter: Limiter,
    pub out: OutputState,
    /// Deadline of the current call, checked at each epoch tick.
    pub deadline: Instant,
    born: Instant,
    /// The tick interval the session asked for with `host.set-tick`.
    pub tick: Option<Duration>,
    /// Bytes of frames the host holds for this instance, against its memory grant.
    pub frame_bytes: usize,
    /// Set for a frame session: the host encodes its video, so segment output is refused.
    pub frame_session: bool,
}

impl HostState {
    pub(crate) fn new(grant: Arc<Grant>, wasi: WasiCtx, sink: Option<mpsc::Sender<Output>>, next_seq: u64) -> Self {
        let limiter = Limiter::new(grant.memory_bytes);
        let hooks = OutboundHooks { plugin: grant.name.clone(), allowed: grant.outbound.clone() };
        Self {
            grant,
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks,
            limiter,
            out: OutputState { sink, segment_open: false, next_seq, used: 0, breached: false },
            deadline: Instant::now() + Duration::from_secs(3600),
            born: Instant::now(),
            tick: None,
            frame_bytes: 0,
            frame_session: false,
        }
    }

    /// Charges `cost` bytes of output to the current call; false (and breached) past the cap.
    fn charge(&mut self, cost: u64) -> bool {
        let cost = cost.max(MIN_OUTPUT_COST);
        let used = self.out.used.saturating_add(cost);
        if used > self.grant.max_output_bytes {
            self.out.breached = true;
            return false;
        }
        self.out.used = used;
        true
    }

    /// Checks that output is possible (in a session, on a declared leg) and charges `cost`
    /// bytes to the call's cap.
    fn admit(&mut self, leg: bool, cost: u64) -> Result<(), PublishError> {
        if self.out.sink.is_none() {
            return Err(PublishError::NotInSession);
        }
        if !leg {
            return Err(PublishError::LegNotDeclared);
        }
        if self.out.breached || !self.charge(cost) {
            return Err(PublishError::LimitExceeded(format!(
                "max_output_bytes_per_call ({} bytes)",
                self.grant.max_output_bytes
            )));
        }
        Ok(())
    }

    /// Hands one message to the session's reader, waiting while its buffer is full (the
    /// call's deadline bounds the wait).
    async fn send(&mut self, message: Output) -> Result<(), PublishError> {
        let sink = self.out.sink.as_ref().ok_or(PublishError::NotInSession)?;
        sink.send(message).await.map_err(|_| PublishError::Closed)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl From<WitLogLevel> for LogLevel {
    fn from(level: WitLogLevel) -> Self {
        match level {
            WitLogLevel::Trace => Self::Trace,
            WitLogLevel::Debug => Self::Debug,
            WitLogLevel::Info => Self::Info,
            WitLogLevel::Warn => Self::Warn,
            WitLogLevel::Error => Self::Error,
        }
    }
}

/// Longest log message kept; the rest is cut.
const MAX_LOG_CHARS: usize = 4096;

impl host::Host for HostState {
    async fn log(&mut self, level: WitLogLevel, message: String) -> wasmtime::Result<()> {
        // Logs count against the output cap, so a log flood is contained like any other.
        if self.out.breached || !self.charge(message.len() as u64) {
            return Ok(());
        }
        let msg: String = message.chars().take(MAX_LOG_CHARS).collect();
        let level = LogLevel::from(level);
        let plugin = self.grant.name.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(capability = plugin, "{msg}"),
            LogLevel::Debug => tracing::debug!(capability = plugin, "{msg}"),
            LogLevel::Info => tracing::info!(capability = plugin, "{msg}"),
            LogLevel::Warn => tracing::warn!(capability = plugin, "{msg}"),
            LogLevel::Error => tracing::error!(capability = plugin, "{msg}"),
        }
        if let Some(sink) = &self.out.sink {
            // Logs are best effort: never block the plugin on a slow log reader.
            let _ = sink.try_send(Output::Log { level, msg });
        }
        Ok(())
    }

    async fn get_config(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, AccessError>> {
        Ok(self.grant.config.get(&key).cloned().ok_or(AccessError::NotGranted))
    }

    async fn get_secret(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, AccessError>> {
        Ok(self.grant.secrets.get(&key).cloned().ok_or(AccessError::NotGranted))
    }

    async fn monotonic_now(&mut self) -> wasmtime::Result<u64> {
        Ok(u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    async fn set_tick(&mut self, every_ms: u32) -> wasmtime::Result<()> {
        if self.out.sink.is_some() {
            self.tick = (every_ms > 0).then(|| Duration::from_millis(u64::from(every_ms.max(MIN_TICK_MS))));
        }
        Ok(())
    }
}

/// Shortest tick interval a session may ask for.
const MIN_TICK_MS: u32 = 10;

impl output::Host for HostState {
    async fn segment_start(&mut self) -> wasmtime::Result<Result<u64, PublishError>> {
        if self.frame_session {
            return Ok(Err(PublishError::Unsupported));
        }
        if let Err(e) = self.admit(self.grant.legs.video_out, 0) {
            return Ok(Err(e));
        }
        if self.out.segment_open {
            return Ok(Err(PublishError::OutOfOrder));
        }
        let seq = self.out.next_seq;
        let result = self.send(Output::SegmentStart { seq }).await;
        if result.is_ok() {
            self.out.segment_open = true;
            self.out.next_seq = seq.saturating_add(1);
        }
        Ok(result.map(|()| seq))
    }

    async fn segment_chunk(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Result<(), PublishError>> {
        if self.frame_session {
            return Ok(Err(PublishError::Unsupported));
        }
        if let Err(e) = self.admit(self.grant.legs.video_out, bytes.len() as u64) {
            return Ok(Err(e));
        }
        if !self.out.segment_open {
            return Ok(Err(PublishError::OutOfOrder));
        }
        Ok(self.send(Output::SegmentChunk(Bytes::from(bytes))).await)
    }

    async fn segment_end(&mut self) -> wasmtime::Result<Result<(), PublishError>> {
        if self.frame_session {
            return Ok(Err(PublishError::Unsupported));
        }
        if let Err(e) = self.admit(self.grant.legs.video_out, 0) {
            return Ok(Err(e));
        }
        if !self.out.segment_open {
            return Ok(Err(PublishError::OutOfOrder));
        }
        let result = self.send(Output::SegmentEnd).await;
        if result.is_ok() {
            self.out.segment_open = false;
        }
        Ok(result)
    }

    async fn publish_data(&mut self, line: String) -> wasmtime::Result<Result<(), PublishError>> {
        if let Err(e) = self.admit(self.grant.legs.data, line.len() as u64) {
            return Ok(Err(e));
        }
        if line.contains(['\n', '\r']) {
            return Ok(Err(PublishError::Invalid("a data line must not contain a line break".into())));
        }
        Ok(self.send(Output::Data(line)).await)
    }

    async fn publish_event(&mut self, json: String) -> wasmtime::Result<Result<(), PublishError>> {
        // Charged before parsing, so a flood of huge payloads costs no parsing past the cap.
        if let Err(e) = self.admit(self.grant.legs.events, json.len() as u64) {
            return Ok(Err(e));
        }
        if !matches!(serde_json::from_str::<serde_json::Value>(&json), Ok(serde_json::Value::Object(_))) {
            return Ok(Err(PublishError::Invalid("an event must be a JSON object".into())));
        }
        Ok(self.send(Output::Event(json)).await)
    }
}

/// Enforces the memory cap through wasmtime's [`StoreLimits`] (which also bounds tables and
/// instances) and turns a refused growth into a typed [`Fault::Memory`] trap, rather than the
/// guest allocator's `unreachable`.
pub(crate) struct Limiter {
    limits: StoreLimits,
    max_memory: usize,
    /// Set when a growth was refused.
    pub hit: bool,
}

impl Limiter {
    fn new(max_memory: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(max_memory)
            .table_elements(1_000_000)
            .instances(64)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        Self { limits, max_memory, hit: false }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.hit = true;
            return Err(wasmtime::Error::new(Fault::Memory { desired, limit: self.max_memory }));
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// `wasi:http` hooks: requests go out only to granted authorities; everything else fails
/// with `HTTP-request-denied` before any connection is made.
pub(crate) struct OutboundHooks {
    plugin: String,
    allowed: Arc<Vec<HostPattern>>,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl OutboundHooks {
    pub(crate) fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let scheme = uri.scheme_str().unwrap_or("https");
        let default_port = if scheme.eq_ignore_ascii_case("http") { 80 } else { 443 };
        let port = uri.port_u16().unwrap_or(default_port);
        // `http::Uri` keeps the brackets of an IPv6 literal; patterns are written without.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allowed.iter().any(|p| p.matches(scheme, host, port))
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        _ = fut;
        if !self.allows(request.uri()) {
            tracing::warn!(capability = %self.plugin, uri = %request.uri(), "outbound request denied: host not granted");
            // Consume (and discard) the body first: a guest writes it after `handle`, and a
            // closed body stream would surface as a write error, hiding the denial.
            return Box::new(async move {
                use http_body_util::BodyExt;
                let mut body = request.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                Err(wasmtime_wasi_http::Error::HttpRequestDenied)
            });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
