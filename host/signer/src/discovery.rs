//! `GET /discover-orchestrators[?caps=X&caps=Y]`: the orchestrators of the signer's own list, each
//! polled at `GET {url}/capabilities`, in the shape go-livepeer's remote discovery answers and the SDK
//! reads (`[{address, score, capabilities}]`, `address` the orchestrator's service URL). Capabilities
//! priced over the signer's ceilings are left out. 503 until one orchestrator has answered.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use byoc_payment::Price;
use byoc_protocol::OfferedList;
use http::StatusCode;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::Signer;
use crate::error::ApiError;

/// Most bytes of one orchestrator's capability list read.
const MAX_LIST: usize = 1024 * 1024;
/// Most capabilities kept per orchestrator, and most `caps` filters read.
const MAX_CAPS: usize = 1024;

/// One orchestrator as discovery lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entry {
    /// Its service URL.
    address: String,
    /// Higher is better; every listed orchestrator scores 1.
    score: f64,
    /// The capabilities it offers under the signer's ceilings.
    capabilities: Vec<String>,
}

/// The last usable snapshot (`None` until one orchestrator answered).
#[derive(Default)]
pub(crate) struct Snapshot(RwLock<Option<Vec<Entry>>>);

pub(crate) async fn list(State(signer): State<Arc<Signer>>, RawQuery(query): RawQuery) -> Response {
    let caps = caps(query.as_deref().unwrap_or_default());
    let snapshot = signer.discovery.0.read().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(entries) = snapshot else {
        let e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "no orchestrator has answered yet (see the signer's --orchestrator list)",
        );
        signer.refused("discover-orchestrators", &e);
        return e.into_response();
    };
    let matching: Vec<Entry> =
        entries.into_iter().filter(|e| caps.is_empty() || e.capabilities.iter().any(|c| caps.contains(c))).collect();
    Json(matching).into_response()
}

/// Polls every orchestrator until `cancel`; a round with no answer keeps the last snapshot.
pub(crate) async fn run(signer: Arc<Signer>, cancel: CancellationToken) {
    if signer.config.orchestrators.is_empty() {
        return;
    }
    loop {
        let mut entries = Vec::new();
        for url in &signer.config.orchestrators {
            match fetch(&signer, url).await {
                Ok(e) => entries.push(e),
                Err(why) => {
                    if let Some(held) = signer.throttle.allow() {
                        tracing::warn!(orchestrator = %url, error = %why, held, "signer discovery: orchestrator did not answer");
                    }
                }
            }
        }
        if !entries.is_empty() {
            metrics::gauge!("byoc_signer_orchestrators").set(entries.len() as f64);
            *signer.discovery.0.write().unwrap_or_else(|e| e.into_inner()) = Some(entries);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(signer.config.discovery_interval) => {}
        }
    }
}

async fn fetch(signer: &Signer, url: &str) -> Result<Entry, String> {
    let base = url.trim_end_matches('/');
    let resp = signer
        .http
        .get(format!("{base}/capabilities"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = read_limited(resp, MAX_LIST).await?;
    let list: OfferedList = serde_json::from_slice(&body).map_err(|e| format!("capability list: {e}"))?;
    let capabilities = list
        .capabilities
        .into_iter()
        .filter(|o| {
            let price = Price {
                price_per_unit: i64::try_from(o.price.price_per_unit).unwrap_or(i64::MAX),
                pixels_per_unit: i64::try_from(o.price.pixels_per_unit.max(1)).unwrap_or(i64::MAX),
            };
            match (signer.ceiling(Some(&o.name)), price.per_second()) {
                (Some(c), Ok(p)) => c.per_second().is_ok_and(|c| p <= c),
                (None, _) => true,
                (Some(_), Err(_)) => false,
            }
        })
        .map(|o| o.name)
        .take(MAX_CAPS)
        .collect();
    Ok(Entry { address: base.to_string(), score: 1.0, capabilities })
}

/// The body of `resp`, refused past `max` bytes (read in chunks: never more than that is held).
pub(crate) async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("over {max} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("over {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The `caps` values of a query string, form-decoded (`%XX` and `+`; bad escapes kept as they are),
/// empty ones left out, at most [`MAX_CAPS`].
pub(crate) fn caps(query: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, v)| k == "caps" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .take(MAX_CAPS)
        .collect()
}
