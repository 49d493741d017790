//! Our orchestrator with a REAL pytrickle BYOC worker (`pytrickle.StreamProcessor`, the library's
//! `StreamServer` app, unmodified) as its capability: the worker registers itself, the test acts
//! as the gateway (`/ai/stream/start|update|stop` with a `Livepeer` header), publishes H.264
//! MPEG-TS input on the stream's trickle channels and reads the worker's output, events and data.
//!
//! Needs the full pytrickle worker venv (`target/worker-venv`, ~6 GB: torch); `cargo xtask test`
//! installs it and sets `BYOC_WORKER_PYTHON`. Also needs ffmpeg and ffprobe.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use byoc_payment::job::JobRequest;
use byoc_trickle::{HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::common::{self, Served, orchestrator};

const SECRET: &str = "worker-secret";
const CAPABILITY: &str = "pytrickle-passthrough";
const STREAM: &str = "pyw-stream-1";
const SEGMENTS: usize = 8;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn job(id: &str, request: Value, parameters: Value) -> String {
    JobRequest {
        id: id.into(),
        request: request.to_string(),
        parameters: parameters.to_string(),
        capability: CAPABILITY.into(),
        timeout_seconds: 60,
        ..Default::default()
    }
    .to_header()
}

/// `SEGMENTS` one-second H.264 MPEG-TS segments (256x256, 30 fps, a keyframe each second).
fn make_segments(dir: &Path) -> Vec<Bytes> {
    let pattern = dir.join("in%03d.ts");
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=256x256:rate=30"])
        .args(["-t", &SEGMENTS.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-pix_fmt", "yuv420p", "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts"])
        .arg(&pattern)
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "ffmpeg failed");
    let segs: Vec<Bytes> = (0..SEGMENTS)
        .map(|i| Bytes::from(std::fs::read(dir.join(format!("in{i:03}.ts"))).expect("input segment")))
        .collect();
    assert!(segs.iter().all(|s| !s.is_empty()));
    segs
}

/// One segment read from a channel.
#[derive(Clone)]
struct Segment {
    seq: u64,
    bytes: Bytes,
}

type Collected = Arc<Mutex<Vec<Segment>>>;

/// Reads a channel from seq 0 into `into` until it ends; stops silently on errors.
fn collect(url: &str) -> (Collected, tokio::task::JoinHandle<()>) {
    let got: Collected = Arc::default();
    let mut sub = HttpSubscriber::new(
        url,
        SubscriberOptions { start: SeqRequest::At(Seq(0)), max_retries: 50, ..Default::default() },
    )
    .unwrap();
    let into = got.clone();
    let task = tokio::spawn(async move {
        while let Ok(Some(seg)) = sub.next_segment().await {
            let seq = seg.seq().0;
            match seg.read_all().await {
                Ok(bytes) => into.lock().unwrap().push(Segment { seq, bytes }),
                Err(_) => return,
            }
        }
    });
    (got, task)
}

fn text_of(c: &Collected) -> String {
    c.lock().unwrap().iter().map(|s| String::from_utf8_lossy(&s.bytes).into_owned()).collect::<Vec<_>>().join("\n")
}

/// Waits (bounded) until `ok` holds.
async fn wait_for(what: &str, limit: Duration, log: &Path, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}; worker log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the worker's JSON at `url` (every 200 ms, `tries` times at most) until `ok` holds;
/// returns the last answer.
async fn worker_json_until(http: &reqwest::Client, url: &str, tries: usize, ok: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..tries {
        last = worker_json(http, url).await;
        if ok(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

async fn worker_json(http: &reqwest::Client, url: &str) -> Value {
    match http.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pytrickle_worker_serves_a_stream_through_our_orchestrator() {
    let Some(py) = common::python("BYOC_WORKER_PYTHON", "the pytrickle worker venv") else { return };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/peer_worker.py");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pytrickle-worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("worker.log");
    let inputs = make_segments(&dir);

    let Served { url: orch_url, orch } = orchestrator(SECRET, |_| {}).await;
    let port = free_port();
    let worker_url = format!("http://127.0.0.1:{port}");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = tokio::process::Command::new(&py)
        .arg(&script)
        .env("ORCH_URL", &orch_url)
        .env("ORCH_SECRET", SECRET)
        .env("CAPABILITY_NAME", CAPABILITY)
        .env("CAPABILITY_URL", &worker_url)
        .env("CAPABILITY_CAPACITY", "1")
        .env("WORKER_PORT", port.to_string())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");
    let t0 = Instant::now();

    // 1. The worker registers itself (pytrickle's RegisterCapability; torch makes start-up slow).
    let mut exited = None;
    wait_for("the worker's registration", Duration::from_secs(120), &log, || {
        if let Ok(Some(st)) = child.try_wait() {
            exited = Some(st);
            return true;
        }
        orch.registry.get(CAPABILITY).is_some()
    })
    .await;
    assert!(exited.is_none(), "the worker exited: {exited:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let cap = orch.registry.get(CAPABILITY).unwrap();
    assert_eq!((cap.capacity.limit(), cap.capacity.in_use()), (1, 0));
    eprintln!("worker registered after {:?}", t0.elapsed());
    let http = byoc_trickle::http_client().unwrap();
    // A gateway would start at once; wait for the worker's HTTP server to report IDLE first.
    let ready = |h: &Value| h["status"] == "IDLE" || h["status"] == "OK";
    let health = worker_json_until(&http, &format!("{worker_url}/health"), 100, ready).await;
    assert!(health["status"] == "IDLE" || health["status"] == "OK", "worker health: {health}");

    // 2. The gateway starts a stream: the orchestrator creates the channels and calls /stream/start.
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true});
    let r = http
        .post(format!("{orch_url}/ai/stream/start"))
        .header("Livepeer", job(STREAM, json!({}), legs))
        .json(&json!({"params": {"prompt": "start"}}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(
        status,
        200,
        "/ai/stream/start: {body}\nworker log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let h = |name: &str| headers.get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap().to_string();
    let (publish, subscribe, control, events, data) =
        (h("x-publish-url"), h("x-subscribe-url"), h("x-control-url"), h("x-events-url"), h("x-data-url"));
    assert_eq!(cap.capacity.in_use(), 1);
    let status = worker_json(&http, &format!("{worker_url}/stream/status")).await;
    assert!(status["client_active"] == true || status["active_streams"].as_u64() > Some(0), "worker status: {status}");

    let (outputs, out_task) = collect(&subscribe);
    let (event_segs, ev_task) = collect(&events);
    let (data_segs, data_task) = collect(&data);

    // 3. Input at real time, a control message, and (mid-stream) an update through the orchestrator.
    let mut control_pub = HttpPublisher::new(&control, "application/json").unwrap();
    let mut seg = control_pub.next_segment();
    seg.write(Bytes::from_static(br#"{"keep":"alive"}"#)).unwrap();
    seg.finish().await.unwrap();
    let mut input = HttpPublisher::new(&publish, "video/mp2t").unwrap();
    let started = Instant::now();
    let mut outputs_before_update = 0;
    for (i, s) in inputs.iter().enumerate() {
        let mut seg = input.next_segment();
        seg.write(s.clone()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), seg.finish()).await.expect("input POST timed out").unwrap();
        // A control message, as a gateway sends them (the worker applies it without an event).
        if i == 1 {
            let mut seg = control_pub.next_segment();
            seg.write(Bytes::from_static(br#"{"prompt":"from-control"}"#)).unwrap();
            seg.finish().await.unwrap();
        }
        if i == SEGMENTS / 2 {
            // 4. The worker's output arrives (the encoder cuts 2 s segments) and so do its events.
            wait_for("output segments and events", Duration::from_secs(30), &log, || {
                !outputs.lock().unwrap().is_empty() && text_of(&event_segs).contains("\"event\"")
            })
            .await;
            let status = worker_json(&http, &format!("{worker_url}/stream/status")).await;
            eprintln!("worker /stream/status while streaming: {status}");
            // An update through the orchestrator reaches the worker's /stream/params (and its
            // param_updater, which echoes it on the data channel). The worker emits two
            // `params_updated` events back to back for it, and pytrickle's publisher then may POST
            // both to the same events seq at once: the stream must survive that.
            outputs_before_update = outputs.lock().unwrap().len();
            let r = http
                .post(format!("{orch_url}/ai/stream/update"))
                .header("Livepeer", job("upd", json!({"stream_id": STREAM}), json!({})))
                .header("Content-Type", "application/json")
                .body(r#"{"prompt":"updated"}"#)
                .send()
                .await
                .unwrap();
            let (up_status, up_body) = (r.status(), r.text().await.unwrap_or_default());
            assert_eq!(up_status, 200, "/ai/stream/update: {up_body}");
        }
        let due = started + Duration::from_secs(i as u64 + 1);
        tokio::time::sleep_until(due.into()).await;
    }
    wait_for("the update echoed on the data channel, and output after it", Duration::from_secs(20), &log, || {
        text_of(&data_segs).contains("updated") && outputs.lock().unwrap().len() > outputs_before_update
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // What the worker said while streaming (after the stop, its POSTs get 404s, as they should).
    let log_while_streaming = std::fs::read_to_string(&log).unwrap_or_default();

    // 5. Stop: 200, slot freed, worker idle again.
    let r = http
        .post(format!("{orch_url}/ai/stream/stop"))
        .header("Livepeer", job("stop", json!({"stream_id": STREAM}), json!({})))
        .body("stream ended")
        .send()
        .await
        .unwrap();
    let (stop_status, stop_body) = (r.status(), r.text().await.unwrap_or_default());
    assert_eq!(stop_status, 200, "/ai/stream/stop: {stop_body}");
    assert_eq!(cap.capacity.in_use(), 0);
    let health = worker_json_until(&http, &format!("{worker_url}/health"), 50, |h| h["status"] == "IDLE").await;
    let idle_status = worker_json(&http, &format!("{worker_url}/stream/status")).await;

    for t in [&out_task, &ev_task, &data_task] {
        t.abort();
    }
    let outs = outputs.lock().unwrap().clone();
    let mut all = Vec::new();
    for s in &outs {
        all.extend_from_slice(&s.bytes);
    }
    let out_file = dir.join("out.ts");
    std::fs::write(&out_file, &all).unwrap();
    let (codec, frames) = byoc_e2e::media::probe_video(&out_file);
    let events_text = text_of(&event_segs);
    let data_text = text_of(&data_segs);
    eprintln!(
        "output: {} segments (seqs {:?}), {} bytes, {codec} {frames} frames",
        outs.len(),
        outs.iter().map(|o| o.seq).collect::<Vec<_>>(),
        all.len()
    );
    eprintln!("events:\n{events_text}\ndata:\n{data_text}");
    eprintln!("worker after stop: health {health}, status {idle_status}; total {:?}", t0.elapsed());

    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let worker_log = std::fs::read_to_string(&log).unwrap_or_default();

    assert_eq!(codec, "h264", "output is not H.264; worker log:\n{worker_log}");
    assert!(frames >= 10, "only {frames} decodable output frames; worker log:\n{worker_log}");
    assert!(
        ["heartbeat", "receive_first_ingest_segment", "send_first_processed_segment"]
            .iter()
            .any(|e| events_text.contains(e)),
        "no pytrickle event on the events channel: {events_text}"
    );
    assert_eq!(health["status"], "IDLE", "worker not idle after stop: {health}");
    assert!(data_text.contains("from-control"), "the control message did not reach the worker: {data_text}");
    assert!(events_text.contains("params_updated"), "no params_updated event after the update: {events_text}");
    assert!(
        !log_while_streaming.contains("Trickle POST failed") && !log_while_streaming.contains("Trickle POST exception"),
        "pytrickle's publisher failed against our trickle server while streaming:\n{log_while_streaming}"
    );
    // Kept on failure, for a look at the worker log and output.
    let _ = std::fs::remove_dir_all(&dir);
}
