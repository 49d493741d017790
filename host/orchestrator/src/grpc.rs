//! gRPC `net.Orchestrator/GetOrchestrator`, as go-livepeer serves it (and the official Python SDK calls it
//! before paying for a BYOC job): one unary method, hand-framed over the node's HTTP/2 server.
//!
//! Every request whose `content-type` is `application/grpc…` comes here, whatever its path ([`route`]);
//! the rest goes to the HTTP routes. A message is one frame: a compressed flag (must be 0: compression is
//! not supported) and a 4-byte big-endian length, then the protobuf. The answer is the framed
//! `OrchestratorInfo` with `grpc-status: 0` in the trailers; a refusal is a trailers-only answer
//! (`grpc-status`, percent-encoded `grpc-message`).
//!
//! The answer, for the sender whose signature of its own checksummed address (as the
//! `Livepeer-Eth-Address` credential) is verified (unsigned requests only in free mode):
//! - `price_info`: the highest price among this node's BYOC capabilities (zero when all are free),
//!   and `ticket_params` made for the sender at exactly that price. The price is bound into the params
//!   (see `byoc_payment::Recipient`), so a payment whose `expected_price` is `price_info` (as
//!   go-livepeer's remote signer makes it) is accepted by every priced route, credited at its tickets'
//!   expected value to (sender, capability) of the route it pays; a sender that sizes its payment from
//!   `price_info` never pays short for any capability;
//! - `capabilities_prices`: every BYOC capability at the price a job pays for it (capability 37, the
//!   name as constraint);
//! - `auth_token`: a session token (fresh session id, valid `OrchestratorConfig::auth_token_ttl`, 30
//!   minutes by default) the sender puts into its
//!   `Livepeer-Segment` credentials; this node recognises its own by their HMAC (see
//!   [`crate::orchestrator::Orchestrator::check_segment`]).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use byoc_payment::proto::{CAPABILITY_BYOC, OrchestratorInfo, OrchestratorRequest, PriceInfo};
use byoc_payment::{Address, Price, Signature};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Frame;
use prost::Message as _;

use crate::error::ApiError;
use crate::orchestrator::Orchestrator;

/// The one method served.
pub(crate) const GET_ORCHESTRATOR: &str = "/net.Orchestrator/GetOrchestrator";

/// The largest request message accepted (an `OrchestratorRequest` is about 100 bytes).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// gRPC status codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Ok = 0,
    InvalidArgument = 3,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

/// A refusal: a gRPC status and its message.
#[derive(Debug)]
pub(crate) struct Status {
    code: Code,
    message: String,
}

impl Status {
    fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into() }
    }

    /// An HTTP refusal of the shared checks as its gRPC status.
    fn from_api(e: ApiError) -> Status {
        let code = match e.status {
            StatusCode::BAD_REQUEST => Code::InvalidArgument,
            StatusCode::PAYMENT_REQUIRED => Code::FailedPrecondition,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            _ => Code::Internal,
        };
        Status::new(code, e.message)
    }

    /// The trailers-only answer.
    fn into_response(self) -> Response {
        let mut out = Response::new(Body::empty());
        let h = out.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(self.code as u16));
        if let Ok(v) = HeaderValue::from_str(&percent_encode(&self.message)) {
            h.insert("grpc-message", v);
        }
        out
    }
}

/// gRPC's `grpc-message` encoding: printable ASCII but `%` as is, every other byte `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a request is gRPC (`application/grpc`, `application/grpc+proto`, …).
fn is_grpc(h: &HeaderMap) -> bool {
    h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v == "application/grpc" || v.starts_with("application/grpc+") || v.starts_with("application/grpc;")
    })
}

/// Middleware over the whole router: gRPC requests are answered here, others go on.
pub(crate) async fn route(State(orch): State<Arc<Orchestrator>>, req: Request, next: Next) -> Response {
    if !is_grpc(req.headers()) {
        return next.run(req).await;
    }
    match call(&orch, req).await {
        Ok(info) => answer(&info),
        Err(status) => {
            if status.code != Code::Ok {
                tracing::debug!(code = status.code as u8, message = %status.message, "gRPC request refused");
            }
            status.into_response()
        }
    }
}

async fn call(orch: &Orchestrator, req: Request) -> Result<OrchestratorInfo, Status> {
    let path = req.uri().path();
    if path != GET_ORCHESTRATOR {
        return Err(Status::new(
            Code::Unimplemented,
            format!("unknown method {path}: this node serves {GET_ORCHESTRATOR} only"),
        ));
    }
    if req.method() != http::Method::POST {
        return Err(Status::new(Code::Unimplemented, "gRPC calls are POST requests"));
    }
    let body = byoc_protocol::read_limited(req.into_body(), MAX_MESSAGE + 5).await.map_err(|_| {
        Status::new(Code::ResourceExhausted, format!("request message larger than {MAX_MESSAGE} bytes"))
    })?;
    let message = unframe(&body)?;
    let request = OrchestratorRequest::decode(message)
        .map_err(|e| Status::new(Code::InvalidArgument, format!("not an OrchestratorRequest: {e}")))?;
    get_orchestrator(orch, &request).await
}

/// The one message of a unary request body.
fn unframe(body: &[u8]) -> Result<&[u8], Status> {
    let bad = |m: &str| Status::new(Code::InvalidArgument, m.to_string());
    let (&flag, rest) = body.split_first().ok_or_else(|| bad("empty request: one gRPC message expected"))?;
    let (len, message) = rest.split_at_checked(4).ok_or_else(|| bad("truncated gRPC message header"))?;
    if flag != 0 {
        return Err(Status::new(Code::Unimplemented, "compressed gRPC messages are not supported"));
    }
    let len = len.try_into().map(u32::from_be_bytes).map_err(|_| bad("truncated gRPC message header"))?;
    if usize::try_from(len).ok() != Some(message.len()) {
        return Err(bad("the gRPC message length does not match the body (one message expected)"));
    }
    Ok(message)
}

