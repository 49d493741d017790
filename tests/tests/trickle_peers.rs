//! Interop of our trickle server and clients with the third-party Python trickle clients
//! (pytrickle 0.1.6 and livepeer-gateway 1.0.0, "lpgw"), run as child processes through
//! `tests/peers/trickle_peer.py`. See `shared/reference/peers.md` §7 for the requirements (T1–T11)
//! these tests pin.
//!
//! Each test starts its own server on 127.0.0.1:0 with HTTP channel creation on (the Python
//! harness creates channels with `POST {ch}` + `Expect-Content`). Python is the venv's, from
//! `BYOC_PEERS_PYTHON` (`cargo xtask test` sets it); without it the tests print a skip line,
//! unless `BYOC_REQUIRE_PEERS=1`, where they fail.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use byoc_e2e::clients::{Segments, SubReport, Until, create_channel, delete_channel, payload, publish_all, subscribe};
use byoc_e2e::media;
use byoc_e2e::peers::{Peer, PeerOutput, python};
use byoc_e2e::server::{LoggedRequest, ORCH_BASE, TrickleServer};
use byoc_trickle::{HttpPublisher, Seq, SeqRequest, TrickleConfig};
use tokio::task::JoinHandle;

/// Python start-up (imports, channel check) until `READY`.
const READY: Duration = Duration::from_secs(20);
/// A peer's whole run, or waiting for a request to show up in the server's log.
const RUN: Duration = Duration::from_secs(60);
/// How soon subscribers blocked on a channel must end once it is deleted.
const PROMPT_END: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Pytrickle,
    Lpgw,
    Ours,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Pytrickle => "pytrickle",
            Client::Lpgw => "lpgw",
            Client::Ours => "ours",
        }
    }
}

/// `trickle_peer.py MODE --client CLIENT --url URL EXTRA...` as an argument list.
fn peer_args(mode: &str, client: Client, url: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![mode.into(), "--client".into(), client.name().into(), "--url".into(), url.into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Starts a Python subscriber and waits for its `READY` (imports done, channel exists).
async fn py_sub(py: &Path, client: Client, url: &str, extra: &[&str]) -> Result<Peer> {
    let mut peer = Peer::spawn(py, &format!("sub-{}", client.name()), &peer_args("sub", client, url, extra))?;
    peer.wait_line("READY", READY).await?;
    Ok(peer)
}

/// Starts a Python publisher that keeps its channel open until [`close_py_pub`].
async fn py_pub(py: &Path, client: Client, url: &str, extra: &[&str]) -> Result<Peer> {
    let mut args = peer_args("pub", client, url, extra);
    args.push("--wait-stdin".into());
    Peer::spawn(py, &format!("pub-{}", client.name()), &args)
}

/// Lets a `--wait-stdin` publisher close (lpgw's close sends `DELETE {ch}`) and checks its exit.
async fn close_py_pub(mut publisher: Peer) -> Result<PeerOutput> {
    publisher.close_stdin();
    let out = publisher.finish(RUN).await?;
    out.ensure_success()?;
    Ok(out)
}

/// Checks a Python subscriber's result line: exit 0, `got` segments, no gap, nothing bad.
fn check_py_sub(out: &PeerOutput, got: i64) -> Result<()> {
    out.ensure_success()?;
    ensure!(out.num("SUB ", "got")? == got, "{}: expected got={got}\n{out}", out.name);
    ensure!(out.num("SUB ", "gaps")? == 0 && out.num("SUB ", "bad")? == 0, "{}: gaps or bad segments\n{out}", out.name);
    Ok(())
}

fn spawn_rust_sub(url: &str, start: SeqRequest, segs: &Segments, until: Until) -> JoinHandle<Result<SubReport>> {
    let (url, segs) = (url.to_string(), segs.clone());
    tokio::spawn(async move { subscribe(&url, start, &segs, until, RUN).await })
}

/// Closes our publisher (`DELETE {ch}`), bounded.
async fn close_ours(publisher: HttpPublisher) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(10), publisher.close())
        .await
        .context("DELETE not answered within 10 s")??;
    Ok(())
}

