//! RTMP ingest with a real ffmpeg publisher on loopback.

mod common;

use std::time::Duration;

use byoc_media::{PublishRequest, RtmpConfig, RtmpServer};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A server that accepts `live/good` and hands each accepted publish's segment receiver to the test.
async fn server() -> (RtmpServer, mpsc::UnboundedReceiver<mpsc::Receiver<Bytes>>) {
    let (publishes_tx, publishes) = mpsc::unbounded_channel();
    let authorizer = move |req: PublishRequest| {
        let publishes_tx = publishes_tx.clone();
        async move {
            if req.app != "live" || req.stream_key != "good" {
                return None;
            }
            let (tx, rx) = mpsc::channel(256);
            publishes_tx.send(common::whole_segments(rx)).ok()?;
            Some(tx)
        }
    };
    let addr = "127.0.0.1:0".parse().expect("addr");
    let server = RtmpServer::bind(addr, RtmpConfig::default(), authorizer).await.expect("bind");
    (server, publishes)
}

fn url(server: &RtmpServer, key: &str) -> String {
    format!("rtmp://127.0.0.1:{}/live/{key}", server.local_addr().port())
}

/// Receives segments until the stream ends (bounded in count and time).
async fn collect(rx: &mut mpsc::Receiver<Bytes>, max: usize, secs: u64) -> (Vec<Bytes>, bool) {
    let mut segments = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while segments.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(s)) => segments.push(s),
            Ok(None) => return (segments, true),
            Err(_) => break,
        }
    }
    (segments, false)
}

async fn next_publish(publishes: &mut mpsc::UnboundedReceiver<mpsc::Receiver<Bytes>>) -> mpsc::Receiver<Bytes> {
    tokio::time::timeout(Duration::from_secs(20), publishes.recv())
        .await
        .expect("publish accepted in time")
        .expect("server alive")
}

async fn wait_no_publishes(server: &RtmpServer) {
    for _ in 0..100 {
        if server.active_publishes() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("publish still registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_gives_keyframe_segments_and_wrong_key_is_rejected() {
    if !common::peers_available() {
        return;
    }
    let (server, mut publishes) = server().await;
    let dir = tempfile::tempdir().expect("tempdir");

    // Wrong key: ffmpeg fails, no segment stream is handed out.
    let mut bad = common::publisher(&url(&server, "bad"), 2);
    let status = tokio::time::timeout(Duration::from_secs(30), bad.wait()).await.expect("bad exits").expect("status");
    assert!(!status.success(), "a publish with a wrong key must fail");
    assert!(publishes.try_recv().is_err(), "no publish for a wrong key");
    assert_eq!(server.active_publishes(), 0);

    // The server still serves the next good publisher.
    let mut good = common::publisher(&url(&server, "good"), 4);
    let mut rx = next_publish(&mut publishes).await;
    let (segments, ended) = collect(&mut rx, 100, 60).await;
    assert!(ended, "segment stream ends when the publisher leaves");
    let status = tokio::time::timeout(Duration::from_secs(30), good.wait()).await.expect("exits").expect("status");
    assert!(status.success());
    assert!(segments.len() >= 2, "got {} segments", segments.len());

    let mut frames = 0;
    for (i, segment) in segments.iter().enumerate() {
        let path = dir.path().join(format!("seg{i}.ts"));
        std::fs::write(&path, segment).expect("write");
        let probe = common::probe(&path).await;
        assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360), "segment {i}");
        assert_eq!(probe.audio_codec.as_deref(), Some("aac"), "segment {i}");
        assert!(probe.starts_with_keyframe, "segment {i} starts with a keyframe");
        assert!(common::decodes_cleanly(&path).await, "segment {i} decodes without errors");
        frames += probe.video_frames;
    }
    // 4 s at 30 fps; every frame is in exactly one segment.
    assert_eq!(frames, 120);
    wait_no_publishes(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_on_same_key_is_rejected() {
    if !common::peers_available() {
        return;
    }
    let (server, mut publishes) = server().await;
    let mut first = common::publisher(&url(&server, "good"), 5);
    let mut rx = next_publish(&mut publishes).await;
    let first_segment = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a segment in time");
    assert!(first_segment.is_some());

    let mut second = common::publisher(&url(&server, "good"), 2);
    let status = tokio::time::timeout(Duration::from_secs(30), second.wait()).await.expect("exits").expect("status");
    assert!(!status.success(), "second publisher on a live key must fail");
    assert!(publishes.try_recv().is_err());

    let (segments, ended) = collect(&mut rx, 100, 60).await;
    assert!(ended);
    assert!(!segments.is_empty(), "first publisher went on");
    let status = tokio::time::timeout(Duration::from_secs(30), first.wait()).await.expect("exits").expect("status");
    assert!(status.success());
    wait_no_publishes(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_disconnect_ends_the_segment_stream() {
    if !common::peers_available() {
        return;
    }
    let (server, mut publishes) = server().await;
    let mut publisher = common::publisher(&url(&server, "good"), 60);
    let mut rx = next_publish(&mut publishes).await;
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a segment in time");
    assert!(first.is_some());
    publisher.start_kill().expect("kill");
    let _ = publisher.wait().await;
    let (_, ended) = collect(&mut rx, 1000, 30).await;
    assert!(ended, "the stream ends after the publisher is gone");
    wait_no_publishes(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_drop_disconnects_the_publisher() {
    if !common::peers_available() {
        return;
    }
    let (server, mut publishes) = server().await;
    let mut publisher = common::publisher(&url(&server, "good"), 60);
    let mut rx = next_publish(&mut publishes).await;
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a segment in time");
    assert!(first.is_some());
    drop(rx);
    // The publisher would run for 60 s; it ends early because the server closed its connection.
    let status = tokio::time::timeout(Duration::from_secs(40), publisher.wait()).await;
    assert!(status.is_ok(), "publisher disconnected");
    wait_no_publishes(&server).await;
}

#[tokio::test]
async fn garbage_is_refused_and_the_server_stays_up() {
    let (server, _publishes) = server().await;
    for _ in 0..2 {
        let mut conn = tokio::net::TcpStream::connect(server.local_addr()).await.expect("connect");
        // Not RTMP version 3.
        conn.write_all(&[0x16; 1537]).await.expect("write");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "connection closed");
    }
    assert_eq!(server.active_publishes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_publish_leaves_nothing_behind() {
    if !common::peers_available() {
        return;
    }
    let (server, mut publishes) = server().await;
    let mut publisher = common::publisher(&url(&server, "good"), 60);
    let mut rx = next_publish(&mut publishes).await;
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a segment in time");
    assert!(first.is_some());
    server.shutdown().await;
    // Every task holding a sender is gone, so the stream ends; the publisher is disconnected.
    let (_, ended) = collect(&mut rx, 1000, 20).await;
    assert!(ended, "segment stream closed by shutdown");
    let status = tokio::time::timeout(Duration::from_secs(40), publisher.wait()).await;
    assert!(status.is_ok(), "publisher disconnected by shutdown");
}
