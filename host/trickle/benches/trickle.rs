//! `cargo xtask bench trickle`: trickle throughput and latency on loopback as users see them,
//! reported against raw loopback TCP (and, for the third-party clients, against our own clients)
//! measured in the same run.
//!
//! Workloads, each bounded in size and in time:
//! - raw TCP: one connection, 1 MiB writes (throughput); 1316-byte writes paced like a live
//!   stream (first-byte latency floor); and through a relay (writer → relay → reader, 1 MiB
//!   buffers, the relay reading and writing in two tasks), where each byte crosses loopback twice
//!   as it does through any trickle server: what a server in the middle costs with nothing but
//!   the copies, for scale beside the one-channel figure.
//! - our HTTP clients through our server: 1 MiB segments to 1, 4 and 10 subscribers; 4 KiB
//!   segments (segments/s); first-byte latency of every chunk with a pipelined publisher (one
//!   that never waits for the reader), paced, in frame bursts and flat out; and the old
//!   one-chunk-in-flight probe (HTTP and in-process).
//! - the third-party clients the tests install (pytrickle, livepeer-gateway), run as a Python
//!   child (`tests/peers/trickle_bench_peer.py`), as publisher to our subscribers and as
//!   subscribers to our publisher. The Python comes from `BYOC_PEERS_PYTHON` (set by
//!   `cargo xtask bench trickle`), else `target/peers-venv/bin/python`; without it those rows
//!   say `skipped: …`.
//!
//! With `BYOC_BENCH_OTHER_SERVER` set to another trickle server's base URL (e.g. go-livepeer's, where
//! `POST {base}/{channel}` creates a channel), our clients also run the 1 MiB and 4 KiB workloads
//! against it and against `byoc trickle` in its own process (`BYOC_BIN`, which `cargo xtask bench
//! trickle` builds and sets), interleaved, and each row says how many times that server's figure
//! ours is: throughput, and with `BYOC_BENCH_OTHER_SERVER_PID` each server's own CPU time per byte
//! delivered. For those runs the servers have CPUs of their own (see `side_by_side`), and a bare
//! relay on the servers' CPU (see `bare_relay`) shows, with each server's CPU busy share, whether the
//! servers or the clients set the pace of each workload.
//!
//! Ends with the data-plane goals, each met / NOT met with the measured figure.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use byoc_trickle::{
    HttpPublisher, HttpSubscriber, LocalPublisher, LocalSubscriber, Seq, SeqRequest, SubscriberOptions, TrickleConfig,
    TrickleStore, router,
};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::time::timeout;

#[path = "trickle/bare_relay.rs"]
mod bare_relay;
#[path = "trickle/latency.rs"]
mod latency;
#[path = "trickle/side_by_side.rs"]
mod side_by_side;
#[path = "trickle/third_party.rs"]
mod third_party;

use latency::*;
use side_by_side::other_server;
use third_party::*;

const MIB: usize = 1 << 20;
/// A latency probe's chunk: 7 MPEG-TS packets.
const TS_CHUNK: usize = 1316;
/// How many segments a publisher may be ahead of its slowest subscriber (the server keeps 5).
const LEAD: u64 = 2;

type R<T> = Result<T, String>;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}

fn row(workload: &str, result: &str, ratio: &str) {
    println!("{workload:<50} {result:<36} {ratio}");
}

fn failed(workload: &str, err: &str) {
    row(workload, &format!("FAILED: {err}"), "");
}

/// A goal line: what it asks, and the measured figure with whether it was met.
struct Goal {
    what: String,
    outcome: Option<(bool, String)>,
}

