//! pytrickle's worker on the same input: the worker the tests start (`tests/peers/peer_worker.py`,
//! pytrickle's `StreamProcessor` app with a video handler that returns each frame as it came) as a
//! child process, driven as an orchestrator drives a worker: `POST /stream/start` with trickle
//! channel URLs on our trickle server (in this process), input published a segment a second,
//! output read back. Its CPU time is read from `/proc/<pid>/stat` around the stream.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use byoc_trickle::{HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions, TrickleConfig, TrickleStore};
use serde_json::json;

use crate::R;
use crate::media::{Clip, Cpu, video_pts};

/// How long the worker may take to start (it imports torch).
const START_LIMIT: Duration = Duration::from_secs(120);
/// Longest wait for the last output after the last input.
const DRAIN_LIMIT: Duration = Duration::from_secs(20);
/// Output that has not grown for this long is taken as complete.
const QUIET: Duration = Duration::from_secs(3);
/// How long the idle worker is watched to learn its idle CPU rate.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);

/// The stream's channel names start with this.
const CHANNEL_PREFIX: &str = "bench-";

/// What one pytrickle stream cost.
pub struct WorkerRun {
    /// CPU time over the stream, the worker's idle rate taken off.
    pub cpu: Duration,
    /// The worker's idle CPU (fraction of a core).
    pub idle_rate: f64,
    pub frames_out: usize,
    pub startup: Duration,
}

/// The worker venv's python: `BYOC_WORKER_PYTHON`, else `target/worker-venv` if it is there.
pub fn python(root: &Path) -> Option<PathBuf> {
    let from_env = std::env::var_os("BYOC_WORKER_PYTHON").map(PathBuf::from);
    let default = root.join("target/worker-venv/bin/python");
    from_env.or_else(|| default.is_file().then_some(default)).filter(|p| p.is_file())
}

/// The stream's channels, as an orchestrator creates them for a worker.
const CHANNELS: [(&str, &str); 5] = [
    ("in", "video/mp2t"),
    ("out", "video/mp2t"),
    ("control", "application/json"),
    ("events", "application/json"),
    ("data", "application/jsonl"),
];

/// Our trickle server on loopback with the stream's channels made; returns its base URL.
async fn serve_trickle() -> R<(String, tokio::task::JoinHandle<()>)> {
    use axum::serve::ListenerExt;
    let store = TrickleStore::new(TrickleConfig { autocreate: true, ..TrickleConfig::default() });
    for (name, mime) in CHANNELS {
        store.create_channel(&format!("{CHANNEL_PREFIX}{name}"), mime)?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().nest("/ai/trickle", byoc_trickle::router(store));
    let task = tokio::spawn(async move {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/ai/trickle"), task))
}

fn free_port() -> R<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One stream of `clip` through the worker.
pub async fn stream(python: &Path, root: &Path, dir: &Path, clip: &Clip) -> R<WorkerRun> {
    let (trickle, server) = serve_trickle().await?;
    let port = free_port()?;
    let worker = format!("http://127.0.0.1:{port}");
    let log_path = dir.join("pytrickle-worker.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = tokio::process::Command::new(python)
        .arg(root.join("tests/peers/peer_worker.py"))
        .env("ORCH_URL", "")
        .env("ORCH_SECRET", "")
        .env("WORKER_PORT", port.to_string())
        .env("PYTHONUNBUFFERED", "1")
        .env("LOGLEVEL", "WARNING")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the worker exited at once")?.to_string();
    let result = drive(&pid, &worker, &trickle, clip, &mut child).await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    server.abort();
    result.map_err(|e| format!("{e} (worker log: {})", log_path.display()).into())
}

async fn drive(pid: &str, worker: &str, trickle: &str, clip: &Clip, child: &mut tokio::process::Child) -> R<WorkerRun> {
    let http = byoc_trickle::http_client()?;
    let began = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the worker exited: {status}").into());
        }
        let health = http.get(format!("{worker}/health")).timeout(Duration::from_secs(2)).send().await;
        if let Ok(r) = health
            && let Ok(v) = r.json::<serde_json::Value>().await
            && v["status"] == "IDLE"
        {
            break;
        }
        if began.elapsed() > START_LIMIT {
            return Err("the worker did not start in time".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let startup = began.elapsed();

    // The worker's idle CPU rate, taken off the stream's figure below.
    let idle_from = (Cpu::of(pid).ok_or("no /proc for the worker")?, Instant::now());
    tokio::time::sleep(IDLE_SAMPLE).await;
    let idle_to = Cpu::of(pid).ok_or("the worker is gone")?;
    let idle_rate =
        total(idle_to).saturating_sub(total(idle_from.0)).as_secs_f64() / idle_from.1.elapsed().as_secs_f64();

    let before = Cpu::of(pid).ok_or("the worker is gone")?;
    let window = Instant::now();
    let channel = |name: &str| format!("{trickle}/{CHANNEL_PREFIX}{name}");
    let start = json!({
        "gateway_request_id": "frames-bench",
        "subscribe_url": channel("in"),
        "publish_url": channel("out"),
        "control_url": channel("control"),
        "events_url": channel("events"),
        "data_url": channel("data"),
        "params": {"width": clip.width, "height": clip.height},
    });
    let r = http.post(format!("{worker}/stream/start")).json(&start).timeout(Duration::from_secs(30)).send().await?;
    if !r.status().is_success() {
        return Err(format!("/stream/start: {} {}", r.status(), r.text().await.unwrap_or_default()).into());
    }

    let frames_out = Arc::new(Mutex::new((0usize, Instant::now())));
    let counted = frames_out.clone();
    let options = SubscriberOptions { start: SeqRequest::At(Seq(0)), max_retries: 50, ..Default::default() };
    let mut output = HttpSubscriber::new(channel("out"), options)?;
    let reader = tokio::spawn(async move {
        while let Ok(Some(segment)) = output.next_segment().await {
            let Ok(bytes) = segment.read_all().await else { return };
            if let Ok(mut c) = counted.lock() {
                *c = (c.0 + video_pts(&bytes).len(), Instant::now());
            }
        }
    });

    let mut input = HttpPublisher::new(channel("in"), "video/mp2t")?;
    let paced = Instant::now();
    for (i, segment) in (0u32..).zip(&clip.segments) {
        tokio::time::sleep_until((paced + Duration::from_secs(u64::from(i))).into()).await;
        let mut writer = input.next_segment();
        writer.write(segment.bytes.clone())?;
        tokio::time::timeout(Duration::from_secs(10), writer.finish()).await??;
    }
    let fed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (n, last) = *frames_out.lock().map_err(|_| "poisoned")?;
        let settled = n >= clip.frames() || (n > 0 && last.elapsed() > QUIET);
        if settled || fed.elapsed() > DRAIN_LIMIT {
            break;
        }
    }
    let after = Cpu::of(pid).ok_or("the worker is gone")?;
    let frames_out = frames_out.lock().map_err(|_| "poisoned")?.0;
    let stop = http.post(format!("{worker}/stream/stop")).timeout(Duration::from_secs(5)).body("bench done");
    let _ = stop.send().await;
    reader.abort();
    if frames_out == 0 {
        return Err("no output from the worker".into());
    }
    let idle = Duration::from_secs_f64(idle_rate * window.elapsed().as_secs_f64());
    let cpu = total(after).saturating_sub(total(before)).saturating_sub(idle);
    Ok(WorkerRun { cpu, idle_rate, frames_out, startup })
}

fn total(cpu: Cpu) -> Duration {
    cpu.own + cpu.children
}
