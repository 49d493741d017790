//! `byoc orchestrator`: an orchestrator node serving BYOC capabilities (external workers that
//! register themselves) with its trickle server under `/ai/trickle/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig, router};
use byoc_payment::job::SignaturePolicy;
use byoc_trickle::TrickleStore;

use crate::config::NodeConfig;

#[derive(clap::Args)]
pub struct OrchestratorArgs {
    /// TOML configuration file (see the README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8935].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// URL gateways and workers reach this node at (default: http://LISTEN).
    #[arg(long, alias = "service-url")]
    service_addr: Option<String>,
    /// Serve gRPC `net.Orchestrator/GetOrchestrator` (and the HTTP API) over TLS on this address; without
    /// it, TLS is served beside plain HTTP on --listen (told apart by each connection's first byte).
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS (with --tls-key) [default: a self-signed certificate made at start].
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The secret workers must send to register (prefer the environment variable: command
    /// lines are visible to other users).
    #[arg(long, env = "BYOC_ORCH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Let workers register without a secret when none is configured.
    #[arg(long)]
    open_registration: bool,
    /// Node key file (JSON keystore or hex); jobs must then be signed.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Environment variable holding the keystore passphrase.
    #[arg(long, default_value = "BYOC_KEY_PASSPHRASE")]
    passphrase_env: String,
    /// Free mode: accept unsigned jobs (no keystore needed). Never expose such a node publicly.
    #[arg(long)]
    allow_unsigned: bool,
    /// Seconds without a control-channel keepalive after which a stream is ended [default: 60].
    #[arg(long)]
    stream_idle_timeout_secs: Option<u64>,
    /// Oldest a signed job's `request.issued_at` may be, in seconds [default: 120].
    #[arg(long)]
    signed_job_max_age_secs: Option<u64>,
    /// Accept signed jobs without `request.issued_at` and starts that name no stream in their
    /// request, as go-livepeer gateways send them (they can be replayed) [default: on with
    /// --allow-unsigned, off otherwise].
    #[arg(long)]
    accept_unstamped_jobs: Option<bool>,
    #[command(flatten)]
    plugins: PluginsArgs,
    #[command(flatten)]
    prices: crate::config::PriceArgs,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
    #[command(flatten)]
    frames: crate::config::FramesArgs,
    /// SQLite file for winning tickets and balances (priced mode); winning tickets are written
    /// to it before a payment is acknowledged. Without it they are kept in memory only.
    #[arg(long)]
    ticket_store: Option<PathBuf>,
    /// Expected value of one ticket, in wei [default: 1000000000000, go-livepeer's -ticketEV].
    #[arg(long)]
    ticket_ev: Option<u128>,
    /// Face value of a winning ticket, in wei [default: 100 × the expected value].
    #[arg(long)]
    ticket_face_value: Option<u128>,
    /// A priced job starts only with this many seconds of price in the balance [default: 60].
    #[arg(long)]
    min_balance_secs: Option<u64>,
    /// Seconds a priced stream may run on a negative balance before it is stopped [default: 10].
    #[arg(long)]
    payment_grace_secs: Option<u64>,
    #[command(flatten)]
    chain: crate::chain::ChainArgs,
    /// On chain: redemption waits while the gas price is above this (wei, or e.g. `5gwei`; go-livepeer's
    /// -maxGasPrice) [default: no limit].
    #[arg(long, value_parser = crate::chain::parse_wei)]
    max_gas_price: Option<byoc_payment::Wei>,
    /// On chain: failed redemption attempts before a winning ticket is given up [default: 5].
    #[arg(long)]
    redeem_max_attempts: Option<u32>,
    /// On chain: seconds before a failed redemption is tried again, doubling each time [default: 30].
    #[arg(long)]
    redeem_retry_secs: Option<u64>,
}

/// The plugin directory a node (`byoc orchestrator`, `byoc dev`) serves when none is given, if it
/// exists: where `cargo xtask plugins` lays out the bundled plugins, relative to the working
/// directory. `byoc plugin` looks plugins up and installs them there by default too.
pub const DEFAULT_PLUGINS: &str = "target/plugins";

/// Where the node's WebAssembly plugins come from.
#[derive(clap::Args, Clone)]
pub struct PluginsArgs {
    /// Directory of plugins (each a `.wasm` beside its `manifest.toml`), offered as
    /// capabilities; `target/plugins` (from `cargo xtask plugins`) when it exists.
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Offer no plugins.
    #[arg(long, conflicts_with = "plugins")]
    pub no_plugins: bool,
    /// Concurrent streams per plugin when its describe() gives no capacity hint [default: 4].
    #[arg(long)]
    pub plugin_capacity: Option<u32>,
}

/// The plugin directory a node serves: `--plugins`, the config file's, or [`DEFAULT_PLUGINS`]
/// when it exists; `None` when plugins are off or there is none.
pub fn plugins_dir(args: &PluginsArgs, file: &NodeConfig) -> Option<PathBuf> {
    if args.no_plugins {
        return None;
    }
    match args.plugins.as_ref().or(file.plugins.as_ref()) {
        Some(d) => Some(d.clone()),
        None if std::path::Path::new(DEFAULT_PLUGINS).is_dir() => Some(PathBuf::from(DEFAULT_PLUGINS)),
        None => None,
    }
}

/// Loads the plugins into a runtime, offers them on `orch`, and keeps them in sync with the
/// directory (a replaced file is hot-reloaded: new streams get the new code). Returns the task
/// that watches the directory.
pub async fn offer_plugins(
    orch: &std::sync::Arc<Orchestrator>,
    args: &PluginsArgs,
    file: &NodeConfig,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if args.no_plugins {
        return Ok(None);
    }
    for (name, capacity) in &file.capacity {
        orch.registry.set_plugin_capacity(name, *capacity);
    }
    let default_capacity = args.plugin_capacity.or(file.plugin_capacity).unwrap_or(4);
    let Some(dir) = plugins_dir(args, file) else {
        tracing::info!("no plugin directory: {}", crate::tools::HOW_TO_GET_PLUGINS);
        return Ok(None);
    };
    let runtime = std::sync::Arc::new(byoc_runtime::Runtime::new(byoc_runtime::RuntimeConfig {
        operator: file.operator.clone(),
        ..byoc_runtime::RuntimeConfig::default()
    })?);
    for result in runtime.load_dir(&dir).await.with_context(|| format!("loading plugins from {}", dir.display()))? {
        if let Err(e) = result {
            tracing::warn!(error = %e, "plugin not loaded");
        }
    }
    let names = orch.offer_plugins(&runtime, default_capacity);
    if names.is_empty() {
        tracing::warn!(dir = %dir.display(), "no plugin in the plugin directory: {}", crate::tools::HOW_TO_GET_PLUGINS);
    } else {
        tracing::info!(plugins = %names.join(", "), dir = %dir.display(), "plugins offered as capabilities");
    }
    let (orch, capacity) = (orch.clone(), default_capacity);
    Ok(Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            for (name, result) in runtime.reload_changed().await {
                // Successes are logged by the runtime (`plugin loaded` / `plugin reloaded`).
                if let Err(e) = result {
                    tracing::warn!(plugin = %name, error = %e, "plugin reload failed; the old code keeps serving");
                }
                orch.registry.register_plugins(&runtime, capacity);
            }
        }
    })))
}