async fn run() {
    let t_run = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("trickle benchmark: loopback, {cores} cores; every ratio is against a figure from this same run");
    println!();
    row("workload", "result", "ratio");

    // ---- throughput ----
    // Other load on the machine moves every figure: raw TCP is measured three times, between the
    // workloads, and the median is the baseline.
    let mut tcps = vec![raw_tcp(1024).await];
    let (base, _server) = serve(true).await;
    let mut fan = Vec::new();
    for (subs, segments) in FAN_OUT {
        let load = Load::mib(subs, segments);
        fan.push((
            subs,
            bounded(Duration::from_secs(40), channel_throughput(&base, &format!("mib-{subs}"), load)).await,
        ));
    }
    tcps.push(raw_tcp(1024).await);
    let small = bounded(Duration::from_secs(30), channel_throughput(&base, "small", Load::SMALL)).await;
    tcps.push(raw_tcp(1024).await);
    let mut relays = Vec::new();
    for _ in 0..3 {
        relays.push(raw_tcp_relay(1024).await);
    }
    let (tcp, relay) = (median(&tcps), median(&relays));
    let spread = tcps.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(", ");
    row(
        "raw TCP, 1 MiB writes, one connection",
        &format!("{tcp:8.1} MiB/s"),
        &format!("1.00x raw TCP (median of {spread})"),
    );
    let spread = relays.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(", ");
    row(
        "raw TCP through a relay (crosses loopback twice)",
        &format!("{relay:8.1} MiB/s"),
        &format!("{:.2}x raw TCP (median of {spread}): for scale", relay / tcp),
    );

    // Per-subscriber MiB/s of our clients, by subscriber count (for the third-party ratios).
    let mut ours: Vec<(usize, f64)> = Vec::new();
    let mut goal_one = Goal { what: "one channel, 1 MiB segments, our clients >= 0.50x raw TCP".into(), outcome: None };
    let mut goal_fan =
        Goal { what: "10 subscribers, 1 MiB segments: aggregate >= 0.60x raw TCP".into(), outcome: None };
    for (subs, result) in fan {
        let name = format!("ours 1 MiB segments, {subs} subscriber{}", if subs == 1 { "" } else { "s" });
        match result {
            Ok(t) => {
                let per = t.mib_s();
                let total = per * subs as f64;
                let result = if subs == 1 {
                    format!("{per:8.1} MiB/s")
                } else {
                    format!("{per:8.1} MiB/s each, {total:.1} total")
                };
                let relay_ratio = if subs == 1 { format!(", {:.2}x the relay", per / relay) } else { String::new() };
                row(&name, &result, &format!("{:.2}x raw TCP{relay_ratio}", total / tcp));
                ours.push((subs, per));
                if subs == 1 {
                    let figure = format!("{:.2}x ({per:.1} MiB/s; the relay {:.2}x)", per / tcp, relay / tcp);
                    goal_one.outcome = Some((per >= 0.5 * tcp, figure));
                }
                if subs == 10 {
                    goal_fan.outcome = Some((total >= 0.6 * tcp, format!("{:.2}x ({total:.1} MiB/s)", total / tcp)));
                }
            }
            Err(e) => failed(&name, &e),
        }
    }

    let mut goal_small =
        Goal { what: "4 KiB segments, one channel, our clients >= 5000 segments/s".into(), outcome: None };
    let name = "ours 4 KiB segments, 1 subscriber";
    match &small {
        Ok(t) => {
            let sps = t.segments as f64 / t.secs;
            row(
                name,
                &format!("{sps:8.0} segments/s ({:.1} MiB/s)", t.mib_s()),
                &format!("{:.3}x raw TCP ({} segments)", t.mib_s() / tcp, t.segments),
            );
            goal_small.outcome = Some((sps >= 5000.0, format!("{sps:.0} segments/s")));
        }
        Err(e) => failed(name, e),
    }

    // ---- the same clients against another trickle server ----
    let mut goals_other = Vec::new();
    if let Ok(other) = std::env::var("BYOC_BENCH_OTHER_SERVER") {
        goals_other = other_server(&base, other.trim_end_matches('/')).await;
    }

    // ---- first-byte latency ----
    println!();
    row("first byte of each 1316-byte chunk, written -> read", "p50 / p99 / max (us)", "");
    let paced = Pace { chunks: 2000, per_segment: 200, burst: 1, gap: Duration::from_micros(500) };
    let frames = Pace { chunks: 2000, per_segment: 200, burst: 8, gap: Duration::from_millis(4) };
    let flood = Pace { chunks: 2000, per_segment: 2000, burst: 2000, gap: Duration::ZERO };
    match bounded(Duration::from_secs(20), raw_tcp_pipelined_latency(paced)).await {
        Ok(lat) => row("raw TCP (nodelay), 1 chunk every 500 us", &lat.show(), ""),
        Err(e) => failed("raw TCP (nodelay), 1 chunk every 500 us", &e),
    }
    let mut goal_lat =
        Goal { what: "p99 first byte, pipelined publisher, our clients < 1000 us".into(), outcome: None };
    let mut worst: Option<f64> = None;
    for (name, ch, pace) in [
        ("ours pipelined, 1 chunk every 500 us", "lat-paced", paced),
        ("ours pipelined, 8 chunks back to back every 4 ms", "lat-frames", frames),
    ] {
        match bounded(Duration::from_secs(30), http_pipelined_latency(&base, ch, pace)).await {
            Ok(lat) => {
                row(name, &lat.show(), "");
                worst = Some(worst.map_or(lat.p99, |w: f64| w.max(lat.p99)));
            }
            Err(e) => failed(name, &e),
        }
    }
    if let Some(w) = worst {
        goal_lat.outcome = Some((w < 1000.0, format!("{w:.0} us (worse of paced and frames)")));
    }
    let name = "  same, 1 chunk every 500 us, server w/o NODELAY";
    let (plain, _plain_server) = serve(false).await;
    match bounded(Duration::from_secs(30), http_pipelined_latency(&plain, "lat-paced", paced)).await {
        Ok(lat) => row(name, &lat.show(), "not a goal: the server as axum::serve leaves it"),
        Err(e) => failed(name, &e),
    }
    let name = "ours pipelined, 2000 chunks flat out (queueing)";
    match bounded(Duration::from_secs(30), http_pipelined_latency(&base, "lat-flood", flood)).await {
        Ok(lat) => row(name, &lat.show(), "not a goal: latency here is time in queue"),
        Err(e) => failed(name, &e),
    }
    let name = "ours one chunk in flight (waits for each)";
    match bounded(Duration::from_secs(30), http_first_byte_latency(&base, 2000)).await {
        Ok(lat) => row(name, &lat.show(), ""),
        Err(e) => failed(name, &e),
    }
    let lat = local_first_byte_latency(2000).await;
    row("in-process, one chunk in flight", &lat.show(), "");

    // ---- third-party clients ----
    println!();
    row("third-party clients through our server, 1 MiB segs", "result", "ratio to ours, same subscribers");
    match python() {
        Err(why) => row("pytrickle, livepeer-gateway", &format!("skipped: {why}"), ""),
        Ok(py) => {
            for (client, label) in [("pytrickle", "pytrickle"), ("lpgw", "livepeer-gateway")] {
                if let Err(why) = check_client(&py, client).await {
                    row(label, &format!("skipped: {why}"), "");
                    continue;
                }
                for subs in [1usize, 4] {
                    let ours_per = ours.iter().find(|(s, _)| *s == subs).map(|(_, v)| *v);
                    let s = if subs == 1 { "" } else { "s" };
                    let name = format!("{label} publisher -> ours, {subs} subscriber{s}");
                    let ch = format!("py-pub-{client}-{subs}");
                    let fut = py_publisher(&py, client, &base, &ch, 60, subs);
                    third_party_row(&name, bounded(Duration::from_secs(90), fut).await, subs, ours_per);
                    let name = format!("ours publisher -> {label}, {subs} subscriber{s}");
                    let ch = format!("py-sub-{client}-{subs}");
                    let fut = py_subscribers(&py, client, &base, &ch, 60, subs);
                    third_party_row(&name, bounded(Duration::from_secs(90), fut).await, subs, ours_per);
                }
            }
        }
    }

    println!();
    println!("goals (data plane):");
    for g in [goal_one, goal_fan, goal_small, goal_lat].into_iter().chain(goals_other) {
        match g.outcome {
            Some((met, figure)) => {
                println!("  {:<9} {:<70} {figure}", if met { "met" } else { "NOT met" }, g.what)
            }
            None => println!("  {:<9} {:<70} (workload failed)", "NOT met", g.what),
        }
    }
    println!("bench took {:.1} s", t_run.elapsed().as_secs_f64());
}

