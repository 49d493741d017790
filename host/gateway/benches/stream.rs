//! `cargo xtask bench stream`: a gateway, an orchestrator and the real `passthrough` plugin in one
//! process on loopback.
//!
//! 1. Start latency: start request → the first output segment back at the gateway's egress, for
//!    a 256 KiB segment, against a baseline measured in the same run: that segment published and
//!    read once through a bare trickle server.
//! 2. Concurrency: streams each publishing one 256 KiB segment per second and reading it back, in
//!    growing steps until one is not sustained (the knee); a step is sustained when no segment came
//!    back more than 1 s after it was sent. Reported with the host memory per stream.
//!
//! Bounded: fixed step sizes (at most 1200 streams), a few seconds per step, a hard deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use byoc_e2e::nodes::{job_header, plugins_dir, root};
use byoc_gateway::{Gateway, GatewayConfig};
use byoc_orchestrator::{Orchestrator, OrchestratorConfig};
use byoc_payment::job::SignaturePolicy;
use byoc_runtime::{CacheDir, Runtime, RuntimeConfig};
use byoc_trickle::{HttpPublisher, HttpSubscriber, SeqRequest, SubscriberOptions, TrickleStore};
use bytes::Bytes;
use serde_json::{Value, json};

const SEGMENT: usize = 256 << 10;
// The top step stays under the 20,000 open files a process may have here (~12 per stream: both ends of
// each loopback connection are in this process).
const STEPS: [usize; 10] = [25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200];
const SECONDS_PER_STEP: u64 = 5;
const LATE: Duration = Duration::from_secs(1);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        if tokio::time::timeout(Duration::from_secs(900), run()).await.is_err() {
            println!("stopped: the 900 s bound of the benchmark was reached");
        }
    });
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    url
}

