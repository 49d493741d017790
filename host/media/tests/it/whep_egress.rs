//! WHEP egress to a real aiortc viewer on loopback.

use crate::common;

use crate::common::owner;
use byoc_media::{Leg, SegmenterConfig, TsSegmenter, WebRtcConfig, WebRtcServer};
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
    let mut peer = common::AiortcPeer::start(&python, "whep_client.py", "8");
    let offer = peer.offer().await;

    // Each segment in pieces cut anywhere (not on packet boundaries), as the live path sends them.
    let pieces: Vec<_> = segments.iter().flat_map(|s| common::into_pieces(s, &[100, 1000, 5000, 20_000])).collect();
    let (tx, rx) = mpsc::channel(pieces.len());
    let (id, answer) = server.whep_offer(&offer, rx, owner()).await.expect("answer");
    peer.answer(&answer).await;
    // All at once: the server paces them by their timestamps.
    for p in pieces {
        tx.send(p).await.expect("queued");
    }
    let result = peer.read_json().await;
    eprintln!("whep: {result}");
    assert_eq!(result["state"], "connected");
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(640), Some(360)));
    assert!(result["video_frames"].as_u64().unwrap_or_default() >= 60, "frames decoded");
    assert!(result["audio_frames"].as_u64().unwrap_or_default() > 0, "audio decoded");
    assert!(server.close(id, "s", Leg::Whep).await, "DELETE ends the session");
    peer.bye().await;
    assert_eq!(server.sessions().await, 0);
}
