//! `cargo xtask bench media`: the gateway's media legs, with a gateway, an orchestrator and the real
//! `passthrough` plugin in this process on loopback; the peers (aiortc in `peers/g2g.py`, ffmpeg) are
//! child processes.
//!
//! 1. Glass-to-glass latency, WHIP in → passthrough → WHEP out. Each frame carries its index as a
//!    barcode; the peer script publishes and watches in one process, so latency is receive time − send
//!    time on one clock. Baseline in the same run: the same publisher and viewer connected to each
//!    other directly (encode + transport + decode alone). Goals: added latency ≤ 100 ms (media moves
//!    in pieces), and the older ≤ one ingest segment + 100 ms.
//! 2. CPU per ingest stream: this process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`) while N streams are fed
//!    over WHIP, against the same media (the ingest segments the WHIP leg cut, recorded from a stream's
//!    egress) published whole over HTTP to each stream's `ingest_url`, and over RTMP (an ffmpeg
//!    publisher per stream). Child processes the gateway starts (ffmpeg) would be counted as well; RTMP
//!    ingest remuxes FLV → TS in process, so none are expected. WHIP and HTTP runs alternate in
//!    [`CPU_ROUNDS`] rounds; WHIP's cost over HTTP is taken per round and reported as the median, so a
//!    drift in the machine's speed over minutes does not decide the goal. Each round also runs WHIP
//!    through a second gateway whose ingest moves whole segments (a piece window longer than any
//!    segment): the goal is that pieces cost no more than whole segments, measured in the same round
//!    (within [`PIECES_SLACK_PERCENT`]); the older fixed goal (≤ 0.9 % of a core per stream) is printed
//!    too.
//!
//! Bounded: fixed seconds per phase, a timeout on every wait, a hard deadline for the whole run.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unused_imports)] // The bench uses a part of the tests' helpers.
mod common;
#[path = "media/cpu.rs"]
mod cpu;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use byoc_e2e::nodes::{job_header, root};
use byoc_gateway::Gateway;
use byoc_media::ts::{FrameKind, TsDemuxer};
use byoc_runtime::{CacheDir, RuntimeConfig};
use byoc_trickle::{HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use bytes::Bytes;
use cpu::{Usage, measure};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const DEADLINE: Duration = Duration::from_secs(900);
/// Seconds measured by each latency run, after its warm-up.
const LATENCY_SECONDS: u32 = 12;
const LATENCY_WARMUP: u32 = 2;
/// Publishers per CPU run; lower resolution than the latency run so that the Python encoders
/// (separate processes, not counted) do not saturate a 2-core machine.
const CPU_STREAMS: [usize; 2] = [1, 4];
const CPU_SIZE: &str = "320x180";
const CPU_WARMUP: Duration = Duration::from_secs(3);
const CPU_WINDOW: Duration = Duration::from_secs(8);
/// Rounds of a WHIP run then an HTTP run per N. The machine's speed drifts over minutes (on the
/// development VM every ingest kind's figure moved by up to 2× between whole runs of this bench), so
/// WHIP's cost on top of HTTP is taken within each round, and the median over the rounds is the figure.
/// Five, not three (until 2026-12-05): at N=1 single rounds of pieces − whole spread 0.3–0.5 points,
/// more than the 0.1 % goal itself.
const CPU_ROUNDS: usize = 5;
/// Ingest segments recorded (after the first) as the media of the HTTP and RTMP runs.
const RECORDED: usize = 3;
/// WHIP ingest's CPU on top of HTTP ingest, per stream, when media moved in whole segments (% of a
/// core), as measured on an earlier machine: the older goal, still printed; the goal now compares
/// against whole segments in the same run ([`PIECES_SLACK_PERCENT`]).
const WHIP_GOAL_PERCENT: f64 = 0.9;
/// How much more CPU per stream WHIP ingest in pieces may cost than the same ingest moving whole
/// segments, both measured in the same round (% of a core): the rounds' own spread.
const PIECES_SLACK_PERCENT: f64 = 0.1;
/// What the gateway may add to glass-to-glass latency over the direct baseline now that media moves
/// in pieces (the older goal allowed this on top of one segment).
const GOAL_SLACK_MS: f64 = 100.0;

type Res<T> = Result<T, String>;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let outcome = rt.block_on(async {
        match tokio::time::timeout(DEADLINE, run()).await {
            Ok(r) => r,
            Err(_) => Err(format!("the {} s bound of the benchmark was reached", DEADLINE.as_secs())),
        }
    });
    if let Err(e) = outcome {
        println!("media benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// The python with aiortc (`BYOC_PYTHON`, which `cargo xtask bench media` points at the peers venv).
fn python() -> Option<String> {
    let python = std::env::var("BYOC_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import aiortc, aiohttp, av"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

fn ffmpeg_available() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A gateway (HTTP, RTMP and WebRTC on 127.0.0.1) and an orchestrator with the bundled plugins, and
/// a second gateway on the same orchestrator whose WHIP ingest moves whole segments (a piece window
/// longer than any segment): the same-run baseline for what pieces cost.
struct Nodes {
    gw: String,
    whole: String,
    _gateways: [Arc<Gateway>; 2],
    _rtmp: byoc_media::RtmpServer,
}

/// The main gateway's piece window: `BYOC_BENCH_PIECE_WINDOW_MS`, else the gateway's default.
fn piece_window() -> Option<Duration> {
    let ms = std::env::var("BYOC_BENCH_PIECE_WINDOW_MS").ok()?;
    match ms.trim().parse::<u64>() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            println!("BYOC_BENCH_PIECE_WINDOW_MS={ms:?} is not a number of ms; the default window is used");
            None
        }
    }
}

/// A piece window no segment reaches: each segment travels as one piece, whole.
const WHOLE_SEGMENTS: Duration = Duration::from_secs(60);

async fn nodes(window: Option<Duration>) -> Nodes {
    let cache_dir = CacheDir::At(root().join("target/runtime-bench-cache"));
    let runtime =
        common::bundled_plugins(RuntimeConfig { cache_dir, max_instances: 64, ..RuntimeConfig::default() }).await;
    let (orch_url, _) = common::serve_orchestrator(&runtime, 16, |_| {}).await;
    let (gw, gateway) = common::serve_gateway_with(vec![orch_url.clone()], |c| {
        if let Some(w) = window {
            c.piece_window = w;
        }
    })
    .await;
    let rtmp = byoc_gateway::serve_rtmp(&gateway, "127.0.0.1:0".parse().expect("addr"), None).await.expect("rtmp");
    byoc_gateway::serve_webrtc(&gateway, "127.0.0.1:0".parse().expect("addr"), None).await.expect("webrtc");
    let (whole, whole_gateway) = common::serve_gateway_with(vec![orch_url], |c| c.piece_window = WHOLE_SEGMENTS).await;
    byoc_gateway::serve_webrtc(&whole_gateway, "127.0.0.1:0".parse().expect("addr"), None).await.expect("webrtc");
    Nodes { gw, whole, _gateways: [gateway, whole_gateway], _rtmp: rtmp }
}

fn http() -> reqwest::Client {
    byoc_trickle::http_client_builder().timeout(Duration::from_secs(15)).build().expect("client")
}

/// A running stream's URLs, as `start` handed them out.
struct Stream {
    whip: String,
    whep: String,
    ingest: String,
    egress: String,
    rtmp: String,
    secret: String,
    stop: String,
}

async fn start(http: &reqwest::Client, gw: &str) -> Res<Stream> {
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true});
    let r = http
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", job_header("passthrough", &legs))
        .json(&json!({}))
        .send()
        .await
        .map_err(|e| format!("start: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("start: {} {}", r.status(), r.text().await.unwrap_or_default()));
    }
    let urls: Value = r.json().await.map_err(|e| format!("start answer: {e}"))?;
    let s = |k: &str| urls[k].as_str().unwrap_or_default().to_string();
    Ok(Stream {
        whip: s("whip_url"),
        whep: s("whep_url"),
        ingest: s("ingest_url"),
        egress: s("egress_url"),
        rtmp: s("rtmp_url"),
        secret: s("stream_secret"),
        stop: s("stop_url"),
    })
}

async fn start_many(http: &reqwest::Client, gw: &str, n: usize) -> Res<Vec<Stream>> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(start(http, gw).await?);
    }
    Ok(streams)
}