fn third_party_row(name: &str, r: R<Throughput>, subs: usize, ours_per: Option<f64>) {
    match r {
        Ok(t) => {
            let per = t.mib_s();
            let result = if subs == 1 {
                format!("{per:8.1} MiB/s")
            } else {
                format!("{per:8.1} MiB/s each, {:.1} total", per * subs as f64)
            };
            let ratio = ours_per.map_or("(ours failed)".into(), |o| format!("{:.2}x ours", per / o));
            row(name, &result, &ratio);
        }
        Err(e) => failed(name, &e),
    }
}

async fn bounded<T>(limit: Duration, fut: impl Future<Output = R<T>>) -> R<T> {
    timeout(limit, fut).await.unwrap_or_else(|_| Err(format!("timed out after {limit:?}")))
}

/// Raw TCP through a relay: a writer, a relay that reads each 1 MiB and writes it on, and a reader,
/// tasks on this runtime like our publisher, server and subscriber: each byte crosses loopback twice
/// with nothing but the copies: for scale beside our one-channel figure (the two crossings run on
/// the two cores at once, so this is well above 0.5x raw TCP).
async fn raw_tcp_relay(mib: usize) -> f64 {
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let back = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (front_addr, back_addr) = (front.local_addr().expect("addr"), back.local_addr().expect("addr"));
    let reader = spawn_reader(back, mib);
    // Reading and writing overlap, as in a server: one task reads, another writes what it read.
    let relay = tokio::spawn(async move {
        let (mut from, _) = front.accept().await.expect("accept");
        let mut to = tokio::net::TcpStream::connect(back_addr).await.expect("connect");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                to.write_all(&b).await.expect("write");
            }
        });
        let mut buf = bytes::BytesMut::with_capacity(MIB);
        loop {
            // Into spare capacity, not zeroed memory: a read costs its copy and nothing more.
            if buf.capacity() < MIB / 4 {
                buf.reserve(MIB);
            }
            let n = from.read_buf(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            if tx.send(buf.split().freeze()).await.is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    });
    let mib_s = write_timed(front_addr, mib, reader).await;
    let _ = relay.await;
    mib_s
}

