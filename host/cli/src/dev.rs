//! `byoc dev`: a gateway, an orchestrator and the bundled plugins in one process, on loopback,
//! in free mode with a generated key: everything a developer needs to try a stream.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use byoc_gateway::{Gateway, GatewayConfig};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::job::SignaturePolicy;
use byoc_trickle::TrickleStore;

use crate::orchestrator::{PluginsArgs, offer_plugins};

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address of the gateway API (what clients use).
    #[arg(long, default_value = "127.0.0.1:8937")]
    listen: SocketAddr,
    /// Address of the orchestrator (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    orchestrator_listen: SocketAddr,
    #[command(flatten)]
    plugins: PluginsArgs,
    #[command(flatten)]
    prices: crate::config::PriceArgs,
    /// RTMP ingest address (a publish to a stream's `rtmp_url` feeds it).
    #[arg(long, default_value = "127.0.0.1:1935")]
    rtmp_listen: SocketAddr,
    /// WHIP/WHEP media address (UDP, one port for every session).
    #[arg(long, default_value = "127.0.0.1:0")]
    webrtc_listen: SocketAddr,
    #[command(flatten)]
    media: crate::config::MediaArgs,
    /// TOML file with a `[limits]` table (see the README); flags override it.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
    #[command(flatten)]
    frames: crate::config::FramesArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let (segment_min_duration, keyframe_request_every) = args.media.durations(&crate::config::GatewayFile::default())?;
    let orch_listener = tokio::net::TcpListener::bind(args.orchestrator_listen)
        .await
        .with_context(|| format!("binding {}", args.orchestrator_listen))?;
    let orch_url = format!("http://{}", orch_listener.local_addr()?);
    let limits_file = crate::config::LimitsOnlyFile::load(args.config.as_deref())?;
    let server_limits = args.limits.server(&limits_file)?;
    let trickle = TrickleStore::new(args.limits.trickle(&limits_file));
    let _sweeper = trickle.spawn_sweeper();
    let orch = Orchestrator::new(
        OrchestratorConfig {
            service_url: orch_url.clone(),
            open_registration: true,
            signatures: SignaturePolicy::AllowUnsigned,
            // Free mode, unless prices are given: then a dev key, and the gateway pays the
            // orchestrator with tickets (plugins' announced prices apply too).
            key: (!args.prices.prices.is_empty()).then(byoc_payment::SecretKey::generate),
            stream_idle_timeout: Duration::from_secs(60),
            // Free mode: go-livepeer gateways' jobs are welcome too.
            accept_unstamped_jobs: true,
            frame_encoding: args.frames.limits(&crate::config::FramesFile::default())?,
            ..OrchestratorConfig::default()
        },
        trickle,
    )?;
    for (name, price) in args.prices.merged(&crate::config::NodeConfig::default())? {
        orch.registry.set_price(&name, byoc_orchestrator::Price { per_unit: price, scaling: 1 });
    }
    let watcher = offer_plugins(&orch, &args.plugins, &crate::config::NodeConfig::default()).await?;
    let gw_listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let gw_url = format!("http://{}", gw_listener.local_addr()?);
    let gw = Gateway::new(GatewayConfig {
        public_url: gw_url.clone(),
        orchestrators: vec![orch_url.clone()],
        segment_min_duration,
        keyframe_request_every,
        media_limits: args.media.limits(&limits_file),
        ..GatewayConfig::default()
    })?;
    let rtmp = byoc_gateway::serve_rtmp(&gw, args.rtmp_listen, None)
        .await
        .with_context(|| format!("RTMP on {}", args.rtmp_listen))?;
    let webrtc = byoc_gateway::serve_webrtc(&gw, args.webrtc_listen, None)
        .await
        .with_context(|| format!("WebRTC on {}", args.webrtc_listen))?;
    let orch_app = byoc_orchestrator::router(orch.clone());
    let orch_task = tokio::spawn(async move {
        let _ = byoc_net::serve(orch_listener, orch_app, server_limits, std::future::pending()).await;
    });
    println!("byoc dev: gateway       {gw_url}   (start streams: POST {gw_url}/process/stream/start)");
    println!(
        "byoc dev: orchestrator  {orch_url}   (trickle: {orch_url}/ai/trickle/, workers register at {orch_url}/capability/register)"
    );
    println!("byoc dev: capabilities  {}", orch.registry.names().join(", "));
    println!(
        "byoc dev: RTMP ingest   rtmp://{}/live/{{stream_id}}-{{stream_secret}} (each stream's rtmp_url)",
        rtmp.local_addr()
    );
    println!("byoc dev: WHIP/WHEP     udp {webrtc} (each stream's whip_url / whep_url)");
    if args.prices.prices.is_empty() {
        println!("byoc dev: free mode (unsigned jobs accepted, open worker registration); loopback only");
    } else {
        let prices: Vec<String> = args.prices.prices.iter().map(|(c, p)| format!("{c}={p} wei/s")).collect();
        println!("byoc dev: priced mode ({}), paid with tickets; loopback only", prices.join(", "));
    }
    let served = crate::trickle::serve_until_signal(gw_listener, byoc_gateway::router(gw.clone()), server_limits).await;
    gw.shutdown().await;
    orch.shutdown().await;
    orch_task.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    served
}