/// The TLS gRPC is served with: the operator's PEM files, else a self-signed certificate naming
/// localhost, 127.0.0.1, the service URL's host and the gRPC address's IP (trust on first use, as
/// go-livepeer's).
fn tls_config(
    args: &OrchestratorArgs,
    file: &NodeConfig,
    service_url: &str,
    grpc: Option<SocketAddr>,
) -> anyhow::Result<byoc_net::TlsConfig> {
    let cert = args.tls_cert.as_ref().or(file.tls_cert.as_ref());
    let key = args.tls_key.as_ref().or(file.tls_key.as_ref());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(byoc_net::TlsConfig::from_pem_files(cert, key)?),
        (None, None) => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let host = reqwest::Url::parse(service_url).ok().and_then(|u| u.host_str().map(str::to_string));
            let grpc_ip = grpc.filter(|a| !a.ip().is_unspecified()).map(|a| a.ip().to_string());
            for name in host.into_iter().chain(grpc_ip) {
                let name = name.trim_start_matches('[').trim_end_matches(']').to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            Ok(byoc_net::TlsConfig::self_signed(&names)?)
        }
        _ => bail!("give both tls_cert and tls_key (or neither, for a self-signed certificate)"),
    }
}

/// The tickets asked for: expected value and face value (the win probability follows).
fn ticket_settings(ev: Option<u128>, face_value: Option<u128>) -> anyhow::Result<byoc_payment::RecipientConfig> {
    if ev.is_none() && face_value.is_none() {
        return Ok(byoc_payment::RecipientConfig::default());
    }
    let ev = ev.unwrap_or(1_000_000_000_000);
    let face = face_value.unwrap_or(ev.saturating_mul(100));
    if ev == 0 || face < ev {
        bail!("--ticket-ev must be above 0 and at most --ticket-face-value");
    }
    Ok(byoc_payment::RecipientConfig::for_ev(byoc_payment::Wei::from_u128(face), &byoc_payment::Wei::from_u128(ev)))
}