/// Raw TCP, one connection: `mib` 1 MiB writes, read in 1 MiB buffers. MiB/s.
async fn raw_tcp(mib: usize) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = spawn_reader(listener, mib);
    write_timed(addr, mib, reader).await
}

/// Reads the first connection on `listener` into a 1 MiB buffer until `mib` MiB or its end; the
/// task's result is the bytes read.
fn spawn_reader(listener: tokio::net::TcpListener, mib: usize) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; MIB];
        let mut total = 0;
        while total < mib * MIB {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    })
}

/// Writes `mib` MiB to `addr` in 1 MiB writes and closes; MiB/s from the first write until `reader`
/// has read what arrived.
async fn write_timed(addr: std::net::SocketAddr, mib: usize, reader: tokio::task::JoinHandle<usize>) -> f64 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let block = vec![7u8; MIB];
    let t0 = Instant::now();
    for _ in 0..mib {
        s.write_all(&block).await.expect("write");
    }
    s.flush().await.expect("flush");
    drop(s);
    let total = reader.await.expect("reader");
    total as f64 / MIB as f64 / t0.elapsed().as_secs_f64()
}

/// Our trickle server in process. With `nodelay` it is served as `byoc trickle` and every byoc node
/// serve (`byoc_net::serve`: `TCP_NODELAY` on every accepted socket, connection caps, a connection's
/// wake-ups of itself answered in place); without, as plain `axum::serve` leaves it, where a response
/// written in small pieces waits on Nagle's algorithm.
async fn serve(nodelay: bool) -> (String, tokio::task::JoinHandle<()>) {
    let store = TrickleStore::new(TrickleConfig { autocreate: true, ..TrickleConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().nest("/ai/trickle", router(store));
    let task = tokio::spawn(async move {
        if nodelay {
            let limits = byoc_net::Limits::default();
            let _ = byoc_net::serve("trickle", listener, app, limits, std::future::pending()).await;
        } else {
            let _ = axum::serve(listener, app).await;
        }
    });
    (format!("http://{addr}/ai/trickle"), task)
}

async fn create(url: &str) -> R<()> {
    let c = byoc_trickle::http_client().map_err(|e| format!("client: {e}"))?;
    let resp = c
        .post(url)
        .header("Expect-Content", "application/octet-stream")
        .send()
        .await
        .map_err(|e| format!("create {url}: {e}"))?;
    match resp.status().as_u16() {
        200 => Ok(()),
        s => Err(format!("create {url}: {s}")),
    }
}

/// Closes a channel (ends the stream for subscribers still waiting on it).
async fn delete(url: &str) {
    if let Ok(c) = byoc_trickle::http_client() {
        let _ = timeout(Duration::from_secs(5), c.delete(url).send()).await;
    }
}

/// One throughput workload: `segments` segments of `size` bytes, written as `chunk`-byte
/// chunks, to `subs` subscribers, for at most `max` of publishing, with at most `uploads`
/// segments' uploads unanswered at once.
#[derive(Clone, Copy)]
struct Load {
    segments: u64,
    size: usize,
    chunk: usize,
    subs: usize,
    max: Duration,
    uploads: usize,
}

/// The 1 MiB workloads: subscribers, and segments published (fewer with more subscribers, so that
/// each takes a second or so here).
const FAN_OUT: [(usize, u64); 3] = [(1, 1000), (4, 400), (10, 200)];

impl Load {
    /// 1 MiB segments in 64 KiB chunks to `subs` subscribers.
    fn mib(subs: usize, segments: u64) -> Load {
        Load { segments, size: MIB, chunk: 64 << 10, subs, max: Duration::from_secs(20), uploads: 3 }
    }

    /// The same workload with one upload at a time: a segment's bytes go out only once the one
    /// before it is answered, as a live encoder's segments come one after another. A server that
    /// takes its live edge from whichever upload sent a byte last (go-livepeer's) needs this.
    fn one_upload(self) -> Load {
        Load { uploads: 1, ..self }
    }

    /// 4 KiB segments, each one chunk, to one subscriber (segments/s).
    const SMALL: Load =
        Load { segments: 20_000, size: 4 << 10, chunk: 4 << 10, subs: 1, max: Duration::from_secs(8), uploads: 3 };
}

/// The median of some measurements (the upper one of an even count).
fn median(v: &[f64]) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Segments every subscriber read in full, in how long (end to end: first write to last byte
/// read by the slowest subscriber).
struct Throughput {
    segments: u64,
    size: usize,
    secs: f64,
}

impl Throughput {
    /// MiB/s per subscriber.
    fn mib_s(&self) -> f64 {
        (self.segments as f64 * self.size as f64) / MIB as f64 / self.secs
    }
}

/// Our HTTP subscribers, each reading segments 0, 1, … until `limit` (which the publisher may
/// lower when it stops early) or the end of the stream, checking each segment's seq, size and
/// first 8 bytes (the big-endian seq). Each reports segments read on its watch.
fn spawn_subscribers(
    url: &str,
    subs: usize,
    size: usize,
    limit: Arc<AtomicU64>,
) -> (Vec<watch::Receiver<u64>>, Vec<tokio::task::JoinHandle<R<()>>>) {
    let mut progress = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let (tx, rx) = watch::channel(0u64);
        progress.push(rx);
        let url = url.to_string();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() };
            let mut sub = HttpSubscriber::new(url, opts).map_err(|e| format!("subscriber: {e}"))?;
            let mut i = 0u64;
            while i < limit.load(Ordering::Acquire) {
                let Some(mut seg) = sub.next_segment().await.map_err(|e| format!("segment {i}: {e}"))? else {
                    break;
                };
                if seg.seq() != Seq(i) {
                    return Err(format!("wanted segment {i}, got {} (segments lost)", seg.seq()));
                }
                let mut head = Vec::with_capacity(8);
                let mut bytes = 0usize;
                while let Some(c) = seg.next_chunk().await.map_err(|e| format!("segment {i}: {e}"))? {
                    if head.len() < 8 {
                        let take = (8 - head.len()).min(c.len());
                        head.extend_from_slice(&c[..take]);
                    }
                    bytes += c.len();
                }
                if bytes != size || head != i.to_be_bytes() {
                    return Err(format!(
                        "segment {i}: {bytes} bytes starting {head:02x?}, wanted {size} starting with {i}"
                    ));
                }
                i += 1;
                let _ = tx.send(i);
            }
            Ok(())
        }));
    }
    (progress, tasks)
}

