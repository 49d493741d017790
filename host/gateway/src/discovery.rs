//! Finding orchestrators for a capability: parallel `GET /process/token` with a timeout,
//! include/exclude filters, full ones skipped; and what the orchestrators offer (`GET /capabilities`
//! of each, merged into the gateway's [`Catalog`]).

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
    /// The capability as the orchestrator offers it (byoc orchestrators only; one that does not
    /// parse is ignored, as if absent).
    #[serde(default, deserialize_with = "lenient")]
    pub capability: Option<byoc_protocol::Offered>,
}

/// `T` if the value parses as one, else nothing (an orchestrator's extra never spoils its token).
fn lenient<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
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
    let req = http
        .get(format!("{}/process/token", norm(url)))
        .header(headers::ETH_ADDRESS, credential_header)
        .header(headers::CAPABILITY, capability);
    get_json(req, url, "token", timeout).await
}

/// The JSON answer of an orchestrator at `url` to `req` (its body read with the gateway's bound), or why
/// not, naming `what` was asked.
async fn get_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    url: &str,
    what: &str,
    timeout: Duration,
) -> Result<T, String> {
    let resp = req.timeout(timeout).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: {what} request answered {}", crate::answer::refusal_text(resp).await));
    }
    let body = crate::answer::answer_body(resp).await;
    serde_json::from_slice(&body).map_err(|e| format!("{url}: bad {what}: {e}"))
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

/// Most capabilities read from one orchestrator's list.
const MAX_OFFERED: usize = 1000;

/// `GET {url}/capabilities`: what one orchestrator offers (at most [`MAX_OFFERED`]).
pub(crate) async fn fetch_offers(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Vec<byoc_protocol::Offered>, String> {
    let req = http.get(format!("{}/capabilities", norm(url)));
    let mut list: byoc_protocol::OfferedList = get_json(req, url, "capability list", timeout).await?;
    list.capabilities.truncate(MAX_OFFERED);
    Ok(list.capabilities)
}

/// One capability as the gateway's orchestrators offer it (`GET /capabilities` of the gateway).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CatalogEntry {
    pub(crate) name: String,
    /// The first orchestrator's description.
    pub(crate) description: String,
    /// The legs, from the first orchestrator that says (none: unknown, an external worker's).
    pub(crate) legs: Option<byoc_protocol::StreamLegs>,
    pub(crate) params_schema: Option<serde_json::Value>,
    /// The lowest price among them.
    pub(crate) price: byoc_protocol::OfferedPrice,
    /// Streams or jobs they take now, together.
    pub(crate) available_capacity: u64,
    /// How many orchestrators offer it.
    pub(crate) orchestrators: usize,
}

/// What the gateway's orchestrators offer, merged by capability name.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// By name.
    pub(crate) entries: std::collections::BTreeMap<String, CatalogEntry>,
    /// How many orchestrators answered with their list.
    pub(crate) answered: usize,
    /// Why the others did not.
    pub(crate) unanswered: Vec<String>,
}

impl Catalog {
    /// The lists of `pool`'s orchestrators, asked in parallel.
    pub(crate) async fn gather(http: &reqwest::Client, pool: &[String], timeout: Duration) -> Catalog {
        let lists = join_all(pool.iter().map(|url| fetch_offers(http, url, timeout))).await;
        let mut catalog = Catalog::default();
        for list in lists {
            match list {
                Ok(offers) => {
                    catalog.answered += 1;
                    for offer in offers {
                        catalog.add(offer);
                    }
                }
                Err(e) => catalog.unanswered.push(e),
            }
        }
        catalog
    }

    fn add(&mut self, o: byoc_protocol::Offered) {
        let entry = self.entries.entry(o.name.clone()).or_insert_with(|| CatalogEntry {
            name: o.name.clone(),
            description: o.description.clone(),
            legs: None,
            params_schema: None,
            price: o.price,
            available_capacity: 0,
            orchestrators: 0,
        });
        entry.orchestrators += 1;
        entry.available_capacity += u64::from(o.available_capacity);
        entry.legs = entry.legs.or(o.legs);
        if entry.params_schema.is_none() {
            entry.params_schema = o.params_schema;
        }
        if o.price.cheaper_than(&entry.price) {
            entry.price = o.price;
        }
    }

    /// Whether the capability is unknown: some orchestrator answered with its list, and none offers it.
    pub(crate) fn lacks(&self, capability: &str) -> bool {
        self.answered > 0 && !self.entries.contains_key(capability)
    }
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
    use super::{Catalog, Token, parse_webhook};
    use byoc_protocol::{Offered, OfferedPrice, StreamLegs};

    fn offer(name: &str, legs: Option<StreamLegs>, price: u128, available: u32) -> Offered {
        Offered {
            name: name.into(),
            description: format!("{name} here"),
            kind: "plugin".into(),
            version: None,
            legs,
            params_schema: None,
            price: OfferedPrice { price_per_unit: price, pixels_per_unit: 1 },
            capacity: 4,
            available_capacity: available,
        }
    }

    #[test]
    fn a_catalog_merges_orchestrators_by_capability() {
        let legs = StreamLegs { video_in: true, ..Default::default() };
        let mut c = Catalog { answered: 2, ..Default::default() };
        c.add(offer("a", None, 5, 1));
        c.add(offer("a", Some(legs), 3, 2));
        c.add(offer("b", None, 0, 0));
        let a = &c.entries["a"];
        assert_eq!((a.orchestrators, a.available_capacity, a.price.price_per_unit, a.legs), (2, 3, 3, Some(legs)));
        assert!(!c.lacks("a") && !c.lacks("b") && c.lacks("nosuch"));
        // Nobody answered: nothing is known to be missing.
        assert!(!Catalog::default().lacks("nosuch"));
    }

    #[test]
    fn a_tokens_capability_that_does_not_parse_is_ignored() {
        let t: Token = serde_json::from_str(r#"{"available_capacity": 1, "capability": "odd"}"#).unwrap();
        assert!(t.capability.is_none() && t.available_capacity == 1);
        let t: Token = serde_json::from_str(r#"{"capability": {"name": "x", "price": {}}}"#).unwrap();
        assert_eq!(t.capability.unwrap().name, "x");
    }

    #[test]
    fn a_webhook_answer_is_sorted_by_score_and_keeps_only_http_addresses() {
        let body = br#"[{"address": "http://a:1", "score": 0.2}, {"address": "https://b/", "score": 0.9},
            {"address": "ftp://c", "score": 1.0}, {"address": "http://d"}]"#;
        assert_eq!(parse_webhook(body).unwrap(), ["https://b", "http://a:1", "http://d"]);
        assert!(parse_webhook(b"{}").is_err());
        assert!(parse_webhook(b"not json").is_err());
    }
}
