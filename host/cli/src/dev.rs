//! `byoc dev`: a gateway, an orchestrator and the bundled plugins in one process, on loopback,
//! in free mode with a generated key: everything a developer needs to try a stream.
//!
//! While it runs, `byoc dev` keeps its addresses in a state file ([`DevState`]) so that other
//! commands find it: `byoc plugin reload` reloads plugins on its orchestrator (a random port)
//! without `--node`. The file is `$XDG_RUNTIME_DIR/byoc/dev.json`, else `dev.json` in the cache
//! directory (`$XDG_CACHE_HOME/byoc`, `$HOME/.cache/byoc`), or `--state-file`/`BYOC_DEV_STATE`;
//! it is removed when `byoc dev` stops. With several `byoc dev` at once, the last one started
//! owns the default file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
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
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
    #[command(flatten)]
    frames: crate::config::FramesArgs,
    /// Where to write the addresses for other commands (`byoc plugin reload`) [default:
    /// $XDG_RUNTIME_DIR/byoc/dev.json, else in the cache directory].
    #[arg(long, env = "BYOC_DEV_STATE")]
    state_file: Option<PathBuf>,
}

/// What a running `byoc dev` tells other commands, as JSON in its state file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DevState {
    /// The gateway's URL.
    pub gateway: String,
    /// The orchestrator's URL (`POST /plugins/reload` there; free mode needs no secret).
    pub orchestrator: String,
    /// The plugin directory it serves and watches, if any.
    pub plugins: Option<PathBuf>,
    /// Its process id.
    pub pid: u32,
}

