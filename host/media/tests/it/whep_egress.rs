//! WHEP egress to a real aiortc viewer on loopback.

mod common;

use std::process::Stdio;
use std::time::Duration;

use byoc_media::{Leg, SegmenterConfig, TsSegmenter, WebRtcConfig, WebRtcServer};
use common::owner;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_viewer_decodes_paced_segments() {
    if !common::peers_available() {
        return;
    }
    let Some(python) = byoc_e2e::media::aiortc_python("aiortc_viewer_decodes_paced_segments") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // What a plugin sends back: H.264 without B-frames, Opus.
    let source = common::make_ts_with(dir.path(), 6, 30, "libopus", &["-bf", "0"]).await;
    let mut segmenter = TsSegmenter::new(SegmenterConfig::default());
    let mut segments = segmenter.push(&std::fs::read(&source).expect("read"));
    segments.extend(segmenter.finish());

    let server = WebRtcServer::bind(WebRtcConfig::default()).await.expect("bind");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/whep_client.py");
    let mut peer = Command::new(python)
        .args([script, "8"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = peer.stdin.take().expect("stdin");
    let mut lines = BufReader::new(peer.stdout.take().expect("stdout")).lines();
    let offer = common::read_json(&mut lines).await;

    // Each segment in pieces cut anywhere (not on packet boundaries), as the live path sends them.
    let pieces: Vec<_> = segments.iter().flat_map(|s| common::into_pieces(s, &[100, 1000, 5000, 20_000])).collect();
    let (tx, rx) = mpsc::channel(pieces.len());
    let (id, answer) = server.whep_offer(offer["offer"].as_str().expect("offer"), rx, owner()).await.expect("answer");
    stdin.write_all(format!("{}\n", serde_json::json!({ "answer": answer })).as_bytes()).await.expect("write");
    // All at once: the server paces them by their timestamps.
    for p in pieces {
        tx.send(p).await.expect("queued");
    }
    let result = common::read_json(&mut lines).await;
    eprintln!("whep: {result}");
    assert_eq!(result["state"], "connected");
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(640), Some(360)));
    assert!(result["video_frames"].as_u64().unwrap_or_default() >= 60, "frames decoded");
    assert!(result["audio_frames"].as_u64().unwrap_or_default() > 0, "audio decoded");
    assert!(server.close(id, "s", Leg::Whep).await, "DELETE ends the session");
    stdin.write_all(b"bye\n").await.expect("write");
    let _ = tokio::time::timeout(Duration::from_secs(20), peer.wait()).await;
    assert_eq!(server.sessions().await, 0);
}
