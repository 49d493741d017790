//! The component glue, compiled only for wasm: the `wit-bindgen` bindings of the
//! `capability-adapter` world, a [`Host`] over its imports, and the generic export
//! adapters that [`export!`](crate::export) instantiates for a plugin type.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{
    AccessError, Batch, Body, CapabilityInfo, Context, Describe, Error, Header, Host, HttpError, HttpRequest,
    HttpResponse, Legs, LogLevel, PublishError, Request, Response, SseEvent, Stream, StreamSession,
};

pub(crate) mod frames;
mod http;

pub use frames::{FrameAdapter, RefusedFrameSession};

/// Generated bindings. Paths are spelled through `byoc_sdk::__private` so that the export
/// macro, expanded in the plugin's crate, needs no direct dependency on `wit-bindgen`.
#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "capability-adapter",
        path: "../wit",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_capability_adapter",
        default_bindings_module: "byoc_sdk::__private::bindings",
        runtime_path: "byoc_sdk::__private::wit_bindgen::rt",
        bitflags_path: "byoc_sdk::__private::wit_bindgen::rt::bitflags",
    });
}

use bindings::byoc::capability::{host as wit_host, output as wit_output, types as wit};
use bindings::exports::byoc::capability::adapter::{Guest, GuestSession, Session};

/// The real host: each method is one import call. HTTP is not here; see [`send_http`].
pub(crate) struct WitHost;

impl Host for WitHost {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => wit::LogLevel::Trace,
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Error => wit::LogLevel::Error,
        };
        wit_host::log(level, message);
    }

    fn config(&self, key: &str) -> Result<Option<String>, AccessError> {
        wit_host::get_config(key).map_err(access_error)
    }

    fn secret(&self, key: &str) -> Result<Option<String>, AccessError> {
        wit_host::get_secret(key).map_err(access_error)
    }

    fn monotonic_now_ns(&self) -> u64 {
        wit_host::monotonic_now()
    }

    fn set_tick(&self, every_ms: u32) {
        wit_host::set_tick(every_ms);
    }

    fn segment_start(&self) -> Result<u64, PublishError> {
        wit_output::segment_start().map_err(publish_error)
    }

    fn segment_chunk(&self, bytes: &[u8]) -> Result<(), PublishError> {
        wit_output::segment_chunk(bytes).map_err(publish_error)
    }

    fn segment_end(&self) -> Result<(), PublishError> {
        wit_output::segment_end().map_err(publish_error)
    }

    fn publish_data(&self, line: &str) -> Result<(), PublishError> {
        wit_output::publish_data(line).map_err(publish_error)
    }

    fn publish_event(&self, json: &str) -> Result<(), PublishError> {
        wit_output::publish_event(json).map_err(publish_error)
    }
}

/// Outbound HTTP through `wasi:http`, called by [`Context::http`] directly (not through
/// [`Host`]) so that only plugins that send requests import `wasi:http`.
pub(crate) fn send_http(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    http::send(request)
}

fn access_error(e: wit::AccessError) -> AccessError {
    match e {
        wit::AccessError::NotGranted => AccessError::NotGranted,
    }
}

fn publish_error(e: wit::PublishError) -> PublishError {
    match e {
        wit::PublishError::NotInSession => PublishError::NotInSession,
        wit::PublishError::LegNotDeclared => PublishError::LegNotDeclared,
        wit::PublishError::OutOfOrder => PublishError::OutOfOrder,
        wit::PublishError::Invalid(m) => PublishError::Invalid(m),
        wit::PublishError::LimitExceeded(m) => PublishError::LimitExceeded(m),
        wit::PublishError::Closed => PublishError::Closed,
        wit::PublishError::Unsupported => PublishError::Unsupported,
    }
}

pub(crate) fn capability_error(e: Error) -> wit::CapabilityError {
    match e {
        Error::InvalidParams(m) => wit::CapabilityError::InvalidParams(m),
        Error::InvalidInput(m) => wit::CapabilityError::InvalidInput(m),
        Error::NotFound(m) => wit::CapabilityError::NotFound(m),
        Error::Unsupported(m) => wit::CapabilityError::Unsupported(m),
        Error::Denied(m) => wit::CapabilityError::Denied(m),
        Error::Upstream(m) => wit::CapabilityError::Upstream(m),
        Error::LimitExceeded(m) => wit::CapabilityError::LimitExceeded(m),
        Error::Internal(m) => wit::CapabilityError::Internal(m),
    }
}

