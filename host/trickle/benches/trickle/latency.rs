//! First-byte latency: a pipelined publisher against raw TCP, and the one-chunk-in-flight probes.

use super::*;

/// A pipelined publisher's pattern: `chunks` chunks of [`TS_CHUNK`] bytes, `per_segment` to a
/// segment, written in bursts of `burst` back to back, one burst every `gap`.
#[derive(Clone, Copy)]
pub(super) struct Pace {
    pub(super) chunks: usize,
    pub(super) per_segment: usize,
    pub(super) burst: usize,
    pub(super) gap: Duration,
}

pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

impl Latency {
    fn of(mut us: Vec<f64>) -> Latency {
        us.sort_by(|a, b| a.total_cmp(b));
        let at = |p: f64| us.get(((us.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        Latency { p50: at(0.50), p99: at(0.99), max: us.last().copied().unwrap_or(f64::NAN) }
    }

    pub(super) fn show(&self) -> String {
        format!("{:8.1} / {:8.1} / {:8.1}", self.p50, self.p99, self.max)
    }
}

/// The probe chunks: chunk `k` starts with the big-endian `k` (4 bytes), then TS sync bytes.
pub(super) fn probe_chunks(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|k| {
            let mut c = vec![0x47u8; TS_CHUNK];
            c[..4].copy_from_slice(&(k as u32).to_be_bytes());
            Bytes::from(c)
        })
        .collect()
}

/// Send times of the probe chunks, in ns since `origin` (written by the publisher right before
/// each write, read by the subscriber when the chunk's first byte arrives).
pub(super) struct SendTimes {
    pub(super) origin: Instant,
    pub(super) at: Vec<AtomicU64>,
}

impl SendTimes {
    fn new(n: usize) -> Arc<SendTimes> {
        Arc::new(SendTimes { origin: Instant::now(), at: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect() })
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn mark(&self, k: usize) {
        self.at[k].store(self.now(), Ordering::Release);
    }
}

/// Latency bookkeeping for one stream of probe chunks: `piece` (just received, at `now`) starts at
/// byte `off` of a stream whose chunk 0 is probe chunk `first`; one sample per chunk whose first
/// byte is in the piece.
pub(super) fn record(times: &SendTimes, first: usize, off: usize, piece: &[u8], now: u64, lat: &mut Vec<f64>) -> R<()> {
    let mut k = off.div_ceil(TS_CHUNK);
    while k * TS_CHUNK < off + piece.len() {
        let idx = first + k;
        let sent = times.at.get(idx).ok_or("more bytes than chunks written")?.load(Ordering::Acquire);
        let at = k * TS_CHUNK - off;
        if piece.len() >= at + 4 && piece[at..at + 4] != (idx as u32).to_be_bytes() {
            return Err(format!("chunk {idx} is not where it should be"));
        }
        if sent == u64::MAX {
            return Err(format!("chunk {idx} read before it was written"));
        }
        lat.push(now.saturating_sub(sent) as f64 / 1e3);
        k += 1;
    }
    Ok(())
}

/// Sleeps (the thread) until chunk `k`'s burst is due.
pub(super) fn pace_wait(pace: Pace, start: Instant, k: usize) {
    if k > 0 && k.is_multiple_of(pace.burst) {
        let due = start + pace.gap * (k / pace.burst) as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// The same pattern on a raw TCP connection (TCP_NODELAY, blocking sockets on two threads): the
/// floor the machine gives.
pub(super) async fn raw_tcp_pipelined_latency(pace: Pace) -> R<Latency> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let times = SendTimes::new(pace.chunks);
        let chunks = probe_chunks(pace.chunks);
        let reader_times = times.clone();
        let reader = std::thread::spawn(move || -> R<Vec<f64>> {
            let (mut s, _) = listener.accept().map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 << 10];
            let mut off = 0;
            let mut lat = Vec::with_capacity(pace.chunks);
            while off < pace.chunks * TS_CHUNK {
                let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection ended early".into());
                }
                record(&reader_times, 0, off, &buf[..n], reader_times.now(), &mut lat)?;
                off += n;
            }
            Ok(lat)
        });
        let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        for (k, c) in chunks.iter().enumerate() {
            pace_wait(pace, start, k);
            times.mark(k);
            s.write_all(c).map_err(|e| format!("write: {e}"))?;
        }
        let lat = reader.join().map_err(|_| "reader panicked".to_string())??;
        Ok(Latency::of(lat))
    })
    .await
    .map_err(|e| format!("task: {e}"))?
}

