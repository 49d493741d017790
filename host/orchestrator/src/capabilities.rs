//! `POST /capability/register`, `POST /capability/unregister`, `GET /process/token`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use byoc_payment::job::EthAddressCredential;
use http::{HeaderMap, StatusCode};
use serde::Serialize;

use super::{ApiError, Orchestrator, error, headers};
use crate::registry::WorkerRegistration;

/// Checks the worker's `Authorization` against the orchestrator secret, in constant time
/// (both sides are hashed first, so neither length nor content leaks through timing).
fn authorized(orch: &Orchestrator, h: &HeaderMap) -> Result<(), ApiError> {
    let given = h.get(http::header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    match &orch.config.secret {
        Some(secret) => {
            if byoc_protocol::same_secret(given, secret.as_bytes()) {
                Ok(())
            } else {
                Err(ApiError(StatusCode::BAD_REQUEST, "invalid authorization".into()))
            }
        }
        None if orch.config.open_registration => Ok(()),
        None => Err(ApiError(
            StatusCode::FORBIDDEN,
            "worker registration is disabled: no orchestrator secret is configured (or enable open registration)"
                .into(),
        )),
    }
}

/// go-livepeer answers registration with the literal text `ok` labelled as JSON; pytrickle
/// only looks at the status.
fn ok() -> Response {
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], "ok").into_response()
}

pub(super) async fn register(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&orch, &h) {
        return r.into_response();
    }
    let reg: WorkerRegistration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Error registering capability: {e}")),
    };
    match orch.registry.register_worker(&reg) {
        Ok(cap) => {
            tracing::info!(capability = %cap.name, url = %reg.url, capacity = cap.capacity.limit(), "worker registered");
            ok()
        }
        Err(e) if e.is_conflict() => error(StatusCode::CONFLICT, format!("Error registering capability: {e}")),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("Error registering capability: {e}")),
    }
}

pub(super) async fn unregister(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&orch, &h) {
        return r.into_response();
    }
    let name = String::from_utf8_lossy(&body);
    match orch.registry.unregister(name.trim()) {
        Ok(removed) => {
            if removed {
                tracing::info!(capability = %name.trim(), "worker unregistered");
            }
            ok()
        }
        Err(e) => error(StatusCode::CONFLICT, format!("Error unregistering capability: {e}")),
    }
}

#[derive(Serialize)]
struct PriceInfo {
    #[serde(rename = "pricePerUnit", skip_serializing_if = "is_zero")]
    price_per_unit: u128,
    #[serde(rename = "pixelsPerUnit", skip_serializing_if = "is_zero")]
    pixels_per_unit: u128,
}

fn is_zero(v: &u128) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// go-livepeer's `JobToken`; zero values are omitted as Go's `omitempty` does.
#[derive(Serialize)]
struct JobToken {
    sender_address: EthAddressCredential,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_params: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "is_zero_i64")]
    balance: i64,
    price: PriceInfo,
    service_addr: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    available_capacity: i64,
    #[serde(rename = "LastNonce")]
    last_nonce: u32,
}

pub(super) async fn token(State(orch): State<Arc<Orchestrator>>, h: HeaderMap) -> Response {
    let Some(cred) = h.get(headers::ETH_ADDRESS).and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Must have eth address and signature on address in Livepeer-Eth-Address header",
        );
    };
    let sender_address = match EthAddressCredential::from_header(cred) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid eth address header: {e}")),
    };
    let sender = match sender_address.verify(orch.config.signatures) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid eth address header: {e}")),
    };
    let Some(capability) = h.get(headers::CAPABILITY).and_then(|v| v.to_str().ok()).filter(|c| !c.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Job capabilities not provided in Livepeer-Capability header");
    };
    let (price, available) = match orch.registry.get(capability) {
        // Without a key (free mode) nothing is charged, whatever the announced price.
        Some(cap) if orch.payments.is_some() => (cap.price, cap.capacity.available()),
        Some(cap) => (crate::registry::Price::FREE, cap.capacity.available()),
        None => (crate::registry::Price::FREE, 0),
    };
    // Priced: fresh ticket params (a new seed every time, so a token is good for one payment)
    // and the sender's balance for this capability.
    let (ticket_params, balance) = match &orch.payments {
        Some(p) if price.per_unit > 0 => {
            let wire = byoc_payment::Price {
                price_per_unit: i64::try_from(price.per_unit).unwrap_or(i64::MAX),
                pixels_per_unit: i64::try_from(price.scaling).unwrap_or(i64::MAX).max(1),
            };
            let params = p.ticket_params(&sender, &wire).and_then(|t| serde_json::to_value(t).ok());
            (params, p.balance(&sender, capability).to_i64_saturating())
        }
        _ => (None, 0),
    };
    // The credential is echoed back, as go-livepeer does.
    Json(JobToken {
        sender_address,
        ticket_params,
        balance,
        price: PriceInfo { price_per_unit: price.per_unit, pixels_per_unit: price.scaling },
        service_addr: orch.config.service_url.clone(),
        available_capacity: i64::from(available),
        last_nonce: 0,
    })
    .into_response()
}

/// `POST /plugins/reload` (body: a plugin name, or empty for all): loads the plugins' files
/// again. New streams get the new code; running ones finish on the old. Same authorization as
/// worker registration. Answers a JSON list of `{name, ok, error}`.
pub(super) async fn reload_plugins(State(orch): State<Arc<Orchestrator>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&orch, &h) {
        return r.into_response();
    }
    let Some((runtime, capacity)) = orch.plugin_runtime() else {
        return error(StatusCode::NOT_FOUND, "this node hosts no plugins");
    };
    let name = String::from_utf8_lossy(&body).trim().to_string();
    let results =
        if name.is_empty() { runtime.reload_all().await } else { vec![(name.clone(), runtime.reload(&name).await)] };
    orch.registry.register_plugins(&runtime, capacity);
    let report: Vec<serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| match r {
            Ok(p) => serde_json::json!({"name": name, "ok": true, "version": p.describe().version}),
            Err(e) => serde_json::json!({"name": name, "ok": false, "error": e.to_string()}),
        })
        .collect();
    let status = if report.iter().all(|r| r["ok"] == true) { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    (status, Json(report)).into_response()
}