async fn join_rust_sub(task: JoinHandle<Result<SubReport>>) -> Result<SubReport> {
    task.await.context("rust subscriber task panicked")?
}

/// Responses to GETs that a subscriber reading in sequence must never get: 470 (it would skip) or
/// a server error.
fn bad_gets(log: &[LoggedRequest], path_prefix: &str) -> Vec<String> {
    log.iter()
        .filter(|e| e.method == "GET" && e.path.starts_with(path_prefix))
        .filter(|e| e.status.is_some_and(|s| s == 470 || s >= 500))
        .map(|e| format!("{} -> {:?}", e.path, e.status))
        .collect()
}

/// One end of a pair: a Python peer process, or our client in this process.
#[allow(clippy::large_enum_variant, reason = "two short-lived values per pair")]
enum Side<R> {
    Python(Peer),
    Rust(R),
}

/// One publisher × subscriber pair on a fresh channel: the subscriber starts first at seq 0 and
/// must read `n` segments byte-exact with no gap.
async fn run_pair(server: &TrickleServer, py: &Path, p: Client, s: Client, n: u64, size: usize) -> Result<()> {
    let ch = format!("matrix-{}-{}", p.name(), s.name());
    let url = server.url(&ch);
    ensure!(create_channel(&url, "video/mp2t").await? == 200, "create {url}");
    let segs = Segments::Payload { size };
    let (n_arg, size_arg) = (n.to_string(), size.to_string());

    let sub = match s {
        Client::Ours => Side::Rust(spawn_rust_sub(&url, SeqRequest::At(Seq(0)), &segs, Until::Count(n as usize))),
        c => Side::Python(py_sub(py, c, &url, &["-n", &n_arg, "--size", &size_arg, "--start", "0"]).await?),
    };
    // The subscriber's GET for seq 0 has been handled: it waits on the live edge.
    server.log.wait_for("GET", &server.path(&ch, 0), 1, RUN).await?;

    let publisher = match p {
        Client::Ours => {
            let mut publisher = HttpPublisher::new(&url, "video/mp2t")?;
            let seqs = publish_all(&mut publisher, (0..n).map(|i| payload(i, size)), Duration::from_millis(20)).await?;
            ensure!(seqs == (0..n).map(Seq).collect::<Vec<_>>(), "server reported seqs {seqs:?}");
            Side::Rust(publisher)
        }
        c => {
            let mut publisher =
                py_pub(py, c, &url, &["-n", &n_arg, "--size", &size_arg, "--interval", "0.02", "--mime", "video/mp2t"])
                    .await?;
            publisher.wait_line("PUBLISHED", RUN).await?;
            Side::Python(publisher)
        }
    };

    match sub {
        Side::Python(peer) => check_py_sub(&peer.finish(RUN).await?, n as i64)?,
        Side::Rust(task) => {
            let r = join_rust_sub(task).await?;
            r.ensure_clean("rust subscriber")?;
            ensure!(r.got == n as usize, "rust subscriber got {} of {n}", r.got);
        }
    }
    match publisher {
        Side::Python(peer) => {
            let out = close_py_pub(peer).await?;
            ensure!(out.num("PUB ", "failed")? == 0, "{out}");
        }
        Side::Rust(publisher) => close_ours(publisher).await?,
    }

    let log = server.log.snapshot();
    for i in 0..n {
        let posts: Vec<_> = log.iter().filter(|e| e.method == "POST" && e.path == server.path(&ch, i)).collect();
        ensure!(
            posts.len() == 1 && posts[0].status == Some(200),
            "seq {i}: expected one POST answered 200, got {posts:?}"
        );
    }
    let bad = bad_gets(&log, &server.path(&ch, ""));
    ensure!(bad.is_empty(), "subscriber GETs answered 470/5xx: {bad:?}");
    if p == Client::Lpgw {
        // lpgw's close() sends DELETE {ch}.
        let deletes = log.iter().filter(|e| e.method == "DELETE" && e.path == format!("{ORCH_BASE}/{ch}"));
        ensure!(deletes.clone().any(|e| e.status == Some(200)), "lpgw close: no DELETE answered 200");
    } else if p == Client::Pytrickle {
        // pytrickle never deletes its channel.
        ensure!(delete_channel(&url).await? == 200, "DELETE {url}");
    }
    Ok(())
}

