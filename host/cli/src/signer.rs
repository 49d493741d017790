//! `byoc signer`: a remote signer (go-livepeer's `-remoteSigner`) holding the paying key for clients
//! that have none, such as the official Python SDK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use byoc_payment::Price;
use byoc_signer::{Signer, SignerConfig, WebhookConfig, router};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct SignerArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8940]. Any other than loopback needs an API key.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The paying key file (JSON keystore or hex), required.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Environment variable holding the keystore passphrase.
    #[arg(long, default_value = "BYOC_KEY_PASSPHRASE")]
    passphrase_env: String,
    /// Environment variable holding the API key every request must present (`Authorization: Bearer`).
    #[arg(long, default_value = "BYOC_SIGNER_API_KEY")]
    api_key_env: String,
    /// Seconds of the price a first payment covers (orchestrators want 60 s of balance before a job)
    /// [default: 60].
    #[arg(long)]
    opening_seconds: Option<u64>,
    /// A price ceiling in wei per second: `WEI` for every capability, `CAPABILITY=WEI` for one
    /// (repeatable). Over it, payments are refused with 481.
    #[arg(long = "max-price")]
    max_price: Vec<String>,
    /// An http(s) URL asked (POST `{headers, state}`) before each payment (go-livepeer's auth webhook).
    #[arg(long)]
    auth_webhook: Option<String>,
    /// A header sent to the auth webhook, `NAME:VALUE` (repeatable).
    #[arg(long = "auth-webhook-header")]
    auth_webhook_headers: Vec<String>,
    /// Orchestrator URLs `/discover-orchestrators` lists (repeat the flag or separate with commas).
    #[arg(long = "orchestrator", value_delimiter = ',')]
    orchestrators: Vec<String>,
    /// Seconds between two polls of the orchestrators' capabilities [default: 60].
    #[arg(long)]
    discovery_interval_secs: Option<u64>,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
}

/// `byoc signer --config FILE`; flags win over it.
///
/// ```toml
/// listen = "127.0.0.1:8940"
/// key = "/etc/byoc/signer.json"
/// opening_seconds = 60
/// max_price = 2000000              # wei per second, every capability
/// [max_prices]                     # per capability
/// text-transform = 1000000
/// auth_webhook = "https://auth.example.com/signer"
/// auth_webhook_headers = ["Authorization:Bearer s3cret"]
/// orchestrators = ["https://orch.example.com:8935"]
/// discovery_interval_secs = 60
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerFile {
    listen: Option<SocketAddr>,
    key: Option<PathBuf>,
    opening_seconds: Option<u64>,
    max_price: Option<i64>,
    #[serde(default)]
    max_prices: HashMap<String, i64>,
    auth_webhook: Option<String>,
    #[serde(default)]
    auth_webhook_headers: Vec<String>,
    #[serde(default)]
    orchestrators: Vec<String>,
    discovery_interval_secs: Option<u64>,
    #[serde(default)]
    limits: crate::config::LimitsFile,
}