/// A framed message followed by `grpc-status: 0` trailers.
fn answer(info: &OrchestratorInfo) -> Response {
    let message = info.encode_to_vec();
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(Code::Ok as u16));
    let frames = [Frame::data(Bytes::from(framed)), Frame::trailers(trailers)];
    let stream = futures_util::stream::iter(frames.map(Ok::<_, std::convert::Infallible>));
    let mut out = Response::new(Body::new(http_body_util::StreamBody::new(stream)));
    out.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    out
}

/// The sender of a request: its signature of its checksummed address verified; `None` for an unsigned
/// request this node accepts (free mode) that names no valid address.
fn sender(orch: &Orchestrator, req: &OrchestratorRequest) -> Result<Option<Address>, Status> {
    let address = <[u8; 20]>::try_from(req.address.as_slice()).ok().map(Address);
    if req.sig.is_empty() && orch.config.signatures == byoc_payment::job::SignaturePolicy::AllowUnsigned {
        return Ok(address);
    }
    let invalid = |m: String| Status::new(Code::Unauthenticated, format!("Invalid orchestrator request: {m}"));
    let address = address.ok_or_else(|| invalid(format!("address is {} bytes, not 20", req.address.len())))?;
    let sig = <[u8; 65]>::try_from(req.sig.as_slice())
        .map_err(|_| invalid(format!("signature is {} bytes, not 65", req.sig.len())))?;
    Signature(sig).verify(address.to_checksum().as_bytes(), &address).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(address))
}

/// Whether `a` costs more per second than `b`.
fn dearer(a: &Price, b: &Price) -> bool {
    let per_sec = |p: &Price, q: &Price| i128::from(p.price_per_unit) * i128::from(q.pixels_per_unit.max(1));
    per_sec(a, b) > per_sec(b, a)
}

async fn get_orchestrator(orch: &Orchestrator, req: &OrchestratorRequest) -> Result<OrchestratorInfo, Status> {
    let sender = sender(orch, req)?;
    let mut price = Price { price_per_unit: 0, pixels_per_unit: 1 };
    let mut capabilities_prices = Vec::new();
    for name in orch.registry.names() {
        let Some(cap) = orch.registry.get(&name) else { continue };
        let charged = orch.charged_price(&cap);
        if dearer(&charged, &price) {
            price = charged;
        }
        capabilities_prices.push(PriceInfo {
            price_per_unit: charged.price_per_unit,
            pixels_per_unit: charged.pixels_per_unit,
            capability: CAPABILITY_BYOC,
            constraint: name,
        });
    }
    // Priced: params for this sender at `price` (on chain the sender is checked first). Free: params of
    // face value 0, which tell a sender there is nothing to pay.
    let ticket_params = match (&orch.payments, sender) {
        (Some(p), Some(sender)) => {
            p.ticket_params(&sender, &price).await.map_err(Status::from_api)?.map(|t| t.to_proto())
        }
        _ => None,
    };
    let session = byoc_payment::random_hex(16);
    let expiration = i64::try_from(byoc_protocol::now_ms() / 1000)
        .unwrap_or(i64::MAX)
        .saturating_add(i64::try_from(orch.config.auth_token_ttl.as_secs()).unwrap_or(i64::MAX));
    Ok(OrchestratorInfo {
        transcoder: orch.config.service_url.clone(),
        ticket_params: Some(ticket_params.unwrap_or_default()),
        price_info: Some(PriceInfo {
            price_per_unit: price.price_per_unit,
            pixels_per_unit: price.pixels_per_unit,
            ..Default::default()
        }),
        address: orch.config.key.as_ref().map(|k| k.address().0.to_vec()).unwrap_or_default(),
        capabilities: None,
        auth_token: Some(orch.auth_token(&session, expiration)),
        capabilities_prices,
        nodes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_body_is_exactly_one_uncompressed_message() {
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 9, 9]).unwrap(), &[9, 9]);
        assert_eq!(unframe(&[0, 0, 0, 0, 0]).unwrap(), &[] as &[u8]);
        assert_eq!(unframe(&[]).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(unframe(&[0, 0, 0]).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(unframe(&[1, 0, 0, 0, 1, 9]).unwrap_err().code, Code::Unimplemented);
        assert_eq!(unframe(&[0, 0, 0, 0, 3, 9]).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(unframe(&[0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0]).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(unframe(&[0, 0xff, 0xff, 0xff, 0xff]).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("bad sig: 100%"), "bad sig: 100%25");
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn grpc_is_told_by_its_content_type() {
        let with = |v: &'static str| HeaderMap::from_iter([(http::header::CONTENT_TYPE, HeaderValue::from_static(v))]);
        assert!(is_grpc(&with("application/grpc")));
        assert!(is_grpc(&with("application/grpc+proto")));
        assert!(!is_grpc(&with("application/json")));
        assert!(!is_grpc(&with("application/grpcx")));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn the_dearer_price_is_compared_per_second() {
        let p = |n, d| Price { price_per_unit: n, pixels_per_unit: d };
        assert!(dearer(&p(3, 2), &p(1, 1)));
        assert!(!dearer(&p(1, 1), &p(3, 2)));
        assert!(!dearer(&p(2, 2), &p(1, 1)));
        assert!(dearer(&p(1, 1), &p(0, 1)));
    }
}
