//! The gateway API's error answer: a status and a clear message, `{"error": "..."}` (plus the
//! `reasons` of a start or batch job no orchestrator took). Handlers return `Result<_, ApiError>`
//! and use `?`.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// An error answer of the gateway API.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// Why each orchestrator did not take the job, when none did.
    reasons: Option<Vec<String>>,
    /// Answered as plain text (the framework's own rejections), not JSON.
    plain: bool,
}

impl ApiError {
    /// `{"error": message}` with `status`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), reasons: None, plain: false }
    }

    /// 400: the request is malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 502: the orchestrator could not be reached.
    pub(crate) fn unreachable(e: impl std::fmt::Display) -> ApiError {
        metrics::counter!("byoc_gateway_errors_total", "kind" => "orchestrator_unreachable").increment(1);
        // Clients can repeat this as fast as they like: one line a second.
        static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
        if let Some(held_back) = LOG.allow() {
            tracing::warn!(error = %e, held_back, "orchestrator unreachable");
        }
        ApiError::new(StatusCode::BAD_GATEWAY, format!("orchestrator unreachable: {e}"))
    }

    /// 503 `{"error": message, "reasons": [...]}`: no orchestrator took the job.
    /// When every orchestrator refused the gateway's payment (`402`: e.g. its deposit is unlocking), the
    /// answer is that `402`: no other orchestrator would do better.
    pub(crate) fn no_orchestrator(message: String, reasons: Vec<String>) -> ApiError {
        metrics::counter!("byoc_gateway_errors_total", "kind" => "no_orchestrator").increment(1);
        static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
        if let Some(held_back) = LOG.allow() {
            tracing::warn!(%message, reasons = %reasons.join("; "), held_back, "no orchestrator took the job");
        }
        let all_refused_payment = !reasons.is_empty() && reasons.iter().all(|r| r.contains(PAYMENT_REFUSED));
        let status = if all_refused_payment { StatusCode::PAYMENT_REQUIRED } else { StatusCode::SERVICE_UNAVAILABLE };
        ApiError { reasons: Some(reasons), ..ApiError::new(status, message) }
    }

    /// `status` `{"error": message, "reasons": [...]}`: no orchestrator took the stream, and one
    /// refused the request itself with `status` (a 4xx: bad params, or params beyond its limits).
    pub(crate) fn request_refused(status: StatusCode, message: String, reasons: Vec<String>) -> ApiError {
        metrics::counter!("byoc_gateway_errors_total", "kind" => "request_refused").increment(1);
        static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
        if let Some(held_back) = LOG.allow() {
            tracing::info!(%status, %message, held_back, "an orchestrator refused the request itself");
        }
        ApiError { reasons: Some(reasons), ..ApiError::new(status, message) }
    }

    /// The status answered.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

/// What a reason says when an orchestrator refused the gateway's payment (its token request or its job
/// answered 402), or the gateway refused to pay.
pub(crate) const PAYMENT_REFUSED: &str = "402 Payment Required";

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError { plain: true, ..ApiError::new(r.status(), r.body_text()) }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.plain {
            return (self.status, self.message).into_response();
        }
        let body = match self.reasons {
            Some(reasons) => json!({"error": self.message, "reasons": reasons}),
            None => json!({"error": self.message}),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, String) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_error_is_its_status_and_a_json_message() {
        let (status, text) = body(ApiError::new(StatusCode::GONE, "stream ended: x")).await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(text, r#"{"error":"stream ended: x"}"#);
    }

    #[tokio::test]
    async fn no_orchestrator_lists_the_reasons() {
        let (status, text) = body(ApiError::no_orchestrator("none".into(), vec!["a: 500".into()])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"error": "none", "reasons": ["a: 500"]}));
    }

    #[test]
    fn when_every_orchestrator_refused_payment_the_answer_is_402() {
        let refused = |o: &str| format!("{o}: token request answered 402 Payment Required sender is unlocking");
        let all = ApiError::no_orchestrator("none".into(), vec![refused("a"), refused("b")]);
        assert_eq!(all.status(), StatusCode::PAYMENT_REQUIRED);
        let mixed = ApiError::no_orchestrator("none".into(), vec![refused("a"), "b: unreachable".into()]);
        assert_eq!(mixed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::no_orchestrator("none".into(), vec![]).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
