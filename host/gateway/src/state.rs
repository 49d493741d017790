//! The gateway's shared state: its settings, its orchestrator client, the running streams and the
//! streams that ended lately.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use byoc_payment::{SecretKey, Wei};

use crate::client::OrchestratorClient;
use crate::config::GatewayConfig;
use crate::discovery::{Candidate, Catalog, OrchestratorFilter, OrchestratorSource};
use crate::error::ApiError;
use crate::model::GwStream;
use crate::signer::Signing;

/// The gateway's shared state.
pub struct Gateway {
    /// How it runs.
    pub config: GatewayConfig,
    /// Signs and sends its jobs.
    pub(crate) client: OrchestratorClient,
    streams: Mutex<HashMap<String, Arc<GwStream>>>,
    /// Its balances with orchestrators (priced mode).
    pub(crate) ledger: byoc_payment::Ledger,
    /// `host:port` of the RTMP ingest server, once it serves.
    pub(crate) rtmp_public: std::sync::OnceLock<String>,
    /// The WHIP/WHEP media server, once it serves.
    pub(crate) webrtc: std::sync::OnceLock<byoc_media::WebRtcServer>,
    /// Streams that ended lately, for a 410 with the reason.
    pub(crate) ended: Ended,
    /// More places orchestrators come from (the chain's pool, a webhook), asked at every discovery.
    sources: RwLock<Vec<Arc<dyn OrchestratorSource>>>,
    /// On chain: the largest face value the gateway's deposit and reserve back, or why it cannot pay.
    backing: RwLock<Option<Result<Wei, String>>>,
    /// What the orchestrators offer, as last gathered (kept [`CATALOG_FOR`]).
    catalog: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Catalog>)>>,
}

/// How long a gathered catalog serves before the orchestrators are asked again.
const CATALOG_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Streams that ended lately, the newest last. Only a request carrying one of the stream's own secrets
/// learns that it ended and why; anyone else gets the 404 of an unknown id.
#[derive(Default)]
pub(crate) struct Ended(Mutex<std::collections::VecDeque<EndedStream>>);

struct EndedStream {
    id: String,
    secret: String,
    viewer: String,
    why: String,
}

/// How many ended streams the gateway remembers.
const REMEMBER_ENDED: usize = 4096;

impl Ended {
    /// Remembers that the stream `id` (with this control `secret` and `viewer` token) ended, and why.
    pub(crate) fn remember(&self, id: &str, secret: &str, viewer: &str, why: &str) {
        let mut ended = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() == REMEMBER_ENDED {
            ended.pop_front();
        }
        let (id, secret, viewer, why) = (id.to_string(), secret.to_string(), viewer.to_string(), why.to_string());
        ended.push_back(EndedStream { id, secret, viewer, why });
    }

    /// Why the stream `id` ended, if it did lately and `given` is one of its secrets.
    pub(crate) fn why(&self, id: &str, given: &str) -> Option<String> {
        let ended = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = ended.iter().rev().find(|e| e.id == id)?;
        crate::model::Access::of(given, &e.secret, &e.viewer).map(|_| e.why.clone())
    }
}

impl Gateway {
    /// A gateway with these settings (its key generated when `config` has none).
    pub fn new(mut config: GatewayConfig) -> Result<Arc<Self>, reqwest::Error> {
        let signing = match config.signer.take() {
            Some(remote) => {
                tracing::info!(address = %remote.address(), "gateway signs and pays through a remote signer");
                Signing::Remote(remote)
            }
            None => {
                let key = config.key.take().unwrap_or_else(SecretKey::generate);
                tracing::info!(address = %key.address(), "gateway key");
                Signing::Local(crate::signer::LocalKey::new(key))
            }
        };
        Ok(Arc::new(Gateway {
            config,
            client: OrchestratorClient::new(signing)?,
            streams: Mutex::new(HashMap::new()),
            ledger: Default::default(),
            rtmp_public: Default::default(),
            webrtc: Default::default(),
            ended: Default::default(),
            sources: Default::default(),
            backing: Default::default(),
            catalog: Default::default(),
        }))
    }

    /// Adds a source of orchestrators (asked after the configured ones and the list).
    pub fn add_source(&self, source: Arc<dyn OrchestratorSource>) {
        self.sources.write().unwrap_or_else(|e| e.into_inner()).push(source);
    }

    /// On chain: what the gateway's funds back (`Ok(largest face value)`) or why it cannot pay at all
    /// (`Err`, e.g. unlocking); `None` off chain (no check).
    pub fn set_backing(&self, backing: Option<Result<Wei, String>>) {
        *self.backing.write().unwrap_or_else(|e| e.into_inner()) = backing;
    }