/// Waits until every subscriber has read `n` segments; a subscriber that stopped short is an
/// error (its task's error, if it has one).
async fn wait_all(
    progress: &mut [watch::Receiver<u64>],
    tasks: &mut Vec<tokio::task::JoinHandle<R<()>>>,
    n: u64,
) -> R<()> {
    for (k, rx) in progress.iter_mut().enumerate() {
        if rx.wait_for(|d| *d >= n).await.is_err() {
            let task = tasks.remove(k);
            return Err(match task.await {
                Ok(Err(e)) => format!("subscriber {k}: {e}"),
                Ok(Ok(())) => format!("subscriber {k}: stream ended after {} segments", *rx.borrow()),
                Err(e) => format!("subscriber {k}: {e}"),
            });
        }
    }
    Ok(())
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<R<()>>>) -> R<()> {
    for t in tasks {
        match timeout(Duration::from_secs(5), t).await {
            Ok(Ok(r)) => r?,
            Ok(Err(e)) => return Err(format!("subscriber task: {e}")),
            Err(_) => return Err("a subscriber did not end".into()),
        }
    }
    Ok(())
}

/// Our HTTP publisher: segment `i` is `chunks(i)`. Like a live encoder it does not wait for one
/// upload's answer before it starts the next segment (already preconnected); it stays at most
/// [`LEAD`] segments ahead of the slowest subscriber so nothing falls out of the window, and
/// keeps at most `uploads` uploads unanswered. Stops at `deadline`. Returns the segments published.
async fn publish_segments(
    url: &str,
    segments: u64,
    uploads_max: usize,
    progress: &mut [watch::Receiver<u64>],
    chunks: impl Fn(u64) -> Vec<Bytes>,
    deadline: Instant,
) -> R<u64> {
    let mut publisher = HttpPublisher::new(url, "application/octet-stream").map_err(|e| format!("publisher: {e}"))?;
    let mut uploads = tokio::task::JoinSet::new();
    let mut published = 0;
    let finished = |r: Option<Result<Result<Seq, byoc_trickle::ClientError>, tokio::task::JoinError>>| match r {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err(e))) => Err(format!("upload: {e}")),
        Some(Err(e)) => Err(format!("upload task: {e}")),
    };
    for i in 0..segments {
        if Instant::now() >= deadline {
            break;
        }
        for rx in progress.iter_mut() {
            rx.wait_for(|done| *done + LEAD >= i)
                .await
                .map_err(|_| format!("a subscriber stopped before segment {i}"))?;
        }
        let mut seg = publisher.next_segment();
        for c in chunks(i) {
            seg.write(c).map_err(|e| format!("write segment {i}: {e}"))?;
        }
        uploads.spawn(seg.finish());
        while uploads.len() >= uploads_max {
            finished(uploads.join_next().await)?;
        }
        published += 1;
    }
    while !uploads.is_empty() {
        finished(uploads.join_next().await)?;
    }
    Ok(published)
}