fn legs(legs: Legs) -> wit::Legs {
    [
        (Legs::VIDEO_IN, wit::Legs::VIDEO_IN),
        (Legs::VIDEO_OUT, wit::Legs::VIDEO_OUT),
        (Legs::DATA, wit::Legs::DATA),
        (Legs::EVENTS, wit::Legs::EVENTS),
    ]
    .into_iter()
    .filter(|(ours, _)| legs.contains(*ours))
    .fold(wit::Legs::empty(), |all, (_, theirs)| all | theirs)
}

pub(crate) fn capability_info(info: CapabilityInfo) -> wit::CapabilityInfo {
    wit::CapabilityInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        price: wit::Price { per_unit: info.price.per_unit, scaling: info.price.scaling },
        capacity: info.capacity,
        legs: legs(info.legs),
        params_schema: info.params_schema,
        frames: info.frames.map(frames::frame_needs),
    }
}

fn headers_in(headers: Vec<wit::Header>) -> Vec<Header> {
    headers.into_iter().map(|h| Header { name: h.name, value: h.value }).collect()
}

fn headers_out(headers: Vec<Header>) -> Vec<wit::Header> {
    headers.into_iter().map(|h| wit::Header { name: h.name, value: h.value }).collect()
}

fn response(response: Response) -> wit::Response {
    let body = match response.body {
        Body::Bytes(bytes) => wit::ResponseBody::Bytes(bytes),
        Body::Events(events) => wit::ResponseBody::Events(
            events.into_iter().map(|SseEvent { event, id, data }| wit::SseEvent { event, id, data }).collect(),
        ),
    };
    wit::Response {
        status: response.status,
        content_type: response.content_type,
        headers: headers_out(response.headers),
        body,
    }
}

/// Implements the `adapter` exports for plugin `P`. [`export!`](crate::export) names it
/// through a type alias, since the generated export macro takes a plain identifier.
pub struct Adapter<P>(PhantomData<P>);

impl<P> Guest for Adapter<P>
where
    P: Describe + Batch + Stream + 'static,
    P::Session: 'static,
{
    type Session = SessionAdapter<P>;
    type FrameSession = RefusedFrameSession;

    fn describe() -> wit::CapabilityInfo {
        capability_info(P::describe())
    }

    fn process(request: wit::Request) -> Result<wit::Response, wit::CapabilityError> {
        let request = Request {
            path: request.path,
            content_type: request.content_type,
            headers: headers_in(request.headers),
            body: request.body,
        };
        P::process(&Context::new(&WitHost), request).map(response).map_err(capability_error)
    }
}

/// One `session` resource: the plugin's session value behind a `RefCell`, because
/// generated resource methods take `&self`.
pub struct SessionAdapter<P: Stream> {
    session: RefCell<P::Session>,
}

impl<P: Stream> SessionAdapter<P> {
    /// Runs `f` on the session. The host never re-enters an instance, so the borrow cannot
    /// conflict; if it somehow did, the call fails instead of trapping.
    fn with(
        &self,
        f: impl FnOnce(&mut P::Session, &Context<'_>) -> Result<(), Error>,
    ) -> Result<(), wit::CapabilityError> {
        let mut session = self
            .session
            .try_borrow_mut()
            .map_err(|_| wit::CapabilityError::Internal("session re-entered during a call".to_owned()))?;
        f(&mut session, &Context::new(&WitHost)).map_err(capability_error)
    }
}

impl<P> GuestSession for SessionAdapter<P>
where
    P: Describe + Batch + Stream + 'static,
    P::Session: 'static,
{
    fn open(params: String) -> Result<Session, wit::CapabilityError> {
        let session = P::open(&Context::new(&WitHost), &params).map_err(capability_error)?;
        Ok(Session::new(Self { session: RefCell::new(session) }))
    }

    fn on_segment_start(&self, seq: u64) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.on_segment_start(ctx, seq))
    }

    fn on_chunk(&self, bytes: Vec<u8>) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.on_chunk(ctx, &bytes))
    }

    fn on_segment_end(&self) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.on_segment_end(ctx))
    }

    fn on_control(&self, message: String) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.on_control(ctx, &message))
    }

    fn on_tick(&self) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.on_tick(ctx))
    }

    fn close(&self) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.close(ctx))
    }
}
