//! `byoc`: the command-line entry point of the project.

mod chain;
mod config;
mod dev;
mod gateway;
mod keygen;
mod orchestrator;
mod plugin;
mod signer;
mod stream;
mod tickets;
mod tools;
mod trickle;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "byoc", version, about = "Bring-your-own-compute streaming host")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "BYOC_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone trickle server.
    Trickle(trickle::TrickleArgs),
    /// Create a node key (Ethereum JSON keystore, or a plain hex key for development) and print
    /// its address.
    Keygen(keygen::KeygenArgs),
    /// Run an orchestrator node.
    Orchestrator(orchestrator::OrchestratorArgs),
    /// Run a gateway node in front of orchestrators.
    Gateway(gateway::GatewayArgs),
    /// Run a gateway, an orchestrator and the bundled plugins in one process (free mode, loopback).
    Dev(dev::DevArgs),
    /// Write, build, install, inspect and run capability plugins (wasm components).
    Plugin(plugin::PluginArgs),
    /// List or export the winning tickets an orchestrator stored.
    Tickets(tickets::TicketsArgs),
    /// Run a remote signer: holds the paying key, signs jobs and makes payments for SDK clients.
    Signer(signer::SignerArgs),
    /// Start, watch, feed and stop streams through a gateway (the client side).
    Stream(stream::StreamArgs),
    /// What a gateway's orchestrators offer.
    Capabilities(stream::CapabilitiesArgs),
    /// A sender's deposit and reserve on the TicketBroker (on-chain mode): status, fund, unlock, withdraw.
    Sender(chain::SenderArgs),
}

/// Logs to stderr: `RUST_LOG` filters (default `info`; one that does not parse is an error, not a
/// silent `info`), colour only on a terminal (and never with `NO_COLOR` set), JSON lines with
/// `--log-format json`.
fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref())?;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    tools::set_json_logs(matches!(format, LogFormat::Json));
    Ok(())
}

/// The log filter `RUST_LOG` asks for: `info` when it is unset or empty, an error naming the
/// variable when it does not parse.
fn log_filter(rust_log: Option<&str>) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(tracing_subscriber::EnvFilter::new("info")),
        // The parse error's source repeats its own text: only the text is kept.
        Some(v) => tracing_subscriber::EnvFilter::builder().parse(v).map_err(|e| {
            anyhow::anyhow!("RUST_LOG={v:?} is not a log filter (e.g. `info` or `byoc_gateway=debug,warn`): {e}")
        }),
    }
}

/// An allocator that keeps freed memory for reuse. With the system's, the buffers that trickle
/// segments and media arrive in went back to the kernel when the window let them go, and new ones
/// were faulted in (and zeroed) page by page: about one page fault per 30 KB received, some 5–15 %
/// of a trickle server's CPU (`cargo xtask bench trickle`, docs/src/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_format) {
        eprintln!("{}", failure_text(&e, false));
        return std::process::ExitCode::FAILURE;
    }
    // One process-wide Prometheus recorder, served at every node's `GET /metrics`.
    byoc_protocol::telemetry::init();
    let result = match cli.command {
        Command::Trickle(args) => trickle::run(args).await,
        Command::Plugin(args) => plugin::run(args).await,
        Command::Keygen(args) => keygen::run(args),
        Command::Orchestrator(args) => orchestrator::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Sender(args) => chain::run(args).await,
        Command::Tickets(args) => tickets::run(args),
        Command::Signer(args) => signer::run(args).await,
        Command::Stream(args) => stream::run(args).await,
        Command::Capabilities(args) => stream::capabilities(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", failure_text(&e, std::env::var_os("BYOC_BACKTRACE").is_some_and(|v| v == "1")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a failed command prints: its causes once, on one line, outermost first; the backtrace only when
/// asked for with `BYOC_BACKTRACE=1` (a `RUST_BACKTRACE` set for every program is not asking; it is what
/// captures the frames).
fn failure_text(e: &anyhow::Error, backtrace: bool) -> String {
    let mut text = format!("error: {e:#}");
    if backtrace {
        text.push_str(&format!("\n\n{}", e.backtrace()));
    }
    text
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    #[test]
    fn a_failure_prints_its_causes_once_and_no_backtrace_unless_asked() {
        let taken = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use (os error 98)");
        let e = Err::<(), _>(taken).context("binding 127.0.0.1:8937 (--listen)").unwrap_err();
        let text = super::failure_text(&e, false);
        assert_eq!(text, "error: binding 127.0.0.1:8937 (--listen): Address already in use (os error 98)");
        assert!(super::failure_text(&e, true).starts_with(&text));
    }

    #[test]
    fn an_unset_log_filter_is_info_and_a_bad_one_an_error_naming_it() {
        assert_eq!(super::log_filter(None).unwrap().to_string(), "info");
        assert_eq!(super::log_filter(Some(" ")).unwrap().to_string(), "info");
        assert_eq!(super::log_filter(Some("byoc_gateway=debug,warn")).unwrap().to_string(), "byoc_gateway=debug,warn");
        let bad = super::log_filter(Some("byoc_gateway=loud")).unwrap_err();
        assert!(format!("{bad:#}").starts_with("RUST_LOG=\"byoc_gateway=loud\" is not a log filter"), "{bad:#}");
    }
}
