//! `POST /sign-orchestrator-info` and `POST /sign-byoc-job`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::{EthAddressCredential, JobRequest};
use serde::Deserialize;

use crate::Signer;
use crate::error::ApiError;

/// Most bytes of a job's `request` and `parameters` together (they travel in the `Livepeer` header).
pub const MAX_JOB_BYTES: usize = 64 * 1024;

/// The signer's checksummed address and its signature of that text (the sender's credential in
/// `GetOrchestrator`, as `Livepeer-Eth-Address`'s).
pub(crate) async fn orchestrator_info(State(signer): State<Arc<Signer>>) -> Response {
    match EthAddressCredential::new(&signer.config.key) {
        Ok(c) => {
            metrics::counter!("byoc_signer_jobs_signed_total", "route" => "sign-orchestrator-info").increment(1);
            Json(serde_json::json!({ "address": c.addr, "signature": c.sig })).into_response()
        }
        Err(e) => {
            let e = internal(&e);
            signer.refused("sign-orchestrator-info", &e);
            e.into_response()
        }
    }
}

/// What `/sign-byoc-job` is given (the SDK's `_sign_byoc_job`).
#[derive(Deserialize)]
struct JobToSign {
    #[serde(default)]
    id: String,
    capability: String,
    request: String,
    #[serde(default)]
    parameters: String,
    #[serde(default)]
    timeout_seconds: i64,
}

/// The sender and signature of a job: what the orchestrator checks in its `Livepeer` header.
pub(crate) async fn byoc_job(State(signer): State<Arc<Signer>>, body: Bytes) -> Response {
    match sign_job(&signer, &body) {
        Ok((sender, signature)) => {
            metrics::counter!("byoc_signer_jobs_signed_total", "route" => "sign-byoc-job").increment(1);
            Json(serde_json::json!({ "sender": sender, "signature": signature })).into_response()
        }
        Err(e) => {
            signer.refused("sign-byoc-job", &e);
            e.into_response()
        }
    }
}

fn sign_job(signer: &Signer, body: &[u8]) -> Result<(String, String), ApiError> {
    let job: JobToSign = serde_json::from_slice(body).map_err(|e| ApiError::input(format!("invalid job: {e}")))?;
    if job.capability.is_empty() || job.capability.len() > 128 || job.capability.chars().any(char::is_control) {
        return Err(ApiError::input("capability must be a name of 1 to 128 characters"));
    }
    if job.id.len() > 256 {
        return Err(ApiError::input("id is longer than 256 bytes"));
    }
    if job.timeout_seconds < 0 {
        return Err(ApiError::input("timeout_seconds must not be negative"));
    }
    if job.request.len() + job.parameters.len() > MAX_JOB_BYTES {
        return Err(ApiError::input(format!("request and parameters are over {MAX_JOB_BYTES} bytes")));
    }
    if !matches!(serde_json::from_str(&job.request), Ok(serde_json::Value::Object(_))) {
        return Err(ApiError::input("request must be a JSON object encoded as a string"));
    }
    if !job.parameters.trim().is_empty()
        && !matches!(serde_json::from_str(&job.parameters), Ok(serde_json::Value::Object(_)))
    {
        return Err(ApiError::input("parameters must be empty or a JSON object encoded as a string"));
    }
    let mut req = JobRequest {
        id: job.id,
        request: job.request,
        parameters: job.parameters,
        capability: job.capability,
        timeout_seconds: job.timeout_seconds,
        ..Default::default()
    };
    req.sign(&signer.config.key).map_err(|e| internal(&e))?;
    Ok((req.sender, req.sig))
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "signing failed");
    ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "signing failed")
}
