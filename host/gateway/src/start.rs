//! `POST /process/stream/start`: checks the request, finds an orchestrator and starts the stream there;
//! and `GET /capabilities`, what a client can start.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::auth::{check_api_key, webhook};
use crate::error::ApiError;
use crate::failover::{attach, start_on};
use crate::model::{Attachment, GwStream};
use crate::request::{job_from, read_body};
use crate::state::Gateway;
use crate::urls::{Served, rtmp_destinations, stream_urls};
use byoc_protocol::{ID_PART_MAX, JobParameters, valid_id_part, with_default_legs};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StartRequest {
    #[serde(default)]
    pub(crate) stream_name: String,
    #[serde(default)]
    pub(crate) stream_id: String,
    #[serde(default)]
    pub(crate) rtmp_output: String,
    /// go-livepeer clients send a string holding a JSON object; an object is accepted too.
    #[serde(default)]
    pub(crate) params: Value,
}

/// `POST /process/stream/start`: the stream's URLs once an orchestrator has accepted it.
pub(crate) async fn start(State(gw): State<Arc<Gateway>>, h: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    check_api_key(&gw, &h)?;
    let job = job_from(&h)?;
    let body = read_body(&gw, body).await?;
    let req: StartRequest = if body.is_empty() {
        StartRequest::default()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => serde_json::from_value(v)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON request body: {e}")))?,
            Ok(_) => return Err(ApiError::bad_request("the request body must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("invalid JSON request body: {e}"))),
        }
    };
    let params = match &req.params {
        Value::Null => json!({}),
        Value::String(s) if s.trim().is_empty() => json!({}),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(ApiError::bad_request("invalid model params: must be a JSON object")),
        },
        v @ Value::Object(_) => v.clone(),
        _ => return Err(ApiError::bad_request("invalid model params: must be a JSON object")),
    };
    let jp = JobParameters::parse(&job.parameters).map_err(ApiError::bad_request)?;
    let base = if req.stream_id.is_empty() { byoc_payment::random_hex(8) } else { req.stream_id.clone() };
    let id = if req.stream_name.is_empty() { base.clone() } else { format!("{}-{base}", req.stream_name) };
    if !valid_id_part(&base) || (!req.stream_name.is_empty() && !valid_id_part(&req.stream_name)) {
        return Err(ApiError::bad_request(format!(
            "stream_name and stream_id may use letters, digits, '-', '_' and '.' (at most {ID_PART_MAX} each; not '.' or '..')"
        )));
    }
    if gw.lock().contains_key(&id) {
        return Err(ApiError::new(http::StatusCode::CONFLICT, format!("stream already exists: {id}")));
    }
    let query = json!({"kind": "stream", "capability": job.capability, "stream_id": id, "params": params,
        "parameters": job.parameters, "request": job.request});
    webhook(&gw, &h, query).await?;
    let rtmp_outputs = rtmp_destinations(&req.rtmp_output)?;
    let (candidates, mut reasons) = gw.discover(&jp.orchestrators, &job.capability).await?;
    if candidates.is_empty() && gw.catalog().await.lacks(&job.capability) {
        let why = format!(
            "unknown capability {}: no orchestrator offers it (GET /capabilities lists what they do)",
            job.capability
        );
        return Err(ApiError::new(http::StatusCode::NOT_FOUND, why));
    }
    // The first orchestrator that refused the request itself (bad params, params beyond its
    // limits): when none takes the stream, the client gets that 4xx rather than a 503.
    let mut refused_request = None;
    for cand in candidates {
        // The legs the start does not name are those the capability declares (when the orchestrator says);
        // a leg it names that the capability lacks is the request's fault.
        let job = match cand.token.capability.as_ref().and_then(|offered| offered.legs) {
            Some(legs) => {
                let parameters =
                    with_default_legs(&job.parameters, &job.capability, &legs).map_err(ApiError::bad_request)?;
                byoc_payment::job::JobRequest { parameters, ..job.clone() }
            }
            None => job.clone(),
        };
        let jp = JobParameters::parse(&job.parameters).map_err(ApiError::bad_request)?;
        let urls = match start_on(&gw, &cand, &id, &job.capability, &job.parameters, job.timeout_seconds, &params).await
        {
            Ok(u) => u,
            Err(e) => {
                if e.of_the_request() && refused_request.is_none() {
                    refused_request = e.status.map(|status| (status, e.reason.clone()));
                }
                reasons.push(e.reason);
                continue;
            }
        };
        let cancel = CancellationToken::new();
        let att = Attachment::new(&cand, urls, cancel.child_token());
        att.set_own_balance(&job.parameters);
        let stream = Arc::new(GwStream::new(id.clone(), &job, params.clone(), att.clone(), cancel));
        gw.lock().insert(id.clone(), stream.clone());
        attach(&gw, &stream, att);
        if jp.enable_video_egress {
            for destination in &rtmp_outputs {
                crate::media::push_output(&stream, destination.clone());
            }
        }
        tracing::info!(stream_id = %id, orchestrator = %cand.url, capability = %job.capability, "stream started");
        let label = byoc_protocol::telemetry::capability_label(&job.capability);
        metrics::counter!("byoc_gateway_streams_started_total", "capability" => label).increment(1);
        metrics::gauge!("byoc_gateway_streams_active").increment(1.0);
        return Ok(Json(stream_urls(&Served::by(&gw), stream.as_ref(), &jp, &rtmp_outputs)));
    }
    if let Some((status, refusal)) = refused_request {
        return Err(ApiError::request_refused(status, format!("the stream's request was refused: {refusal}"), reasons));
    }
    let why = format!("no orchestrator accepted the stream for capability {}", job.capability);
    Err(ApiError::no_orchestrator(why, reasons))
}

/// `GET /capabilities`: every capability the gateway's orchestrators offer, merged by name (gathered at
/// most every few seconds). Needs the API key when the gateway has one.
pub(crate) async fn capabilities(State(gw): State<Arc<Gateway>>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    check_api_key(&gw, &h)?;
    let catalog = gw.catalog().await;
    let entries: Vec<&crate::discovery::CatalogEntry> = catalog.entries.values().collect();
    Ok(Json(json!({
        "capabilities": entries,
        "orchestrators_answered": catalog.answered,
        "unanswered": catalog.unanswered,
    })))
}
