//! The node's TOML configuration file (`--config FILE`). Every setting is optional; a flag on
//! the command line wins over the file, and the file over the built-in default.
//!
//! ```toml
//! listen = "127.0.0.1:8935"
//! service_addr = "https://orch.example.com:8935"
//! # grpc_listen = "0.0.0.0:8935"    # gRPC (and the API) over TLS only, with listen on another port; else TLS beside HTTP on `listen`
//! tls_cert = "cert.pem"             # with tls_key; else a self-signed certificate made at start
//! tls_key = "key.pem"
//! allow_unsigned = false
//! key = "node.json"                 # passphrase from BYOC_KEY_PASSPHRASE
//! open_registration = false         # the secret comes from --secret / BYOC_ORCH_SECRET
//! stream_idle_timeout_secs = 60
//! signed_job_max_age_secs = 120     # a signed job's request.issued_at may be this old
//! accept_unstamped_jobs = false     # go-livepeer gateways' jobs (no issued_at); on with allow_unsigned
//! plugins = "target/plugins"
//! plugin_capacity = 4
//! ticket_store = "tickets.sqlite"  # winning tickets and balances (priced mode)
//! eth_url = "https://arb1.example.com"   # on-chain mode (with eth_controller)
//! eth_controller = "0xD8E8328501E9645d16Cf49539efC04f734606ee4"
//! max_gas_price = "5gwei"           # redemption waits above it
//!
//! [prices]                          # wei per second of compute, per capability
//! passthrough = 1000
//! ts-analyzer = "250000000000"      # as a string when it does not fit a TOML integer
//!
//! [capacity]                        # concurrent streams, per plugin capability
//! passthrough = 8
//!
//! [frames]                          # what a frame plugin's stream may ask of the encoder
//! max_bitrate_kbps = 6000           # params.encoder.bitrate_kbps at most this
//! slowest_preset = "veryfast"       # params.encoder.preset no slower than this x264 preset
//!
//! [operator]                        # narrows what plugins may do (see byoc-runtime)
//! outbound_hosts = ["127.0.0.1:9000"]
//! [operator.plugins.http-adapter]
//! outbound_hosts = ["127.0.0.1:9000"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A price in the file: an integer, or a decimal string for values beyond TOML's integers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WeiPerSecond {
    Int(u64),
    Text(String),
}

impl WeiPerSecond {
    pub fn value(&self) -> anyhow::Result<u128> {
        match self {
            WeiPerSecond::Int(v) => Ok(u128::from(*v)),
            WeiPerSecond::Text(t) => {
                t.trim().parse().with_context(|| format!("price {t:?} is not a whole number of wei"))
            }
        }
    }
}

/// `--price CAPABILITY=WEI_PER_SECOND` (repeatable): the operator's prices, over the config file's.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PriceArgs {
    /// Price of a capability in wei per second of compute, e.g. `--price passthrough=1000`
    /// (repeatable; wins over the config file and over what plugins and workers announce).
    #[arg(long = "price", value_name = "CAPABILITY=WEI_PER_SECOND", value_parser = parse_price)]
    pub prices: Vec<(String, u128)>,
}

fn parse_price(s: &str) -> Result<(String, u128), String> {
    let (name, wei) = s.split_once('=').ok_or("expected CAPABILITY=WEI_PER_SECOND")?;
    let wei = wei.trim().parse::<u128>().map_err(|_| format!("{wei:?} is not a whole number of wei"))?;
    if name.trim().is_empty() {
        return Err("the capability name is empty".into());
    }
    Ok((name.trim().to_string(), wei))
}