async fn stop_all(http: &reqwest::Client, streams: &[Stream]) {
    for s in streams {
        let _ = http.post(&s.stop).send().await;
    }
    // Let the stopped streams' tasks wind down before the next measurement.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Whether each stream has output at its egress now (the current segment, within a few seconds).
async fn outputs(http: &reqwest::Client, streams: &[Stream]) -> usize {
    let checks = streams.iter().map(|s| async move {
        let r = http.get(format!("{}/-2", s.egress)).bearer_auth(&s.secret).timeout(Duration::from_secs(6)).send();
        match r.await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| !b.is_empty()),
            _ => false,
        }
    });
    futures_util::future::join_all(checks).await.into_iter().filter(|ok| *ok).count()
}

/// `peers/g2g.py` in one of its modes; JSON lines on its stdout.
struct Peer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
}

impl Peer {
    fn spawn(python: &str, args: &[&str]) -> Res<Peer> {
        let script = root().join("host/gateway/benches/peers/g2g.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {python}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no peer stdout")?;
        Ok(Peer { lines: BufReader::new(stdout).lines(), stdin: child.stdin.take(), child })
    }

    /// The peer's next line, which must be JSON and not an `{"error"}`.
    async fn line(&mut self, within: Duration) -> Res<Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| format!("the peer gave no answer within {within:?}"))?
            .map_err(|e| format!("reading the peer: {e}"))?
            .ok_or("the peer exited without an answer")?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("peer output {line:?}: {e}"))?;
        match v.get("error") {
            Some(e) => Err(format!("the peer failed: {e}")),
            None => Ok(v),
        }
    }

    /// Closes the peer's stdin (a publisher stops) and returns its last line.
    async fn finish(mut self, within: Duration) -> Res<Value> {
        self.stdin = None;
        let last = self.line(within).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        last
    }
}

