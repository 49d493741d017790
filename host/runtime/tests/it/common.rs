//! Shared helpers of byoc-runtime's integration tests: where the real plugins are (built on
//! demand), scratch directories, and a runtime configured for tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use byoc_runtime::{CacheDir, Output, Outputs, RuntimeConfig};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Serialises the on-demand builds of test plugins across the tests of one binary.
static BUILD: Mutex<()> = Mutex::new(());

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) {
    let status = command.status().expect("starting cargo");
    assert!(status.success(), "{command:?} failed with {status}");
}

/// `target/plugins`, built with `cargo xtask plugins` if a plugin is missing.
pub fn plugins_dir() -> PathBuf {
    let dir = root().join("target/plugins");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let complete = ["passthrough", "ts-analyzer", "text-transform", "http-adapter", "video-effects", "motion-detector"]
        .iter()
        .all(|p| dir.join(p).join(format!("{p}.wasm")).is_file());
    if !complete {
        run(cargo().current_dir(root()).args(["run", "-q", "-p", "xtask", "--", "plugins"]));
    }
    dir
}

/// `target/hostile-plugins` (see `xtask/src/plugins.rs`, `build_hostile`), built here with
/// the same commands if incomplete.
pub fn hostile_dir() -> PathBuf {
    let out = root().join("target/hostile-plugins");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let files = [
        "hostile/hostile.wasm",
        "hostile/manifest.toml",
        "hostile-v2.wasm",
        "wrong-world.wasm",
        "future-wit.wasm",
        "slow-frames/slow-frames.wasm",
        "slow-frames/manifest.toml",
        "audio-gain/audio-gain.wasm",
        "audio-gain/manifest.toml",
    ];
    if files.iter().all(|f| out.join(f).is_file()) {
        return out;
    }
    let manifest = root().join("tests/hostile/Cargo.toml");
    let target_dir = root().join("target/hostile-build");
    let built = target_dir.join("wasm32-wasip2/release");
    let build = |extra: &[&str]| {
        let mut command = cargo();
        command.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"]);
        command.arg(&manifest).arg("--target-dir").arg(&target_dir).args(extra);
        run(&mut command);
    };
    std::fs::create_dir_all(out.join("hostile")).unwrap();
    std::fs::create_dir_all(out.join("slow-frames")).unwrap();
    std::fs::create_dir_all(out.join("audio-gain")).unwrap();
    build(&[]);
    for (from, to) in [
        ("hostile.wasm", "hostile/hostile.wasm"),
        ("wrong_world.wasm", "wrong-world.wasm"),
        ("future_wit.wasm", "future-wit.wasm"),
        ("slow_frames.wasm", "slow-frames/slow-frames.wasm"),
        ("audio_gain.wasm", "audio-gain/audio-gain.wasm"),
    ] {
        std::fs::copy(built.join(from), out.join(to)).unwrap();
    }
    std::fs::copy(root().join("tests/hostile/hostile/manifest.toml"), out.join("hostile/manifest.toml")).unwrap();
    for name in ["slow-frames", "audio-gain"] {
        std::fs::copy(
            root().join(format!("tests/hostile/{name}/manifest.toml")),
            out.join(format!("{name}/manifest.toml")),
        )
        .unwrap();
    }
    build(&["-p", "hostile", "--features", "v2"]);
    std::fs::copy(built.join("hostile.wasm"), out.join("hostile-v2.wasm")).unwrap();
    out
}

/// A fresh, empty scratch directory under `target/`.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root().join("target/runtime-tests").join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies a plugin directory (non-recursive) to `dst`.
pub fn copy_plugin(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Rewrites the `outbound_hosts = [...]` line of a copied manifest.
pub fn grant_hosts(plugin_dir: &Path, hosts: &[String]) {
    let path = plugin_dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let list = hosts.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ");
    let text = text
        .lines()
        .map(|l| if l.starts_with("outbound_hosts") { format!("outbound_hosts = [{list}]") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text).unwrap();
}

/// A runtime config for tests: a small pool and an AOT cache shared by test runs under
/// `target/` (a debug host compiles components slowly; the cache makes reruns fast).
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: CacheDir::At(root().join("target/runtime-test-cache")),
        max_instances: 32,
        max_memory_mib: 256,
        ..RuntimeConfig::default()
    }
}

/// Everything received so far, without waiting.
pub fn drain(outputs: &mut Outputs) -> Vec<Output> {
    let mut all = Vec::new();
    while let Ok(output) = outputs.try_recv() {
        all.push(output);
    }
    all
}

/// Everything until the sender side is gone (the session closed), with a safety timeout.
pub async fn collect(mut outputs: Outputs) -> Vec<Output> {
    let mut all = Vec::new();
    while let Ok(Some(output)) = tokio::time::timeout(Duration::from_secs(30), outputs.recv()).await {
        all.push(output);
    }
    all
}

pub fn data_lines(outputs: &[Output]) -> Vec<String> {
    outputs.iter().filter_map(|o| if let Output::Data(d) = o { Some(d.clone()) } else { None }).collect()
}

pub fn events(outputs: &[Output]) -> Vec<serde_json::Value> {
    outputs.iter().filter_map(|o| if let Output::Event(e) = o { serde_json::from_str(e).ok() } else { None }).collect()
}

/// The output segments, each as (seq, bytes, complete).
pub fn segments(outputs: &[Output]) -> Vec<(u64, Vec<u8>, bool)> {
    let mut segments: Vec<(u64, Vec<u8>, bool)> = Vec::new();
    for output in outputs {
        match output {
            Output::SegmentStart { seq } => segments.push((*seq, Vec::new(), false)),
            Output::SegmentChunk(bytes) => segments.last_mut().unwrap().1.extend_from_slice(bytes),
            Output::SegmentEnd => segments.last_mut().unwrap().2 = true,
            _ => {}
        }
    }
    segments
}