impl PriceArgs {
    /// The prices to apply: the file's, then the flags' over them.
    pub fn merged(&self, file: &NodeConfig) -> anyhow::Result<BTreeMap<String, u128>> {
        let mut out = BTreeMap::new();
        for (name, price) in &file.prices {
            out.insert(name.clone(), price.value()?);
        }
        out.extend(self.prices.iter().cloned());
        Ok(out)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub listen: Option<SocketAddr>,
    pub service_addr: Option<String>,
    pub grpc_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_unsigned: Option<bool>,
    pub key: Option<PathBuf>,
    pub open_registration: Option<bool>,
    pub stream_idle_timeout_secs: Option<u64>,
    pub signed_job_max_age_secs: Option<u64>,
    pub accept_unstamped_jobs: Option<bool>,
    pub plugins: Option<PathBuf>,
    pub plugin_capacity: Option<u32>,
    pub ticket_store: Option<PathBuf>,
    pub eth_url: Option<String>,
    pub eth_controller: Option<String>,
    pub max_gas_price: Option<String>,
    #[serde(default)]
    pub prices: BTreeMap<String, WeiPerSecond>,
    #[serde(default)]
    pub capacity: BTreeMap<String, u32>,
    #[serde(default)]
    pub operator: byoc_runtime::OperatorConfig,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub frames: FramesFile,
}

impl NodeConfig {
    /// Reads a config file; `None` gives the empty configuration.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: NodeConfig = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        for (name, price) in &config.prices {
            if let Err(e) = price.value() {
                bail!("[prices] {name}: {e}");
            }
        }
        Ok(config)
    }
}

/// The gateway's TOML configuration file (`byoc gateway --config FILE`); flags win over it.
///
/// ```toml
/// listen = "127.0.0.1:8937"
/// public_url = "https://gw.example.com"
/// orchestrators = ["https://orch-a.example.com:8935", "https://orch-b.example.com:8935"]
/// orchestrator_list = "/etc/byoc/orchestrators.txt"   # or an http(s) URL, read at every discovery
/// orchestrator_webhook = "https://disco.example.com"   # [{"address", "score"}], asked at most once a minute
/// eth_url = "https://arb1.example.com"                 # on-chain: discovery from the pool, funds checked
/// eth_controller = "0xD8E8328501E9645d16Cf49539efC04f734606ee4"
/// key = "gateway.json"                                 # passphrase from BYOC_KEY_PASSPHRASE
/// auth_webhook = "https://auth.example.com/byoc"
/// segment_min_ms = 1000                                 # media ingest: shortest segment
/// keyframe_request_ms = 2000                            # WHIP: how often a keyframe is asked for
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub orchestrators: Vec<String>,
    pub orchestrator_list: Option<String>,
    pub orchestrator_webhook: Option<String>,
    pub eth_url: Option<String>,
    pub eth_controller: Option<String>,
    pub key: Option<PathBuf>,
    pub auth_webhook: Option<String>,
    pub segment_min_ms: Option<u64>,
    pub keyframe_request_ms: Option<u64>,
    #[serde(default)]
    pub limits: LimitsFile,
}

/// How the gateway's own media ingest (RTMP, WHIP) is cut: `--segment-min-ms` and
/// `--keyframe-request-ms` (flags win over the config file).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MediaArgs {
    /// Shortest ingest segment, in ms: a segment is cut at the first keyframe this long after its
    /// start [default: 1000].
    #[arg(long)]
    pub segment_min_ms: Option<u64>,
    /// How often WHIP publishers are asked for a keyframe (PLI), in ms: the length of WHIP
    /// segments [default: 2000].
    #[arg(long)]
    pub keyframe_request_ms: Option<u64>,
    /// Largest ingest segment in bytes (RTMP/WHIP segments are cut there, a bigger HTTP ingest
    /// body is cut off with 413) [default: 16 MiB].
    #[arg(long)]
    pub max_ingest_segment_bytes: Option<usize>,
    /// Seconds from an RTMP connection's accept to its publish or play [default: 10].
    #[arg(long)]
    pub rtmp_publish_deadline_secs: Option<u64>,
    /// Bytes per second an RTMP publisher must average over 20 s; 0: no minimum [default: 512].
    #[arg(long)]
    pub rtmp_min_publish_rate: Option<u64>,
    /// RTMP connections at once from one IP [default: 16].
    #[arg(long)]
    pub rtmp_max_connections_per_ip: Option<usize>,
    /// WebRTC sessions (pending and connected) of one stream [default: 64].
    #[arg(long)]
    pub webrtc_max_sessions_per_stream: Option<usize>,
    /// WebRTC sessions of one stream not yet connected [default: 16].
    #[arg(long)]
    pub webrtc_max_pending_per_stream: Option<usize>,
    /// WebRTC sessions from one client IP [default: 32].
    #[arg(long)]
    pub webrtc_max_sessions_per_ip: Option<usize>,
    /// WebRTC sessions from one client IP not yet connected [default: 8].
    #[arg(long)]
    pub webrtc_max_pending_per_ip: Option<usize>,
    /// Seconds a WebRTC session has to complete ICE and DTLS [default: 10].
    #[arg(long)]
    pub webrtc_connect_timeout_secs: Option<u64>,
}

