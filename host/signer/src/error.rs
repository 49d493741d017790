//! What a refused request gets: a status and `{"error": "..."}`, never the key or a secret.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// go-livepeer's status for "the orchestrator's price is over a ceiling": the caller should try
/// another orchestrator.
pub const PRICE_TOO_HIGH: u16 = 481;

/// A refusal: the HTTP status, a message for the caller, and the metric reason it is counted under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the caller is told.
    pub message: String,
    /// The `reason` label of `byoc_signer_refused_total`.
    pub reason: &'static str,
}

impl ApiError {
    /// A refusal with `status` counted under `reason`.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), reason }
    }

    /// 400: the request itself is wrong.
    pub fn input(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "input", message)
    }

    /// 400: the signer state is not one this signer issued, or is stale.
    pub fn state(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "state", message)
    }

    /// 481: a price over a ceiling.
    pub fn price(message: impl Into<String>) -> ApiError {
        let status = StatusCode::from_u16(PRICE_TOO_HIGH).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, "price", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}
