//! `POST /generate-live-payment`: tickets and segment credentials for an `OrchestratorInfo`, as
//! go-livepeer's remote signer answers (`{payment, segCreds, state}`), with a state signed by this
//! signer.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use byoc_payment::proto::{self, OrchestratorInfo};
use byoc_payment::{Balance, Price, Ticket, TicketParams, random_hex, segcreds, tickets_for_cost};
use http::HeaderMap;
use prost::Message;
use serde::Deserialize;

use crate::Signer;
use crate::error::ApiError;
use crate::state::{PaymentState, SignedState, now_ms, parse_rfc3339, rfc3339};

/// go-livepeer's `RemotePaymentRequest`, the fields byoc reads (others, e.g. `capabilities`, are
/// ignored).
#[derive(Deserialize)]
struct PaymentRequest {
    /// base64 of the `OrchestratorInfo` protobuf.
    orchestrator: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    capability: Option<String>,
    #[serde(default)]
    state: Option<SignedState>,
    #[serde(rename = "ManifestID", default)]
    manifest_id: Option<String>,
    /// With no `type`: the units to pay for at the price, as go-livepeer's signer bills them; BYOC prices
    /// are per second, so these are seconds (a gateway asks for what its balance is short of).
    #[serde(rename = "inPixels", default)]
    in_pixels: Option<i64>,
    #[serde(rename = "maxPrice", default)]
    max_price: Option<MaxPrice>,
    #[serde(default)]
    app: Option<String>,
}

/// The most seconds one payment pays for when the caller names them (`inPixels`): a day.
const MAX_ASKED_SECONDS: u64 = 86_400;

/// A client's ceiling: `{price, currency: "wei", unit: "seconds"}`.
#[derive(Deserialize)]
struct MaxPrice {
    price: serde_json::Value,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    unit: String,
}

impl MaxPrice {
    fn to_price(&self) -> Result<Price, ApiError> {
        if !self.currency.eq_ignore_ascii_case("wei") {
            return Err(ApiError::input("maxPrice.currency must be \"wei\""));
        }
        if self.unit != "seconds" {
            return Err(ApiError::input("maxPrice.unit must be \"seconds\" (BYOC prices are per second)"));
        }
        let wei = match &self.price {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match wei {
            Some(w) if w > 0 => Price::wei_per_second(w).map_err(|e| ApiError::input(format!("maxPrice: {e}"))),
            _ => Err(ApiError::input("maxPrice.price must be a positive whole number of wei")),
        }
    }
}

pub(crate) async fn generate(State(signer): State<Arc<Signer>>, headers: HeaderMap, body: Bytes) -> Response {
    match make(&signer, &headers, &body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => {
            signer.refused("generate-live-payment", &e);
            e.into_response()
        }
    }
}

/// Everything a payment needs from the request, checked.
struct Checked {
    params: TicketParams,
    params_proto: proto::TicketParams,
    price: Price,
    expected: proto::PriceInfo,
    info: OrchestratorInfo,
    orchestrator: String,
}

fn check(req: &PaymentRequest) -> Result<Checked, ApiError> {
    let bytes = B64
        .decode(req.orchestrator.trim())
        .map_err(|_| ApiError::input("orchestrator must be the base64 of an OrchestratorInfo protobuf"))?;
    let info = OrchestratorInfo::decode(bytes.as_slice())
        .map_err(|e| ApiError::input(format!("orchestrator is not an OrchestratorInfo protobuf: {e}")))?;
    let params_proto = info
        .ticket_params
        .clone()
        .ok_or_else(|| ApiError::input("the orchestrator info has no ticket params: the orchestrator is not priced"))?;
    let params =
        TicketParams::from_proto(&params_proto).map_err(|e| ApiError::input(format!("invalid ticket params: {e}")))?;
    if params.face_value.is_zero() {
        return Err(ApiError::input("the ticket params' face value is 0: nothing can be paid"));
    }
    if params.win_prob.is_zero() {
        return Err(ApiError::input("the ticket params' win probability is 0: nothing can be paid"));
    }
    let capability = req.capability.as_deref().filter(|c| !c.is_empty());
    let listed = capability.and_then(|c| info.byoc_price(c)).or(info.price_info.as_ref());
    let listed = listed.ok_or_else(|| ApiError::input("the orchestrator info has no price"))?;
    let price = Price { price_per_unit: listed.price_per_unit, pixels_per_unit: listed.pixels_per_unit };
    price.check().map_err(|e| ApiError::input(format!("invalid price: {e}")))?;
    if price.is_free() {
        return Err(ApiError::input("the orchestrator's price is 0: nothing to pay"));
    }
    let expected = info.price_info.clone().unwrap_or_else(|| listed.clone());
    let orchestrator = params.recipient.to_checksum();
    Ok(Checked { params, params_proto, price, expected, info, orchestrator })
}

/// Refuses `price` over `ceiling` with 481.
fn under(price: &Price, ceiling: &Price, what: &str) -> Result<(), ApiError> {
    let (p, c) = (price.per_second(), ceiling.per_second());
    match (p, c) {
        (Ok(p), Ok(c)) if p > c => Err(ApiError::price(format!(
            "the orchestrator's price ({}/{} wei per second) is over {what} ({}/{} wei per second)",
            price.price_per_unit, price.pixels_per_unit, ceiling.price_per_unit, ceiling.pixels_per_unit
        ))),
        (Ok(_), Ok(_)) => Ok(()),
        _ => Err(ApiError::input("invalid price")),
    }
}

async fn make(signer: &Signer, headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let req: PaymentRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::input(format!("invalid payment request: {e}")))?;
    let c = check(&req)?;
    let capability = req.capability.as_deref().filter(|c| !c.is_empty());
    let now = now_ms();

