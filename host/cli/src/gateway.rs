//! `byoc gateway`: a gateway node alone, in front of a list of orchestrators.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use byoc_gateway::{Gateway, GatewayConfig, router};

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// TOML configuration file (see the README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8937].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// URL clients reach this gateway at (default: http://LISTEN).
    #[arg(long)]
    public_url: Option<String>,
    /// Orchestrator URLs, in order of preference (repeat the flag or separate with commas).
    #[arg(long = "orchestrator", value_delimiter = ',')]
    orchestrators: Vec<String>,
    /// More orchestrators from a file or an http(s) URL (one URL per line, or a JSON array),
    /// read again at every discovery.
    #[arg(long)]
    orchestrator_list: Option<String>,
    /// More orchestrators from a webhook answering `[{"address": URL, "score": N}]` (go-livepeer's
    /// -orchWebhookUrl), asked at most once a minute; best score first.
    #[arg(long)]
    orchestrator_webhook: Option<String>,
    #[command(flatten)]
    chain: crate::chain::ChainArgs,
    /// Gateway key file (JSON keystore or hex); a fresh key is generated when absent.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Environment variable holding the keystore passphrase.
    #[arg(long, default_value = "BYOC_KEY_PASSPHRASE")]
    passphrase_env: String,
    /// A remote signer (e.g. `byoc signer`; go-livepeer's remote-signer API) that signs jobs and pays
    /// tickets instead of a key of the gateway's own: the gateway then holds no key.
    #[arg(long, conflicts_with = "key")]
    signer: Option<String>,
    /// Environment variable holding the remote signer's API key (sent as `Authorization: Bearer`).
    #[arg(long, default_value = "BYOC_SIGNER_API_KEY")]
    signer_api_key_env: String,
    /// More `NAME:VALUE` headers sent to the remote signer (repeat the flag).
    #[arg(long = "signer-header")]
    signer_headers: Vec<String>,
    /// Environment variable holding an API key that start and batch requests must present
    /// (`Authorization: Bearer`). No check when unset.
    #[arg(long, default_value = "BYOC_API_KEY")]
    api_key_env: String,
    /// An http(s) URL asked (POST, JSON) before every start and batch request; a non-2xx answer
    /// refuses the request (see the README).
    #[arg(long)]
    auth_webhook: Option<String>,
    /// Serve RTMP ingest on this address (a publish to a stream's `rtmp_url` feeds it).
    #[arg(long)]
    rtmp_listen: Option<SocketAddr>,
    /// `host:port` put in `rtmp_url`s (default: the RTMP listen address).
    #[arg(long)]
    rtmp_public: Option<String>,
    /// Serve WHIP/WHEP media on this UDP address (one port for every session).
    #[arg(long)]
    webrtc_listen: Option<SocketAddr>,
    /// The address WebRTC peers are told to reach (needed when listening on 0.0.0.0 or behind NAT).
    #[arg(long)]
    webrtc_advertise: Option<SocketAddr>,
    #[command(flatten)]
    media: crate::config::MediaArgs,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let file = crate::config::GatewayFile::load(args.config.as_deref())?;
    let (segment_min_duration, keyframe_request_every) = args.media.durations(&file)?;
    let piece_window = args.media.piece_window(&file)?;
    let server_limits = args.limits.server(&file.limits)?;
    let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8937)));
    let signer_url = args.signer.or(file.signer);
    let key = match signer_url {
        Some(_) => None,
        None => crate::keygen::load_key(args.key.as_deref().or(file.key.as_deref()), &args.passphrase_env)?,
    };
    let signer = match &signer_url {
        Some(url) => {
            let mut headers = Vec::new();
            for h in &args.signer_headers {
                let Some((k, v)) = h.split_once(':') else { bail!("--signer-header {h:?} is not NAME:VALUE") };
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            if let Ok(k) = std::env::var(&args.signer_api_key_env)
                && !k.is_empty()
            {
                headers.push(("authorization".into(), format!("Bearer {k}")));
            }
            // Fail fast, as go-livepeer's gateway does: a signer that cannot be reached now would
            // refuse every job later.
            let s = byoc_gateway::RemoteSigner::connect(url, &headers)
                .await
                .map_err(|e| anyhow::anyhow!("--signer: {e}"))?;
            Some(s)
        }
        None => None,
    };
    let orchestrators = if args.orchestrators.is_empty() { file.orchestrators.clone() } else { args.orchestrators };
    let orchestrator_list = args.orchestrator_list.or(file.orchestrator_list);
    let webhook = args.orchestrator_webhook.clone().or(file.orchestrator_webhook.clone());
    if webhook.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        bail!("--orchestrator-webhook must be an http:// or https:// URL");
    }
    let on_chain = args.chain.resolved(file.eth_url.as_ref(), file.eth_controller.as_ref())?;
    if orchestrators.is_empty() && orchestrator_list.is_none() && webhook.is_none() && on_chain.is_none() {
        bail!(
            "give at least one --orchestrator URL, an --orchestrator-list, an --orchestrator-webhook or on-chain \
             discovery (--eth-url and --eth-controller)"
        );
    }
    let chain = match &on_chain {
        Some((url, controller)) => {
            let payer = match (&signer, &key) {
                (Some(s), _) => s.address(),
                (None, Some(k)) => k.address(),
                (None, None) => bail!("on-chain mode needs the gateway's funded key (--key FILE) or a --signer"),
            };
            let chain = crate::chain::connect(url, *controller, None).await?;
            let backing = crate::chain::backing(&chain, payer).await?;
            if let Err(why) = &backing {
                bail!("{why}");
            }
            Some((chain, backing))
        }
        None => None,
    };
    if orchestrators.iter().any(|o| !(o.starts_with("http://") || o.starts_with("https://"))) {
        bail!("orchestrator URLs must start with http:// or https://");
    }
    let auth_webhook = args.auth_webhook.or(file.auth_webhook);
    if auth_webhook.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        bail!("--auth-webhook must be an http:// or https:// URL");
    }
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen} (--listen)"))?;
    let bound = listener.local_addr()?;
    let public_url = args.public_url.or(file.public_url).unwrap_or_else(|| format!("http://{bound}"));
    let config = GatewayConfig {
        public_url: public_url.clone(),
        orchestrators: orchestrators.clone(),
        orchestrator_list,
        key,
        signer,
        api_key: std::env::var(&args.api_key_env).ok().filter(|k| !k.is_empty()),
        auth_webhook,
        segment_min_duration,
        keyframe_request_every,
        piece_window,
        media_limits: args.media.limits(&file.limits),
        ..GatewayConfig::default()
    };
    let gw = Gateway::new(config)?;
    if let Some(url) = webhook {
        let http = byoc_trickle::http_client_builder().build()?;
        let hook = byoc_gateway::Webhook::new(url, http, Duration::from_secs(60), Duration::from_secs(5));
        gw.add_source(std::sync::Arc::new(hook));
    }
    let _funds = match chain {
        Some((chain, backing)) => {
            gw.add_source(std::sync::Arc::new(crate::chain::PoolSource::new(chain.clone(), args.chain.poll())));
            gw.set_backing(Some(backing));
            Some(crate::chain::watch_backing(gw.clone(), chain, args.chain.poll()))
        }
        None => None,
    };
    let _rtmp = match args.rtmp_listen {
        Some(addr) => {
            let server = byoc_gateway::serve_rtmp(&gw, addr, args.rtmp_public.clone())
                .await
                .with_context(|| format!("RTMP on {addr} (--rtmp-listen)"))?;
            println!("gateway RTMP ingest on rtmp://{}/live/{{stream_id}}-{{stream_secret}}", server.local_addr());
            Some(server)
        }
        None => None,
    };
    if let Some(addr) = args.webrtc_listen {
        let bound = byoc_gateway::serve_webrtc(&gw, addr, args.webrtc_advertise)
            .await
            .with_context(|| format!("WebRTC on {addr} (--webrtc-listen)"))?;
        println!("gateway WHIP/WHEP media on udp {bound} (each stream's whip_url / whep_url)");
    }
    crate::tools::warn_missing_for_gateway();
    let shutdown = crate::trickle::Shutdown::listen();
    println!("gateway listening on {public_url} (orchestrators: {})", orchestrators.join(", "));
    if crate::tools::json_logs() {
        tracing::info!(url = %public_url, orchestrators = %orchestrators.join(", "), "gateway listening");
    }
    let served =
        crate::trickle::serve_until_signal("gateway", listener, router(gw.clone()), server_limits, shutdown).await;
    gw.shutdown().await;
    served
}