/// Every publisher {pytrickle, lpgw, ours} × every subscriber {pytrickle, lpgw, ours}, 20
/// segments of 64–256 KiB each, under the orchestrator's `/ai/trickle` base path: byte-exact,
/// no gap, every POST answered 200, no 470 for a subscriber that started first (T1–T4, T6, T10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_matrix_every_publisher_with_every_subscriber() -> Result<()> {
    let Some(py) = python("interop_matrix_every_publisher_with_every_subscriber") else { return Ok(()) };
    let server = TrickleServer::start(TrickleServer::peer_config(), ORCH_BASE).await?;
    let clients = [Client::Pytrickle, Client::Lpgw, Client::Ours];
    let sizes = [64 << 10, 128 << 10, 256 << 10];
    let mut failures = Vec::new();
    for (i, p) in clients.into_iter().enumerate() {
        for (j, s) in clients.into_iter().enumerate() {
            let size = sizes[(i + j) % sizes.len()];
            let t = Instant::now();
            match run_pair(&server, &py, p, s, 20, size).await {
                Ok(()) => eprintln!("PASS pub={} sub={} size={size} ({:.1?})", p.name(), s.name(), t.elapsed()),
                Err(e) => {
                    eprintln!("FAIL pub={} sub={} size={size}: {e:#}", p.name(), s.name());
                    failures.push(format!("pub={} sub={}", p.name(), s.name()));
                }
            }
        }
    }
    ensure!(failures.is_empty(), "failed pairs: {failures:?}");
    Ok(())
}

/// Real MPEG-TS (four one-second H.264 + AAC segments from ffmpeg): pytrickle publishes, lpgw and
/// our subscriber read; our publisher publishes, pytrickle reads. Every segment is byte-equal to
/// its file, and a received segment still probes as H.264 + AAC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpegts_segments_cross_clients_byte_equal() -> Result<()> {
    let test = "mpegts_segments_cross_clients_byte_equal";
    let Some(py) = python(test) else { return Ok(()) };
    if !media::tool_available(test, "ffmpeg") || !media::tool_available(test, "ffprobe") {
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("src");
    std::fs::create_dir(&src)?;
    let files = media::make_ts_segments(&src, 4).await?;
    ensure!(files.len() >= 3, "ffmpeg made {} segments", files.len());
    let segs = Segments::from_dir(&src)?;
    let last = files.len() as u64 - 1;
    let src_arg = src.to_string_lossy().to_string();
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;

    // pytrickle publishes; lpgw and our subscriber read.
    let url = server.url("ts-a");
    ensure!(create_channel(&url, "video/mp2t").await? == 200);
    let out_lpgw = tmp.path().join("lpgw");
    let out_lpgw_arg = out_lpgw.to_string_lossy().to_string();
    let lpgw = py_sub(&py, Client::Lpgw, &url, &["--files", &src_arg, "--out", &out_lpgw_arg]).await?;
    let ours = spawn_rust_sub(&url, SeqRequest::At(Seq(0)), &segs, Until::Seq(last));
    server.log.wait_for("GET", &server.path("ts-a", 0), 2, RUN).await?;
    let mut publisher =
        py_pub(&py, Client::Pytrickle, &url, &["--files", &src_arg, "--mime", "video/mp2t", "--interval", "0.05"])
            .await?;
    publisher.wait_line("PUBLISHED", RUN).await?;
    check_py_sub(&lpgw.finish(RUN).await?, files.len() as i64)?;
    let r = join_rust_sub(ours).await?;
    r.ensure_clean("rust subscriber")?;
    ensure!(r.got == files.len(), "rust subscriber got {} of {}", r.got, files.len());
    close_py_pub(publisher).await?;

    // Our publisher; pytrickle reads.
    let url = server.url("ts-b");
    ensure!(create_channel(&url, "video/mp2t").await? == 200);
    let out_py = tmp.path().join("pytrickle");
    let out_py_arg = out_py.to_string_lossy().to_string();
    let pyt = py_sub(&py, Client::Pytrickle, &url, &["--files", &src_arg, "--out", &out_py_arg]).await?;
    server.log.wait_for("GET", &server.path("ts-b", 0), 1, RUN).await?;
    let mut publisher = HttpPublisher::new(&url, "video/mp2t")?;
    let data = (0..=last).filter_map(|i| segs.get(i));
    publish_all(&mut publisher, data, Duration::from_millis(50)).await?;
    check_py_sub(&pyt.finish(RUN).await?, files.len() as i64)?;
    close_ours(publisher).await?;

    // What the third-party subscribers received is still H.264 + AAC.
    for dir in [&out_lpgw, &out_py] {
        let seg = dir.join("000001.ts");
        let codecs = media::probe_codecs(&seg).await?;
        ensure!(codecs.iter().any(|c| c == "h264"), "{}: codecs {codecs:?}", seg.display());
        ensure!(codecs.iter().any(|c| c == "aac"), "{}: codecs {codecs:?}", seg.display());
    }
    Ok(())
}

