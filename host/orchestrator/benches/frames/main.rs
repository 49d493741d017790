//! `cargo xtask bench frames` (`cargo bench -p byoc-orchestrator --bench frames`): frame plugins
//! on the real path, the `byoc-frames` pipeline around a `byoc-runtime` session of the bundled
//! `video-effects` plugin (`target/plugins`, built by `cargo xtask plugins`), in this process.
//!
//! Prints, each figure against a baseline from the same run and beside its goal (issue 14):
//! 1. CPU per 720p30 stream through the identity effect (`{"effect":"none"}`) against a plain
//!    ffmpeg transcode of the same input with the same encoder settings;
//! 2. the same against pytrickle's worker (skipped, with the reason, without its venv);
//! 3. the crossing cost of one 720p I420 frame into and out of the plugin against a memcpy (and
//!    of one second of 48 kHz stereo audio, through the test plugin `audio-gain` when
//!    `target/hostile-plugins` is built);
//! 4. the latency a frame takes through decode + plugin + encode, at live pace;
//! 5. how many 360p30 effect streams this machine sustains at once.
//!
//! Bounded (fixed clips, at most 16 streams); nothing is asserted. Needs ffmpeg with libx264.
//! With the argument `crossing` (`cargo xtask bench frames crossing`), only figure 3 runs (a few
//! seconds instead of minutes).

mod media;
mod ours;
mod pytrickle;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use byoc_frames::{AudioFrame, EncodeSettings, PixelFormat, StreamInfo, VideoFrame};
use byoc_runtime::{CacheDir, Plugin, Runtime, RuntimeConfig};

use media::{Clip, Cpu, ms};