    // The session so far: a state this signer issued, for this orchestrator, not older than the
    // last one it issued.
    let previous = match &req.state {
        Some(sealed) => {
            let st = sealed.open(&signer.address)?;
            if st.orchestrator_address != c.orchestrator {
                return Err(ApiError::state(format!(
                    "the state is for orchestrator {}, not {}",
                    st.orchestrator_address, c.orchestrator
                )));
            }
            Some(st)
        }
        None => None,
    };

    if let Some(ceiling) = signer.ceiling(capability) {
        under(&c.price, &ceiling, "the signer's maximum")?;
    }
    if let Some(max) = &req.max_price {
        under(&c.price, &max.to_price()?, "the request's maxPrice")?;
    }
    if let Some(st) = &previous {
        let first = Price { price_per_unit: st.initial_price_per_unit, pixels_per_unit: st.initial_pixels_per_unit };
        if first.check().is_ok() && !first.is_free() {
            under(&c.price, &first, "the session's first price")?;
        }
    }

    // What to pay for: the units asked for (no `type`, `inPixels` > 0), else the opening seconds, or
    // the time since the last payment.
    let asked = req.in_pixels.filter(|n| *n > 0 && req.kind.as_deref().is_none_or(str::is_empty));
    let seconds = match (asked, &previous) {
        (Some(n), _) => {
            let n = n.unsigned_abs();
            if n > MAX_ASKED_SECONDS {
                return Err(ApiError::input(format!(
                    "inPixels asks for {n} s; at most {MAX_ASKED_SECONDS} s are paid at once"
                )));
            }
            n
        }
        (None, None) => signer.config.opening_seconds,
        (None, Some(st)) => {
            let last = parse_rfc3339(&st.last_update).ok_or_else(|| ApiError::state("invalid state: LastUpdate"))?;
            let ms = u64::try_from(now.saturating_sub(last)).unwrap_or(0);
            ms.div_ceil(1000).max(1)
        }
    };
    let cost = c.price.cost(seconds).map_err(|e| ApiError::input(format!("invalid price: {e}")))?;
    let ev = c.params.ev();
    let n = tickets_for_cost(&cost, &ev);
    if n == 0 {
        return Err(ApiError::input("the ticket params' expected value is 0: nothing can be paid"));
    }
    if n > signer.config.max_tickets {
        return Err(ApiError::input(format!(
            "{seconds} s at this price needs more than {} tickets: raise the orchestrator's ticket EV (or lower the price)",
            signer.config.max_tickets
        )));
    }

    // Reserve the sequence number and the nonces before anything can wait, so that two requests with
    // the same state cannot both pass and no nonce is handed out twice.
    let at = Instant::now();
    let state_id = previous.as_ref().map_or_else(|| random_hex(16), |st| st.state_id.clone());
    let sequence = previous.as_ref().map_or(0, |st| st.sequence_number).saturating_add(1);
    {
        let mut sessions = signer.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = sessions.get(&state_id, at)
            && sequence <= last
        {
            return Err(ApiError::state(format!(
                "replayed state: sequence number {} is older than the last this signer issued ({last})",
                sequence - 1
            )));
        }
        sessions.put(state_id.clone(), sequence, at);
    }
    let first_nonce = {
        let mut nonces = signer.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let used = nonces
            .get(&c.params.recipient_rand_hash, at)
            .unwrap_or(0)
            .max(previous.as_ref().map_or(0, |st| st.sender_nonce));
        let Some(last) = used.checked_add(n).filter(|last| *last < u32::MAX) else {
            drop(nonces);
            rollback(signer, &state_id, sequence, at);
            return Err(ApiError::input("ticket nonces exhausted for these params: get fresh ticket params"));
        };
        nonces.put(c.params.recipient_rand_hash, last, at);
        used + 1
    };

