//! What a client's request carries: a body read up to the gateway's bound, and the `Livepeer` job
//! header.

use axum::body::{Body, Bytes};
use byoc_payment::job::JobRequest;
use http::{HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::state::Gateway;
use byoc_protocol::headers;

/// The request body, refused with 413 beyond `max_body_bytes`.
pub(crate) async fn read_body(gw: &Gateway, body: Body) -> Result<Bytes, ApiError> {
    byoc_protocol::read_limited(body, gw.config.max_body_bytes)
        .await
        .map_err(|m| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m))
}

/// The client's job (`Livepeer` header), refused with 400 when missing, malformed or with a
/// timeout out of bounds.
pub(crate) fn job_from(h: &HeaderMap) -> Result<JobRequest, ApiError> {
    let v = h
        .get(headers::LIVEPEER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("missing Livepeer job header"))?;
    let job = JobRequest::from_header(v).map_err(|e| ApiError::bad_request(format!("invalid job: {e}")))?;
    byoc_protocol::check_timeout(&job).map_err(ApiError::bad_request)?;
    Ok(job)
}