/// A setting's value: the flag's, else the config file's, else the default.
fn layered<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

impl MediaArgs {
    /// The media legs' bounds: flags, then the file's `[limits]`, then the defaults.
    pub fn limits(&self, file: &LimitsFile) -> byoc_gateway::MediaLimits {
        let d = byoc_gateway::MediaLimits::default();
        let secs = |flag: Option<u64>, file: Option<u64>, default: std::time::Duration| {
            flag.or(file).map_or(default, |s| std::time::Duration::from_secs(s.max(1)))
        };
        byoc_gateway::MediaLimits {
            max_ingest_segment_bytes: layered(
                self.max_ingest_segment_bytes,
                file.max_ingest_segment_bytes,
                d.max_ingest_segment_bytes,
            )
            .max(1),
            rtmp_publish_deadline: secs(
                self.rtmp_publish_deadline_secs,
                file.rtmp_publish_deadline_secs,
                d.rtmp_publish_deadline,
            ),
            rtmp_min_publish_rate: layered(
                self.rtmp_min_publish_rate,
                file.rtmp_min_publish_rate,
                d.rtmp_min_publish_rate,
            ),
            rtmp_max_connections_per_ip: layered(
                self.rtmp_max_connections_per_ip,
                file.rtmp_max_connections_per_ip,
                d.rtmp_max_connections_per_ip,
            ),
            webrtc_max_sessions_per_stream: layered(
                self.webrtc_max_sessions_per_stream,
                file.webrtc_max_sessions_per_stream,
                d.webrtc_max_sessions_per_stream,
            ),
            webrtc_max_pending_per_stream: layered(
                self.webrtc_max_pending_per_stream,
                file.webrtc_max_pending_per_stream,
                d.webrtc_max_pending_per_stream,
            ),
            webrtc_max_sessions_per_ip: layered(
                self.webrtc_max_sessions_per_ip,
                file.webrtc_max_sessions_per_ip,
                d.webrtc_max_sessions_per_ip,
            ),
            webrtc_max_pending_per_ip: layered(
                self.webrtc_max_pending_per_ip,
                file.webrtc_max_pending_per_ip,
                d.webrtc_max_pending_per_ip,
            ),
            webrtc_connect_timeout: secs(
                self.webrtc_connect_timeout_secs,
                file.webrtc_connect_timeout_secs,
                d.webrtc_connect_timeout,
            ),
        }
    }

    /// `(segment_min_duration, keyframe_request_every)`, checked: 100 ms to 60 s each.
    pub fn durations(&self, file: &GatewayFile) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
        let pick = |flag: Option<u64>, file: Option<u64>, default: u64, name: &str| {
            let ms = layered(flag, file, default);
            if !(100..=60_000).contains(&ms) {
                bail!("{name} must be between 100 and 60000 ms (got {ms})");
            }
            Ok(std::time::Duration::from_millis(ms))
        };
        Ok((
            pick(self.segment_min_ms, file.segment_min_ms, 1000, "--segment-min-ms")?,
            pick(self.keyframe_request_ms, file.keyframe_request_ms, 2000, "--keyframe-request-ms")?,
        ))
    }
}