/// JSON control messages (one small document per segment, `application/json`), as a control or
/// events channel carries them:
/// - pytrickle publishes messages 0–2; pytrickle and lpgw subscribers attaching afterwards with
///   the default start (-2) get message 2 first, each message in the first `read()` (T9);
/// - an lpgw publisher with its default start (`GET {ch}/next`, then `POST` at the live edge with
///   `Lp-Trickle-Reset`) continues the channel at seq 3 (T7);
/// - our subscriber, attached from seq 0, reads all six byte-equal; lpgw's close ends the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_messages_late_joiners_and_live_edge_publisher() -> Result<()> {
    let Some(py) = python("json_messages_late_joiners_and_live_edge_publisher") else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    for i in 0..6 {
        let doc = serde_json::json!({
            "seq": i,
            "params": {"prompt": format!("message {i}"), "strength": 0.5, "enabled": i % 2 == 0},
            "padding": "x".repeat(200 * i),
        });
        std::fs::write(tmp.path().join(format!("msg{i:02}.json")), serde_json::to_vec(&doc)?)?;
    }
    let dir = tmp.path().to_string_lossy().to_string();
    let segs = Segments::from_dir(tmp.path())?;
    let server = TrickleServer::start(TrickleServer::peer_config(), ORCH_BASE).await?;
    let ch = "s1-control";
    let url = server.url(ch);
    ensure!(create_channel(&url, "application/json").await? == 200);
    let ours = spawn_rust_sub(&url, SeqRequest::At(Seq(0)), &segs, Until::Seq(5));
    server.log.wait_for("GET", &server.path(ch, 0), 1, RUN).await?;

    // Messages 0..2 from pytrickle; it leaves the channel open.
    let first =
        py_pub(&py, Client::Pytrickle, &url, &["--files", &dir, "-n", "3", "--mime", "application/json"]).await?;
    close_py_pub(first).await?;

    // Late joiners at -2 (the default of both libraries) get message 2 at once, in one read.
    let mut late = Vec::new();
    for c in [Client::Pytrickle, Client::Lpgw] {
        let mut sub = py_sub(&py, c, &url, &["--files", &dir, "--start", "-2", "--one-read"]).await?;
        let first = sub.wait_line("FIRST", RUN).await?;
        ensure!(first == "FIRST seq=2", "{} joined at {first:?}, expected seq 2", sub.name);
        late.push(sub);
    }

    // lpgw continues the channel from its live edge: GET /next, then POST 3 with Lp-Trickle-Reset.
    let next = py_pub(
        &py,
        Client::Lpgw,
        &url,
        &["--files", &dir, "--skip", "3", "--pub-start", "-1", "--mime", "application/json", "--interval", "0.05"],
    )
    .await?;
    for sub in late {
        let out = sub.finish(RUN).await?;
        check_py_sub(&out, 4)?;
        ensure!(out.field("SUB ", "first").as_deref() == Some("2") && out.num("SUB ", "split")? == 0, "{out}");
    }
    let r = join_rust_sub(ours).await?;
    r.ensure_clean("rust subscriber")?;
    ensure!(r.got == 6, "rust subscriber got {} of 6", r.got);
    for (seq, body) in &r.received {
        let doc: serde_json::Value = serde_json::from_slice(body)?;
        ensure!(doc["seq"] == *seq, "segment {seq} holds {doc}");
    }
    let out = close_py_pub(next).await?;
    ensure!(out.field("PUB ", "first_seq").as_deref() == Some("3"), "{out}");

    let log = server.log.snapshot();
    let next_at = log
        .iter()
        .position(|e| e.method == "GET" && e.path == server.path(ch, "next"))
        .with_context(|| format!("lpgw publisher never asked GET {ch}/next"))?;
    let post3 = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.method == "POST" && e.path == server.path(ch, 3))
        .map(|(i, e)| (i, e.clone()))
        .collect::<Vec<_>>();
    ensure!(
        post3.len() == 1 && post3[0].0 > next_at && post3[0].1.reset && post3[0].1.status == Some(200),
        "expected one POST {ch}/3 with Lp-Trickle-Reset after GET {ch}/next, answered 200: {post3:?}"
    );
    Ok(())
}