/// Segment `i` for our subscribers' checks: `size` bytes in `chunk`-byte chunks, the first 8
/// bytes the big-endian `i`, the rest slices of `filler`.
fn tagged_chunks(i: u64, size: usize, chunk: usize, filler: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(size.div_ceil(chunk));
    let first = chunk.min(size);
    let mut head = Vec::with_capacity(first);
    head.extend_from_slice(&i.to_be_bytes()[..first.min(8)]);
    head.extend_from_slice(&filler[head.len()..first]);
    out.push(Bytes::from(head));
    let mut off = first;
    while off < size {
        let end = (off + chunk).min(size);
        out.push(filler.slice(off..end));
        off = end;
    }
    out
}

/// Our publisher and `load.subs` of our subscribers on one channel.
async fn channel_throughput(base: &str, name: &str, load: Load) -> R<Throughput> {
    let url = format!("{base}/{name}");
    create(&url).await?;
    let filler = Bytes::from((0..load.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let limit = Arc::new(AtomicU64::new(load.segments));
    let (mut progress, mut tasks) = spawn_subscribers(&url, load.subs, load.size, limit.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let chunks = |i| tagged_chunks(i, load.size, load.chunk, &filler);
    let published = publish_segments(&url, load.segments, load.uploads, &mut progress, chunks, t0 + load.max).await;
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            delete(&url).await;
            return Err(e);
        }
    };
    limit.store(published, Ordering::Release);
    let waited = bounded(Duration::from_secs(10), async { wait_all(&mut progress, &mut tasks, published).await }).await;
    let secs = t0.elapsed().as_secs_f64();
    // Releases any subscriber already waiting for the segment after the last.
    delete(&url).await;
    waited?;
    join_all(tasks).await?;
    Ok(Throughput { segments: published, size: load.size, secs })
}