impl DevState {
    /// The state file: `path`, else the default place (see the module's doc).
    pub fn path(path: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(path) = path {
            return Ok(path.to_owned());
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = var("XDG_RUNTIME_DIR")
            .or_else(|| var("XDG_CACHE_HOME"))
            .or_else(|| var("HOME").map(|home| home.join(".cache")))
            .context("no directory for byoc dev's state file: set XDG_RUNTIME_DIR or HOME, or pass --state-file")?;
        Ok(dir.join("byoc").join("dev.json"))
    }

    /// Reads the state file of a running `byoc dev`.
    pub fn read(path: Option<&Path>) -> anyhow::Result<DevState> {
        let path = Self::path(path)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no running `byoc dev` found ({} does not exist); start `byoc dev`, or pass --node URL",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: DevState =
            serde_json::from_str(&text).with_context(|| format!("{}: not a byoc dev state file", path.display()))?;
        // A `byoc dev` killed outright leaves its file behind; where processes can be looked up,
        // say so rather than fail to connect.
        let proc = Path::new("/proc");
        if proc.join("self").exists() && !proc.join(state.pid.to_string()).exists() {
            bail!(
                "the byoc dev that wrote {} (pid {}) is not running any more; start `byoc dev`, or pass --node URL",
                path.display(),
                state.pid
            );
        }
        Ok(state)
    }

    /// Writes the file (through a temporary file and a rename: a reader never sees half of it).
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", self.pid));
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Removes the file if it is still this process's (a later `byoc dev` may own it now).
    fn remove(path: &Path) {
        let ours = Self::read(Some(path)).is_ok_and(|state| state.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let (segment_min_duration, keyframe_request_every) = args.media.durations(&crate::config::GatewayFile::default())?;
    let orch_listener = tokio::net::TcpListener::bind(args.orchestrator_listen)
        .await
        .with_context(|| format!("binding {} (--orchestrator-listen)", args.orchestrator_listen))?;
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
    let plugins_dir = crate::orchestrator::plugins_dir(&args.plugins, &crate::config::NodeConfig::default());
    let gw_listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {} (--listen)", args.listen))?;
    let gw_url = format!("http://{}", gw_listener.local_addr()?);
    let gw = Gateway::new(GatewayConfig {
        public_url: gw_url.clone(),
        orchestrators: vec![orch_url.clone()],
        segment_min_duration,
        keyframe_request_every,
        piece_window: args.media.piece_window(&crate::config::GatewayFile::default())?,
        media_limits: args.media.limits(&limits_file),
        ..GatewayConfig::default()
    })?;
    let rtmp = byoc_gateway::serve_rtmp(&gw, args.rtmp_listen, None)
        .await
        .with_context(|| format!("RTMP on {} (--rtmp-listen)", args.rtmp_listen))?;
    let webrtc = byoc_gateway::serve_webrtc(&gw, args.webrtc_listen, None)
        .await
        .with_context(|| format!("WebRTC on {} (--webrtc-listen)", args.webrtc_listen))?;
    let orch_app = byoc_orchestrator::router(orch.clone());
    let orch_task = tokio::spawn(async move {
        let _ = byoc_net::serve("orchestrator", orch_listener, orch_app, server_limits, std::future::pending()).await;
    });
    crate::tools::warn_missing_for_gateway();
    let capabilities = orch.registry.names().join(", ");
    let rtmp_ingest = format!("rtmp://{}/live/{{stream_id}}-{{stream_secret}}", rtmp.local_addr());
    let shutdown = crate::trickle::Shutdown::listen();
    println!("byoc dev: gateway       {gw_url}   (start streams: POST {gw_url}/process/stream/start)");
    println!("byoc dev: console       {gw_url}/   (open it in a browser: start, publish, watch, stop)");
    println!(
        "byoc dev: orchestrator  {orch_url}   (trickle: {orch_url}/ai/trickle/, workers register at {orch_url}/capability/register)"
    );
    if capabilities.is_empty() {
        println!("byoc dev: capabilities  none yet: {}", crate::tools::HOW_TO_GET_PLUGINS);
    } else {
        println!("byoc dev: capabilities  {capabilities}");
    }
    println!("byoc dev: RTMP ingest   {rtmp_ingest} (each stream's rtmp_url)");
    println!("byoc dev: WHIP/WHEP     udp {webrtc} (each stream's whip_url / whep_url)");
    let state = DevState {
        gateway: gw_url.clone(),
        orchestrator: orch_url.clone(),
        plugins: plugins_dir.map(|d| std::path::absolute(&d).unwrap_or(d)),
        pid: std::process::id(),
    };
    // Without the file only `byoc plugin reload` needs `--node`: not a reason to stop.
    let state_file = DevState::path(args.state_file.as_deref()).and_then(|path| state.write(&path).map(|()| path));
    let state_file = match state_file {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "byoc dev's state file not written; `byoc plugin reload` needs --node");
            None
        }
    };
    let plugins = match &state.plugins {
        Some(dir) => format!("{} (hot reload; `byoc plugin reload` finds this node)", dir.display()),
        None => format!("none: {}", crate::tools::HOW_TO_GET_PLUGINS),
    };
    println!("byoc dev: plugins       {plugins}");
    let mode = if args.prices.prices.is_empty() {
        "free mode (unsigned jobs accepted, open worker registration); loopback only".to_string()
    } else {
        let prices: Vec<String> = args.prices.prices.iter().map(|(c, p)| format!("{c}={p} wei/s")).collect();
        format!("priced mode ({}), paid with tickets; loopback only", prices.join(", "))
    };
    println!("byoc dev: {mode}");
    if crate::tools::json_logs() {
        tracing::info!(
            gateway = %gw_url,
            console = %format!("{gw_url}/"),
            orchestrator = %orch_url,
            %capabilities,
            rtmp_ingest = %rtmp_ingest,
            webrtc = %webrtc,
            %plugins,
            %mode,
            "byoc dev ready"
        );
    }
    let served = crate::trickle::serve_until_signal(
        "gateway",
        gw_listener,
        byoc_gateway::router(gw.clone()),
        server_limits,
        shutdown,
    )
    .await;
    if let Some(path) = state_file {
        DevState::remove(&path);
    }
    gw.shutdown().await;
    orch.shutdown().await;
    orch_task.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_is_written_read_and_removed_only_by_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dev.json");
        let missing = DevState::read(Some(&path)).unwrap_err().to_string();
        assert!(missing.contains("no running `byoc dev`") && missing.contains("--node"), "{missing}");

        let state = DevState {
            gateway: "http://127.0.0.1:1".into(),
            orchestrator: "http://127.0.0.1:2".into(),
            plugins: Some(PathBuf::from("/p")),
            pid: std::process::id(),
        };
        state.write(&path).unwrap();
        assert_eq!(DevState::read(Some(&path)).unwrap(), state);

        // Another process's file stays; ours goes. (The parent is another process that runs.)
        let parent = std::os::unix::process::parent_id();
        DevState { pid: parent, ..state.clone() }.write(&path).unwrap();
        DevState::remove(&path);
        assert!(path.is_file());
        if Path::new("/proc/self").exists() {
            DevState { pid: u32::MAX, ..state.clone() }.write(&path).unwrap();
            let gone = DevState::read(Some(&path)).unwrap_err().to_string();
            assert!(gone.contains("not running any more"), "{gone}");
        }
        state.write(&path).unwrap();
        DevState::remove(&path);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 0, "no temporary file left");
    }
}