/// Subscribers joining a live channel at -2 (current segment) and -1 (next segment), for every
/// client: -2 starts at the last written segment, -1 at the one being waited for; each then reads
/// in sequence, and the publisher's `DELETE` ends every one of them cleanly (T3, T6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_start_at_current_and_next() -> Result<()> {
    let Some(py) = python("subscribers_start_at_current_and_next") else { return Ok(()) };
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;
    let ch = "edge";
    let url = server.url(ch);
    ensure!(create_channel(&url, "application/octet-stream").await? == 200);
    let size = 32 << 10;
    let segs = Segments::Payload { size };
    let mut publisher = HttpPublisher::new(&url, "application/octet-stream")?;
    publish_all(&mut publisher, (0..3).map(|i| payload(i, size)), Duration::ZERO).await?;

    let size_arg = size.to_string();
    let mut py_subs = Vec::new();
    let mut rust_subs = Vec::new();
    for (start, req) in [("-2", SeqRequest::Current), ("-1", SeqRequest::Next)] {
        for c in [Client::Pytrickle, Client::Lpgw] {
            let sub = py_sub(&py, c, &url, &["--size", &size_arg, "--start", start, "--until-eos"]).await?;
            py_subs.push((start, sub));
        }
        rust_subs.push((start, spawn_rust_sub(&url, req, &segs, Until::Eos)));
    }
    // Each start request has been resolved against the live edge (3) before anything else is
    // published.
    server.log.wait_for("GET", &server.path(ch, -2), 3, RUN).await?;
    server.log.wait_for("GET", &server.path(ch, -1), 3, RUN).await?;

    publish_all(&mut publisher, (3..6).map(|i| payload(i, size)), Duration::from_millis(20)).await?;
    // All six subscribers have read seq 5 and wait for 6; then the channel is closed.
    server.log.wait_for("GET", &server.path(ch, 6), 6, RUN).await?;
    close_ours(publisher).await?;

    let expect_first = |start: &str| if start == "-2" { 2 } else { 3 };
    for (start, sub) in py_subs {
        let out = sub.finish(RUN).await?;
        check_py_sub(&out, 6 - expect_first(start))?;
        ensure!(
            out.num("SUB ", "first")? == expect_first(start) && out.num("SUB ", "last")? == 5,
            "start {start}: {out}"
        );
        ensure!(out.field("SUB ", "end").as_deref() == Some("eos"), "start {start}: {out}");
    }
    for (start, task) in rust_subs {
        let r = join_rust_sub(task).await?;
        r.ensure_clean(&format!("rust subscriber at {start}"))?;
        ensure!(r.first == Some(expect_first(start) as u64) && r.last == Some(5) && r.ended, "start {start}: {r:?}");
    }
    Ok(())
}