/// One latency run as the peer reports it.
struct Latency {
    frames: u64,
    expected: u64,
    unreadable: u64,
    p50: f64,
    p95: f64,
    max: f64,
    keyframe_gaps: Vec<f64>,
    size: (u64, u64),
}

impl Latency {
    fn from_json(v: &Value) -> Res<Latency> {
        let ms = |k: &str| v[k].as_f64().ok_or_else(|| format!("no frame was read back ({k} missing): {v}"));
        Ok(Latency {
            frames: v["frames"].as_u64().unwrap_or(0),
            expected: v["expected"].as_u64().unwrap_or(0),
            unreadable: v["unreadable"].as_u64().unwrap_or(0),
            p50: ms("p50_ms")?,
            p95: ms("p95_ms")?,
            max: ms("max_ms")?,
            keyframe_gaps: v["keyframe_gaps_s"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect(),
            size: (v["width"].as_u64().unwrap_or(0), v["height"].as_u64().unwrap_or(0)),
        })
    }

    fn row(&self, name: &str) {
        println!(
            "  {name:<36} {:>4}/{:<4} {:>4} {:>9.1} {:>9.1} {:>9.1}   {}x{}",
            self.frames, self.expected, self.unreadable, self.p50, self.p95, self.max, self.size.0, self.size.1
        );
    }
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

async fn latency(python: &str, args: &[&str]) -> Res<Latency> {
    let (secs, warm) = (LATENCY_SECONDS.to_string(), LATENCY_WARMUP.to_string());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--seconds", &secs, "--warmup", &warm]);
    let mut peer = Peer::spawn(python, &all)?;
    // Connect, warm-ups, the measured seconds, closing.
    let v = peer.line(Duration::from_secs(u64::from(LATENCY_SECONDS) + 90)).await?;
    Latency::from_json(&v)
}

async fn glass_to_glass(python: &str, http: &reqwest::Client, gw: &str) -> Res<()> {
    println!();
    println!(
        "1. glass-to-glass latency: 640x360 H.264 30 fps + Opus from aiortc, frame index read back from a barcode; \
         {LATENCY_SECONDS} s measured after a {LATENCY_WARMUP} s warm-up"
    );
    eprintln!("media bench: latency baseline (aiortc -> aiortc)");
    let base = latency(python, &["direct"]).await?;
    eprintln!("media bench: latency through the gateway (WHIP -> passthrough -> WHEP)");
    let stream = start(http, gw).await?;
    let through = latency(python, &["latency", &stream.whip, &stream.whep]).await;
    stop_all(http, std::slice::from_ref(&stream)).await;
    let through = through?;

    println!("  {:<36} {:>9} {:>4} {:>9} {:>9} {:>9}   size", "", "frames", "bad", "p50 ms", "p95 ms", "max ms");
    base.row("baseline: aiortc -> aiortc direct");
    through.row("gateway: WHIP -> passthrough -> WHEP");
    let added = through.p50 - base.p50;
    println!(
        "  added latency (gateway p50 - baseline p50): {added:.1} ms; {:.1}x the baseline p50",
        through.p50 / base.p50
    );
    let Some(segment) = median(&through.keyframe_gaps) else {
        println!("  ingest segment duration: unknown (the viewer saw fewer than two keyframes)");
        return Ok(());
    };
    let gaps: Vec<String> = through.keyframe_gaps.iter().map(|g| format!("{g:.2}")).collect();
    println!(
        "  ingest segment duration: {segment:.2} s (median keyframe spacing at the WHEP viewer; segments start on \
         keyframes; gaps [{}] s)",
        gaps.join(", ")
    );
    // Media moves in pieces: what the gateway adds is held to a fixed allowance, not to a segment.
    let pieces = if added <= GOAL_SLACK_MS { "met" } else { "NOT met" };
    println!("  goal: added latency <= {GOAL_SLACK_MS} ms over the direct baseline: {pieces} ({added:.0} ms)");
    let goal = segment * 1000.0 + GOAL_SLACK_MS;
    if added <= goal {
        println!(
            "  goal: added latency <= one segment + {GOAL_SLACK_MS} ms = {goal:.0} ms: met ({:.0} ms to spare)",
            goal - added
        );
    } else {
        println!(
            "  goal: added latency <= one segment + {GOAL_SLACK_MS} ms = {goal:.0} ms: NOT met, by {:.0} ms",
            added - goal
        );
    }
    Ok(())
}

/// One ingest segment the WHIP leg cut, with its duration (from its video PTS).
struct Segment {
    bytes: Bytes,
    duration: Duration,
}

fn video_duration(segment: &[u8]) -> Option<Duration> {
    let mut demux = TsDemuxer::new();
    let mut frames = demux.push(segment);
    frames.extend(demux.finish());
    let pts: Vec<u64> = frames.iter().filter(|f| f.kind == FrameKind::H264).filter_map(|f| f.pts).collect();
    let (first, last) = (*pts.iter().min()?, *pts.iter().max()?);
    let n = pts.len() as u64;
    if n < 2 {
        return None;
    }
    // The span of the PTS plus one frame interval.
    let span = (last - first) * n / (n - 1);
    Some(Duration::from_micros(span * 100 / 9))
}

/// The first ingest segments of a stream fed over WHIP, read back at its egress (passthrough).
async fn record_ingest(s: &Stream) -> Res<Vec<Segment>> {
    let auth = format!("Bearer {}", s.secret).parse().map_err(|_| "bad secret")?;
    let client = byoc_trickle::http_client_builder()
        .default_headers([(http::header::AUTHORIZATION, auth)].into_iter().collect())
        .build()
        .map_err(|e| e.to_string())?;
    let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), max_retries: 50, ..Default::default() };
    let mut sub = HttpSubscriber::with_client(client, s.egress.clone(), opts);
    let read = async {
        let mut out = Vec::new();
        // The first segment starts whenever the publisher did; keep the next ones.
        for i in 0..=RECORDED {
            let seg = sub.next_segment().await.map_err(|e| e.to_string())?.ok_or("the egress ended")?;
            let bytes = seg.read_all().await.map_err(|e| e.to_string())?;
            if i > 0 {
                let duration = video_duration(&bytes).ok_or("a recorded segment has no video")?;
                out.push(Segment { bytes, duration });
            }
        }
        Ok::<_, String>(out)
    };
    tokio::time::timeout(Duration::from_secs(40), read).await.map_err(|_| "recording the ingest segments timed out")?
}

