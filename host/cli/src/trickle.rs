//! `byoc trickle`: a standalone trickle server, so that any trickle client can be tested
//! against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use byoc_trickle::{
    HttpPublisher, HttpSubscriber, SeqRequest, SubscriberOptions, SubscriberStep, TrickleConfig, TrickleStore,
};
use bytes::Bytes;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TrickleArgs {
    #[command(subcommand)]
    client: Option<ClientCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Trickle clients, for trying a server by hand and for scripts.
#[derive(clap::Subcommand)]
enum ClientCommand {
    /// Publish files to a channel, one segment per file, in order.
    Publish {
        /// Channel URL, e.g. http://127.0.0.1:3389/mystream
        url: String,
        /// Files to publish.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Content type of the segments.
        #[arg(long, default_value = "video/mp2t")]
        mime: String,
        /// Pause between segments, in milliseconds (e.g. a segment's duration, for real time).
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Stay fewer than N segments ahead of the channel's slowest reader, as a byoc server
        /// reports it: with N below the server's window, a reader that keeps reading loses nothing.
        /// Without readers (or against another server) it does not wait.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_ahead: Option<u64>,
        /// Start at the server's live edge (`GET /next`) instead of seq 0.
        #[arg(long)]
        live_edge: bool,
        /// Close the channel when done (`DELETE`).
        #[arg(long)]
        close: bool,
        /// Send `Authorization: Bearer TOKEN` (e.g. a gateway stream's secret, for its ingest URL).
        #[arg(long)]
        bearer: Option<String>,
    },
    /// Read segments from a channel and write each to a file.
    Subscribe {
        /// Channel URL.
        url: String,
        /// First seq: -1 (next), -2 (current) or a number.
        #[arg(long, default_value = "-1", allow_hyphen_values = true)]
        start: SeqRequest,
        /// Stop after this many segments (default: until the end of the stream). Segments skipped
        /// because this subscriber fell behind count too; if any were skipped, or the stream ended
        /// first, the command exits non-zero.
        #[arg(long)]
        count: Option<u64>,
        /// Directory for the segments, written as `{seq}.{ext}`; nothing is written without it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// File extension of written segments.
        #[arg(long, default_value = "ts")]
        ext: String,
        /// Send `Authorization: Bearer TOKEN` (e.g. a gateway stream's secret, for its egress URL).
        #[arg(long)]
        bearer: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3389")]
    listen: SocketAddr,
    /// Base path the channels live under (e.g. `/ai/trickle`); the root when absent.
    #[arg(long)]
    base: Option<String>,
    /// Create channels on first HTTP use (`POST {ch}` or a first publish).
    #[arg(long)]
    autocreate: bool,
    /// Segments kept per channel.
    #[arg(long, default_value_t = 5)]
    window: usize,
    /// Largest segment accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_segment_bytes: usize,
    /// Most channels held at once.
    #[arg(long, default_value_t = 10_000)]
    max_channels: usize,
    /// Seconds without activity after which a channel is closed.
    #[arg(long, default_value_t = 300)]
    idle_timeout_secs: u64,
    /// TOML file with a `[limits]` table (see the README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: crate::config::LimitArgs,
}

/// Normalises a base path: leading `/`, no trailing `/`; `None` for the root.
fn base_path(base: Option<&str>) -> Option<String> {
    let trimmed = base?.trim_matches('/');
    (!trimmed.is_empty()).then(|| format!("/{trimmed}"))
}

pub async fn run(args: TrickleArgs) -> anyhow::Result<()> {
    match args.client {
        Some(ClientCommand::Publish { url, files, mime, interval_ms, max_ahead, live_edge, close, bearer }) => {
            let client = client(bearer.as_deref())?;
            let pace = Pace { interval: Duration::from_millis(interval_ms), max_ahead };
            publish(client, &url, &files, &mime, pace, live_edge, close).await
        }
        Some(ClientCommand::Subscribe { url, start, count, out, ext, bearer }) => {
            subscribe(client(bearer.as_deref())?, &url, start, count, out.as_deref(), &ext).await
        }
        None => serve(args.serve).await,
    }
}

/// The HTTP client of the trickle commands, with a bearer token on every request if given.
fn client(bearer: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = byoc_trickle::http_client_builder().http1_only();
    if let Some(token) = bearer {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).context("bad --bearer token")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    Ok(builder.build()?)
}

/// How `byoc trickle publish` paces itself.
struct Pace {
    /// Pause between segments.
    interval: Duration,
    /// Most segments ahead of the slowest reader.
    max_ahead: Option<u64>,
}

async fn publish(
    client: reqwest::Client,
    url: &str,
    files: &[PathBuf],
    mime: &str,
    pace: Pace,
    live_edge: bool,
    close: bool,
) -> anyhow::Result<()> {
    let mut publisher = HttpPublisher::with_client(client, url, mime);
    if live_edge {
        let seq = publisher.start_at_live_edge().await.context("asking for the live edge")?;
        eprintln!("starting at seq {seq}");
    }
    for (i, file) in files.iter().enumerate() {
        if i > 0 && !pace.interval.is_zero() {
            tokio::time::sleep(pace.interval).await;
        }
        if let Some(n) = pace.max_ahead {
            publisher.keep_within(n).await.context("waiting for the channel's readers")?;
        }
        let data = tokio::fs::read(file).await.with_context(|| format!("reading {}", file.display()))?;
        let len = data.len();
        let mut seg = publisher.next_segment();
        seg.write(Bytes::from(data))?;
        let seq = seg.finish().await.with_context(|| format!("publishing {}", file.display()))?;
        println!("published seq {seq}: {} ({len} bytes)", file.display());
    }
    if close {
        publisher.close().await?;
    }
    Ok(())
}

async fn subscribe(
    client: reqwest::Client,
    url: &str,
    start: SeqRequest,
    count: Option<u64>,
    out: Option<&Path>,
    ext: &str,
) -> anyhow::Result<()> {
    if let Some(dir) = out {
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut sub = HttpSubscriber::with_client(client, url, SubscriberOptions { start, ..Default::default() });
    let mut received = 0u64;
    let mut skipped = 0u64;
    // Skipped segments count towards `--count`: they are gone, so waiting for them would never end.
    while count.is_none_or(|c| received + skipped < c) {
        let seg = match sub.next_step().await? {
            SubscriberStep::Segment(seg) => seg,
            SubscriberStep::Skipped { from, to } => {
                eprintln!("skipped segments {from} to {}: this subscriber fell behind the server's window", to.0 - 1);
                skipped += to.0 - from.0;
                continue;
            }
            SubscriberStep::End => {
                eprintln!("end of stream after {received} segments");
                break;
            }
        };
        let seq = seg.seq();
        let data = seg.read_all().await?;
        if let Some(dir) = out {
            let path = dir.join(format!("{seq}.{ext}"));
            tokio::fs::write(&path, &data).await.with_context(|| format!("writing {}", path.display()))?;
        }
        println!("segment {seq}: {} bytes", data.len());
        received += 1;
    }
    match count {
        Some(c) if received < c => anyhow::bail!(
            "received {received} of the {c} segments asked for ({skipped} skipped{})",
            if received + skipped < c { ", then the stream ended" } else { "" }
        ),
        _ => Ok(()),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let idle = Duration::from_secs(args.idle_timeout_secs);
    let file = crate::config::LimitsOnlyFile::load(args.config.as_deref())?;
    let server_limits = args.limits.server(&file)?;
    let store = TrickleStore::new(TrickleConfig {
        window: args.window,
        max_segment_bytes: args.max_segment_bytes,
        max_channels: args.max_channels,
        idle_timeout: idle,
        sweep_interval: (idle / 5).clamp(Duration::from_millis(100), Duration::from_secs(60)),
        autocreate: args.autocreate,
        max_buffered_bytes: args.limits.trickle(&file).max_buffered_bytes,
    });
    let _sweeper = store.spawn_sweeper();
    let base = base_path(args.base.as_deref());
    let app = match &base {
        Some(base) => axum::Router::new().nest(base, byoc_trickle::router(store)),
        None => byoc_trickle::router(store),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::listen();
    // Scripts wait for this line; it names the real port when `--listen` used port 0.
    println!("trickle server listening on http://{addr}{}/", base.as_deref().unwrap_or(""));
    tracing::info!(%addr, autocreate = args.autocreate, window = args.window, "trickle server started");
    serve_until_signal("trickle", listener, app, server_limits, shutdown).await
}

/// Serves until SIGINT/SIGTERM (heard by `shutdown`), then lets in-flight requests finish for a
/// short grace period (subscribers parked on a live edge would otherwise hold the process forever).
pub async fn serve_until_signal(
    node: &'static str,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: byoc_net::Limits,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_until_signal_over(node, listener, app, limits, byoc_net::Transport::Plain, shutdown).await
}

/// [`serve_until_signal`] over `transport` (plain, TLS, or both on the one port).
pub async fn serve_until_signal_over(
    node: &'static str,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: byoc_net::Limits,
    transport: byoc_net::Transport,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let graceful = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let server = byoc_net::serve_with(node, listener, app, limits, transport, graceful);
    tokio::select! {
        r = server => r?,
        _ = async {
            shutdown.wait().await;
            tracing::info!("shutting down");
            stop.notify_one();
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {}
    }
    Ok(())
}

/// SIGINT and SIGTERM, heard from the moment this is made. A node makes it before it says it is
/// listening: until a handler is installed, SIGTERM ends the process at once, so a supervisor's
/// SIGTERM right after that line would skip the graceful shutdown (and the log lines after it).
pub struct Shutdown {
    #[cfg(unix)]
    signals: [Option<tokio::signal::unix::Signal>; 2],
}

impl Shutdown {
    /// Starts listening (within the runtime). A signal that cannot be listened for is left to its
    /// default action, as before this existed.
    pub fn listen() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Shutdown { signals: [SignalKind::interrupt(), SignalKind::terminate()].map(|k| signal(k).ok()) }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Until either signal arrives.
    async fn wait(self) {
        #[cfg(unix)]
        {
            let [int, term] = self.signals;
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! { _ = recv(int) => {}, _ = recv(term) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base_path;

    #[test]
    fn base_paths_are_normalised() {
        assert_eq!(base_path(None), None);
        assert_eq!(base_path(Some("/")), None);
        assert_eq!(base_path(Some("ai/trickle/")), Some("/ai/trickle".into()));
        assert_eq!(base_path(Some("/ai/trickle")), Some("/ai/trickle".into()));
    }
}