/// T11: the lpgw publisher without waiting for each POST (`--no-sync-post`) lets `POST seq+1`
/// overtake `POST seq`. Our server keeps the live edge monotonic and makes a reader of a not yet
/// written seq inside the window wait, so readers following the sequence (ours, lpgw, pytrickle)
/// lose nothing. The window is raised to 64 here so that only reordering, not a slow reader
/// falling out of go-livepeer's 5-segment window, could cost a segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpgw_reordered_posts_lose_no_segment() -> Result<()> {
    let Some(py) = python("lpgw_reordered_posts_lose_no_segment") else { return Ok(()) };
    let config = TrickleConfig { window: 64, ..TrickleServer::peer_config() };
    let server = TrickleServer::start(config, "").await?;
    let ch = "reorder";
    let url = server.url(ch);
    ensure!(create_channel(&url, "application/octet-stream").await? == 200);
    let (n, size) = (40u64, 64 << 10);
    let (n_arg, size_arg) = (n.to_string(), size.to_string());
    let segs = Segments::Payload { size };
    let ours = spawn_rust_sub(&url, SeqRequest::At(Seq(0)), &segs, Until::Count(n as usize));
    let mut subs = Vec::new();
    for c in [Client::Lpgw, Client::Pytrickle] {
        subs.push(py_sub(&py, c, &url, &["-n", &n_arg, "--size", &size_arg, "--start", "0"]).await?);
    }
    server.log.wait_for("GET", &server.path(ch, 0), 3, RUN).await?;

    let mut publisher = py_pub(&py, Client::Lpgw, &url, &["-n", &n_arg, "--size", &size_arg, "--no-sync-post"]).await?;
    publisher.wait_line("PUBLISHED", RUN).await?;
    let r = join_rust_sub(ours).await?;
    r.ensure_clean("rust subscriber")?;
    ensure!(r.got == n as usize, "rust subscriber got {} of {n}", r.got);
    for sub in subs {
        check_py_sub(&sub.finish(RUN).await?, n as i64)?;
    }
    let out = close_py_pub(publisher).await?;
    ensure!(out.num("PUB ", "failed")? == 0, "{out}");

    let log = server.log.snapshot();
    let order: Vec<u64> = log
        .iter()
        .filter(|e| e.method == "POST")
        .filter_map(|e| e.path.strip_prefix(&format!("/{ch}/"))?.parse().ok())
        .collect();
    let overtaken = order.windows(2).filter(|w| w[1] < w[0]).count();
    eprintln!("lpgw --no-sync-post: {overtaken} POST(s) arrived before an earlier seq's POST");
    let bad = bad_gets(&log, &server.path(ch, ""));
    ensure!(bad.is_empty(), "subscriber GETs answered 470/5xx: {bad:?}");
    Ok(())
}

/// T11 as `peers.md` states it: `trickle_peer.py bench --client lpgw --no-sync-post` (one lpgw
/// publisher, two lpgw subscribers in one process, the publisher at most two segments ahead) on
/// go-livepeer's 5-segment window reports `missing=0` for each subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpgw_bench_unsynced_posts_missing_zero() -> Result<()> {
    let Some(py) = python("lpgw_bench_unsynced_posts_missing_zero") else { return Ok(()) };
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;
    let url = server.url("bench");
    let args =
        peer_args("bench", Client::Lpgw, &url, &["-n", "200", "--size", "65536", "--subs", "2", "--no-sync-post"]);
    let out = Peer::spawn(&py, "bench-lpgw", &args)?.finish(RUN).await?;
    out.ensure_success()?;
    for s in ["SUB0 ", "SUB1 "] {
        ensure!(out.num(s, "missing")? == 0 && out.num(s, "gaps")? == 0 && out.num(s, "bad")? == 0, "{out}");
    }
    eprintln!("{}", out.line("BENCH").unwrap_or_default());
    Ok(())
}

