//! `POST /process/request/{path}`: batch jobs, tried on each orchestrator in turn.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::JobRequest;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::auth::{check_api_key, webhook};
use crate::client::{JobPost, PostError, answer_timeout, refusal_text};
use crate::error::ApiError;
use crate::request::{job_from, read_body};
use crate::state::Gateway;
use byoc_protocol::JobParameters;

/// `POST /process/request/{path}`: a batch job, tried on each orchestrator in turn. A 4xx is the
/// client's answer; a 5xx or a transport error moves on; all failing is a 503 with the reasons
/// (go-livepeer answers an empty 200).
pub(crate) async fn batch(
    State(gw): State<Arc<Gateway>>,
    uri: http::Uri,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_api_key(&gw, &h)?;
    let route = byoc_protocol::BatchPath::from_request_path(uri.path()).map_err(ApiError::bad_request)?;
    let path = route.decoded();
    let job = job_from(&h)?;
    let body = read_body(&gw, body).await?;
    let filter = serde_json::from_str::<JobParameters>(&job.parameters).map(|p| p.orchestrators).unwrap_or_default();
    let query = json!({"kind": "batch", "capability": job.capability, "path": path,
        "parameters": job.parameters, "request": job.request});
    webhook(&gw, &h, query).await?;
    let (candidates, mut reasons) = gw.discover(&filter, &job.capability).await?;
    for cand in candidates {
        let url = format!("{}/process/request/{}", cand.url, route.encoded());
        let signed = JobRequest { capability_url: String::new(), ..job.clone() };
        // Priced: pay for the job's timeout when the balance is low, as go-livepeer's gateway does.
        let seconds = job.timeout_seconds.max(1).unsigned_abs();
        let payment = match crate::payments::payment_for(&gw, &cand.token, &job.capability, seconds, None).await {
            Ok(p) => p,
            Err(e) => {
                reasons.push(format!("{}: cannot pay: {e}", cand.url));
                continue;
            }
        };
        let post = JobPost {
            content_type: h.get(http::header::CONTENT_TYPE).cloned(),
            body: body.clone(),
            payment,
            ..JobPost::new(url, signed, answer_timeout(job.timeout_seconds))
        };
        match gw.client.post(post).await {
            Ok(r) => {
                if let (Some(recipient), Some(b)) = (
                    cand.token.ticket_params.as_ref().map(|p| p.recipient),
                    r.headers().get(byoc_protocol::headers::BALANCE).and_then(|v| v.to_str().ok()?.parse::<i64>().ok()),
                ) {
                    crate::payments::sync(&gw.ledger, &recipient, &job.capability, b);
                }
                match r {
                    r if r.status().is_server_error() => {
                        reasons.push(format!("{}: {}", cand.url, refusal_text(r).await));
                    }
                    r => return Ok(answer(r, &cand.url)),
                }
            }
            Err(PostError::Sign(e)) => return Err(e),
            Err(PostError::Unreachable(e)) => reasons.push(format!("{}: {e}", cand.url)),
        }
    }
    let why = format!("no orchestrator completed the job for capability {}", job.capability);
    Err(ApiError::no_orchestrator(why, reasons))
}

/// The orchestrator's answer passed on, streamed, with the headers a client reads.
fn answer(r: reqwest::Response, orchestrator: &str) -> Response {
    let mut out = Response::builder().status(r.status()).header("X-Orchestrator-Url", orchestrator);
    for name in ["content-type", "x-metadata", "livepeer-balance"] {
        if let Some(v) = r.headers().get(name) {
            out = out.header(name, v);
        }
    }
    out.body(Body::from_stream(r.bytes_stream()))
        .unwrap_or_else(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}