/// The `[limits]` table of a config file (`byoc gateway`, `orchestrator`, `trickle` and `dev`
/// all read it); the flags of [`LimitArgs`] win over it.
///
/// ```toml
/// [limits]
/// header_timeout_secs = 10            # a request head must be complete this long after its first byte
/// conn_idle_timeout_secs = 60         # a connection with no request in flight is closed
/// max_connections = 4096              # open HTTP connections, all clients together
/// max_connections_per_ip = 1024       # open HTTP connections from one IP
/// max_buffered_bytes = 6442450944     # trickle segments held in memory (default: 1/4 of RAM)
/// # the gateway's media legs (gateway, dev):
/// max_ingest_segment_bytes = 16777216
/// rtmp_publish_deadline_secs = 10
/// rtmp_min_publish_rate = 512          # bytes/s over 20 s; 0: none
/// rtmp_max_connections_per_ip = 16
/// webrtc_max_sessions_per_stream = 64
/// webrtc_max_pending_per_stream = 16
/// webrtc_max_sessions_per_ip = 32
/// webrtc_max_pending_per_ip = 8
/// webrtc_connect_timeout_secs = 10
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub header_timeout_secs: Option<u64>,
    pub conn_idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_buffered_bytes: Option<usize>,
    // The gateway's media legs (`byoc gateway`, `byoc dev`); see `MediaArgs`.
    pub max_ingest_segment_bytes: Option<usize>,
    pub rtmp_publish_deadline_secs: Option<u64>,
    pub rtmp_min_publish_rate: Option<u64>,
    pub rtmp_max_connections_per_ip: Option<usize>,
    pub webrtc_max_sessions_per_stream: Option<usize>,
    pub webrtc_max_pending_per_stream: Option<usize>,
    pub webrtc_max_sessions_per_ip: Option<usize>,
    pub webrtc_max_pending_per_ip: Option<usize>,
    pub webrtc_connect_timeout_secs: Option<u64>,
}

/// The config file's `[frames]`: see [`FramesArgs`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesFile {
    pub max_bitrate_kbps: Option<u32>,
    pub slowest_preset: Option<String>,
}

/// What a frame plugin's stream may ask of the video encoder in `params.encoder` (see
/// `byoc_frames::encoder`); each flag wins over the config file's `[frames]`, which wins over the
/// default.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FramesArgs {
    /// Highest video bitrate a frame plugin's stream may ask for, in kbit/s [default: 6000].
    #[arg(long)]
    pub frames_max_bitrate_kbps: Option<u32>,
    /// Slowest x264 preset a frame plugin's stream may ask for (ultrafast, superfast, veryfast,
    /// faster, fast, medium, slow, slower, veryslow, placebo) [default: veryfast].
    #[arg(long)]
    pub frames_slowest_preset: Option<String>,
}

impl FramesArgs {
    /// The encoder limits: flags, then the file, then the defaults; checked.
    pub fn limits(&self, file: &FramesFile) -> anyhow::Result<byoc_frames::EncodeLimits> {
        let d = byoc_frames::EncodeLimits::default();
        let limits = byoc_frames::EncodeLimits {
            max_bitrate_kbps: layered(self.frames_max_bitrate_kbps, file.max_bitrate_kbps, d.max_bitrate_kbps),
            slowest_preset: self
                .frames_slowest_preset
                .clone()
                .or_else(|| file.slowest_preset.clone())
                .unwrap_or(d.slowest_preset),
        };
        limits.check().map_err(|e| anyhow::anyhow!("--frames-max-bitrate-kbps / --frames-slowest-preset: {e}"))?;
        Ok(limits)
    }
}