/// Our HTTP publisher writes the probe chunks from its own thread, paced, never waiting for the
/// reader; our HTTP subscriber notes when the first byte of each chunk arrives.
pub(super) async fn http_pipelined_latency(base: &str, name: &str, pace: Pace) -> R<Latency> {
    let url = format!("{base}/{name}");
    create(&url).await?;
    let times = SendTimes::new(pace.chunks);
    let segments = pace.chunks.div_ceil(pace.per_segment);
    let reader_times = times.clone();
    let reader_url = url.clone();
    let reader = tokio::spawn(async move {
        let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() };
        let mut sub = HttpSubscriber::new(reader_url, opts).map_err(|e| format!("subscriber: {e}"))?;
        let mut lat = Vec::with_capacity(pace.chunks);
        for s in 0..segments {
            let mut seg = sub
                .next_segment()
                .await
                .map_err(|e| format!("segment {s}: {e}"))?
                .ok_or_else(|| format!("stream ended before segment {s}"))?;
            if seg.seq() != Seq(s as u64) {
                return Err(format!("wanted segment {s}, got {}", seg.seq()));
            }
            let first = s * pace.per_segment;
            let want = pace.per_segment.min(pace.chunks - first) * TS_CHUNK;
            let mut off = 0;
            while let Some(c) = seg.next_chunk().await.map_err(|e| format!("segment {s}: {e}"))? {
                record(&reader_times, first, off, &c, reader_times.now(), &mut lat)?;
                off += c.len();
            }
            if off != want {
                return Err(format!("segment {s}: {off} bytes, wanted {want}"));
            }
        }
        Ok::<_, String>(lat)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let publisher = HttpPublisher::new(&url, "video/mp2t").map_err(|e| format!("publisher: {e}"))?;
    let handle = tokio::runtime::Handle::current();
    let chunks = probe_chunks(pace.chunks);
    let writer = std::thread::spawn(move || {
        let _enter = handle.enter();
        let mut publisher = publisher;
        let mut finishes = Vec::new();
        let mut seg: Option<byoc_trickle::HttpSegmentWriter> = None;
        let start = Instant::now();
        for (k, c) in chunks.into_iter().enumerate() {
            if k.is_multiple_of(pace.per_segment) {
                if let Some(done) = seg.take() {
                    finishes.push(handle.spawn(done.finish()));
                }
                seg = Some(publisher.next_segment());
            }
            pace_wait(pace, start, k);
            times.mark(k);
            if let Some(s) = seg.as_mut() {
                s.write(c).map_err(|e| format!("write: {e}"))?;
            }
        }
        if let Some(done) = seg.take() {
            finishes.push(handle.spawn(done.finish()));
        }
        Ok::<_, String>((finishes, publisher))
    });
    let written = tokio::task::spawn_blocking(move || writer.join()).await;
    let (finishes, _publisher) = written.map_err(|e| format!("writer: {e}"))?.map_err(|_| "writer panicked")??;
    for f in finishes {
        f.await.map_err(|e| format!("upload task: {e}"))?.map_err(|e| format!("upload: {e}"))?;
    }
    let lat = reader.await.map_err(|e| format!("reader: {e}"))??;
    delete(&url).await;
    Ok(Latency::of(lat))
}

/// One open segment; each sample writes one 1316-byte chunk and waits for the subscriber to
/// read it (at most one chunk in flight: hides stalls a pipelined publisher would see).
pub(super) async fn http_first_byte_latency(base: &str, samples: usize) -> R<Latency> {
    let url = format!("{base}/latency");
    create(&url).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (ack, mut acked) = tokio::sync::mpsc::unbounded_channel::<()>();
    let reader_url = url.clone();
    let reader = tokio::spawn(async move {
        let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), ..Default::default() };
        let mut sub = HttpSubscriber::new(reader_url, opts).map_err(|e| format!("subscriber: {e}"))?;
        let mut seg =
            sub.next_segment().await.map_err(|e| format!("segment: {e}"))?.ok_or("stream ended".to_string())?;
        let mut lat = Vec::new();
        let mut pending = 0usize;
        while let Some(c) = seg.next_chunk().await.map_err(|e| format!("chunk: {e}"))? {
            pending += c.len();
            while pending >= TS_CHUNK {
                pending -= TS_CHUNK;
                if let Some(sent) = rx.recv().await {
                    lat.push(sent.elapsed().as_secs_f64() * 1e6);
                    let _ = ack.send(());
                }
            }
        }
        Ok::<_, String>(lat)
    });
    let mut publisher = HttpPublisher::new(&url, "video/mp2t").map_err(|e| format!("publisher: {e}"))?;
    let mut seg = publisher.next_segment();
    let chunk = Bytes::from(vec![0x47u8; TS_CHUNK]);
    for _ in 0..samples {
        let _ = tx.send(Instant::now());
        seg.write(chunk.clone()).map_err(|e| format!("write: {e}"))?;
        // One chunk in flight at a time: wait until the reader has it.
        acked.recv().await.ok_or("reader stopped")?;
    }
    seg.finish().await.map_err(|e| format!("finish: {e}"))?;
    let lat = reader.await.map_err(|e| format!("reader: {e}"))??;
    Ok(Latency::of(lat))
}

pub(super) async fn local_first_byte_latency(samples: usize) -> Latency {
    let store = TrickleStore::default();
    store.create_channel("lat", "video/mp2t").expect("create");
    let publisher = LocalPublisher::new(&store, "lat").expect("publisher");
    let mut sub = LocalSubscriber::new(&store, "lat", SeqRequest::At(Seq(0)));
    let mut seg = publisher.next_segment().expect("segment");
    let chunk = Bytes::from(vec![0x47u8; TS_CHUNK]);
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
    Latency::of(lat)
}
