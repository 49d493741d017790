//! `POST /process/request/{path}`: batch jobs, tried on each orchestrator in turn.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::JobRequest;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::discovery::discover;
use super::start::{job_from, read_body};
use super::{Gateway, check_api_key, refuse, webhook};
use byoc_protocol::JobParameters;
use byoc_protocol::headers;

/// `POST /process/request/{path}`: a batch job, tried on each orchestrator in turn. A 4xx is the
/// client's answer; a 5xx or a transport error moves on; all failing is a 503 with the reasons
/// (go-livepeer answers an empty 200).
pub(crate) async fn batch(State(gw): State<Arc<Gateway>>, uri: http::Uri, h: HeaderMap, body: Body) -> Response {
    try_or_respond!(check_api_key(&gw, &h));
    let route = try_or_respond!(
        byoc_protocol::BatchPath::from_request_path(uri.path()).map_err(|m| refuse(StatusCode::BAD_REQUEST, m))
    );
    let path = route.decoded();
    let job = try_or_respond!(job_from(&h));
    let body = try_or_respond!(read_body(&gw, body).await);
    let filter = serde_json::from_str::<JobParameters>(&job.parameters).map(|p| p.orchestrators).unwrap_or_default();
    let query = json!({"kind": "batch", "capability": job.capability, "path": path,
        "parameters": job.parameters, "request": job.request});
    try_or_respond!(webhook(&gw, &h, query).await);
    let credential = try_or_respond!(gw.credential());
    let (candidates, mut reasons) =
        discover(&gw.http, &gw.pool().await, &filter, &job.capability, &credential, gw.config.token_timeout).await;
    for cand in candidates {
        let signed = try_or_respond!(gw.sign(JobRequest { capability_url: String::new(), ..job.clone() }));
        let mut req = gw
            .http
            .post(format!("{}/process/request/{}", cand.url, route.encoded()))
            .header(headers::LIVEPEER, signed)
            .timeout(Duration::from_secs(job.timeout_seconds.clamp(1, 3600).unsigned_abs() + 5))
            .body(body.clone());
        if let Some(ct) = h.get(http::header::CONTENT_TYPE) {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        match req.send().await {
            Ok(r) if r.status().is_server_error() => {
                let status = r.status();
                reasons.push(format!("{}: {status} {}", cand.url, r.text().await.unwrap_or_default().trim()));
            }
            Ok(r) => {
                let mut out = Response::builder().status(r.status()).header("X-Orchestrator-Url", cand.url.as_str());
                for name in ["content-type", "x-metadata", "livepeer-balance"] {
                    if let Some(v) = r.headers().get(name) {
                        out = out.header(name, v);
                    }
                }
                return out
                    .body(Body::from_stream(r.bytes_stream()))
                    .unwrap_or_else(|e| super::error(StatusCode::BAD_GATEWAY, e.to_string()));
            }
            Err(e) => reasons.push(format!("{}: {e}", cand.url)),
        }
    }
    let body = json!({ "error": format!("no orchestrator completed the job for capability {}", job.capability), "reasons": reasons });
    metrics::counter!("byoc_gateway_errors_total", "kind" => "no_orchestrator").increment(1);
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
