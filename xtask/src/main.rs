//! `cargo xtask`: the project's workflow. Each command installs what a fresh machine lacks
//! (and says so) before it runs.
//!
//! - `cargo xtask test`  — install test dependencies, then fmt, clippy, every test, and a short run of each
//!   fuzz target.
//! - `cargo xtask demo`  — build everything and run a real stream, printing the URLs to open.
//! - `cargo xtask bench [trickle|runtime|stream|media|frames]` — benchmarks, printed as ratios against a
//!   same-run baseline (`media` also installs the Python peers: its WebRTC peers are aiortc; `frames`
//!   the pytrickle worker, its second baseline; `frames crossing` runs only the plugin crossing figure,
//!   `media latency` only the glass-to-glass latency).
//! - `cargo xtask plugins` — build the wasm plugins into `target/plugins/`.
//! - `cargo xtask fuzz [TARGET] [--seconds N]` — run the libFuzzer targets of `host/fuzz`, one or all,
//!   N seconds each (60 by default; installs cargo-fuzz into `target/tools/` once).
//! - `cargo xtask docs` — check the docs' links and named functions, then build the book (`docs/`)
//!   into `target/book/` (installs the pinned mdbook into `target/tools/` once).

mod circles;
mod demo;
mod docs;
mod env;
mod fuzz;
mod layers;
mod plugins;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root),
        Some("demo") => demo::run(&root),
        Some("bench") => bench(&root, args.get(1).map(String::as_str), &args[2.min(args.len())..]),
        Some("plugins") => {
            let dir = plugins::build(&root)?;
            eprintln!("xtask: plugins laid out in {}", dir.display());
            Ok(())
        }
        Some("docs") => docs::run(&root),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("install") => {
            env::install_all(&root)?;
            docs::ensure_mdbook(&root)?;
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <test|demo|bench [trickle|runtime|stream|media|frames]|plugins|docs|\
                 fuzz [TARGET] [--seconds N]|install>"
            );
            bail!("unknown or missing command")
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).context("xtask has no parent directory")
}

/// Runs a command, echoing it, and fails if it fails.
pub(crate) fn exec(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("starting {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Appends every file below `dir` (recursively) whose extension is `ext` to `out`; a missing
/// directory adds nothing.
pub(crate) fn files_with_extension(dir: &std::path::Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            files_with_extension(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn cargo(root: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

/// The feature that builds the frame pipeline against FFmpeg.
const FRAMES_CODEC: &str = "byoc-frames/codec";

fn test(root: &std::path::Path) -> Result<()> {
    let peers = env::install_all(root)?;
    exec(cargo(root).args(["fmt", "--all", "--check"]))?;
    // The fuzz crate is a workspace of its own, which `--all` does not reach.
    exec(cargo(root).args(["fmt", "--check", "--manifest-path", "host/fuzz/Cargo.toml"]))?;
    // The frame pipeline (byoc-frames' `codec` feature) is linted and tested whoever enables it.
    exec(cargo(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        FRAMES_CODEC,
        "--",
        "-D",
        "warnings",
    ]))?;
    docs::run(root)?;
    plugins::test(root)?;
    plugins::build(root)?;
    plugins::build_hostile(root)?;
    let mut t = cargo(root);
    t.args(["test", "--workspace", "--features", FRAMES_CODEC]);
    t.env("BYOC_PEERS_PYTHON", &peers.python)
        .env("BYOC_PYTHON", &peers.python)
        .env("BYOC_WORKER_PYTHON", &peers.worker_python)
        .env("BYOC_ANVIL", &peers.chain.anvil)
        .env("BYOC_SOLCJS", &peers.chain.solcjs)
        .env("BYOC_REQUIRE_PEERS", "1");
    exec(&mut t)?;
    fuzz::smoke(root)?;
    eprintln!("xtask: all checks and tests passed");
    Ok(())
}

/// Hands `rest` (arguments after a benchmark's name) on to the benchmark's own binary.
fn hand_on<'a>(run: &'a mut Command, rest: &[String]) -> &'a mut Command {
    if !rest.is_empty() {
        run.arg("--").args(rest);
    }
    run
}

/// `rest`: arguments after the benchmark's name, handed to it (`frames crossing` runs only the
/// crossing figure, `media latency` only the glass-to-glass latency).
fn bench(root: &std::path::Path, which: Option<&str>, rest: &[String]) -> Result<()> {
    match which.unwrap_or("trickle") {
        "trickle" => {
            // The third-party clients (pytrickle, livepeer-gateway) run from the peers venv; without
            // it the bench prints their rows as skipped and measures the rest.
            let mut run = cargo(root);
            run.args(["bench", "-p", "byoc-trickle", "--bench", "trickle"]);
            match env::ensure_peers(root) {
                Ok(python) => {
                    run.env("BYOC_PEERS_PYTHON", python);
                }
                Err(e) => eprintln!("xtask: no Python peers ({e:#}); the third-party rows will be skipped"),
            }
            // Side by side with another trickle server, ours runs as `byoc trickle` in its own
            // process too, so that each server's CPU time is its own.
            if std::env::var_os("BYOC_BENCH_OTHER_SERVER").is_some() {
                exec(cargo(root).args(["build", "--release", "-p", "byoc-cli"]))?;
                run.env("BYOC_BIN", root.join("target/release/byoc"));
            }
            exec(&mut run)
        }
        "runtime" => {
            plugins::build(root)?;
            exec(cargo(root).args(["bench", "-p", "byoc-runtime", "--bench", "runtime"]))
        }
        "stream" => {
            plugins::build(root)?;
            exec(cargo(root).args(["bench", "-p", "byoc-gateway", "--bench", "stream"]))
        }
        "media" => {
            // The WHIP/WHEP peers are aiortc (the peers venv); the RTMP publishers are ffmpeg.
            env::ensure_debian_packages(&[("ffmpeg", "ffmpeg")])?;
            let python = env::ensure_peers(root)?;
            plugins::build(root)?;
            let mut run = cargo(root);
            run.args(["bench", "-p", "byoc-gateway", "--bench", "media"]).env("BYOC_PYTHON", python);
            exec(hand_on(&mut run, rest))
        }
        "webrtc" => exec(cargo(root).args(["bench", "-p", "byoc-media", "--bench", "webrtc"])),
        "frames" => {
            // The pipeline links FFmpeg's libraries; ffmpeg makes the input and is the CPU baseline.
            env::ensure_debian_library_packages(env::BUILD_LIBRARIES)?;
            env::ensure_debian_packages(&[("ffmpeg", "ffmpeg")])?;
            plugins::build(root)?;
            let mut run = cargo(root);
            run.args(["bench", "-p", "byoc-orchestrator", "--bench", "frames"]);
            hand_on(&mut run, rest);
            // pytrickle's worker is the second baseline; without its venv that row says why.
            match env::ensure_worker(root) {
                Ok(python) => {
                    run.env("BYOC_WORKER_PYTHON", python);
                }
                Err(e) => eprintln!("xtask: no pytrickle worker ({e:#}); its row will say not measured"),
            }
            exec(&mut run)
        }
        other => bail!("unknown benchmark {other:?} (known: trickle, runtime, stream, media, webrtc, frames)"),
    }
}
