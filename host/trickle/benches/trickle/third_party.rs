//! Third-party trickle clients (pytrickle, livepeer-gateway) through our server, as a Python child
//! process (`tests/peers/trickle_bench_peer.py`).

use super::*;

pub(super) fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/trickle_bench_peer.py")
}

/// The peers' Python: `BYOC_PEERS_PYTHON`, else the venv `cargo xtask` installs.
pub(super) fn python() -> R<PathBuf> {
    let py = match std::env::var_os("BYOC_PEERS_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv/bin/python"),
    };
    if !py.is_file() {
        return Err(format!(
            "no Python peers at {} (BYOC_PEERS_PYTHON); `cargo xtask bench trickle` installs them",
            py.display()
        ));
    }
    if !peer_script().is_file() {
        return Err(format!("{} is missing", peer_script().display()));
    }
    Ok(py)
}

/// A running `trickle_bench_peer.py`; killed when dropped.
pub(super) struct Peer {
    pub(super) child: tokio::process::Child,
    pub(super) stdin: Option<tokio::process::ChildStdin>,
    /// Every stdout line except `DONE m`.
    pub(super) lines: Arc<Mutex<Vec<String>>>,
    pub(super) changed: watch::Receiver<u64>,
    /// The latest `DONE m`.
    pub(super) done: watch::Receiver<u64>,
    pub(super) stderr: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    fn spawn(py: &PathBuf, args: &[String]) -> R<Peer> {
        let mut child = tokio::process::Command::new(py)
            .arg("-u")
            .arg(peer_script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", py.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (changed_tx, changed) = watch::channel(0u64);
        let (done_tx, done) = watch::channel(0u64);
        let out = child.stdout.take().ok_or("no stdout")?;
        let collected = lines.clone();
        tokio::spawn(async move {
            let mut rd = BufReader::new(out).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                if let Some(m) = line.strip_prefix("DONE ").and_then(|m| m.trim().parse::<u64>().ok()) {
                    let _ = done_tx.send(m);
                } else {
                    collected.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    changed_tx.send_modify(|v| *v += 1);
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().ok_or("no stderr")?;
        let collected = stderr.clone();
        tokio::spawn(async move {
            let mut rd = BufReader::new(err).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                collected.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let stdin = child.stdin.take();
        Ok(Peer { child, stdin, lines, changed, done, stderr })
    }

    fn find(&self, prefix: &str) -> Option<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|l| l.starts_with(prefix)).cloned()
    }

    /// The peer's last words, for an error message.
    fn tail(&self) -> String {
        let out = self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let err = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let all: Vec<String> = out.into_iter().chain(err).collect();
        all[all.len().saturating_sub(3)..].join(" | ")
    }

    /// Waits for a stdout line starting with `prefix`.
    async fn line(&mut self, prefix: &str, limit: Duration) -> R<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(l) = self.find(prefix) {
                return Ok(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(l) = self.find(prefix) {
                    return Ok(l);
                }
                return Err(format!("peer exited ({status}) before {prefix:?}: {}", self.tail()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no {prefix:?} from the peer within {limit:?}: {}", self.tail()));
            }
            let _ = timeout(Duration::from_millis(100), self.changed.changed()).await;
        }
    }

    async fn send(&mut self, line: &str) -> R<()> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(line.as_bytes()).await.map_err(|e| format!("peer stdin: {e}"))?;
        stdin.write_all(b"\n").await.map_err(|e| format!("peer stdin: {e}"))?;
        stdin.flush().await.map_err(|e| format!("peer stdin: {e}"))
    }

    /// Closes stdin and waits (bounded) for the peer to exit successfully.
    async fn finish(mut self, limit: Duration) -> R<()> {
        self.stdin = None;
        match timeout(limit, self.child.wait()).await {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(format!("peer exited with {s}: {}", self.tail()))
            }
            Ok(Err(e)) => Err(format!("waiting for the peer: {e}")),
            Err(_) => Err(format!("peer still running {limit:?} after its work: {}", self.tail())),
        }
    }
}

/// Whether the client imports in that Python (`check` mode).
pub(super) async fn check_client(py: &PathBuf, client: &str) -> R<()> {
    let mut peer = Peer::spawn(py, &["check".into(), "--client".into(), client.into()])?;
    peer.line("OK", Duration::from_secs(30)).await?;
    peer.finish(Duration::from_secs(10)).await
}

/// The third-party publisher (Python) and `subs` of our HTTP subscribers: `segments` 1 MiB
/// segments. Timed from `GO` (the publisher already started) to the last byte read.
pub(super) async fn py_publisher(
    py: &PathBuf,
    client: &str,
    base: &str,
    name: &str,
    segments: u64,
    subs: usize,
) -> R<Throughput> {
    let url = format!("{base}/{name}");
    create(&url).await?;
    let limit = Arc::new(AtomicU64::new(segments));
    let (mut progress, mut tasks) = spawn_subscribers(&url, subs, MIB, limit);
    let mut peer = Peer::spawn(py, &run_args("pub", client, &url, segments, ["--window", &LEAD.to_string()]))?;
    let outcome = async {
        peer.line("READY", Duration::from_secs(30)).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        peer.send("GO").await?;
        // Tell the publisher how many segments every subscriber has read, as that grows.
        let mut last = 0;
        while last < segments {
            wait_all(&mut progress, &mut tasks, last + 1).await?;
            last = progress.iter().map(|rx| *rx.borrow()).min().unwrap_or(segments);
            peer.send(&last.to_string()).await?;
        }
        let secs = t0.elapsed().as_secs_f64();
        let pub_line = peer.line("PUB", Duration::from_secs(10)).await?;
        if !pub_line.contains(" failed=0") {
            return Err(pub_line);
        }
        Ok(secs)
    };
    let outcome = bounded(Duration::from_secs(70), outcome).await;
    let secs = conclude(peer, &url, outcome).await?;
    join_all(tasks).await?;
    Ok(Throughput { segments, size: MIB, secs })
}

/// Our HTTP publisher and `subs` third-party subscribers (one Python process), which check every
/// byte: `segments` 1 MiB segments of `trickle_peer.py`'s payload. Timed from our first write to
/// the peer's `DONE segments` (every subscriber has read every segment).
pub(super) async fn py_subscribers(
    py: &PathBuf,
    client: &str,
    base: &str,
    name: &str,
    segments: u64,
    subs: usize,
) -> R<Throughput> {
    let url = format!("{base}/{name}");
    create(&url).await?;
    // trickle_peer.py's payload: 8-byte big-endian i, then bytes (i % 251).
    let payloads: Vec<Vec<Bytes>> = (0..segments)
        .map(|i| {
            let mut b = vec![(i % 251) as u8; MIB];
            b[..8].copy_from_slice(&i.to_be_bytes());
            let b = Bytes::from(b);
            (0..MIB).step_by(64 << 10).map(|off| b.slice(off..off + (64 << 10))).collect()
        })
        .collect();
    let mut peer = Peer::spawn(py, &run_args("sub", client, &url, segments, ["--subs", &subs.to_string()]))?;
    let outcome = async {
        peer.line("READY", Duration::from_secs(30)).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        let mut progress = [peer.done.clone()];
        let chunks = |i: u64| payloads[i as usize].clone();
        let deadline = t0 + Duration::from_secs(60);
        let published = publish_segments(&url, segments, 3, &mut progress, chunks, deadline).await?;
        if published != segments {
            return Err(format!("published only {published} of {segments} segments in time"));
        }
        if progress[0].wait_for(|d| *d >= segments).await.is_err() {
            let got = *progress[0].borrow();
            return Err(format!("subscribers read {got} of {segments} segments: {}", peer.tail()));
        }
        let secs = t0.elapsed().as_secs_f64();
        let sub_line = peer.line("SUB", Duration::from_secs(10)).await?;
        if !sub_line.contains(" bad=0 gaps=0") {
            return Err(sub_line);
        }
        Ok(secs)
    };
    let outcome = bounded(Duration::from_secs(70), outcome).await;
    let secs = conclude(peer, &url, outcome).await?;
    Ok(Throughput { segments, size: MIB, secs })
}

/// The peer's arguments for one run (`pub` or `sub`) of `segments` 1 MiB segments on `url`, each
/// side bounded to 60 s, plus the mode's own `extra` flag.
fn run_args(mode: &str, client: &str, url: &str, segments: u64, extra: [&str; 2]) -> Vec<String> {
    let segments = segments.to_string();
    let size = MIB.to_string();
    let args = [mode, "--client", client, "--url", url, "-n", &segments, "--size", &size, "--timeout", "60"];
    args.into_iter().chain(extra).map(String::from).collect()
}

/// Ends a third-party run: on failure the channel is closed at once (which releases the peer and our
/// clients); on success the peer is let finish, then the channel is closed.
async fn conclude(peer: Peer, url: &str, outcome: R<f64>) -> R<f64> {
    let secs = match outcome {
        Ok(secs) => secs,
        Err(e) => {
            delete(url).await;
            return Err(e);
        }
    };
    let ended = peer.finish(Duration::from_secs(10)).await;
    delete(url).await;
    ended?;
    Ok(secs)
}
