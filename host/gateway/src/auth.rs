//! Who may do what: a stream's routes need one of its secrets (`Authorization: Bearer` or `?token=`):
//! the control secret for every route, the viewer token for those that only watch; start, batch and
//! the capability list need the API key, if one is set, and start and batch the auth webhook's yes, if
//! one is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::model::{Access, GwStream};
use crate::state::Gateway;

/// The stream and what the request may do with it, if it carries one of its secrets (`Authorization:
/// Bearer` or `?token=`). A stream that ended lately stays answerable (410 with why) to whoever holds
/// one of its secrets.
pub(crate) fn authorized(
    gw: &Gateway,
    id: &str,
    h: &HeaderMap,
    query: Option<&str>,
) -> Result<(Arc<GwStream>, Access), ApiError> {
    let bearer =
        h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let Some(stream) = gw.stream(id) else {
        return Err(match bearer.or(token).and_then(|given| gw.ended.why(id, given)) {
            Some(why) => ApiError::new(StatusCode::GONE, format!("stream ended: {why}")),
            None => ApiError::new(StatusCode::NOT_FOUND, "Stream not found"),
        });
    };
    match bearer.or(token) {
        Some(given) => match stream.access(given) {
            Some(access) => Ok((stream, access)),
            None => Err(ApiError::new(StatusCode::FORBIDDEN, "wrong stream secret")),
        },
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this stream's secret is required (Authorization: Bearer or ?token=)",
        )),
    }
}

/// The control secret is needed: the viewer token's holder is refused with 403.
pub(crate) fn needs_control(access: Access) -> Result<(), ApiError> {
    match access {
        Access::Control => Ok(()),
        Access::View => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the viewer token only watches: this route needs the stream secret",
        )),
    }
}

/// A watching route's stream (the route's `{id}`) and what the request may do with it, one of its
/// secrets checked; the refusal (401, 403, 404, or 410 for a stream that ended lately) is answered
/// before the handler runs.
pub(crate) struct AuthorizedStream(pub(crate) Arc<GwStream>, pub(crate) Access);

impl FromRequestParts<Arc<Gateway>> for AuthorizedStream {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, gw).await?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        let (stream, access) = authorized(gw, id, &parts.headers, parts.uri.query())?;
        Ok(AuthorizedStream(stream, access))
    }
}

/// A controlling route's stream: as [`AuthorizedStream`], and only with the control secret (403 for
/// the viewer token).
pub(crate) struct ControlledStream(pub(crate) Arc<GwStream>);

impl FromRequestParts<Arc<Gateway>> for ControlledStream {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, ApiError> {
        let AuthorizedStream(stream, access) = AuthorizedStream::from_request_parts(parts, gw).await?;
        needs_control(access)?;
        Ok(ControlledStream(stream))
    }
}

/// The API key check of start and batch requests (`Authorization: Bearer <api_key>`), when the
/// gateway has one.
pub(crate) fn check_api_key(gw: &Gateway, h: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &gw.config.api_key else { return Ok(()) };
    let given = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if byoc_protocol::same_secret(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key"))
    }
}

/// Asks the operator's auth webhook whether a start or batch request may go on. The webhook gets
/// `{"kind": "stream"|"batch", "capability", "stream_id", "path", "params", "parameters",
/// "request", "authorization"}` (`authorization`: the client's `Authorization` header, so the
/// webhook can check its own tokens) and answers 2xx to allow; any other status refuses with 403
/// and the webhook's text; an unreachable webhook refuses with 503.
pub(crate) async fn webhook(gw: &Gateway, h: &HeaderMap, mut query: serde_json::Value) -> Result<(), ApiError> {
    let Some(url) = &gw.config.auth_webhook else { return Ok(()) };
    if let Some(o) = query.as_object_mut() {
        let auth = h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        o.insert("authorization".into(), auth.into());
    }
    let resp = gw
        .client
        .http()
        .post(url)
        .timeout(Duration::from_secs(5))
        .json(&query)
        .send()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("auth webhook unreachable: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(200).collect();
    metrics::counter!("byoc_gateway_errors_total", "kind" => "webhook_refused").increment(1);
    static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
    if let Some(held_back) = LOG.allow() {
        tracing::info!(%status, answer = %text, held_back, "the auth webhook refused a request");
    }
    Err(ApiError::new(StatusCode::FORBIDDEN, format!("refused by the auth webhook ({status}): {text}")))
}
