//! `cargo xtask fuzz [TARGET] [--seconds N]`: the libFuzzer targets of `host/fuzz` (a cargo-fuzz
//! project and a workspace of its own), one or all, each for N seconds; and the short run of every
//! target that `cargo xtask test` makes ([`smoke`]).
//!
//! cargo-fuzz is installed into `target/tools/` once. It passes the compiler nightly-only flags
//! (`-Zsanitizer=address`), so it runs with `RUSTC_BOOTSTRAP=1` on the project's stable toolchain
//! rather than needing a nightly one; the smoke run builds without a sanitizer and needs neither.
//!
//! Each run reads the committed seeds (`host/fuzz/corpus/TARGET/`, never written) and keeps what it
//! finds in `target/fuzz/corpus/TARGET/`; a crash is written to `host/fuzz/artifacts/TARGET/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::exec;

/// The cargo-fuzz release installed when missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Seconds each target runs by default.
const DEFAULT_SECONDS: u64 = 60;
/// Seconds each target runs in `cargo xtask test`.
const SMOKE_SECONDS: u64 = 3;
/// A single input taking longer than this (seconds) is reported as a hang.
const INPUT_TIMEOUT: u64 = 10;

/// `cargo xtask fuzz [TARGET] [--seconds N]`, or `cargo xtask fuzz --smoke` (the test command's
/// smoke run alone).
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--smoke") {
        ensure!(args.len() == 1, "--smoke takes no other argument");
        return smoke(root);
    }
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let n = args.next().context("--seconds needs a number")?;
                seconds = n.parse().with_context(|| format!("--seconds {n}"))?;
            }
            name if target.is_none() && !name.starts_with('-') => target = Some(name.to_string()),
            other => bail!("unexpected argument {other:?} (usage: cargo xtask fuzz [TARGET] [--seconds N] | --smoke)"),
        }
    }
    let all = targets(root)?;
    let chosen = match target {
        Some(t) if all.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t:?} (known: {})", all.join(", ")),
        None => all,
    };
    let fuzz = ensure_cargo_fuzz(root)?;
    exec(&mut fuzz_command(root, &fuzz, "build", Mode::Release))?;
    for target in &chosen {
        run_target(root, &fuzz, target, seconds, Mode::Release)?;
    }
    Ok(())
}

/// The targets that need the fuzz crate's `runtime` feature (the plugin runtime: wasmtime and
/// cranelift, most of a cold build) or its `frames` feature (libavcodec bindings). The smoke run
/// leaves them out; the workspace's own tests cover the same code (manifest parsing, the host
/// functions through `byoc_runtime::fuzzing`'s tests, garbage into the frame pipeline), and
/// `cargo xtask fuzz` runs them.
const NOT_IN_SMOKE: &[&str] = &["frames_decode", "host_calls", "manifest"];

/// Builds every target but those of [`NOT_IN_SMOKE`] (unoptimised, without a sanitizer: the quickest
/// build that still guides libFuzzer) and runs each from its seeds for a few seconds, so that targets
/// keep building and a shallow crash fails the tests.
pub fn smoke(root: &Path) -> Result<()> {
    let began = Instant::now();
    let fuzz = ensure_cargo_fuzz(root)?;
    exec(&mut fuzz_command(root, &fuzz, "build", Mode::Smoke))?;
    let built = began.elapsed();
    let all: Vec<String> = targets(root)?.into_iter().filter(|t| !NOT_IN_SMOKE.contains(&t.as_str())).collect();
    for target in &all {
        run_target(root, &fuzz, target, SMOKE_SECONDS, Mode::Smoke)?;
    }
    eprintln!(
        "xtask: {} fuzz targets ran {SMOKE_SECONDS} s each ({:.0} s in all, {:.0} s of it building)",
        all.len(),
        began.elapsed().as_secs_f64(),
        built.as_secs_f64()
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Optimised, with AddressSanitizer: the long runs.
    Release,
    /// Unoptimised, no sanitizer: builds fastest.
    Smoke,
}

/// The fuzz targets: `host/fuzz/fuzz_targets/*.rs`, by name.
fn targets(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    crate::files_with_extension(&root.join("host/fuzz/fuzz_targets"), "rs", &mut files)?;
    let mut names: Vec<String> =
        files.iter().filter_map(|f| f.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in host/fuzz/fuzz_targets");
    }
    Ok(names)
}

/// Where fuzz builds and found inputs go: `$CARGO_TARGET_DIR/fuzz`, else `target/fuzz`.
fn fuzz_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("fuzz")
}

fn fuzz_command(root: &Path, cargo_fuzz: &Path, sub: &str, mode: Mode) -> Command {
    let mut c = Command::new(cargo_fuzz);
    c.current_dir(root).args(["fuzz", sub, "--fuzz-dir", "host/fuzz", "--target-dir"]).arg(fuzz_dir(root));
    match mode {
        // cargo-fuzz's `-Zsanitizer` is a nightly flag: allowed on stable by RUSTC_BOOTSTRAP.
        Mode::Release => c.args(["--features", "runtime,frames"]).env("RUSTC_BOOTSTRAP", "1"),
        Mode::Smoke => c.args(["--dev", "--sanitizer", "none"]),
    };
    c
}

fn run_target(root: &Path, cargo_fuzz: &Path, target: &str, seconds: u64, mode: Mode) -> Result<()> {
    let found = fuzz_dir(root).join("corpus").join(target);
    std::fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
    let seeds = root.join("host/fuzz/corpus").join(target);
    let mut c = fuzz_command(root, cargo_fuzz, "run", mode);
    c.arg(target).arg(&found);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    c.arg("--").arg(format!("-max_total_time={seconds}")).arg(format!("-timeout={INPUT_TIMEOUT}"));
    exec(&mut c).with_context(|| format!("fuzz target {target} (a crash input is in host/fuzz/artifacts/{target}/)"))
}

/// The pinned cargo-fuzz: `target/tools/bin/cargo-fuzz`, installed there when missing or of another
/// version.
fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target").join("tools");
    let bin = tools.join("bin").join("cargo-fuzz");
    let version = || {
        Command::new(&bin)
            .args(["fuzz", "--version"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let wanted = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    if bin.is_file() && version() == wanted {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} into {} (once; a few minutes)", tools.display());
    let began = Instant::now();
    exec(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--locked", "--root"])
            .arg(&tools),
    )?;
    eprintln!("xtask: cargo-fuzz installed in {:.0} s", began.elapsed().as_secs_f64());
    if version() != wanted {
        bail!("{} does not report {wanted} after installing it", bin.display());
    }
    Ok(bin)
}
