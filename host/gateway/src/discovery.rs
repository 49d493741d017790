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
        return Err(format!("{url}: token request answered {}", crate::answer::refusal_text(resp).await));
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

/// An orchestrator webhook (`--orchestrator-webhook URL`), go-livepeer's `-orchWebhookUrl`: `GET` answers
/// `[{"address": "https://orch:8935", "score": 0.9}, ...]`; asked at most once per `refresh` (the last good
/// answer serves in between, and when the webhook fails). Best score first.
pub struct Webhook {
    url: String,
    http: reqwest::Client,
    refresh: Duration,
    timeout: Duration,
    last: tokio::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

/// One orchestrator a webhook lists.
#[derive(Deserialize)]
struct WebhookEntry {
    address: String,
    #[serde(default)]
    score: f64,
}

/// Most entries read from one webhook answer.
const MAX_WEBHOOK_ENTRIES: usize = 1000;

impl Webhook {
    /// A webhook at `url`, asked at most once per `refresh`.
    pub fn new(url: String, http: reqwest::Client, refresh: Duration, timeout: Duration) -> Webhook {
        Webhook { url, http, refresh, timeout, last: tokio::sync::Mutex::new(None) }
    }

    async fn fetch(&self) -> Result<Vec<String>, String> {
        let resp = self.http.get(&self.url).timeout(self.timeout).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status()));
        }
        let body = crate::answer::answer_body(resp).await;
        parse_webhook(&body)
    }
}

/// The `http(s)` addresses of a webhook answer, best score first (ties keep their order).
fn parse_webhook(body: &[u8]) -> Result<Vec<String>, String> {
    let mut entries: Vec<WebhookEntry> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON list of {{address, score}}: {e}"))?;
    entries.truncate(MAX_WEBHOOK_ENTRIES);
    entries.retain(|e| e.address.starts_with("http://") || e.address.starts_with("https://"));
    entries.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
    Ok(entries.into_iter().map(|e| norm(&e.address).to_string()).collect())
}

/// Somewhere orchestrators come from besides `--orchestrator`/`--orchestrator-list`: the chain's pool,
/// a webhook. Asked at every discovery; a source caches as it sees fit.
pub trait OrchestratorSource: Send + Sync {
    /// What to call it in logs.
    fn name(&self) -> String;
    /// The orchestrators' URLs, best first; an error is logged and the other sources still serve.
    fn urls(&self) -> futures_util::future::BoxFuture<'_, Result<Vec<String>, String>>;
}

impl OrchestratorSource for Webhook {
    fn name(&self) -> String {
        format!("webhook {}", self.url)
    }

    fn urls(&self) -> futures_util::future::BoxFuture<'_, Result<Vec<String>, String>> {
        Box::pin(async move {
            let mut last = self.last.lock().await;
            if let Some((at, urls)) = last.as_ref()
                && at.elapsed() < self.refresh
            {
                return Ok(urls.clone());
            }
            match self.fetch().await {
                Ok(urls) => {
                    *last = Some((std::time::Instant::now(), urls.clone()));
                    Ok(urls)
                }
                // The last good answer keeps serving (and the webhook is asked again next time).
                Err(e) => match last.as_ref() {
                    Some((_, urls)) => {
                        tracing::warn!(webhook = %self.url, error = %e, "orchestrator webhook failed; last answer kept");
                        Ok(urls.clone())
                    }
                    None => Err(e),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_webhook;

    #[test]
    fn a_webhook_answer_is_sorted_by_score_and_keeps_only_http_addresses() {
        let body = br#"[{"address": "http://a:1", "score": 0.2}, {"address": "https://b/", "score": 0.9},
            {"address": "ftp://c", "score": 1.0}, {"address": "http://d"}]"#;
        assert_eq!(parse_webhook(body).unwrap(), ["https://b", "http://a:1", "http://d"]);
        assert!(parse_webhook(b"{}").is_err());
        assert!(parse_webhook(b"not json").is_err());
    }
}
