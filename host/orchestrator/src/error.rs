//! The one refusal type of the orchestrator's handlers: a status and a plain-text message, as
//! go-livepeer's `http.Error` writes them.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// A refusal: status and plain-text message. Handlers return `Result<_, ApiError>` and use `?`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    /// A refusal with `status`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    /// `400 Bad Request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// `500 Internal Server Error`.
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `503 Service Unavailable`.
    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut text = self.message;
        text.push('\n');
        (self.status, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_plain_text_with_a_final_newline() {
        let r = ApiError::new(StatusCode::CONFLICT, "taken").into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "text/plain; charset=utf-8");
    }
}