/// A config file holding only `[limits]` (`byoc trickle --config`, `byoc dev --config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOnlyFile {
    #[serde(default)]
    pub limits: LimitsFile,
}

impl LimitsOnlyFile {
    pub fn load(path: Option<&Path>) -> anyhow::Result<LimitsFile> {
        let Some(path) = path else { return Ok(LimitsFile::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: LimitsOnlyFile = toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(file.limits)
    }
}

/// The bounds of a node's HTTP server and buffers (see the README's security model); each flag
/// wins over the config file's `[limits]`, which wins over the default.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LimitArgs {
    /// Seconds a client has to send a whole request head once it started one [default: 10].
    #[arg(long)]
    pub header_timeout_secs: Option<u64>,
    /// Seconds an HTTP connection with no request in flight stays open [default: 60].
    #[arg(long)]
    pub conn_idle_timeout_secs: Option<u64>,
    /// Most open HTTP connections, all clients together [default: 4096]; at the cap the longest
    /// idle one is closed to make room, and with none idle a new one gets 503.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most open HTTP connections from one IP address [default: 1024].
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Bytes of trickle segments held in memory, all channels together; over it the oldest
    /// finished segments are dropped [default: a quarter of the machine's memory].
    #[arg(long)]
    pub max_buffered_bytes: Option<usize>,
}

impl LimitArgs {
    /// The HTTP server's bounds; each must be at least 1.
    pub fn server(&self, file: &LimitsFile) -> anyhow::Result<byoc_net::Limits> {
        let d = byoc_net::Limits::default();
        let positive = |v: u64, name: &str| {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
            Ok(v)
        };
        let secs = |flag: Option<u64>, file: Option<u64>, default: std::time::Duration, name: &str| {
            flag.or(file).map_or(Ok(default), |v| positive(v, name).map(std::time::Duration::from_secs))
        };
        let count = |flag: Option<usize>, file: Option<usize>, default: usize, name: &str| {
            let v = layered(flag, file, default);
            positive(v as u64, name).map(|_| v)
        };
        Ok(byoc_net::Limits {
            header_read_timeout: secs(
                self.header_timeout_secs,
                file.header_timeout_secs,
                d.header_read_timeout,
                "--header-timeout-secs",
            )?,
            idle_timeout: secs(
                self.conn_idle_timeout_secs,
                file.conn_idle_timeout_secs,
                d.idle_timeout,
                "--conn-idle-timeout-secs",
            )?,
            max_connections: count(self.max_connections, file.max_connections, d.max_connections, "--max-connections")?,
            max_connections_per_ip: count(
                self.max_connections_per_ip,
                file.max_connections_per_ip,
                d.max_connections_per_ip,
                "--max-connections-per-ip",
            )?,
        })
    }

    /// The trickle store's limits: the defaults, with the memory budget set here if it is.
    pub fn trickle(&self, file: &LimitsFile) -> byoc_trickle::TrickleConfig {
        let mut c = byoc_trickle::TrickleConfig::default();
        if let Some(b) = self.max_buffered_bytes.or(file.max_buffered_bytes) {
            c.max_buffered_bytes = b;
        }
        c
    }
}

impl GatewayFile {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_gateway_file_and_refuses_unknown_keys() {
        let g: GatewayFile = toml::from_str(
            r#"
            listen = "127.0.0.1:9"
            orchestrators = ["http://a:1", "http://b:2"]
            auth_webhook = "http://hook"
            "#,
        )
        .unwrap();
        assert_eq!(g.orchestrators.len(), 2);
        assert_eq!(g.auth_webhook.as_deref(), Some("http://hook"));
        assert!(toml::from_str::<GatewayFile>("prices = 1").is_err());
    }

