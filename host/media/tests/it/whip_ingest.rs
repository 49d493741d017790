//! WHIP ingest with a real aiortc publisher on loopback.

use crate::common;

use std::time::Duration;

use crate::common::owner;
use byoc_media::{Leg, WebRtcConfig, WebRtcServer};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_publish_gives_valid_h264_opus_segments() {
    if !common::peers_available() {
        return;
    }
    let Some(python) = byoc_e2e::media::aiortc_python("aiortc_publish_gives_valid_h264_opus_segments") else { return };
    let server = WebRtcServer::bind(WebRtcConfig::default()).await.expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");

    // Bad SDP is refused.
    let (tx, _rx) = mpsc::channel(1);
    assert!(server.whip_offer("not sdp", tx, owner()).await.is_err());

    let mut peer = common::AiortcPeer::start(&python, "whip_client.py", "6");
    let offer = peer.offer().await;
    let (tx, rx) = mpsc::channel(256);
    let mut rx = common::whole_segments(rx);
    let (id, answer) = server.whip_offer(&offer, tx, owner()).await.expect("answer");
    peer.answer(&answer).await;
    let done = peer.read_json().await;
    assert_eq!(done["state"], "connected");
    assert!(server.close(id, "s", Leg::Whip).await, "DELETE ends the session");
    peer.bye().await;

    let mut segments = Vec::new();
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(s)) => segments.push(s),
            Ok(None) => break,
            Err(_) => panic!("segment stream did not end"),
        }
    }
    assert!(segments.len() >= 2, "got {} segments", segments.len());
    let mut frames = 0;
    for (i, s) in segments.iter().enumerate() {
        let path = dir.path().join(format!("whip{i}.ts"));
        std::fs::write(&path, s).expect("write");
        let probe = common::probe(&path).await;
        assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360), "segment {i}");
        assert_eq!(probe.audio_codec.as_deref(), Some("opus"), "segment {i}");
        assert!(probe.starts_with_keyframe, "segment {i}");
        assert!(common::decodes_cleanly(&path).await, "segment {i} decodes without errors");
        frames += probe.video_frames;
    }
    eprintln!("whip: {} segments, {frames} frames", segments.len());
    // About 6 s at 30 fps, minus what came before the first keyframe.
    assert!(frames >= 60, "decoded {frames} frames");
    assert_eq!(server.sessions().await, 0);
}