struct CpuRun {
    usage: Usage,
    outputs: usize,
    note: String,
}

/// N aiortc WHIP publishers; with `record`, the warm-up records the first stream's ingest segments.
async fn whip_run(
    python: &str,
    http: &reqwest::Client,
    gw: &str,
    n: usize,
    record: bool,
) -> Res<(CpuRun, Option<Vec<Segment>>)> {
    let streams = start_many(http, gw, n).await?;
    let mut peers = Vec::with_capacity(n);
    let upper = (CPU_WINDOW + CPU_WARMUP).as_secs() + 60;
    for s in &streams {
        peers.push(Peer::spawn(python, &["publish", &s.whip, "--size", CPU_SIZE, "--seconds", &upper.to_string()])?);
    }
    for p in &mut peers {
        p.line(Duration::from_secs(40)).await?;
    }
    let recording = match (record, streams.first()) {
        // The warm-up doubles as the recording of the media for the other runs.
        (true, Some(s)) => Some(record_ingest(s).await?),
        _ => {
            tokio::time::sleep(CPU_WARMUP).await;
            None
        }
    };
    let exclude: Vec<u32> = peers.iter().filter_map(|p| p.child.id()).collect();
    let usage = measure(CPU_WINDOW, &exclude).await;
    let outputs = outputs(http, &streams).await;
    let mut frames = 0;
    for p in peers {
        frames += p.finish(Duration::from_secs(20)).await?["frames"].as_u64().unwrap_or(0);
    }
    stop_all(http, &streams).await;
    Ok((CpuRun { usage, outputs, note: format!("{frames} frames published") }, recording))
}