fn http() -> reqwest::Client {
    // Every request is bounded, so a stuck stream counts as lost instead of hanging the run.
    byoc_trickle::http_client_builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn nodes() -> String {
    let runtime = Runtime::load(
        plugins_dir(),
        RuntimeConfig {
            cache_dir: CacheDir::At(root().join("target/runtime-bench-cache")),
            max_instances: 2048,
            max_memory_mib: 128,
            ..RuntimeConfig::default()
        },
    )
    .await
    .expect("plugins");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let orch_url = format!("http://{}", l.local_addr().expect("addr"));
    let orch = Orchestrator::new(
        OrchestratorConfig {
            service_url: orch_url.clone(),
            signatures: SignaturePolicy::AllowUnsigned,
            ..OrchestratorConfig::default()
        },
        TrickleStore::new(byoc_trickle::TrickleConfig { max_channels: 100_000, ..Default::default() }),
    )
    .expect("orchestrator");
    orch.registry.set_plugin_capacity("passthrough", 10_000);
    orch.offer_plugins(&Arc::new(runtime), 10_000);
    let app = byoc_orchestrator::router(orch);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gw_url = format!("http://{}", l.local_addr().expect("addr"));
    let gw = Gateway::new(GatewayConfig {
        public_url: gw_url.clone(),
        orchestrators: vec![orch_url],
        events_timeout: None,
        ..GatewayConfig::default()
    })
    .expect("gateway");
    let app = byoc_gateway::router(gw);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    gw_url
}

fn job() -> String {
    job_header("passthrough", &json!({"enable_video_ingress": true, "enable_video_egress": true}))
}

/// A running stream seen from a client: its ingest and egress, with the secret.
struct Client {
    /// The next seq this client publishes.
    next: AtomicU64,
    ingest: String,
    egress: String,
    secret: String,
    stop: String,
}

async fn start(http: &reqwest::Client, gw: &str) -> Client {
    let r = http.post(format!("{gw}/process/stream/start")).header("Livepeer", job()).body("{}").send().await;
    let urls: Value = r.expect("start").json().await.expect("start answer");
    let s = |k: &str| urls[k].as_str().unwrap_or_default().to_string();
    Client {
        next: AtomicU64::new(0),
        ingest: s("ingest_url"),
        egress: s("egress_url"),
        secret: s("stream_secret"),
        stop: s("stop_url"),
    }
}

/// Sends one segment at `seq` and reads it back; the time it took.
async fn round_trip(http: &reqwest::Client, c: &Client, seq: u64, body: Bytes) -> Option<Duration> {
    let t = Instant::now();
    let egress = http.get(format!("{}/{seq}", c.egress)).bearer_auth(&c.secret).send();
    let ingest = http.post(format!("{}/{seq}", c.ingest)).bearer_auth(&c.secret).body(body).send();
    let (out, sent) = tokio::join!(egress, ingest);
    if !sent.ok()?.status().is_success() {
        return None;
    }
    let out = out.ok()?;
    if !out.status().is_success() {
        return None;
    }
    let bytes = out.bytes().await.ok()?;
    (bytes.len() == SEGMENT).then(|| t.elapsed())
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The bare trickle round trip of one segment (publish, subscribe) on loopback.
async fn baseline(body: &Bytes) -> Duration {
    let store = TrickleStore::default();
    let url = format!(
        "{}/ai/trickle",
        serve(axum::Router::new().nest("/ai/trickle", byoc_trickle::router(store.clone()))).await
    );
    let mut times = Vec::new();
    for i in 0..30 {
        let ch = format!("{url}/base{i}");
        store.create_channel(&format!("base{i}"), "video/mp2t").expect("channel");
        let opts = SubscriberOptions { start: SeqRequest::At(byoc_trickle::Seq(0)), ..SubscriberOptions::default() };
        let mut sub = HttpSubscriber::new(&ch, opts).expect("subscriber");
        let read = tokio::spawn(async move { sub.next_segment().await.ok().flatten()?.read_all().await.ok() });
        let t = Instant::now();
        let mut publisher = HttpPublisher::new(&ch, "video/mp2t").expect("publisher");
        let mut w = publisher.next_segment();
        w.write(body.clone()).expect("write");
        w.finish().await.expect("publish");
        let got = tokio::time::timeout(Duration::from_secs(10), read).await.ok().and_then(|r| r.ok().flatten());
        let got = got.expect("the baseline segment came back");
        assert_eq!(got.len(), SEGMENT);
        times.push(t.elapsed());
    }
    percentile(&mut times, 0.5)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run() {
    println!(
        "stream benchmark (loopback, {} cores, passthrough plugin)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let body = Bytes::from(vec![0x47u8; SEGMENT]);
    eprintln!("measuring the baseline");
    let base = baseline(&body).await;
    println!("baseline  256 KiB segment through a bare trickle server      p50 {:7.2} ms", ms(base));

    let gw = nodes().await;
    let http = http();
    let mut starts = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let c = start(&http, &gw).await;
        round_trip(&http, &c, 0, body.clone()).await.expect("first output segment");
        starts.push(t.elapsed());
        let _ = http.post(&c.stop).send().await;
    }
    let (p50, p99) = (percentile(&mut starts, 0.5), percentile(&mut starts, 0.99));
    println!(
        "start     start request -> first output segment (256 KiB)   p50 {:7.2} ms  p99 {:7.2} ms   {:.1}x baseline",
        ms(p50),
        ms(p99),
        p50.as_secs_f64() / base.as_secs_f64()
    );
    let goal = Duration::from_millis(50) + base;
    println!(
        "          goal: < 50 ms plus one segment's transfer (the baseline) = {:.1} ms: {}",
        ms(goal),
        if p50 < goal { "met" } else { "NOT met" }
    );

    let rss0 = rss_kib();
    let mut sustained = 0;
    let mut knee = None;
    let mut clients: Vec<Arc<Client>> = Vec::new();
    for &n in &STEPS {
        while clients.len() < n {
            clients.push(Arc::new(start(&http, &gw).await));
        }
        let late = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let worst = Arc::new(AtomicU64::new(0));
        let began = Instant::now();
        let mut tasks = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let (c, http, body) = (c.clone(), http.clone(), body.clone());
            let (late, lost, worst) = (late.clone(), lost.clone(), worst.clone());
            // Spread the streams over the second, as independent sources would be.
            let offset = Duration::from_millis((i as u64 * 1000) / n as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                for k in 0..SECONDS_PER_STEP {
                    let due = began + offset + Duration::from_secs(k);
                    tokio::time::sleep_until(due.into()).await;
                    let seq = c.next.fetch_add(1, Ordering::Relaxed);
                    match round_trip(&http, &c, seq, body.clone()).await {
                        Some(d) => {
                            worst.fetch_max(d.as_micros() as u64, Ordering::Relaxed);
                            if d > LATE {
                                late.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let (late, lost) = (late.load(Ordering::Relaxed), lost.load(Ordering::Relaxed));
        let worst = Duration::from_micros(worst.load(Ordering::Relaxed));
        let rss = rss_kib().saturating_sub(rss0);
        println!(
            "streams   {n:4} x 256 KiB/s: worst round trip {:8.1} ms, {late} late, {lost} lost, host memory {:6.1} KiB/stream",
            ms(worst),
            rss as f64 / n as f64
        );
        if late > 0 || lost > 0 {
            knee = Some(n);
            break;
        }
        sustained = n;
    }
    let knee =
        knee.map_or_else(|| format!("not reached by {} streams", STEPS[STEPS.len() - 1]), |n| format!("{n} streams"));
    println!(
        "sustained {sustained} concurrent passthrough streams ({:.2}x the goal of 300: {}); the knee (first step with late or lost segments): {knee}",
        sustained as f64 / 300.0,
        if sustained >= 300 { "met" } else { "NOT met" }
    );
    for c in &clients {
        let _ = http.post(&c.stop).send().await;
    }
}
