//! A blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host filters destinations against the plugin's grants; a denied request comes back
//! as `error-code.HTTP-request-denied`, mapped to [`HttpError::Denied`].

use super::bindings::wasi::http::outgoing_handler;
use super::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme as WasiScheme,
};
use super::bindings::wasi::io::streams::StreamError;
use crate::http::Scheme;
use crate::{Header, HttpError, HttpRequest, HttpResponse, Method};

/// `output-stream.blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

/// How much to ask for per `input-stream.blocking-read`.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends `request` and waits for the whole response.
pub(crate) fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let parts = request.url_parts()?;
    let mut fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| (h.name.clone(), h.value.clone().into_bytes()))
        .collect();
    // The whole body is known, so announce its length: without it the host streams the
    // body chunked, which some simple workers do not read.
    let has_body = !request.body.is_empty() || matches!(request.method, Method::Post | Method::Put | Method::Patch);
    if has_body {
        let length = request.body.len().to_string().into_bytes();
        fields.push(("content-length".to_owned(), length));
    }
    let headers = Fields::from_list(&fields).map_err(|e| HttpError::InvalidRequest(format!("bad header: {e:?}")))?;

    let outgoing = OutgoingRequest::new(headers);
    let invalid = |what: &str| HttpError::InvalidRequest(format!("invalid {what}"));
    outgoing.set_method(&method(&request.method)).map_err(|()| invalid("method"))?;
    let scheme = match parts.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    outgoing.set_authority(Some(parts.authority)).map_err(|()| invalid("authority"))?;
    outgoing.set_path_with_query(Some(parts.path_and_query)).map_err(|()| invalid("path"))?;

    let options = request.timeout.map(|timeout| {
        let options = RequestOptions::new();
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // A host may not support a timeout kind; the request then uses its default.
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        options
    });

    let body = outgoing.body().map_err(|()| HttpError::Protocol("request body already taken".to_owned()))?;
    // Hand the request to the host before writing the body: the host consumes the body
    // while it sends, so a body larger than the stream's buffer cannot block forever.
    let pending = outgoing_handler::handle(outgoing, options).map_err(error_code)?;
    write_body(&body, &request.body)?;
    OutgoingBody::finish(body, None).map_err(error_code)?;

    pending.subscribe().block();
    let incoming = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(error_code(code)),
        Some(Err(())) => return Err(HttpError::Protocol("response already taken".to_owned())),
        None => return Err(HttpError::Protocol("response not ready after waiting".to_owned())),
    };

    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| Header { name, value: String::from_utf8_lossy(&value).into_owned() })
        .collect();
    let body = incoming.consume().map_err(|()| HttpError::Protocol("response body already taken".to_owned()))?;
    let bytes = read_body(&body, request.max_response_bytes)?;
    // Trailers are not used; dropping the future discards them.
    drop(IncomingBody::finish(body));
    Ok(HttpResponse { status, headers, body: bytes })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body.write().map_err(|()| HttpError::Protocol("request body stream already taken".to_owned()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(stream_error)?;
    }
    // The stream must be dropped before the body is finished.
    drop(stream);
    Ok(())
}

fn read_body(body: &IncomingBody, limit: usize) -> Result<Vec<u8>, HttpError> {
    let stream = body.stream().map_err(|()| HttpError::Protocol("response body stream already taken".to_owned()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if bytes.len().saturating_add(chunk.len()) > limit {
                    return Err(HttpError::TooLarge { limit });
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Protocol(e.to_debug_string()));
            }
        }
    }
    drop(stream);
    Ok(bytes)
}

fn method(method: &Method) -> WasiMethod {
    match method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Delete => WasiMethod::Delete,
        Method::Patch => WasiMethod::Patch,
        Method::Options => WasiMethod::Options,
        Method::Other(other) => WasiMethod::Other(other.clone()),
    }
}

fn stream_error(e: StreamError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Protocol("request body stream closed".to_owned()),
        StreamError::LastOperationFailed(e) => HttpError::Protocol(e.to_debug_string()),
    }
}

fn error_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied("the host did not grant this destination".to_owned()),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => HttpError::Timeout,
        ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => HttpError::Connect(format!("{code:?}")),
        ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::HttpRequestHeaderSize(_)
        | ErrorCode::HttpRequestHeaderSectionSize(_)
        | ErrorCode::HttpRequestBodySize(_) => HttpError::InvalidRequest(format!("{code:?}")),
        other => HttpError::Protocol(format!("{other:?}")),
    }
}