/// T6: subscribers (pytrickle, lpgw, ours) blocked on the next segment of a channel end promptly
/// and cleanly (end of stream, not an error) when the publisher deletes the channel: once with our
/// publisher's `close()`, once with lpgw's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_delete_ends_waiting_subscribers() -> Result<()> {
    let Some(py) = python("publisher_delete_ends_waiting_subscribers") else { return Ok(()) };
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;
    let size = 4096;
    let segs = Segments::Payload { size };
    let size_arg = size.to_string();
    for publisher_client in [Client::Ours, Client::Lpgw] {
        let ch = format!("delete-by-{}", publisher_client.name());
        let url = server.url(&ch);
        ensure!(create_channel(&url, "application/octet-stream").await? == 200);
        let mut subs = Vec::new();
        for c in [Client::Pytrickle, Client::Lpgw] {
            subs.push(py_sub(&py, c, &url, &["--size", &size_arg, "--start", "0", "--until-eos"]).await?);
        }
        let ours = spawn_rust_sub(&url, SeqRequest::At(Seq(0)), &segs, Until::Eos);
        server.log.wait_for("GET", &server.path(&ch, 0), 3, RUN).await?;

        // One segment, then every subscriber waits on seq 1 when the channel goes away.
        let deleted_at = match publisher_client {
            Client::Ours => {
                let mut publisher = HttpPublisher::new(&url, "application/octet-stream")?;
                publish_all(&mut publisher, [payload(0, size)], Duration::ZERO).await?;
                server.log.wait_for("GET", &server.path(&ch, 1), 3, RUN).await?;
                let t = Instant::now();
                close_ours(publisher).await?;
                t
            }
            _ => {
                let mut publisher = py_pub(&py, Client::Lpgw, &url, &["-n", "1", "--size", &size_arg]).await?;
                publisher.wait_line("PUBLISHED", RUN).await?;
                server.log.wait_for("GET", &server.path(&ch, 1), 3, RUN).await?;
                let t = Instant::now();
                close_py_pub(publisher).await?;
                t
            }
        };
        let deletes = server.log.matching("DELETE", &format!("/{ch}"));
        ensure!(deletes.iter().any(|e| e.status == Some(200)), "no DELETE /{ch} answered 200: {deletes:?}");
        for sub in subs {
            let out = sub.finish(RUN).await?;
            let took = out.exited_at.saturating_duration_since(deleted_at);
            check_py_sub(&out, 1)?;
            ensure!(out.field("SUB ", "end").as_deref() == Some("eos"), "{out}");
            eprintln!(
                "{} (channel deleted by {}) ended {took:.1?} after the DELETE",
                out.name,
                publisher_client.name()
            );
            ensure!(took < PROMPT_END, "{} ended {took:?} after the DELETE\n{out}", out.name);
        }
        let r =
            tokio::time::timeout(PROMPT_END, join_rust_sub(ours)).await.context("rust subscriber still waiting")??;
        r.ensure_clean("rust subscriber")?;
        ensure!(r.got == 1 && r.ended, "{r:?}");
    }
    Ok(())
}

/// One publisher → one Python subscriber, with `gap` between two segments, the subscriber
/// already waiting at seq 0.
async fn idle_pair(server: &TrickleServer, py: &Path, p: Client, s: Client, gap: Duration) -> Result<()> {
    let ch = format!("idle-{}-{}", p.name(), s.name());
    let url = server.url(&ch);
    ensure!(create_channel(&url, "video/mp2t").await? == 200);
    let size = 20000;
    let sub = py_sub(py, s, &url, &["-n", "2", "--size", &size.to_string(), "--start", "0"]).await?;
    server.log.wait_for("GET", &server.path(&ch, 0), 1, RUN).await?;
    if p == Client::Ours {
        let mut publisher = HttpPublisher::new(&url, "video/mp2t")?;
        publish_all(&mut publisher, (0..2).map(|i| payload(i, size)), gap).await?;
        check_py_sub(&sub.finish(RUN).await?, 2)?;
        close_ours(publisher).await?;
    } else {
        let gap = gap.as_secs_f64().to_string();
        let mut publisher = py_pub(py, p, &url, &["-n", "2", "--size", &size.to_string(), "--interval", &gap]).await?;
        publisher.wait_line("PUBLISHED", RUN).await?;
        check_py_sub(&sub.finish(RUN).await?, 2)?;
        close_py_pub(publisher).await?;
    }
    Ok(())
}

