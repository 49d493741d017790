//! `POST /capability/register`, `POST /capability/unregister`, `GET /process/token`, `GET /capabilities`,
//! `GET /discovery`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use byoc_payment::job::EthAddressCredential;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::Serialize;

use byoc_protocol::headers;

use crate::backend::Backend;
use crate::error::ApiError;
use crate::orchestrator::{OfferedPlugins, Orchestrator};
use crate::registry::{Capability, Price, WorkerRegistration};
use byoc_protocol::{Offered, OfferedList, OfferedPrice, StreamLegs};

/// A request whose `Authorization` is the orchestrator secret (worker registration, plugin
/// reload); extracting it refuses any other.
pub(crate) struct Authorized;

impl FromRequestParts<Arc<Orchestrator>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, orch: &Arc<Orchestrator>) -> Result<Self, ApiError> {
        authorized(orch, &parts.headers).map(|()| Authorized)
    }
}

/// Checks the worker's `Authorization` against the orchestrator secret, in constant time
/// (both sides are hashed first, so neither length nor content leaks through timing).
fn authorized(orch: &Orchestrator, h: &HeaderMap) -> Result<(), ApiError> {
    let given = h.get(http::header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    match &orch.config.secret {
        Some(secret) => {
            if byoc_protocol::same_secret(given, secret.as_bytes()) {
                Ok(())
            } else {
                Err(ApiError::bad_request("invalid authorization"))
            }
        }
        None if orch.config.open_registration => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "worker registration is disabled: no orchestrator secret is configured (or enable open registration)",
        )),
    }
}

/// go-livepeer answers registration with the literal text `ok` labelled as JSON; pytrickle
/// only looks at the status.
fn ok() -> Response {
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], "ok").into_response()
}

pub(crate) async fn register(
    State(orch): State<Arc<Orchestrator>>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    let refused = |status: StatusCode, e: &dyn std::fmt::Display| {
        ApiError::new(status, format!("Error registering capability: {e}"))
    };
    let reg: WorkerRegistration = serde_json::from_slice(&body).map_err(|e| refused(StatusCode::BAD_REQUEST, &e))?;
    let cap = orch
        .registry
        .register_worker(&reg)
        .map_err(|e| refused(if e.is_conflict() { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST }, &e))?;
    tracing::info!(capability = %cap.name, url = %reg.url, capacity = cap.capacity.limit(), "worker registered");
    Ok(ok())
}

pub(crate) async fn unregister(
    State(orch): State<Arc<Orchestrator>>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = String::from_utf8_lossy(&body);
    let removed = orch
        .registry
        .unregister(name.trim())
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("Error unregistering capability: {e}")))?;
    if removed {
        tracing::info!(capability = %name.trim(), "worker unregistered");
    }
    Ok(ok())
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
    /// The capability asked for, when it is offered here (byoc's addition; go-livepeer's gateways ignore
    /// it): byoc gateways read its legs to turn on those a start does not name.
    #[serde(skip_serializing_if = "Option::is_none")]
    capability: Option<Offered>,
}

/// The price a job pays for `cap` here: nothing without a key (free mode), whatever the announced price.
fn charged(orch: &Orchestrator, cap: &Capability) -> Price {
    if orch.payments.is_some() { cap.price } else { Price::FREE }
}

/// `cap` as this node offers it now.
fn offered(orch: &Orchestrator, cap: &Capability) -> Offered {
    let price = charged(orch, cap);
    let (kind, version, legs, params_schema) = match &cap.backend {
        Backend::Plugin(p) => match p.current() {
            Some(plugin) => {
                let info = plugin.describe();
                let l = info.legs;
                let legs = StreamLegs { video_in: l.video_in, video_out: l.video_out, data: l.data, events: l.events };
                // A schema that is not JSON is left out rather than passed on as text.
                let schema = info.params_schema.as_deref().and_then(|s| serde_json::from_str(s).ok());
                ("plugin", Some(info.version.clone()), Some(legs), schema)
            }
            None => ("plugin", None, None, None),
        },
        Backend::Worker(_) => ("worker", None, None, None),
    };
    Offered {
        name: cap.name.clone(),
        description: cap.description.clone(),
        kind: kind.to_string(),
        version,
        legs,
        params_schema,
        price: OfferedPrice { price_per_unit: price.per_unit, pixels_per_unit: price.scaling.max(1) },
        capacity: cap.capacity.limit(),
        available_capacity: cap.capacity.available(),
    }
}