    let spent = match &previous {
        Some(_) => cost.clone(),
        None => Balance::zero(),
    };
    let before = previous.as_ref().and_then(|st| Balance::from_exact(&st.balance).ok()).unwrap_or_else(Balance::zero);
    let balance = &(&before + &ev.times(u64::from(n))) - &spent;
    let manifest_id = req
        .manifest_id
        .clone()
        .filter(|m| !m.is_empty() && m.len() <= 256)
        .or_else(|| previous.as_ref().map(|st| st.pm_session_id.clone()).filter(|m| !m.is_empty()))
        .unwrap_or_else(|| random_hex(16));
    let mut next = PaymentState {
        state_id: state_id.clone(),
        pm_session_id: manifest_id.clone(),
        last_update: rfc3339(now),
        orchestrator_address: c.orchestrator.clone(),
        app: req.app.clone().or_else(|| previous.as_ref().map(|st| st.app.clone())).unwrap_or_default(),
        auth_expiry: previous.as_ref().map_or(0, |st| st.auth_expiry),
        sender_nonce: first_nonce + n - 1,
        balance: balance.exact(),
        initial_price_per_unit: previous.as_ref().map_or(c.price.price_per_unit, |st| st.initial_price_per_unit),
        initial_pixels_per_unit: previous.as_ref().map_or(c.price.pixels_per_unit, |st| st.initial_pixels_per_unit),
        kind: req.kind.clone().or_else(|| previous.as_ref().map(|st| st.kind.clone())).unwrap_or_default(),
        sequence_number: sequence,
        auth_id: previous.as_ref().map(|st| st.auth_id.clone()).unwrap_or_default(),
    };
    next.app.truncate(256);
    next.kind.truncate(64);

    if let Some(hook) = &signer.config.webhook
        && next.auth_expiry <= now / 1000
    {
        match crate::webhook::ask(signer, hook, headers, &next).await {
            Ok(ok) => {
                let header_id = headers.get("signer-auth-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                if let Some(id) = ok.auth_id.or(header_id) {
                    if !next.auth_id.is_empty() && next.auth_id != id {
                        rollback(signer, &state_id, sequence, at);
                        tracing::warn!("signer auth webhook changed a session's auth id");
                        return Err(ApiError::new(
                            http::StatusCode::INTERNAL_SERVER_ERROR,
                            "webhook",
                            "the session's auth id changed",
                        ));
                    }
                    next.auth_id = id.chars().take(256).collect();
                }
                next.auth_expiry = ok.expiry;
            }
            Err(e) => {
                rollback(signer, &state_id, sequence, at);
                return Err(e);
            }
        }
    }

    let key = &signer.config.key;
    let sender = signer.address;
    let mut senders = Vec::with_capacity(n as usize);
    for nonce in first_nonce..=first_nonce + (n - 1) {
        let sig = Ticket::new(&c.params, c.params.expiration_params, sender, nonce).sign(key).map_err(|e| {
            tracing::error!(error = %e, "signing a ticket failed");
            ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "signing a ticket failed")
        })?;
        senders.push(proto::TicketSenderParams { sender_nonce: nonce, sig: sig.0.to_vec() });
    }
    let payment = proto::Payment {
        expiration_params: c.params_proto.expiration_params.clone(),
        ticket_params: Some(c.params.to_proto()),
        sender: sender.0.to_vec(),
        ticket_sender_params: senders,
        expected_price: Some(c.expected.clone()),
    };
    let seg = segcreds::seg_creds(
        key,
        &manifest_id,
        i64::try_from(sequence).unwrap_or(i64::MAX),
        b"",
        c.info.auth_token.clone(),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "signing segment credentials failed");
        ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "signing failed")
    })?;
    let sealed = SignedState::seal(&next, key)?;
    let kind = if previous.is_some() { "session" } else { "first" };
    metrics::counter!("byoc_signer_payments_total", "kind" => kind).increment(1);
    metrics::counter!("byoc_signer_tickets_total").increment(u64::from(n));
    tracing::debug!(orchestrator = %c.orchestrator, tickets = n, seconds, sequence, "payment made");
    Ok(serde_json::json!({ "payment": payment.to_header(), "segCreds": seg, "state": sealed }))
}

/// Gives back a sequence number reserved for a payment that was not made.
fn rollback(signer: &Signer, state_id: &str, sequence: u64, at: Instant) {
    let mut sessions = signer.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if sessions.get(&state_id.to_string(), at) == Some(sequence) {
        sessions.put(state_id.to_string(), sequence - 1, at);
    }
}
