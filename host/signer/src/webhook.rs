//! The auth webhook, as go-livepeer's: `POST {headers, state}` before a payment is made; its answer
//! `{status, reason?, expiry?, auth_id?}` decides. The caller's `Authorization` (the signer's own API
//! key) and cookies are not passed on.

use std::collections::BTreeMap;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::PaymentState;
use crate::{Signer, WebhookConfig};

/// Most bytes of a webhook answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// What the webhook said yes with.
#[derive(Debug, Default)]
pub(crate) struct Approval {
    /// Unix seconds until which the yes may be reused (0: not cached).
    pub expiry: i64,
    /// The auth id, if it gave one.
    pub auth_id: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    expiry: Option<i64>,
    #[serde(default)]
    auth_id: Option<String>,
}

/// Asks the webhook about `state` for a request with `headers`. A refusal is the status it named
/// with its reason; a webhook that fails or answers nonsense is a 500.
pub(crate) async fn ask(
    signer: &Signer,
    hook: &WebhookConfig,
    headers: &HeaderMap,
    state: &PaymentState,
) -> Result<Approval, ApiError> {
    let mut forwarded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == http::header::AUTHORIZATION || name == http::header::COOKIE {
            continue;
        }
        if let Ok(v) = value.to_str() {
            forwarded.entry(canonical(name.as_str())).or_default().push(v.to_string());
        }
    }
    let mut req = signer
        .http
        .post(&hook.url)
        .timeout(hook.timeout)
        .json(&serde_json::json!({ "headers": forwarded, "state": state }));
    for (k, v) in &hook.headers {
        req = req.header(k, v);
    }
    let failed = |why: String| {
        tracing::warn!(error = %why, "signer auth webhook failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "webhook", "the auth webhook failed")
    };
    let resp = req.send().await.map_err(|e| failed(format!("request: {e}")))?;
    if resp.status() != StatusCode::OK {
        return Err(failed(format!("HTTP {}", resp.status())));
    }
    let body = crate::discovery::read_limited(resp, MAX_ANSWER).await.map_err(|e| failed(format!("answer: {e}")))?;
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| failed(format!("answer: {e}")))?;
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| failed(format!("invalid status {}", answer.status)))?;
    if status != StatusCode::OK {
        let reason = answer.reason.unwrap_or_else(|| "refused by the auth webhook".into());
        return Err(ApiError::new(status, "webhook", reason.chars().take(512).collect::<String>()));
    }
    Ok(Approval { expiry: answer.expiry.unwrap_or(0).max(0), auth_id: answer.auth_id.filter(|a| !a.is_empty()) })
}

/// `x-request-id` → `X-Request-Id`, as Go spells header names.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