/// peers.md §8.1 "idle preconnects": 12 s between two segments (more than go-livepeer's 10 s
/// first-byte keepalive, less than pytrickle's 30 s request timeout), for pytrickle → lpgw,
/// lpgw → pytrickle and ours → pytrickle. The subscriber's GET for seq 1 waits on our server all
/// that time; so does our publisher's preconnected POST (its head goes out at once, where
/// aiohttp's goes out with the first byte). The segment still arrives whole (T8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_gap_between_segments_is_tolerated() -> Result<()> {
    let Some(py) = python("idle_gap_between_segments_is_tolerated") else { return Ok(()) };
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;
    let gap = Duration::from_secs(12);
    let (a, b, c) = tokio::join!(
        idle_pair(&server, &py, Client::Pytrickle, Client::Lpgw, gap),
        idle_pair(&server, &py, Client::Lpgw, Client::Pytrickle, gap),
        idle_pair(&server, &py, Client::Ours, Client::Pytrickle, gap),
    );
    a.context("pytrickle -> lpgw")?;
    b.context("lpgw -> pytrickle")?;
    c.context("ours -> pytrickle")?;
    Ok(())
}

/// A publisher taking over a channel at its live edge while the previous publisher is still
/// alive and idle. Our `HttpPublisher` (like go-livepeer's) always has the next `POST {ch}/{seq}`
/// preconnected, and its request head reaches the server before any byte. An lpgw publisher with
/// its default start then asks `GET {ch}/next` (→ that seq) and `POST`s it with
/// `Lp-Trickle-Reset: 1`. go-livepeer's server reuses the (still empty) segment and takes the new
/// bytes; a reader following the sequence loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpgw_live_edge_publisher_takes_over_from_idle_preconnected_publisher() -> Result<()> {
    let Some(py) = python("lpgw_live_edge_publisher_takes_over_from_idle_preconnected_publisher") else {
        return Ok(());
    };
    let server = TrickleServer::start(TrickleServer::peer_config(), "").await?;
    let ch = "takeover";
    let url = server.url(ch);
    ensure!(create_channel(&url, "application/json").await? == 200);
    let size = 1000;
    let segs = Segments::Payload { size };
    let ours = tokio::spawn({
        let url = url.clone();
        async move { subscribe(&url, SeqRequest::At(Seq(0)), &segs, Until::Seq(5), Duration::from_secs(10)).await }
    });
    let mut first = HttpPublisher::new(&url, "application/json")?;
    publish_all(&mut first, (0..3).map(|i| payload(i, size)), Duration::ZERO).await?;
    // `first` stays alive, its POST for seq 3 preconnected.
    server.log.wait_for("POST", &server.path(ch, 3), 1, RUN).await?;

    let size_arg = size.to_string();
    let mut next =
        py_pub(&py, Client::Lpgw, &url, &["-n", "3", "--skip", "3", "--size", &size_arg, "--pub-start", "-1"]).await?;
    next.wait_line("PUBLISHED", RUN).await?;
    let r = join_rust_sub(ours).await;
    let out = close_py_pub(next).await;
    drop(first);
    let posts = server.log.matching("POST", &server.path(ch, 3));
    let out = out.with_context(|| format!("POSTs of seq 3: {posts:?}"))?;
    ensure!(out.num("PUB ", "failed")? == 0 && out.field("PUB ", "first_seq").as_deref() == Some("3"), "{out}");
    let r = r?;
    r.ensure_clean("rust subscriber")?;
    ensure!(r.got == 6, "rust subscriber: {r:?}");
    Ok(())
}