    /// See [`Gateway::set_backing`].
    pub(crate) fn backing(&self) -> Option<Result<Wei, String>> {
        self.backing.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The gateway's address (the `sender` of its jobs).
    pub fn address(&self) -> byoc_payment::Address {
        self.client.signing().address()
    }

    /// Ids of the running streams.
    pub fn stream_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The running streams, by id.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GwStream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running stream `id`, if any.
    pub(crate) fn stream(&self, id: &str) -> Option<Arc<GwStream>> {
        self.lock().get(id).cloned()
    }

    /// The orchestrators to ask: the configured ones, then those of the refreshable list (an
    /// unreadable list is logged and skipped: the configured ones still serve).
    pub(crate) async fn pool(&self) -> Vec<String> {
        let mut pool = self.listed_pool().await;
        let sources: Vec<Arc<dyn OrchestratorSource>> = self.sources.read().unwrap_or_else(|e| e.into_inner()).clone();
        for source in sources {
            match source.urls().await {
                Ok(urls) => {
                    for url in urls {
                        if !pool.contains(&url) {
                            pool.push(url);
                        }
                    }
                }
                Err(e) => tracing::warn!(source = %source.name(), error = %e, "orchestrator source unavailable"),
            }
        }
        pool
    }

    /// The configured orchestrators, then those of the refreshable list.
    async fn listed_pool(&self) -> Vec<String> {
        let mut pool = self.config.orchestrators.clone();
        let Some(source) = &self.config.orchestrator_list else { return pool };
        let text = if source.starts_with("http://") || source.starts_with("https://") {
            match self.client.http().get(source).timeout(self.config.token_timeout).send().await {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                Ok(r) => {
                    tracing::warn!(list = %source, status = %r.status(), "orchestrator list unavailable");
                    String::new()
                }
                Err(e) => {
                    tracing::warn!(list = %source, error = %e, "orchestrator list unavailable");
                    String::new()
                }
            }
        } else {
            tokio::fs::read_to_string(source).await.unwrap_or_else(|e| {
                tracing::warn!(list = %source, error = %e, "orchestrator list unreadable");
                String::new()
            })
        };
        for url in listed_orchestrators(&text) {
            if !pool.contains(&url) {
                pool.push(url);
            }
        }
        pool
    }

    /// What the orchestrators of the pool offer, merged (gathered at most once per [`CATALOG_FOR`]; callers
    /// meanwhile wait for the one gathering).
    pub(crate) async fn catalog(&self) -> Arc<Catalog> {
        let mut cached = self.catalog.lock().await;
        if let Some((at, catalog)) = cached.as_ref()
            && at.elapsed() < CATALOG_FOR
        {
            return catalog.clone();
        }
        let catalog =
            Arc::new(Catalog::gather(self.client.http(), &self.pool().await, self.config.token_timeout).await);
        *cached = Some((std::time::Instant::now(), catalog.clone()));
        catalog
    }

    /// Orchestrators of the pool that `filter` lets through and that have room for `capability`
    /// (in pool order), and why the others were skipped.
    pub(crate) async fn discover(
        &self,
        filter: &OrchestratorFilter,
        capability: &str,
    ) -> Result<(Vec<Candidate>, Vec<String>), ApiError> {
        self.client.discover(&self.pool().await, filter, capability, self.config.token_timeout).await
    }
}

/// The `http(s)://` URLs of an orchestrator list: a JSON array of URLs, or one URL per line (blank
/// lines and `#` comments skipped).
fn listed_orchestrators(text: &str) -> Vec<String> {
    let listed: Vec<String> = match serde_json::from_str::<Vec<String>>(text) {
        Ok(v) => v,
        Err(_) => {
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
        }
    };
    listed.into_iter().filter(|u| u.starts_with("http://") || u.starts_with("https://")).collect()
}

#[cfg(test)]
mod tests {
    use super::listed_orchestrators;

    #[test]
    fn an_orchestrator_list_is_a_json_array_or_one_url_a_line() {
        assert_eq!(listed_orchestrators(r#"["http://a:1", "https://b", "ftp://c"]"#), ["http://a:1", "https://b"]);
        let lines = "# ours\nhttp://a:1\n\n  https://b  \nnot a url\n";
        assert_eq!(listed_orchestrators(lines), ["http://a:1", "https://b"]);
        assert!(listed_orchestrators("").is_empty());
    }
}
