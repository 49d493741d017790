//! `cargo xtask bench runtime` (`cargo bench -p byoc-runtime --bench runtime`): the cost of
//! the plugin boundary, measured on the real `passthrough` plugin (`target/plugins`, built by
//! `cargo xtask plugins`), with a same-run baseline where one makes sense.
//!
//! Prints: session instantiation (open + close), per-call overhead, a 1 MiB segment through
//! passthrough (in and out) against a plain 1 MiB memcpy, and memory per idle session.
//! Iterations are bounded; timing is printed, never asserted.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use byoc_runtime::{CacheDir, Outputs, Plugin, Runtime, RuntimeConfig};

const OPENS: u32 = 2_000;
const CALLS: u32 = 20_000;
const SEGMENTS: u32 = 300;
const MEMCPYS: u32 = 3_000;
const IDLE_SESSIONS: u32 = 500;
const MIB: usize = 1024 * 1024;

type BenchResult = Result<(), Box<dyn std::error::Error>>;

fn main() -> BenchResult {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench())
}

fn per_iter(total: Duration, n: u32) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(n)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn drain(outputs: &mut Outputs) -> usize {
    let mut n = 0;
    while outputs.try_recv().is_ok() {
        n += 1;
    }
    n
}

async fn bench() -> BenchResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plugin_dir = root.join("target/plugins/passthrough");
    if !plugin_dir.join("passthrough.wasm").is_file() {
        return Err(
            "target/plugins/passthrough is missing: run `cargo xtask plugins` (or `cargo xtask bench runtime`)".into(),
        );
    }
    let config = RuntimeConfig {
        cache_dir: CacheDir::At(root.join("target/runtime-bench-cache")),
        max_instances: IDLE_SESSIONS + 24,
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    let runtime = Runtime::new(config)?;
    let plugin = runtime.load_plugin(&plugin_dir).await?;
    println!(
        "byoc-runtime benchmark (wasmtime 48, {:?} allocator, passthrough {} KiB, load {:.1} ms, cache {:?})",
        runtime.allocator(),
        std::fs::metadata(plugin.wasm_path())?.len() / 1024,
        started.elapsed().as_secs_f64() * 1e3,
        plugin.cache_status()
    );

    instantiation(&plugin).await?;
    call_overhead(&plugin).await?;
    segment_vs_memcpy(&plugin).await?;
    idle_memory(&plugin).await?;
    Ok(())
}

/// Opening a session: an instance from the `InstancePre` (store, WASI context, limits),
/// `session.open("{}")`, then close and drop.
async fn instantiation(plugin: &Plugin) -> BenchResult {
    for _ in 0..100 {
        let (session, _outputs) = plugin.open_session("{}").await?;
        session.close().await?;
    }
    let t = Instant::now();
    for _ in 0..OPENS {
        let (session, _outputs) = plugin.open_session("{}").await?;
        session.close().await?;
    }
    let us = per_iter(t.elapsed(), OPENS);
    println!(
        "session open + close           {us:>9.2} µs  (goal ≤ 20 µs: {}; < 10 µs: {}; {OPENS} sessions)",
        met(us <= 20.0),
        met(us < 10.0)
    );
    Ok(())
}

/// One guarded call into a live instance: deadline re-armed, `on-control("{}")` (the plugin
/// parses an empty JSON object), result lifted.
async fn call_overhead(plugin: &Plugin) -> BenchResult {
    let (mut session, _outputs) = plugin.open_session("{}").await?;
    for _ in 0..1_000 {
        session.on_control("{}").await?;
    }
    let t = Instant::now();
    for _ in 0..CALLS {
        session.on_control(black_box("{}")).await?;
    }
    let us = per_iter(t.elapsed(), CALLS);
    println!("per-call overhead (on-control)  {us:>9.2} µs  ({CALLS} calls)");
    session.close().await?;
    Ok(())
}

/// A 1 MiB segment in one chunk: host → guest (`on-chunk`), guest → host
/// (`output.segment-chunk`), plus segment start/end, against a 1 MiB `copy_from_slice`.
async fn segment_vs_memcpy(plugin: &Plugin) -> BenchResult {
    let segment: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let (mut session, mut outputs) = plugin.open_session("{}").await?;
    for seq in 0..20 {
        session.on_segment(seq, &segment).await?;
        drain(&mut outputs);
    }
    let t = Instant::now();
    let mut messages = 0;
    for seq in 0..u64::from(SEGMENTS) {
        session.on_segment(seq, black_box(&segment)).await?;
        messages += drain(&mut outputs);
    }
    let wasm = per_iter(t.elapsed(), SEGMENTS);
    session.close().await?;
    assert_eq!(messages, 3 * SEGMENTS as usize, "start, one chunk and end per segment");

    let mut destination = vec![0u8; MIB];
    let t = Instant::now();
    for _ in 0..MEMCPYS {
        destination.copy_from_slice(black_box(&segment));
        black_box(&mut destination);
    }
    let memcpy = per_iter(t.elapsed(), MEMCPYS);
    let gbps = |us: f64| MIB as f64 / us / 1e3;
    println!("1 MiB through passthrough      {wasm:>9.1} µs  ({:.1} GB/s; {SEGMENTS} segments)", gbps(wasm));
    println!("1 MiB memcpy (same run)        {memcpy:>9.1} µs  ({:.1} GB/s)", gbps(memcpy));
    println!("  ratio passthrough / memcpy   {:>9.2}×    (goal ≤ 4×: {})", wasm / memcpy, met(wasm / memcpy <= 4.0));
    Ok(())
}

/// Resident memory added per idle session (after one small call), from `VmRSS`.
async fn idle_memory(plugin: &Plugin) -> BenchResult {
    let Some(before) = rss_kib() else {
        println!("memory per idle session         (no /proc/self/status on this platform)");
        return Ok(());
    };
    let mut sessions = Vec::new();
    for _ in 0..IDLE_SESSIONS {
        let (mut session, outputs) = plugin.open_session("{}").await?;
        session.on_control("{}").await?;
        sessions.push((session, outputs));
    }
    let after = rss_kib().unwrap_or(before);
    let per = after.saturating_sub(before) as f64 / f64::from(IDLE_SESSIONS);
    println!("memory per idle session        {per:>9.1} KiB ({IDLE_SESSIONS} sessions, VmRSS delta)");
    for (session, _) in sessions {
        session.close().await?;
    }
    Ok(())
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
