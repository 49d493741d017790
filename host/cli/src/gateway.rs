//! `byoc gateway`: a gateway node alone, in front of a list of orchestrators.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use byoc_node::gateway::{Gateway, GatewayConfig, router};

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8937")]
    listen: SocketAddr,
    /// URL clients reach this gateway at (default: http://LISTEN).
    #[arg(long)]
    public_url: Option<String>,
    /// Orchestrator URLs, in order of preference (repeat the flag or separate with commas).
    #[arg(long = "orchestrator", value_delimiter = ',', required_unless_present = "orchestrator_list")]
    orchestrators: Vec<String>,
    /// More orchestrators from a file or an http(s) URL (one URL per line, or a JSON array),
    /// read again at every discovery.
    #[arg(long)]
    orchestrator_list: Option<String>,
    /// Gateway key file (JSON keystore or hex); a fresh key is generated when absent.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Environment variable holding the keystore passphrase.
    #[arg(long, default_value = "BYOC_KEY_PASSPHRASE")]
    passphrase_env: String,
    /// Environment variable holding an API key that start and batch requests must present
    /// (`Authorization: Bearer`). No check when unset.
    #[arg(long, default_value = "BYOC_API_KEY")]
    api_key_env: String,
    /// An http(s) URL asked (POST, JSON) before every start and batch request; a non-2xx answer
    /// refuses the request (see the README).
    #[arg(long)]
    auth_webhook: Option<String>,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let key = crate::keygen::load_key(args.key.as_deref(), &args.passphrase_env)?;
    if args.orchestrators.iter().any(|o| !(o.starts_with("http://") || o.starts_with("https://"))) {
        bail!("orchestrator URLs must start with http:// or https://");
    }
    if args.auth_webhook.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        bail!("--auth-webhook must be an http:// or https:// URL");
    }
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{}", args.listen));
    let config = GatewayConfig {
        public_url: public_url.clone(),
        orchestrators: args.orchestrators.clone(),
        orchestrator_list: args.orchestrator_list.clone(),
        key,
        api_key: std::env::var(&args.api_key_env).ok().filter(|k| !k.is_empty()),
        auth_webhook: args.auth_webhook.clone(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::new(config)?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    println!("gateway listening on {public_url} (orchestrators: {})", args.orchestrators.join(", "));
    let served = crate::trickle::serve_until_signal(listener, router(gw.clone())).await;
    gw.shutdown().await;
    served
}