/// `GET /capabilities`: every capability offered here, by name (public: it says no more than the job
/// tokens any sender can ask for).
pub(crate) async fn list(State(orch): State<Arc<Orchestrator>>) -> Json<OfferedList> {
    let capabilities =
        orch.registry.names().iter().filter_map(|name| orch.registry.get(name)).map(|c| offered(&orch, &c)).collect();
    Json(OfferedList { capabilities })
}

/// One orchestrator in the discovery list the official Python SDK reads (`discovery_url`): it takes
/// `address` (where it sends jobs); the capabilities are for people.
#[derive(Serialize)]
pub(crate) struct Discovered {
    address: String,
    capabilities: Vec<String>,
}

/// `GET /discovery[?caps=…]`: this orchestrator, as a one-entry JSON list, with its capabilities' names.
/// Each `caps` value (the SDK's `pipeline/model` form, or a bare name) must name a capability here (its
/// last `/` segment, or the whole value): otherwise the list is empty.
pub(crate) async fn discovery(
    State(orch): State<Arc<Orchestrator>>,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
) -> Json<Vec<Discovered>> {
    let names = orch.registry.names();
    let offered = |cap: &str| {
        let model = cap.rsplit('/').next().unwrap_or(cap);
        names.iter().any(|n| n == cap || n == model)
    };
    let wanted = query.iter().filter(|(k, _)| k == "caps").map(|(_, v)| v.as_str());
    if !wanted.clone().all(offered) {
        return Json(Vec::new());
    }
    Json(vec![Discovered { address: orch.config.service_url.clone(), capabilities: names }])
}

pub(crate) async fn token(State(orch): State<Arc<Orchestrator>>, h: HeaderMap) -> Result<Response, ApiError> {
    let cred = h.get(headers::ETH_ADDRESS).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::bad_request("Must have eth address and signature on address in Livepeer-Eth-Address header")
    })?;
    let invalid = |e: &dyn std::fmt::Display| ApiError::bad_request(format!("Invalid eth address header: {e}"));
    let sender_address = EthAddressCredential::from_header(cred).map_err(|e| invalid(&e))?;
    let sender = sender_address.verify(orch.config.signatures).map_err(|e| invalid(&e))?;
    let capability = h
        .get(headers::CAPABILITY)
        .and_then(|v| v.to_str().ok())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("Job capabilities not provided in Livepeer-Capability header"))?;
    let cap = orch.registry.get(capability);
    let (price, available) = match &cap {
        Some(cap) => (charged(&orch, cap), cap.capacity.available()),
        None => (Price::FREE, 0),
    };
    // Priced: fresh ticket params (a new seed every time, so a token is good for one payment)
    // and the sender's balance for this capability.
    let (ticket_params, balance) = match &orch.payments {
        Some(p) if price.per_unit > 0 => {
            let wire = byoc_payment::Price {
                price_per_unit: i64::try_from(price.per_unit).unwrap_or(i64::MAX),
                pixels_per_unit: i64::try_from(price.scaling).unwrap_or(i64::MAX).max(1),
            };
            let params = p.ticket_params(&sender, &wire).await?.and_then(|t| serde_json::to_value(t).ok());
            (params, p.balance(&sender, capability).to_i64_saturating())
        }
        _ => (None, 0),
    };
    // The credential is echoed back, as go-livepeer does.
    Ok(Json(JobToken {
        sender_address,
        ticket_params,
        balance,
        price: PriceInfo { price_per_unit: price.per_unit, pixels_per_unit: price.scaling },
        service_addr: orch.config.service_url.clone(),
        available_capacity: i64::from(available),
        last_nonce: 0,
        capability: cap.map(|c| offered(&orch, &c)),
    })
    .into_response())
}

/// `POST /plugins/reload` (body: a plugin name, or empty for all): loads the plugins' files
/// again. New streams get the new code; running ones finish on the old. Same authorization as
/// worker registration. Answers a JSON list of `{name, ok, error}`.
pub(crate) async fn reload_plugins(
    State(orch): State<Arc<Orchestrator>>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    let OfferedPlugins { runtime, default_capacity } =
        orch.offered_plugins().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this node hosts no plugins"))?;
    let name = String::from_utf8_lossy(&body).trim().to_string();
    let results =
        if name.is_empty() { runtime.reload_all().await } else { vec![(name.clone(), runtime.reload(&name).await)] };
    orch.registry.register_plugins(&runtime, default_capacity);
    let report: Vec<serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| match r {
            Ok(p) => serde_json::json!({"name": name, "ok": true, "version": p.describe().version}),
            Err(e) => serde_json::json!({"name": name, "ok": false, "error": e.to_string()}),
        })
        .collect();
    let status = if report.iter().all(|r| r["ok"] == true) { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(report)).into_response())
}