    #[test]
    fn media_durations_come_from_flags_then_the_file_then_defaults_and_are_bounded() {
        let file: GatewayFile = toml::from_str("segment_min_ms = 3000\nkeyframe_request_ms = 1500").unwrap();
        let none = MediaArgs::default();
        let ms = |d: (std::time::Duration, std::time::Duration)| (d.0.as_millis(), d.1.as_millis());
        assert_eq!(ms(none.durations(&GatewayFile::default()).unwrap()), (1000, 2000));
        assert_eq!(ms(none.durations(&file).unwrap()), (3000, 1500));
        let flags = MediaArgs { segment_min_ms: Some(500), ..Default::default() };
        assert_eq!(ms(flags.durations(&file).unwrap()), (500, 1500));
        let bad = MediaArgs { segment_min_ms: Some(10), ..Default::default() };
        assert!(bad.durations(&file).unwrap_err().to_string().contains("--segment-min-ms"));
        let bad = MediaArgs { keyframe_request_ms: Some(600_000), ..Default::default() };
        assert!(bad.durations(&file).is_err());
    }

    #[test]
    fn limits_come_from_flags_then_the_limits_table_then_defaults() {
        let file: GatewayFile = toml::from_str(
            "[limits]\nmax_connections = 100\nheader_timeout_secs = 3\nwebrtc_max_pending_per_ip = 2\nmax_buffered_bytes = 4096",
        )
        .unwrap();
        let none = LimitArgs::default();
        let server = none.server(&file.limits).unwrap();
        assert_eq!((server.max_connections, server.header_read_timeout.as_secs()), (100, 3));
        assert_eq!(server.max_connections_per_ip, byoc_net::Limits::default().max_connections_per_ip);
        let flags = LimitArgs { max_connections: Some(7), ..Default::default() };
        assert_eq!(flags.server(&file.limits).unwrap().max_connections, 7);
        assert!(LimitArgs { max_connections: Some(0), ..Default::default() }.server(&file.limits).is_err());
        assert_eq!(none.trickle(&file.limits).max_buffered_bytes, 4096);
        let media = MediaArgs::default().limits(&file.limits);
        assert_eq!(media.webrtc_max_pending_per_ip, 2);
        assert_eq!(media.max_ingest_segment_bytes, byoc_gateway::MediaLimits::default().max_ingest_segment_bytes);
        assert!(toml::from_str::<GatewayFile>("[limits]\nmax_conections = 1").is_err(), "a misspelt key is refused");
    }

    #[test]
    fn parses_a_full_file_and_refuses_unknown_keys() {
        let c: NodeConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9"
            grpc_listen = "127.0.0.2:8935"
            tls_cert = "c.pem"
            tls_key = "k.pem"
            plugin_capacity = 2
            [prices]
            a = 5
            b = "340282366920938463463374607431768211455"
            [capacity]
            a = 3
            [operator]
            outbound_hosts = ["127.0.0.1:1"]
            "#,
        )
        .unwrap();
        assert_eq!(c.prices["a"].value().unwrap(), 5);
        assert_eq!(c.prices["b"].value().unwrap(), u128::MAX);
        let flags = PriceArgs { prices: vec![parse_price("a=9").unwrap(), parse_price(" c = 1 ").unwrap()] };
        let merged = flags.merged(&c).unwrap();
        assert_eq!((merged["a"], merged["b"], merged["c"]), (9, u128::MAX, 1));
        assert!(parse_price("a").is_err() && parse_price("a=-1").is_err() && parse_price("=5").is_err());
        assert_eq!(c.capacity["a"], 3);
        assert_eq!(c.grpc_listen, Some(SocketAddr::from(([127, 0, 0, 2], 8935))));
        assert_eq!((c.tls_cert.unwrap(), c.tls_key.unwrap()), (PathBuf::from("c.pem"), PathBuf::from("k.pem")));
        assert!(toml::from_str::<NodeConfig>("listne = \"x\"").is_err());
        assert!(WeiPerSecond::Text("1.5".into()).value().is_err());
    }
}