impl SignerFile {
    fn load(path: Option<&Path>) -> anyhow::Result<SignerFile> {
        let Some(path) = path else { return Ok(SignerFile::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }
}

fn wei_per_second(v: i64, what: &str) -> anyhow::Result<Price> {
    if v <= 0 {
        bail!("{what}: a price ceiling must be a positive number of wei per second");
    }
    Price::wei_per_second(v).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

pub async fn run(args: SignerArgs) -> anyhow::Result<()> {
    let file = SignerFile::load(args.config.as_deref())?;
    let server_limits = args.limits.server(&file.limits)?;
    let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8940)));
    let Some(key) = crate::keygen::load_key(args.key.as_deref().or(file.key.as_deref()), &args.passphrase_env)? else {
        bail!("the signer needs its paying key: --key FILE (make one with `byoc keygen`)");
    };
    let api_key = std::env::var(&args.api_key_env).ok().filter(|k| !k.is_empty());
    if api_key.is_none() && !listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {listen} without an API key: set {} (anyone who reaches the signer could spend its key)",
            args.api_key_env
        );
    }
    let mut config = SignerConfig::new(key);
    config.api_key = api_key;
    if let Some(s) = args.opening_seconds.or(file.opening_seconds) {
        if s == 0 {
            bail!("--opening-seconds must be at least 1");
        }
        config.opening_seconds = s;
    }
    if let Some(v) = file.max_price {
        config.max_price = Some(wei_per_second(v, "max_price")?);
    }
    for (cap, v) in &file.max_prices {
        config.max_price_per_capability.insert(cap.clone(), wei_per_second(*v, &format!("[max_prices] {cap}"))?);
    }
    for spec in &args.max_price {
        let what = format!("--max-price {spec}");
        match spec.split_once('=') {
            Some((cap, v)) if !cap.trim().is_empty() => {
                let v = v.trim().parse().with_context(|| what.clone())?;
                config.max_price_per_capability.insert(cap.trim().to_string(), wei_per_second(v, &what)?);
            }
            Some(_) => bail!("{what}: expected CAPABILITY=WEI or WEI"),
            None => config.max_price = Some(wei_per_second(spec.trim().parse().with_context(|| what.clone())?, &what)?),
        }
    }
    if let Some(url) = args.auth_webhook.or(file.auth_webhook) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--auth-webhook must be an http:// or https:// URL");
        }
        let specs =
            if args.auth_webhook_headers.is_empty() { file.auth_webhook_headers } else { args.auth_webhook_headers };
        let mut headers = Vec::new();
        for h in specs {
            let Some((k, v)) = h.split_once(':') else { bail!("--auth-webhook-header must be NAME:VALUE") };
            let (k, v) = (k.trim(), v.trim());
            if http::HeaderName::try_from(k).is_err() || http::HeaderValue::try_from(v).is_err() {
                bail!("--auth-webhook-header: {k:?} is not a valid header");
            }
            headers.push((k.to_string(), v.to_string()));
        }
        config.webhook = Some(WebhookConfig { url, headers, timeout: Duration::from_secs(5) });
    }
    config.orchestrators = if args.orchestrators.is_empty() { file.orchestrators } else { args.orchestrators };
    for url in &config.orchestrators {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--orchestrator {url}: must be an http:// or https:// URL");
        }
    }
    if let Some(s) = args.discovery_interval_secs.or(file.discovery_interval_secs) {
        config.discovery_interval = Duration::from_secs(s.max(1));
    }
    let orchestrators = config.orchestrators.join(", ");
    let signer = Signer::new(config)?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen} (--listen)"))?;
    let bound = listener.local_addr()?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let discovery = signer.spawn_discovery(cancel.clone());
    let address = signer.address().to_checksum();
    let shutdown = crate::trickle::Shutdown::listen();
    println!("signer listening on http://{bound} (address {address})");
    if crate::tools::json_logs() {
        tracing::info!(url = %format!("http://{bound}"), address = %address, orchestrators = %orchestrators, "signer listening");
    }
    let served = crate::trickle::serve_until_signal("signer", listener, router(signer), server_limits, shutdown).await;
    cancel.cancel();
    let _ = discovery.await;
    served
}

#[cfg(test)]
mod tests {
    use super::SignerFile;

    #[test]
    fn the_documented_file_parses_and_unknown_keys_are_refused() {
        let text = r#"
listen = "127.0.0.1:8940"
key = "signer.json"
opening_seconds = 60
max_price = 2000000
auth_webhook = "https://auth.example.com/signer"
auth_webhook_headers = ["Authorization:Bearer s3cret"]
orchestrators = ["https://orch.example.com:8935"]
discovery_interval_secs = 60

[max_prices]
text-transform = 1000000
"#;
        let file: SignerFile = toml::from_str(text).unwrap();
        assert_eq!(file.max_prices.get("text-transform"), Some(&1_000_000));
        assert_eq!(file.orchestrators, ["https://orch.example.com:8935"]);
        assert!(toml::from_str::<SignerFile>("api_key = \"no\"").is_err(), "the API key is never in a file");
    }
}