/// Connects to the chain, reads its state and the broker's ticket validity, and says what tickets cost to
/// redeem against the face value asked for.
async fn on_chain_settings(
    args: &OrchestratorArgs,
    file: &NodeConfig,
    url: &str,
    controller: byoc_payment::Address,
    key: &byoc_payment::SecretKey,
) -> anyhow::Result<byoc_orchestrator::OnChainSettings> {
    let chain = crate::chain::connect(url, controller, Some(key)).await?;
    let first = byoc_chain::watcher::read_state(&chain).await.context("reading rounds from the chain")?;
    let validity = chain.ticket_validity_period().await?;
    let max_gas_price = match (&args.max_gas_price, &file.max_gas_price) {
        (Some(w), _) => Some(w.clone()),
        (None, Some(s)) => Some(crate::chain::parse_wei(s).map_err(|e| anyhow::anyhow!("max_gas_price: {e}"))?),
        (None, None) => None,
    };
    let max_gas_price = max_gas_price.map(|w| w.to_u128().unwrap_or(u128::MAX));
    let face = ticket_settings(args.ticket_ev, args.ticket_face_value)?.face_value;
    let gas_price = chain.gas_price().await?;
    // What a redemption costs at today's price (go-livepeer assumes 1,200,000 gas on Arbitrum).
    let cost = byoc_payment::Wei::from_u128(1_200_000u128.saturating_mul(gas_price));
    if face <= cost {
        tracing::warn!(face_value = %face, redemption_cost = %cost, gas_price, "the ticket face value does not cover a redemption at today's gas price: raise --ticket-face-value");
    }
    tracing::info!(round = first.point.round, block = first.point.block, pool = first.pool_size, validity, "on chain");
    Ok(byoc_orchestrator::OnChainSettings {
        chain,
        first,
        poll: args.chain.poll(),
        redeem: byoc_chain::RedeemConfig {
            max_gas_price,
            max_attempts: args.redeem_max_attempts.unwrap_or(5).max(1),
            retry_after: Duration::from_secs(args.redeem_retry_secs.unwrap_or(30)),
            every: args.chain.poll(),
            ticket_validity_period: validity,
            ..byoc_chain::RedeemConfig::default()
        },
        sender_ttl: Duration::from_secs(60),
    })
}

