//! Who may use a stream's routes: whoever holds its secret (`Authorization: Bearer` or `?token=`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use super::model::GwStream;
use super::{Gateway, Refusal, refuse};

/// The stream, if the request carries its secret (`Authorization: Bearer` or `?token=`).
/// A stream that ended lately stays answerable (410 with why) to whoever holds its secret.
pub(crate) fn authorized(gw: &Gateway, id: &str, h: &HeaderMap, query: Option<&str>) -> Result<Arc<GwStream>, Refusal> {
    let bearer =
        h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let Some(stream) = gw.lock().get(id).cloned() else {
        return Err(match bearer.or(token).and_then(|given| gw.ended.why(id, given)) {
            Some(why) => refuse(StatusCode::GONE, format!("stream ended: {why}")),
            None => refuse(StatusCode::NOT_FOUND, "Stream not found"),
        });
    };
    match bearer.or(token) {
        Some(given) if byoc_protocol::same_secret(given.as_bytes(), stream.secret.as_bytes()) => Ok(stream),
        Some(_) => Err(refuse(StatusCode::FORBIDDEN, "wrong stream secret")),
        None => {
            Err(refuse(StatusCode::UNAUTHORIZED, "this stream's secret is required (Authorization: Bearer or ?token=)"))
        }
    }
}

/// A per-stream route's stream (the route's `{id}`), its secret checked; the refusal (401, 403,
/// 404, or 410 for a stream that ended lately) is answered before the handler runs.
pub(crate) struct AuthorizedStream(pub(crate) Arc<GwStream>);

impl FromRequestParts<Arc<Gateway>> for AuthorizedStream {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Response> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, gw)
            .await
            .map_err(IntoResponse::into_response)?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        authorized(gw, id, &parts.headers, parts.uri.query()).map(AuthorizedStream).map_err(|r| *r)
    }
}
