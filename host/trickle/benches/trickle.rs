//! `cargo xtask bench trickle`: trickle throughput and latency on loopback, reported against
//! raw loopback TCP measured in the same run.
//!
//! Bounded: every workload has a fixed size; the whole run takes well under a minute.

use std::time::{Duration, Instant};

use byoc_trickle::{
    HttpPublisher, HttpSubscriber, LocalPublisher, LocalSubscriber, Seq, SeqRequest, SubscriberOptions, TrickleConfig,
    TrickleStore, router,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const MIB: usize = 1 << 20;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    println!("trickle benchmark (loopback, {} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    let tcp = raw_tcp(256).await;
    println!("baseline  raw TCP copy, 1 MiB writes                 {tcp:8.1} MiB/s");

    let (base, _server) = serve().await;
    let one = channel_throughput(&base, "one", 200, 1).await;
    println!("trickle   1 MiB segments, 1 subscriber               {one:8.1} MiB/s   {:.2}x raw TCP", one / tcp);
    let fan = channel_throughput(&base, "fan", 60, 10).await;
    println!(
        "trickle   1 MiB segments, 10 subscribers             {fan:8.1} MiB/s per subscriber, {:.1} MiB/s total ({:.2}x raw TCP)",
        fan * 10.0,
        fan * 10.0 / tcp
    );
    let (p50, p99) = http_first_byte_latency(&base, 2000).await;
    println!("latency   chunk written -> chunk read, HTTP        p50 {p50:6.1} us   p99 {p99:6.1} us");
    let (lp50, lp99) = local_first_byte_latency(2000).await;
    println!("latency   chunk written -> chunk read, in-process  p50 {lp50:6.1} us   p99 {lp99:6.1} us");
    println!("goals: one channel >= 0.50x raw TCP; p99 first-byte latency < 1000 us");
}

async fn raw_tcp(mib: usize) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = tokio::spawn(async move {
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
    });
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let block = vec![7u8; MIB];
    let t0 = Instant::now();
    for _ in 0..mib {
        s.write_all(&block).await.expect("write");
    }
    s.flush().await.expect("flush");
    let total = reader.await.expect("reader");
    total as f64 / MIB as f64 / t0.elapsed().as_secs_f64()
}

async fn serve() -> (String, tokio::task::JoinHandle<()>) {
    let store = TrickleStore::new(TrickleConfig { autocreate: true, ..TrickleConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().nest("/ai/trickle", router(store));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/ai/trickle"), task)
}

async fn create(url: &str) {
    let c = byoc_trickle::http_client().expect("client");
    let resp = c.post(url).header("Expect-Content", "application/octet-stream").send().await.expect("create");
    assert_eq!(resp.status(), 200);
}

/// Segments of 1 MiB (written as 64 KiB chunks) through one channel to `subs` subscribers; the
/// publisher stays at most 2 segments ahead of the slowest one so nothing falls out of the
/// window. Returns MiB/s per subscriber, end to end.
async fn channel_throughput(base: &str, name: &str, segments: u64, subs: usize) -> f64 {
    let url = format!("{base}/{name}");
    create(&url).await;
    let data = Bytes::from((0..MIB).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut progress = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let (tx, rx) = watch::channel(0u64);
        progress.push(rx);
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() };
            let mut sub = HttpSubscriber::new(url, opts).expect("subscriber");
            let mut bytes = 0usize;
            for i in 0..segments {
                let mut seg = sub.next_segment().await.expect("segment").expect("not closed");
                assert_eq!(seg.seq(), Seq(i), "a segment was lost");
                while let Some(c) = seg.next_chunk().await.expect("chunk") {
                    bytes += c.len();
                }
                let _ = tx.send(i + 1);
            }
            bytes
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut publisher = HttpPublisher::new(&url, "application/octet-stream").expect("publisher");
    let t0 = Instant::now();
    // Like a live encoder, the publisher does not wait for one upload's answer before it starts
    // the next segment (which is already preconnected); answers are checked as they come.
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..segments {
        for rx in &mut progress {
            let _ = rx.wait_for(|done| *done + 2 >= i).await;
        }
        let mut seg = publisher.next_segment();
        for off in (0..MIB).step_by(64 << 10) {
            seg.write(data.slice(off..off + (64 << 10))).expect("write");
        }
        uploads.spawn(seg.finish());
        while uploads.len() > 2 {
            uploads.join_next().await.expect("upload").expect("task").expect("finish");
        }
    }
    while let Some(r) = uploads.join_next().await {
        r.expect("task").expect("finish");
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("subscriber task");
    }
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(total, subs * segments as usize * MIB);
    (total / subs) as f64 / MIB as f64 / secs
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| us.get(((us.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    (at(0.50), at(0.99))
}

/// One open segment; each sample writes one 1316-byte chunk (7 TS packets) and waits for the
/// subscriber to read it.
async fn http_first_byte_latency(base: &str, samples: usize) -> (f64, f64) {
    let url = format!("{base}/latency");
    create(&url).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (ack, mut acked) = tokio::sync::mpsc::unbounded_channel::<()>();
    let reader_url = url.clone();
    let reader = tokio::spawn(async move {
        let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() };
        let mut sub = HttpSubscriber::new(reader_url, opts).expect("subscriber");
        let mut seg = sub.next_segment().await.expect("segment").expect("open");
        let mut lat = Vec::new();
        let mut pending = 0usize;
        while let Some(c) = seg.next_chunk().await.expect("chunk") {
            pending += c.len();
            while pending >= 1316 {
                pending -= 1316;
                if let Some(sent) = rx.recv().await {
                    lat.push(sent.elapsed().as_secs_f64() * 1e6);
                    let _ = ack.send(());
                }
            }
        }
        lat
    });
    let mut publisher = HttpPublisher::new(&url, "video/mp2t").expect("publisher");
    let mut seg = publisher.next_segment();
    let chunk = Bytes::from(vec![0x47u8; 1316]);
    for _ in 0..samples {
        let _ = tx.send(Instant::now());
        seg.write(chunk.clone()).expect("write");
        // One chunk in flight at a time: wait until the reader has it.
        acked.recv().await.expect("reader alive");
    }
    seg.finish().await.expect("finish");
    percentiles(reader.await.expect("reader"))
}

async fn local_first_byte_latency(samples: usize) -> (f64, f64) {
    let store = TrickleStore::default();
    store.create_channel("lat", "video/mp2t").expect("create");
    let publisher = LocalPublisher::new(&store, "lat").expect("publisher");
    let mut sub = LocalSubscriber::new(&store, "lat", SeqRequest::At(Seq(0)));
    let mut seg = publisher.next_segment().expect("segment");
    let chunk = Bytes::from(vec![0x47u8; 1316]);
    seg.write(chunk.clone()).expect("first");
    let mut reader = sub.next_segment().await.expect("read").expect("open");
    reader.next_chunk().await.expect("chunk");
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        seg.write(chunk.clone()).expect("write");
        reader.next_chunk().await.expect("chunk").expect("bytes");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    seg.finish();
    percentiles(lat)
}