pub async fn run(args: OrchestratorArgs) -> anyhow::Result<()> {
    let file = NodeConfig::load(args.config.as_deref())?;
    let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8935)));
    let allow_unsigned = args.allow_unsigned || file.allow_unsigned.unwrap_or(false);
    let open_registration = args.open_registration || file.open_registration.unwrap_or(false);
    let key = crate::keygen::load_key(args.key.as_deref().or(file.key.as_deref()), &args.passphrase_env)?;
    if key.is_none() && !allow_unsigned {
        bail!("give a node key (--key FILE) or run in free mode (--allow-unsigned)");
    }
    let secret = args.secret.clone().filter(|s| !s.is_empty());
    if secret.is_none() && !open_registration {
        tracing::warn!(
            "no orchestrator secret (--secret or BYOC_ORCH_SECRET): workers cannot register (or --open-registration)"
        );
    }
    let ticket_store = args.ticket_store.clone().or_else(|| file.ticket_store.clone());
    let on_chain = match args.chain.resolved(file.eth_url.as_ref(), file.eth_controller.as_ref())? {
        None => None,
        Some((url, controller)) => {
            let Some(k) = &key else {
                bail!("on-chain mode needs the node key (--key FILE): tickets name its address")
            };
            if ticket_store.is_none() {
                bail!(
                    "on-chain mode needs --ticket-store FILE: winning tickets are money and wait there for redemption"
                );
            }
            Some(on_chain_settings(&args, &file, &url, controller, k).await?)
        }
    };
    // Bound first, so that `--listen 127.0.0.1:0` gets a real port into its service URL.
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen} (--listen)"))?;
    let bound = listener.local_addr()?;
    let service_url =
        args.service_addr.clone().or_else(|| file.service_addr.clone()).unwrap_or_else(|| format!("http://{bound}"));
    let grpc_listen = args.grpc_listen.or(file.grpc_listen);
    let tls = tls_config(&args, &file, &service_url, grpc_listen)?;
    let grpc = match grpc_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr} (--grpc-listen)"))?)
        }
        None => None,
    };
    let config = OrchestratorConfig {
        service_url: service_url.clone(),
        secret,
        open_registration,
        signatures: if allow_unsigned { SignaturePolicy::AllowUnsigned } else { SignaturePolicy::Required },
        key,
        signed_job_max_age: Duration::from_secs(
            args.signed_job_max_age_secs.or(file.signed_job_max_age_secs).unwrap_or(120).max(1),
        ),
        accept_unstamped_jobs: args.accept_unstamped_jobs.or(file.accept_unstamped_jobs).unwrap_or(allow_unsigned),
        stream_idle_timeout: Duration::from_secs(
            args.stream_idle_timeout_secs.or(file.stream_idle_timeout_secs).unwrap_or(60),
        ),
        payments: byoc_orchestrator::PaymentSettings {
            ticket_store,
            on_chain,
            recipient: ticket_settings(args.ticket_ev, args.ticket_face_value)?,
            min_balance_secs: args.min_balance_secs.unwrap_or(60),
            grace: Duration::from_secs(args.payment_grace_secs.unwrap_or(10)),
            ..Default::default()
        },
        frame_encoding: args.frames.limits(&file.frames)?,
        ..OrchestratorConfig::default()
    };
    if let Some(k) = &config.key {
        tracing::info!(address = %k.address(), "node key loaded");
    }
    let server_limits = args.limits.server(&file.limits)?;
    let trickle = TrickleStore::new(args.limits.trickle(&file.limits));
    let _sweeper = trickle.spawn_sweeper();
    let orch = Orchestrator::new(config, trickle)?;
    let prices = args.prices.merged(&file)?;
    for (name, price) in &prices {
        orch.registry.set_price(name, byoc_orchestrator::Price { per_unit: *price, scaling: 1 });
    }
    if prices.values().any(|p| *p > 0) {
        match (&orch.config.key, &orch.config.payments.ticket_store) {
            (None, _) => {
                tracing::warn!("prices are set but there is no node key (--key): priced capabilities cannot be paid")
            }
            (Some(_), None) => {
                tracing::warn!("priced mode without --ticket-store: winning tickets are kept in memory only")
            }
            (Some(k), Some(db)) => tracing::info!(recipient = %k.address(), store = %db.display(), "priced mode"),
        }
    }
    let watcher = offer_plugins(&orch, &args.plugins, &file).await?;
    // One per server below (the gRPC port has its own).
    let (shutdown, grpc_shutdown) = (crate::trickle::Shutdown::listen(), crate::trickle::Shutdown::listen());
    println!("orchestrator listening on {service_url} (trickle at {service_url}/ai/trickle/)");
    if crate::tools::json_logs() {
        tracing::info!(url = %service_url, capabilities = %orch.registry.names().join(", "), "orchestrator listening");
    }
    let app = router(orch.clone());
    let served = match grpc {
        None => {
            println!("TLS (gRPC and the API over https) on the same port");
            let sniffed = byoc_net::Transport::Sniffed(tls);
            crate::trickle::serve_until_signal_over("orchestrator", listener, app, server_limits, sniffed, shutdown)
                .await
        }
        Some(grpc) => {
            println!("gRPC over TLS on {}", grpc.local_addr()?);
            let tls = byoc_net::Transport::Tls(tls);
            let plain =
                crate::trickle::serve_until_signal("orchestrator", listener, app.clone(), server_limits, shutdown);
            let secure =
                crate::trickle::serve_until_signal_over("orchestrator", grpc, app, server_limits, tls, grpc_shutdown);
            tokio::try_join!(plain, secure).map(|_| ())
        }
    };
    if let Some(w) = watcher {
        w.abort();
    }
    orch.shutdown().await;
    served
}