/// The bench's error type (errors cross task boundaries).
pub type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The identity frame plugin: video-effects with no effect (the frame is copied into the
/// plugin and handed back unchanged, so nothing is copied out).
const IDENTITY: &str = r#"{"effect":"none"}"#;
/// The effect the concurrency phase runs.
const EFFECT: &str = r#"{"effect":"grayscale"}"#;

const BIG: (u32, u32, u32) = (1280, 720, 10);
const SMALL: (u32, u32, u32) = (640, 360, 6);
/// Frames through the plugin per crossing measurement, and memcpys for its baseline.
const CROSSINGS: u32 = 300;
const MEMCPYS: u32 = 1_000;
/// Concurrency steps (streams at once), tried in order until one does not hold.
const STEPS: [usize; 8] = [2, 4, 6, 8, 10, 12, 14, 16];
/// A step holds when no frame was dropped and none came out later than this after it went in.
const MAX_LAG: Duration = Duration::from_secs(1);

fn main() -> R {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn bench() -> R {
    let root = root();
    let plugin_dir = root.join("target/plugins/video-effects");
    if !plugin_dir.join("video-effects.wasm").is_file() {
        return Err(
            "target/plugins/video-effects is missing: run `cargo xtask plugins` (or `cargo xtask bench frames`)".into(),
        );
    }
    let dir = root.join("target/frames-bench");
    std::fs::create_dir_all(&dir)?;
    let config =
        RuntimeConfig { cache_dir: CacheDir::At(root.join("target/frames-bench-cache")), ..RuntimeConfig::default() };
    let runtime = Runtime::new(config)?;
    let plugin = runtime.load_plugin(&plugin_dir).await?;

    if std::env::args().skip(1).any(|a| a == "crossing") {
        crossing(&plugin).await?;
        return audio_crossing(&runtime, &root).await;
    }
    let made = Instant::now();
    let big = Clip::make(&dir, BIG.0, BIG.1, BIG.2)?;
    let small = Arc::new(Clip::make(&dir, SMALL.0, SMALL.1, SMALL.2)?);
    // The node's encoder settings for a stream that asks for none, which the ffmpeg baseline copies.
    let settings = EncodeSettings::default();
    println!(
        "byoc frames benchmark: video-effects, libx264 {} {} kbit/s zerolatency; inputs {}x{} {} s ({} frames) and \
         {}x{} {} s, made in {:.1} s",
        settings.preset,
        settings.bitrate_kbps,
        big.width,
        big.height,
        big.seconds,
        big.frames(),
        small.width,
        small.height,
        small.seconds,
        made.elapsed().as_secs_f64()
    );

    crossing(&plugin).await?;
    audio_crossing(&runtime, &root).await?;
    let ours = cpu_and_latency(&plugin, &big).await?;
    let ffmpeg = ffmpeg_transcode(&big, &settings).await;
    compare_ffmpeg(ours, ffmpeg);
    compare_pytrickle(&root, &dir, &big, ours).await;
    concurrency(&plugin, &small).await?;
    Ok(())
}

/// Figure 3: one 720p I420 frame into the plugin and back, for three effects, against a memcpy.
async fn crossing(plugin: &Plugin) -> R {
    let (width, height) = (BIG.0, BIG.1);
    let bytes = PixelFormat::I420.frame_bytes(width, height);
    let source: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut destination = vec![0u8; bytes];
    for _ in 0..MEMCPYS / 10 {
        destination.copy_from_slice(black_box(&source));
    }
    let t = Instant::now();
    for _ in 0..MEMCPYS {
        destination.copy_from_slice(black_box(&source));
        black_box(&mut destination);
    }
    let memcpy = t.elapsed() / MEMCPYS;
    println!("frames: memcpy of a 720p I420 frame ({} KiB)        {:>7.1} µs  (baseline)", bytes / 1024, us(memcpy));

    let rows = [
        ("none", "frame in, returned unchanged (no copy out)"),
        ("grayscale", "frame in, U and V written back (a third of it)"),
        ("invert", "frame in, every plane computed and written back"),
    ];
    for (effect, what) in rows {
        let info = StreamInfo { width, height, fps_num: 30, fps_den: 1, ..StreamInfo::default() };
        let (mut session, mut outputs) =
            plugin.open_frame_session(&format!(r#"{{"effect":"{effect}"}}"#), info).await?;
        let events = tokio::spawn(async move { while outputs.recv().await.is_some() {} });
        let mut frame = VideoFrame::from_data(width, height, PixelFormat::I420, 0, source.clone())?;
        for _ in 0..CROSSINGS / 10 {
            frame = session.on_video_frame(frame).await?.ok_or("the plugin dropped the frame")?;
        }
        let t = Instant::now();
        for _ in 0..CROSSINGS {
            frame = session.on_video_frame(black_box(frame)).await?.ok_or("the plugin dropped the frame")?;
        }
        let call = t.elapsed() / CROSSINGS;
        session.close().await?;
        events.await?;
        let ratio = call.as_secs_f64() / memcpy.as_secs_f64();
        let goal = if effect == "grayscale" { "  (goal <= 3x)" } else { "" };
        println!("frames: crossing, {effect:<9} {what:<52} {:>7.1} µs  {ratio:.2}x memcpy{goal}", us(call));
    }
    Ok(())
}

/// Figure 3 for audio: one second of 48 kHz stereo (96 000 f32) into `audio-gain` and back,
/// against a memcpy of the samples.
async fn audio_crossing(runtime: &Runtime, root: &Path) -> R {
    let dir = root.join("target/hostile-plugins/audio-gain");
    if !dir.join("audio-gain.wasm").is_file() {
        println!(
            "frames: crossing, audio: skipped (no target/hostile-plugins/audio-gain: `cargo xtask test` builds it)"
        );
        return Ok(());
    }
    let plugin = runtime.load_plugin(&dir).await?;
    let source: Vec<f32> = (0..96_000).map(|i| (i % 200) as f32 / 100.0 - 1.0).collect();
    let mut destination = vec![0f32; source.len()];
    let t = Instant::now();
    for _ in 0..MEMCPYS {
        destination.copy_from_slice(black_box(&source));
        black_box(&mut destination);
    }
    let memcpy = t.elapsed() / MEMCPYS;
    println!(
        "frames: memcpy of 1 s of 48 kHz stereo f32 ({} KiB)      {:>7.1} µs  (baseline)",
        source.len() / 256,
        us(memcpy)
    );
    let rows = [("1", "samples in, returned unchanged (no copy out)"), ("0", "samples in, scaled and written back")];
    for (gain, what) in rows {
        let (mut session, mut outputs) =
            plugin.open_frame_session(&format!(r#"{{"gain":{gain}}}"#), StreamInfo::default()).await?;
        let events = tokio::spawn(async move { while outputs.recv().await.is_some() {} });
        let mut frame = AudioFrame::new(48_000, 2, 0, source.clone())?;
        for _ in 0..CROSSINGS / 10 {
            frame = session.on_audio_frame(frame).await?.ok_or("the plugin dropped the frame")?;
        }
        let t = Instant::now();
        for _ in 0..CROSSINGS {
            frame = session.on_audio_frame(black_box(frame)).await?.ok_or("the plugin dropped the frame")?;
        }
        let call = t.elapsed() / CROSSINGS;
        session.close().await?;
        events.await?;
        let ratio = call.as_secs_f64() / memcpy.as_secs_f64();
        println!("frames: crossing, audio gain {gain} {what:<50} {:>7.1} µs  {ratio:.2}x memcpy", us(call));
    }
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// CPU per second of video, as a fraction of one core.
#[derive(Debug, Clone, Copy)]
struct PerStream(f64);

/// Figures 1 and 4: one 720p stream through the identity plugin at live pace: this process's CPU time
/// over the stream, and each frame's latency.
async fn cpu_and_latency(plugin: &Plugin, clip: &Clip) -> R<Option<PerStream>> {
    let before = Cpu::this_process();
    let start = Instant::now() + Duration::from_millis(100);
    let run = ours::stream(plugin, IDENTITY, clip, start).await?;
    let after = Cpu::this_process();
    println!(
        "frames: latency frame in -> out (decode + plugin + encode)   p50 {:.1} ms, p95 {:.1} ms, worst {:.1} ms  \
         (goal p95 <= 100 ms; {} of {} frames out, {} dropped)",
        ms(run.p(50)),
        ms(run.p(95)),
        ms(run.worst()),
        run.frames_out,
        run.frames_in,
        run.dropped
    );
    let (Some(before), Some(after)) = (before, after) else {
        println!("frames: cpu per stream   not measured (no /proc on this platform)");
        return Ok(None);
    };
    let cpu = after.own.saturating_sub(before.own);
    let per = PerStream(cpu.as_secs_f64() / clip.duration().as_secs_f64());
    println!(
        "frames: cpu per 720p30 stream, ours (identity plugin)         {:.1} s CPU for {} s = {:.0} % of a core",
        cpu.as_secs_f64(),
        clip.seconds,
        per.0 * 100.0
    );
    Ok(Some(per))
}

/// The baseline of figure 1: ffmpeg reading the same clip at its pace (`-re`), decoding and encoding
/// it with our encoder settings, one thread each as our pipeline's codecs run.
async fn ffmpeg_transcode(clip: &Clip, settings: &EncodeSettings) -> R<PerStream> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-re", "-threads", "1", "-i"])
        .arg(&clip.file)
        .args(["-an", "-c:v", "libx264", "-threads", "1", "-preset", &settings.preset, "-tune", "zerolatency"])
        .args(["-b:v", &format!("{}k", settings.bitrate_kbps), "-bf", "0", "-g", "3000", "-forced-idr", "1"])
        .args(["-force_key_frames", "expr:gte(t,n_forced*1)", "-f", "mpegts", "/dev/null"]);
    let before = Cpu::this_process().ok_or("no /proc on this platform")?;
    tokio::task::spawn_blocking(move || media::run(&mut cmd)).await??;
    let after = Cpu::this_process().ok_or("no /proc on this platform")?;
    let cpu = after.children.saturating_sub(before.children);
    let per = PerStream(cpu.as_secs_f64() / clip.duration().as_secs_f64());
    println!(
        "frames: cpu per 720p30 stream, plain ffmpeg transcode         {:.1} s CPU for {} s = {:.0} % of a core  \
         (baseline)",
        cpu.as_secs_f64(),
        clip.seconds,
        per.0 * 100.0
    );
    Ok(per)
}

fn compare_ffmpeg(ours: Option<PerStream>, ffmpeg: R<PerStream>) {
    match (ours, ffmpeg) {
        (Some(ours), Ok(ffmpeg)) if ffmpeg.0 > 0.0 => {
            println!("frames: cpu per stream vs ffmpeg   {:.2}x  (goal <= 1.2x)", ours.0 / ffmpeg.0);
        }
        (_, Err(e)) => println!("frames: cpu per stream vs ffmpeg   not measured (ffmpeg: {e})"),
        _ => println!("frames: cpu per stream vs ffmpeg   not measured (no CPU figure)"),
    }
}

/// Figure 2: pytrickle's worker on the same clip.
async fn compare_pytrickle(root: &Path, dir: &Path, clip: &Clip, ours: Option<PerStream>) {
    let Some(python) = pytrickle::python(root) else {
        println!(
            "frames: cpu per stream vs pytrickle   not measured (no worker venv: set BYOC_WORKER_PYTHON or run \
             `cargo xtask bench frames`, which installs it)"
        );
        return;
    };
    match pytrickle::stream(&python, root, dir, clip).await {
        Ok(run) => {
            let theirs = run.cpu.as_secs_f64() / clip.duration().as_secs_f64();
            println!(
                "frames: cpu per 720p30 stream, pytrickle worker            {:.1} s CPU for {} s = {:.0} % of a core  \
                 ({} frames out; idle {:.1} % taken off; started in {:.0} s)",
                run.cpu.as_secs_f64(),
                clip.seconds,
                theirs * 100.0,
                run.frames_out,
                run.idle_rate * 100.0,
                run.startup.as_secs_f64()
            );
            match ours {
                Some(ours) if theirs > 0.0 => {
                    println!("frames: cpu per stream vs pytrickle   {:.2}x  (goal <= 0.5x)", ours.0 / theirs);
                }
                _ => println!("frames: cpu per stream vs pytrickle   not measured (no CPU figure of ours)"),
            }
        }
        Err(e) => println!("frames: cpu per stream vs pytrickle   not measured ({e})"),
    }
}

/// Figure 5: streams of the 360p clip through `grayscale` at once, more each step, until a step drops
/// frames or falls behind real time.
async fn concurrency(plugin: &Plugin, clip: &Arc<Clip>) -> R {
    let mut held = 0;
    for n in STEPS {
        let before = Cpu::this_process();
        let start = Instant::now() + Duration::from_millis(200);
        let mut streams = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (plugin, clip) = (plugin.clone(), clip.clone());
            streams.spawn(async move { ours::stream(&plugin, EFFECT, &clip, start).await });
        }
        let (mut dropped, mut missing, mut worst, mut p95) = (0, 0, Duration::ZERO, Duration::ZERO);
        while let Some(run) = streams.join_next().await {
            let run = run??;
            dropped += run.dropped;
            missing += run.frames_in.saturating_sub(run.frames_out);
            worst = worst.max(run.worst());
            p95 = p95.max(run.p(95));
        }
        let cores = match (before, Cpu::this_process()) {
            (Some(b), Some(a)) => {
                format!("{:.2} cores", a.own.saturating_sub(b.own).as_secs_f64() / clip.duration().as_secs_f64())
            }
            _ => "cpu n/a".to_owned(),
        };
        let ok = dropped == 0 && missing == 0 && worst <= MAX_LAG;
        println!(
            "frames:   {n:>2} x 360p30 grayscale: {} dropped, {} missing, latency p95 {:.0} ms, worst {:.0} ms, \
             {cores}  {}",
            dropped,
            missing,
            ms(p95),
            ms(worst),
            if ok { "held" } else { "NOT held" }
        );
        if !ok {
            break;
        }
        held = n;
    }
    let upper = if held == STEPS[STEPS.len() - 1] { " (the bench's upper step)" } else { "" };
    println!(
        "frames: concurrent 360p30 effect streams sustained   {held}{upper}  (goal: as many as this machine holds; \
         held = no drop, every frame out within {} ms)",
        MAX_LAG.as_millis()
    );
    Ok(())
}