/// The recorded segments published whole, in real time, to each stream's `ingest_url`.
async fn http_run(http: &reqwest::Client, gw: &str, n: usize, recording: &Arc<Vec<Segment>>) -> Res<CpuRun> {
    let streams = start_many(http, gw, n).await?;
    let cycle: Duration = recording.iter().map(|s| s.duration).sum();
    let end = Instant::now() + CPU_WARMUP + CPU_WINDOW + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let (http, recording) = (http.clone(), recording.clone());
        let (url, secret) = (s.ingest.clone(), s.secret.clone());
        // Spread the streams over a cycle, as independent sources would be.
        let mut due = Instant::now() + cycle.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut failed) = (0u32, 0u32);
            // Bounded by the end time; the count bound is a backstop.
            for (k, seg) in recording.iter().cycle().enumerate().take(10_000) {
                if due > end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let r = http.post(format!("{url}/{k}")).bearer_auth(&secret).body(seg.bytes.clone()).send().await;
                match r {
                    Ok(r) if r.status().is_success() => sent += 1,
                    _ => failed += 1,
                }
                due += seg.duration;
            }
            (sent, failed)
        }));
    }
    tokio::time::sleep(CPU_WARMUP).await;
    let usage = measure(CPU_WINDOW, &[]).await;
    let outputs = outputs(http, &streams).await;
    let (mut sent, mut failed) = (0, 0);
    for t in tasks {
        let (s, f) = t.await.unwrap_or((0, 1));
        sent += s;
        failed += f;
    }
    stop_all(http, &streams).await;
    Ok(CpuRun { usage, outputs, note: format!("{sent} segments posted, {failed} failed") })
}

