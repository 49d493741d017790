//! Finding orchestrators for a capability: parallel `GET /process/token` with a timeout,
//! include/exclude filters, full ones skipped.

use std::time::Duration;

use byoc_payment::job::EthAddressCredential;
use futures_util::future::join_all;
use serde::Deserialize;

use byoc_protocol::headers;

pub use byoc_protocol::OrchestratorFilter;

/// The fields of a job token the gateway uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    /// The orchestrator's own service address.
    #[serde(default)]
    pub service_addr: String,
    /// How many more jobs of the capability it takes now (none: it is skipped).
    #[serde(default)]
    pub available_capacity: i64,
    /// The gateway's balance there for the capability, as the orchestrator counts it.
    #[serde(default)]
    pub balance: i64,
    /// Wei per second (free when absent or zero).
    #[serde(default)]
    pub price: byoc_payment::Price,
    /// Present when the orchestrator wants to be paid.
    #[serde(default)]
    pub ticket_params: Option<byoc_payment::TicketParams>,
}

impl Token {
    /// The recipient of this token's tickets, when it asks to be paid.
    pub(crate) fn recipient(&self) -> Option<byoc_payment::Address> {
        self.ticket_params.as_ref().filter(|_| !self.price.is_free()).map(|p| p.recipient)
    }
}

/// An orchestrator that offered the capability.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The URL from the gateway's list (requests go here).
    pub url: String,
    /// Its answer to the token request.
    pub token: Token,
}

fn norm(u: &str) -> &str {
    u.trim_end_matches('/')
}

/// `GET {url}/process/token` for `capability`, with the gateway's credential header.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    url: &str,
    credential_header: &str,
    capability: &str,
    timeout: Duration,
) -> Result<Token, String> {
    let resp = http
        .get(format!("{}/process/token", norm(url)))
        .header(headers::ETH_ADDRESS, credential_header)
        .header(headers::CAPABILITY, capability)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: token request answered {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: bad token: {e}"))
}

/// Asks every listed orchestrator (after filtering) for a token, in parallel. Returns the ones
/// with free capacity, in list order, and the reasons the others were skipped.
pub async fn discover(
    http: &reqwest::Client,
    pool: &[String],
    filter: &OrchestratorFilter,
    capability: &str,
    credential: &EthAddressCredential,
    timeout: Duration,
) -> (Vec<Candidate>, Vec<String>) {
    let cred = credential.to_header();
    let urls: Vec<&String> = pool
        .iter()
        .filter(|u| !filter.exclude.iter().any(|e| norm(e) == norm(u)))
        .filter(|u| filter.include.is_empty() || filter.include.iter().any(|i| norm(i) == norm(u)))
        .collect();
    let asks = urls.iter().map(|url| {
        let cred = &cred;
        async move {
            let token = fetch_token(http, url, cred, capability, timeout).await?;
            if token.available_capacity <= 0 {
                return Err(format!("{url}: no capacity for {capability}"));
            }
            Ok(Candidate { url: norm(url).to_string(), token })
        }
    });
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for r in join_all(asks).await {
        match r {
            Ok(c) => found.push(c),
            Err(e) => skipped.push(e),
        }
    }
    if urls.is_empty() {
        skipped.push("no orchestrator left after include/exclude".into());
    }
    (found, skipped)
}
