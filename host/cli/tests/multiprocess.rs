//! The real thing, as an operator runs it: a `byoc gateway` and two `byoc orchestrator`
//! processes on loopback, the bundled plugins, ffmpeg-made video. One stream goes end to end
//! (ingest, identical output, data and events over SSE, an update, a stop); a full orchestrator
//! sends the next stream to the other one; include/exclude pick orchestrators; and an
//! orchestrator killed with SIGKILL mid-stream loses the stream to the other one, which carries
//! on after a bounded gap.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use byoc_e2e::clients::sse_until;
use byoc_e2e::media::{make_ts_segments, tool_available};
use byoc_e2e::nodes::plugins_dir;
use common::{Node, byoc, byoc_within, http, legs, round_trip, start, start_with, started, status_of};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_two_orchestrators_as_processes() {
    if !tool_available("a_gateway_and_two_orchestrators_as_processes", "ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let segments: Vec<Vec<u8>> =
        make_ts_segments(dir.path(), 6).await.unwrap().iter().map(|p| std::fs::read(p).unwrap()).collect();
    let plugins = plugins_dir();
    let mut a = Node::orchestrator(&plugins).await;
    let b = Node::orchestrator(&plugins).await;
    let orchs = format!("{},{}", a.url, b.url);
    let gw_node =
        Node::start(&["gateway", "--listen", "127.0.0.1:0", "--orchestrator", &orchs], "gateway listening on ").await;
    let gw = gw_node.url.clone();

    // 1. A stream end to end through passthrough on A (first in the list).
    let s1 = started(&gw, "passthrough", legs(json!({})), "one").await;
    assert_eq!(status_of(&s1).await["orchestrator"], a.url.as_str());
    let mut events = http().get(s1["events_url"].as_str().unwrap()).send().await.unwrap();
    for seg in &segments[..2] {
        let out = round_trip(&s1, seg, Duration::from_secs(20)).await.expect("output segment");
        assert_eq!(&out, seg, "passthrough changed the segment");
    }
    sse_until(&mut events, "stream_started", Duration::from_secs(20)).await;

    // Data over SSE, and an update the plugin reacts to: ts-analyzer starts with its data output
    // off, and reports segments once an update turns it on.
    let r = start_with(&gw, "ts-analyzer", legs(json!({})), "data", json!({"data": false})).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let mut data = http().get(t["data_url"].as_str().unwrap()).send().await.unwrap();
    let mut t_events = http().get(t["events_url"].as_str().unwrap()).send().await.unwrap();
    let push = |seq: usize| {
        http()
            .post(format!("{}/{seq}", t["ingest_url"].as_str().unwrap()))
            .bearer_auth(t["stream_secret"].as_str().unwrap())
            .body(segments[seq].clone())
            .send()
    };
    assert_eq!(push(0).await.unwrap().status(), 200);
    // Segment 0 has been analysed (its stream list is an event) before the update goes out.
    sse_until(&mut t_events, "ts-analyzer.streams", Duration::from_secs(20)).await;
    let r = http().post(t["update_url"].as_str().unwrap()).json(&json!({"data": true})).send().await.unwrap();
    assert_eq!(r.status(), 200, "update: {}", r.text().await.unwrap());
    assert_eq!(status_of(&t).await["params"], json!({"data": true}));
    assert_eq!(push(1).await.unwrap().status(), 200);
    let seen = sse_until(&mut data, "h264", Duration::from_secs(20)).await;
    assert!(!seen.contains("\"seq\":0"), "data for segment 0 while data was off: {seen}");
    assert_eq!(http().post(t["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    // 2. A is full for passthrough (capacity 1): the next stream goes to B.
    let s2 = started(&gw, "passthrough", legs(json!({})), "two").await;
    assert_eq!(status_of(&s2).await["orchestrator"], b.url.as_str());
    assert_eq!(http().post(s2["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    // 3. include/exclude: only A (full) → 503 with the reason; only B → B.
    let r = start(&gw, "passthrough", legs(json!({"orchestrators": {"include": [a.url]}})), "three").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["reasons"].to_string().contains("no capacity"), "{body}");
    let s3 = started(&gw, "passthrough", legs(json!({"orchestrators": {"exclude": [a.url]}})), "four").await;
    assert_eq!(status_of(&s3).await["orchestrator"], b.url.as_str());
    assert_eq!(http().post(s3["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    // 4. A dies (SIGKILL) mid-stream: the stream moves to B and output resumes.
    a.kill().await;
    let killed = Instant::now();
    let mut resumed = None;
    for (i, seg) in segments.iter().cycle().enumerate().take(60) {
        if killed.elapsed() > Duration::from_secs(60) {
            break;
        }
        if let Some(out) = round_trip(&s1, seg, Duration::from_secs(5)).await {
            assert_eq!(&out, seg, "segment {i} after the swap changed");
            resumed = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gap = resumed.expect("the stream never resumed on the other orchestrator");
    eprintln!("output resumed {gap:?} after SIGKILL of the serving orchestrator");
    assert!(gap < Duration::from_secs(45), "gap {gap:?}");
    assert_eq!(status_of(&s1).await["orchestrator"], b.url.as_str());
    sse_until(&mut events, "orchestrator_swap", Duration::from_secs(10)).await;
    assert_eq!(http().post(s1["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}

/// Priced mode across processes: the gateway pays the orchestrator with tickets at start (every
/// ticket wins here); the orchestrator is killed with SIGKILL right after acknowledging, and every
/// winning ticket is in its store (`byoc tickets`). Restarted on the same store, it still knows
/// the gateway's balance, and the stream resumes on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winning_tickets_survive_a_sigkill_and_balances_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for k in ["orch.key", "gw.key"] {
        assert!(byoc(&["keygen", "--out", &path(k)]).status.success());
    }
    let gw_key = byoc_payment::keyfile::load(Path::new(&path("gw.key")), None).unwrap();
    let plugins = plugins_dir();
    // A fixed port, so that the restarted orchestrator is where the gateway looks for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let orch_args = |store: &str| {
        vec![
            "orchestrator".to_string(),
            "--listen".into(),
            listen.clone(),
            "--key".into(),
            path("orch.key"),
            "--plugins".into(),
            plugins.to_str().unwrap().into(),
            "--price".into(),
            "passthrough=1000".into(),
            "--ticket-store".into(),
            store.into(),
            "--ticket-ev".into(),
            "500".into(),
            "--ticket-face-value".into(),
            "500".into(),
        ]
    };
    let store = path("tickets.sqlite");
    let args = orch_args(&store);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut orch = Node::start(&args, "orchestrator listening on ").await;
    let gw = Node::start(
        &["gateway", "--listen", "127.0.0.1:0", "--orchestrator", &orch.url, "--key", &path("gw.key")],
        "gateway listening on ",
    )
    .await;

    // The gateway pays up to its minimum of 120 s × 1000 wei/s = 240 tickets of 500 wei.
    let urls = started(&gw.url, "passthrough", legs(json!({})), "paid").await;
    let status = status_of(&urls).await;
    assert_eq!(status["gateway_address"], gw_key.address().to_checksum());
    assert_eq!(status["balance"], "120000", "{status}");
    orch.kill().await;

    let list = byoc(&["tickets", "list", "--store", &store]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{text}{}", String::from_utf8_lossy(&list.stderr));
    assert!(text.contains("240 winning ticket(s)"), "{text}");
    let export = byoc(&["tickets", "export", "--store", &store]);
    let lines: Vec<Value> =
        String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 240);
    assert!(lines.iter().all(|t| t["sender"] == gw_key.address().to_checksum().as_str()));
    let mut nonces: Vec<u64> = lines.iter().map(|t| t["sender_nonce"].as_u64().unwrap()).collect();
    nonces.sort();
    assert_eq!(nonces, (1..=240).collect::<Vec<_>>());

    // Restarted on the same port and store: the stream comes back to it (the gateway asks an
    // orchestrator that went down again), and the gateway's balance (120000 wei, minus what the
    // stream used) is still there.
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();
    let mut again = Node::start(&args, "orchestrator listening on ").await;
    assert_eq!(again.url, orch.url);
    sse_until(&mut events, "orchestrator_swap", Duration::from_secs(20)).await;
    let seg = make_ts_segments(dir.path(), 1).await.unwrap();
    let seg = std::fs::read(&seg[0]).unwrap();
    let out = round_trip(&urls, &seg, Duration::from_secs(20)).await.expect("output after the restart");
    assert_eq!(out, seg);
    let cred = byoc_payment::job::EthAddressCredential::new(&gw_key).unwrap().to_header();
    let token: Value = http()
        .get(format!("{}/process/token", again.url))
        .header("Livepeer-Eth-Address", cred)
        .header("Livepeer-Capability", "passthrough")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let balance = token["balance"].as_i64().unwrap_or(0);
    assert!((100_000..=120_000).contains(&balance), "balance after restart: {token}");
    again.kill().await;
}

/// A `byoc trickle` server with autocreate, keeping `window` segments.
async fn trickle_server(window: usize) -> Node {
    let window = window.to_string();
    Node::start(
        &["trickle", "--listen", "127.0.0.1:0", "--autocreate", "--window", &window],
        "trickle server listening on ",
    )
    .await
}

/// `n` files in `dir`, the i-th 1000 bytes of value i, as paths.
fn segment_files(dir: &Path, n: u8) -> Vec<String> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("{i}.bin"));
            std::fs::write(&path, vec![i; 1000]).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect()
}

/// `byoc trickle subscribe --count N` never waits for segments that are gone: those it skipped
/// (fell out of the server's window) count, are reported on stderr, and it exits non-zero when it got
/// fewer than N; so does a stream that ends early. With what it asked for, it exits zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_subscribe_reports_skipped_segments_and_a_short_stream() {
    let server = trickle_server(2).await;
    let dir = tempfile::tempdir().unwrap();
    let files = segment_files(dir.path(), 6);
    let limit = Duration::from_secs(30);
    // Six segments published, a window of two kept: a subscriber from seq 0 jumps ahead (to the
    // slot the publisher had preconnected when it left, which nobody will fill).
    let mut args = vec!["trickle".to_string(), "publish".into(), format!("{}behind", server.url)];
    args.extend(files.iter().cloned());
    let (ok, _, err) = byoc_within(&args.iter().map(String::as_str).collect::<Vec<_>>(), limit).await;
    assert!(ok, "publish: {err}");
    let url = format!("{}behind", server.url);
    let (ok, out, err) = byoc_within(&["trickle", "subscribe", &url, "--start", "0", "--count", "6"], limit).await;
    assert!(!ok, "a subscriber that skipped segments exits non-zero: {out} {err}");
    assert!(err.contains("skipped segments 0 to "), "{err}");
    assert!(err.contains("fell behind the server's window"), "{err}");
    assert!(err.contains("of the 6 segments asked for"), "{err}");

    // Two segments, then the channel closes: asking for five ends short. They are published first,
    // on a server whose window keeps them, and the channel is closed once the subscriber has printed
    // both (a close deletes the channel: a subscriber that had not read them yet would see fewer).
    let roomy = trickle_server(8).await;
    let url = format!("{}short", roomy.url);
    let mut args = vec!["trickle".to_string(), "publish".into(), url.clone()];
    args.extend(files[..2].iter().cloned());
    let (ok, _, err) = byoc_within(&args.iter().map(String::as_str).collect::<Vec<_>>(), limit).await;
    assert!(ok, "publish: {err}");
    let mut subscriber = Command::new(env!("CARGO_BIN_EXE_byoc"))
        .args(["trickle", "subscribe", &url, "--start", "0", "--count", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn byoc");
    let mut lines = BufReader::new(subscriber.stdout.take().unwrap()).lines();
    tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("segment 1: ") {
                return;
            }
        }
        panic!("the subscriber ended before it printed segment 1");
    })
    .await
    .expect("the subscriber printed segment 1 in time");
    let closed = http().delete(&url).send().await.unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    let out = tokio::time::timeout(limit, subscriber.wait_with_output()).await.expect("subscriber ended").unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a stream that ends short exits non-zero: {err}");
    assert!(err.contains("end of stream after 2 segments"), "{err}");
    assert!(err.contains("received 2 of the 5 segments asked for (0 skipped, then the stream ended)"), "{err}");

    // Exactly what it asked for: success.
    let url = format!("{}behind", server.url);
    let (ok, out, err) = byoc_within(&["trickle", "subscribe", &url, "--start", "5", "--count", "1"], limit).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("segment 5: 1000 bytes"), "{out}");
}

/// `byoc trickle publish --max-ahead N` keeps within N segments of the slowest reader the server
/// reports: a reader far slower than the publisher, on a server keeping two segments, reads every
/// one of twelve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_publish_max_ahead_keeps_a_slow_reader_whole() {
    let server = trickle_server(2).await;
    let url = format!("{}paced", server.url);
    assert!(http().post(&url).send().await.unwrap().status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let files = segment_files(dir.path(), 12);
    // One request at a time, 50 ms after each segment: the publisher alone would be done long
    // before this reader is at seq 2.
    let reader = tokio::spawn({
        let url = url.clone();
        async move {
            let mut read = Vec::new();
            for seq in 0..12u8 {
                let resp = http().get(format!("{url}/{seq}")).send().await.unwrap();
                if resp.status() != 200 {
                    break;
                }
                assert_eq!(resp.bytes().await.unwrap().to_vec(), vec![seq; 1000]);
                read.push(seq);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            read
        }
    });
    byoc_e2e::wait::eventually("the server to see the reader", Duration::from_secs(10), || async {
        let resp = http().get(format!("{url}/next")).send().await.unwrap();
        resp.headers().contains_key("Lp-Trickle-Slowest-Reader").then_some(())
    })
    .await;
    let mut args = vec!["trickle", "publish", &url, "--max-ahead", "1"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out, err) = byoc_within(&args, Duration::from_secs(30)).await;
    assert!(ok, "publish: {out} {err}");
    let read = tokio::time::timeout(Duration::from_secs(30), reader).await.expect("reader done").unwrap();
    assert_eq!(read, (0..12).collect::<Vec<u8>>());
}