/// An ffmpeg RTMP publisher per stream, looping the recorded segments (video copied, audio to AAC).
async fn rtmp_run(http: &reqwest::Client, gw: &str, n: usize, media: &std::path::Path) -> Res<CpuRun> {
    let streams = start_many(http, gw, n).await?;
    let seconds = (CPU_WARMUP + CPU_WINDOW).as_secs() + 4;
    let mut publishers = Vec::new();
    for s in &streams {
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i"])
            .arg(media)
            .args(["-t", &seconds.to_string(), "-map", "0:v", "-map", "0:a?", "-c:v", "copy", "-c:a", "aac"])
            .args(["-f", "flv", &s.rtmp])
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        publishers.push(child);
    }
    tokio::time::sleep(CPU_WARMUP).await;
    let exclude: Vec<u32> = publishers.iter().filter_map(Child::id).collect();
    let usage = measure(CPU_WINDOW, &exclude).await;
    let outputs = outputs(http, &streams).await;
    let alive = publishers.iter_mut().map(|c| c.try_wait().is_ok_and(|s| s.is_none())).filter(|up| *up).count();
    for mut c in publishers {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    stop_all(http, &streams).await;
    Ok(CpuRun { usage, outputs, note: format!("{alive}/{n} publishers still up at the end") })
}

/// One row of the CPU table; returns the per-stream CPU (net of idle).
fn cpu_row(rows: &mut Vec<String>, name: &str, n: usize, idle: f64, run: &CpuRun, base: Option<f64>) -> f64 {
    let per = (run.usage.own + run.usage.children - idle).max(0.0) / n as f64;
    let ratio = match base {
        Some(b) if b > 0.0 => format!("{:.1}x, {:+.2}%", per / b, per - b),
        Some(b) => format!("n/a, {:+.2}%", per - b),
        None => "-".into(),
    };
    let kids = if run.usage.processes > 0 {
        format!("{:.2}% ({})", run.usage.children, run.usage.processes)
    } else {
        "-".into()
    };
    rows.push(format!(
        "  {name:<12} {n:>2} {:>11.2}% {kids:>16} {per:>13.2}% {ratio:>15} {:>10.0}   output on {}/{n}; {}",
        run.usage.own, run.usage.wakeups, run.outputs, run.note
    ));
    per
}

async fn cpu(python: &str, http: &reqwest::Client, nodes: &Nodes) -> Res<()> {
    let gw = nodes.gw.as_str();
    println!();
    println!(
        "2. CPU per ingest stream, % of one core over {} s windows after a warm-up. Counted: this process (gateway, \
         orchestrator, passthrough, RTMP's in-process FLV -> TS remux) and any ffmpeg the gateway starts; the \
         publishers are other processes and not counted",
        CPU_WINDOW.as_secs()
    );
    let idle = measure(CPU_WINDOW, &[]).await;
    let rtmp = ffmpeg_available();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let media = dir.path().join("recorded.ts");
    let mut recorded: Option<Arc<Vec<Segment>>> = None;
    let mut rows = Vec::new();
    // WHIP's cost on top of HTTP ingest per stream, each round's, by N: in pieces, and whole.
    let mut whip_extra: Vec<(usize, Vec<f64>, Vec<f64>)> = Vec::new();
    for n in CPU_STREAMS {
        let mut extra = Vec::with_capacity(CPU_ROUNDS);
        let mut whole_extra = Vec::with_capacity(CPU_ROUNDS);
        let mut base = 0.0;
        for round in 1..=CPU_ROUNDS {
            eprintln!("media bench: CPU with {n} WHIP publisher(s), round {round}");
            let (whip, new) = whip_run(python, http, gw, n, recorded.is_none()).await?;
            if let Some(recording) = new {
                let secs: f64 = recording.iter().map(|s| s.duration.as_secs_f64()).sum();
                let bytes: usize = recording.iter().map(|s| s.bytes.len()).sum();
                let durations: Vec<String> =
                    recording.iter().map(|s| format!("{:.2}", s.duration.as_secs_f64())).collect();
                println!(
                    "  media: {CPU_SIZE} H.264 30 fps + Opus from aiortc (one process per WHIP publisher); {} of its \
                     ingest segments, recorded at the egress ([{}] s, {:.0} kbit/s), are replayed for the HTTP and \
                     RTMP runs",
                    recording.len(),
                    durations.join(", "),
                    bytes as f64 * 8.0 / secs / 1000.0
                );
                let all: Vec<u8> = recording.iter().flat_map(|s| s.bytes.iter().copied()).collect();
                std::fs::write(&media, all).map_err(|e| e.to_string())?;
                recorded = Some(Arc::new(recording));
            }
            let recording = recorded.clone().ok_or("nothing was recorded")?;
            eprintln!("media bench: CPU with {n} HTTP ingest stream(s), round {round}");
            let plain = http_run(http, gw, n, &recording).await?;
            eprintln!("media bench: CPU with {n} WHIP publisher(s) moving whole segments, round {round}");
            let (whole, _) = whip_run(python, http, &nodes.whole, n, false).await?;
            base = cpu_row(&mut rows, &format!("HTTP (TS) {round}"), n, idle.own, &plain, None);
            extra.push(cpu_row(&mut rows, &format!("WHIP {round}"), n, idle.own, &whip, Some(base)) - base);
            let name = format!("WHIP whole {round}");
            whole_extra.push(cpu_row(&mut rows, &name, n, idle.own, &whole, Some(base)) - base);
        }
        if rtmp {
            eprintln!("media bench: CPU with {n} RTMP publisher(s)");
            let r = rtmp_run(http, gw, n, &media).await?;
            cpu_row(&mut rows, "RTMP", n, idle.own, &r, Some(base));
        }
        whip_extra.push((n, extra, whole_extra));
    }
    println!(
        "  idle (no stream): {:.2}%, subtracted from each run before dividing by N; {:.0} wake-ups/s",
        idle.own, idle.wakeups
    );
    println!(
        "  {:<12} {:>2} {:>12} {:>16} {:>14} {:>15} {:>10}   check",
        "ingest", "N", "this process", "ffmpeg children", "per stream", "vs HTTP", "wake-ups/s"
    );
    for r in rows {
        println!("{r}");
    }
    if !rtmp {
        println!("  RTMP: skipped (ffmpeg not found)");
    }
    let rounds = |v: &[f64]| v.iter().map(|e| format!("{e:+.2}%")).collect::<Vec<_>>().join(", ");
    for (n, extra, whole) in &whip_extra {
        let (Some(mid), Some(mid_whole)) = (median(extra), median(whole)) else { continue };
        println!("  WHIP on top of HTTP ingest, N={n}: {mid:+.2}% per stream (median of rounds {})", rounds(extra));
        println!(
            "  WHIP moving whole segments on top of HTTP ingest, N={n}: {mid_whole:+.2}% per stream (median of rounds {})",
            rounds(whole)
        );
        // What pieces cost over whole segments, round by round (both against the round's HTTP run).
        let pieces: Vec<f64> = extra.iter().zip(whole).map(|(p, w)| p - w).collect();
        let Some(mid_pieces) = median(&pieces) else { continue };
        println!(
            "  goal: pieces cost no more CPU than whole segments (within {PIECES_SLACK_PERCENT:.1}% of a core per \
             stream), N={n}: {} ({mid_pieces:+.2}%, median of rounds {})",
            if mid_pieces <= PIECES_SLACK_PERCENT { "met" } else { "NOT met" },
            rounds(&pieces)
        );
        if *n == CPU_STREAMS[CPU_STREAMS.len() - 1] {
            println!(
                "  older goal: WHIP on top of HTTP ingest <= {WHIP_GOAL_PERCENT:.1}% of a core per stream (what it \
                 cost with whole segments on an earlier machine), median at N={n}: {} ({mid:+.2}%)",
                if mid <= WHIP_GOAL_PERCENT { "met" } else { "NOT met" },
            );
        }
    }
    println!(
        "  vs HTTP: per-stream CPU as a ratio to, and a difference from, the HTTP (TS) run with the same N: \
         what WebRTC ingest (UDP, SRTP, depacketizing, our TS mux and segmenter) or RTMP ingest (our server and \
         FLV -> TS remux) costs on top of the bare pipeline"
    );
    Ok(())
}

async fn run() -> Res<()> {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        println!("media benchmark skipped: it reads CPU time the 64-bit Linux way (/proc, CLOCK_PROCESS_CPUTIME_ID)");
        return Ok(());
    }
    let Some(python) = python() else {
        println!(
            "media benchmark skipped: no Python with aiortc (BYOC_PYTHON, else python3). `cargo xtask bench media` \
             installs the peers venv (target/peers-venv, aiortc==1.16.0) and runs this with it; or set BYOC_PYTHON \
             to a python that has aiortc, aiohttp and av."
        );
        return Ok(());
    };
    println!(
        "media benchmark (loopback, {} cores; gateway + orchestrator + passthrough plugin in this process)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let window = piece_window();
    if let Some(w) = window {
        println!("piece window {} ms (BYOC_BENCH_PIECE_WINDOW_MS)", w.as_millis());
    }
    let nodes = nodes(window).await;
    let http = http();
    glass_to_glass(&python, &http, &nodes.gw).await?;
    if std::env::args().any(|a| a == "latency") {
        return Ok(());
    }
    cpu(&python, &http, &nodes).await
}
