//! `http-adapter`: fronts an external worker (typically a GPU inference server) over HTTP —
//! the adapter pattern for capabilities whose compute cannot run inside wasm.
//!
//! The worker is reached only through `wasi:http`, and the host lets the plugin reach only
//! the hosts granted in `manifest.toml` (`outbound_hosts`) and allowed by the operator.
//!
//! Configuration (granted keys): `worker_url` (required, e.g. `http://127.0.0.1:9000`),
//! `timeout_ms` (optional, default 10 000) and the secret `worker_token` (optional, sent as
//! `Authorization: Bearer …`).
//!
//! The worker API:
//!
//! | plugin call | worker request | worker answer |
//! | --- | --- | --- |
//! | batch `process` | `POST {worker_url}{path}` with the client's body, content type and end-to-end headers; the default route (`/process/request/http-adapter`, what the Livepeer SDK's `submit_byoc_job` calls) is `POST {worker_url}` itself, and `/process/request/http-adapter/{path}` is `{path}` (see [`worker_path`]) | passed through (status, headers, body); a `text/event-stream` body becomes SSE events |
//! | `session.open(params)` | `POST /session`, body = params JSON | 2xx `{"id": "<session id>"}`; 400/422 refuse the params |
//! | a whole input segment | `POST /session/{id}/segment?seq=N`, body = segment (`video/mp2t`) | a body (not JSON) is published as an output segment; JSON `{"data": [...], "events": [...]}` is published as data lines and events; 204 publishes nothing |
//! | `on-control(message)` | `POST /session/{id}/control`, body = message | 2xx, optionally with JSON data/events |
//! | `close` | `POST /session/{id}/close` | 2xx, optionally with JSON data/events |
//!
//! Segments are buffered whole before forwarding, since the worker API takes one body per
//! segment; chunk-level streaming to the worker is a possible refinement (`wasi:http` bodies
//! can outlive one call).

mod session;
mod worker;

use byoc_sdk::buffered::Buffered;
use byoc_sdk::{Batch, Body, CapabilityInfo, Context, Describe, Error, Legs, Method, Request, Response, Stream, sse};

pub use session::WorkerSession;
pub use worker::{CONFIG_TIMEOUT_MS, CONFIG_WORKER_URL, SECRET_WORKER_TOKEN, Worker, WorkerOutput, forwardable};

/// The capability's name; a batch path that is just this name is the default route.
pub const NAME: &str = "http-adapter";

/// The path on the worker of a batch request (its path below `/process/request`, with its query):
/// the route below this capability's name ([`Request::route_below`]), so the worker never needs to
/// know the name it is offered under. The default route (`/http-adapter`, or `/`) is the worker URL
/// itself (an empty path, see [`Worker::request`]).
///
/// ```
/// use http_adapter::worker_path;
/// let path = |p: &str| worker_path(&byoc_sdk::Request::new(p, "", vec![]));
/// assert_eq!(path("/http-adapter"), "");
/// assert_eq!(path("/http-adapter?v=2"), "?v=2");
/// assert_eq!(path("/http-adapter/predict?v=2"), "/predict?v=2");
/// assert_eq!(path("/predict"), "/predict");
/// assert_eq!(path("/"), "");
/// ```
pub fn worker_path(request: &Request) -> String {
    let route = request.route_below(NAME);
    let query = request.path.get(request.route().len()..).unwrap_or_default();
    let route = if route.trim_matches('/').is_empty() { "" } else { route };
    format!("{route}{query}")
}

/// Whether a worker path (from [`worker_path`]) is in the worker's session API (`/session…`),
/// which belongs to the streams this adapter opens: a batch request may not reach it, or a client
/// that knows or guesses a session id could close or steer another client's stream. The first
/// segment is compared percent-decoded and ignoring case, as a lenient worker router would.
///
/// ```
/// use http_adapter::is_session_api;
/// assert!(is_session_api("/session/abc/close"));
/// assert!(is_session_api("/Session?x=1"));
/// assert!(is_session_api("/%73ession/abc/control"));
/// assert!(!is_session_api("/sessions-report"));
/// assert!(!is_session_api("/predict"));
/// assert!(!is_session_api(""));
/// ```
pub fn is_session_api(worker_path: &str) -> bool {
    let route = worker_path.split(['?', '#']).next().unwrap_or_default();
    let first = route.trim_start_matches('/').split('/').next().unwrap_or_default();
    percent_decoded(first).is_some_and(|s| s.eq_ignore_ascii_case("session"))
}

/// `s` with its `%XX` escapes decoded; `None` if an escape is malformed or the result is not UTF-8
/// (the caller then treats the segment as not matching anything it looks for).
fn percent_decoded(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The capability.
pub struct HttpAdapter;

impl Describe for HttpAdapter {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Forwards batch requests and live streams to an external HTTP worker",
        )
        .capacity(8)
        .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::DATA | Legs::EVENTS)
        .params_schema(r#"{"type":"object","description":"Passed to the worker unchanged"}"#)
    }
}

impl Batch for HttpAdapter {
    fn process(ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let path = worker_path(&request);
        if is_session_api(&path) {
            return Err(Error::not_found("the worker's session API is not reachable through batch requests"));
        }
        let worker = Worker::from_config(ctx)?;
        let mut outgoing = worker.request(Method::Post, &path);
        if !request.content_type.is_empty() {
            outgoing = outgoing.header("content-type", request.content_type.clone());
        }
        for header in request.headers.iter().filter(|h| forwardable(&h.name)) {
            outgoing = outgoing.header(header.name.clone(), header.value.clone());
        }
        let outgoing = outgoing.body(request.body);
        let answer = worker.send(ctx, &outgoing)?;

        let content_type = answer.content_type().unwrap_or_default().to_owned();
        let headers = answer.headers.iter().filter(|h| forwardable(&h.name)).cloned().collect();
        // A worker's SSE answer arrives complete (the call returns once it ends); re-frame
        // it as events so the host sends it as a proper event stream.
        let body = if content_type.starts_with("text/event-stream") {
            let text = std::str::from_utf8(&answer.body)
                .map_err(|_| Error::upstream("worker sent an event stream that is not UTF-8"))?;
            Body::Events(sse::parse(text))
        } else {
            Body::Bytes(answer.body)
        };
        Ok(Response { status: answer.status, content_type, headers, body })
    }
}

impl Stream for HttpAdapter {
    type Session = Buffered<WorkerSession>;

    fn open(ctx: &Context<'_>, params: &str) -> Result<Self::Session, Error> {
        Ok(Buffered::new(WorkerSession::open(ctx, params)?))
    }
}

byoc_sdk::export!(HttpAdapter);
