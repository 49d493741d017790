//! RTMP ingest with a real ffmpeg publisher on loopback.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::Tracks;
use byoc_media::{Piece, PublishRequest, RtmpConfig, RtmpServer};
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

/// A server that accepts `live/good` into channels of `capacity` pieces and hands their receivers to the
/// test as they are.
async fn piece_server(
    config: RtmpConfig,
    capacity: usize,
) -> (RtmpServer, mpsc::UnboundedReceiver<mpsc::Receiver<Piece>>) {
    let (publishes_tx, publishes) = mpsc::unbounded_channel();
    let authorizer = move |req: PublishRequest| {
        let publishes_tx = publishes_tx.clone();
        async move {
            if req.app != "live" || req.stream_key != "good" {
                return None;
            }
            let (tx, rx) = mpsc::channel(capacity);
            publishes_tx.send(rx).ok()?;
            Some(tx)
        }
    };
    let addr = "127.0.0.1:0".parse().expect("addr");
    let server = RtmpServer::bind(addr, config, authorizer).await.expect("bind");
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

/// A publisher on the key "good" for up to 60 s, accepted, and its first segment arrived.
async fn publishing(
    server: &RtmpServer,
    publishes: &mut mpsc::UnboundedReceiver<mpsc::Receiver<Bytes>>,
) -> (tokio::process::Child, mpsc::Receiver<Bytes>) {
    let publisher = common::publisher(&url(server, "good"), 60);
    let mut rx = next_publish(publishes).await;
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a segment in time");
    assert!(first.is_some());
    (publisher, rx)
}

async fn next_publish<T>(publishes: &mut mpsc::UnboundedReceiver<mpsc::Receiver<T>>) -> mpsc::Receiver<T> {
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

    let mut paths = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let path = dir.path().join(format!("seg{i}.ts"));
        std::fs::write(&path, segment).expect("write");
        paths.push(path);
    }
    // 4 s at 30 fps; every frame is in exactly one segment.
    assert_eq!(video_frames(&paths, Some("aac")).await, 120);
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
    let (mut publisher, mut rx) = publishing(&server, &mut publishes).await;
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
    let (mut publisher, rx) = publishing(&server, &mut publishes).await;
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
    let (mut publisher, mut rx) = publishing(&server, &mut publishes).await;
    server.shutdown().await;
    // Every task holding a sender is gone, so the stream ends; the publisher is disconnected.
    let (_, ended) = collect(&mut rx, 1000, 20).await;
    assert!(ended, "segment stream closed by shutdown");
    let status = tokio::time::timeout(Duration::from_secs(40), publisher.wait()).await;
    assert!(status.is_ok(), "publisher disconnected by shutdown");
}

/// Prints (does not assert: timing is measured, not tested) how long a publish takes from the publisher's
/// start to the first piece. Run with `--nocapture` to see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_first_piece_is_printed() {
    if !common::peers_available() {
        return;
    }
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    let authorizer = move |_req: PublishRequest| {
        let accepted_tx = accepted_tx.clone();
        async move {
            let (tx, rx) = mpsc::channel(256);
            accepted_tx.send((std::time::Instant::now(), rx)).ok()?;
            Some(tx)
        }
    };
    let addr = "127.0.0.1:0".parse().expect("addr");
    let server = RtmpServer::bind(addr, RtmpConfig::default(), authorizer).await.expect("bind");
    for run in 0..3 {
        let started = std::time::Instant::now();
        let mut publisher = common::publisher(&url(&server, &format!("timing{run}")), 3);
        let (accepted_at, mut rx) =
            tokio::time::timeout(Duration::from_secs(20), accepted.recv()).await.expect("accepted").expect("alive");
        let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a piece in time");
        assert!(first.is_some_and(|p| p.is_start()));
        let now = std::time::Instant::now();
        eprintln!(
            "rtmp ingest timing run {run}: publisher start -> publish accepted {:?}, accepted -> first piece {:?} \
             (total {:?})",
            accepted_at - started,
            now - accepted_at,
            now - started
        );
        while rx.recv().await.is_some() {}
        let _ = publisher.wait().await;
    }
}

/// Publishes `live/good` for `secs` with `tracks` and `extra` encoder options until the publisher leaves;
/// returns the segment files and the whole stream (the segments joined) in `dir`.
async fn publish_and_collect(secs: u32, tracks: Tracks, extra: &[&str], dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let (server, mut publishes) = server().await;
    let mut publisher = common::publisher_with(&url(&server, "good"), secs, tracks, extra);
    let mut rx = next_publish(&mut publishes).await;
    let (segments, ended) = collect(&mut rx, 100, 60).await;
    assert!(ended, "segment stream ends when the publisher leaves");
    let status = tokio::time::timeout(Duration::from_secs(30), publisher.wait()).await.expect("exits").expect("status");
    assert!(status.success());
    wait_no_publishes(&server).await;
    let mut paths = Vec::new();
    let mut whole = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let path = dir.join(format!("seg{i}.ts"));
        std::fs::write(&path, segment).expect("write");
        paths.push(path);
        whole.extend_from_slice(segment);
    }
    let all = dir.join("all.ts");
    std::fs::write(&all, whole).expect("write");
    (paths, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remuxed_segments_decode_cleanly_and_audio_lines_up_with_video() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (segments, all) = publish_and_collect(4, Tracks::Both, &[], dir.path()).await;
    assert!(segments.len() >= 2, "got {} segments", segments.len());
    assert!(common::decodes_cleanly(&all).await, "the whole stream decodes without errors");
    for (i, path) in segments.iter().enumerate() {
        assert!(common::decodes_cleanly(path).await, "segment {i} decodes without errors");
        let streams = common::streams(path).await;
        let start = |kind: &str| {
            let stream = streams.iter().find(|s| s.codec_type == kind).expect("both streams in every segment");
            stream.start_time.expect("a start time")
        };
        let (video, audio) = (start("video"), start("audio"));
        assert!((video - audio).abs() < 0.1, "segment {i}: video starts at {video} s, audio at {audio} s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_keep_presentation_order_and_monotonic_dts() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (segments, all) = publish_and_collect(4, Tracks::Both, &["-bf", "2"], dir.path()).await;
    let packets = common::video_packets(&all).await;
    assert_eq!(packets.len(), 120, "4 s at 30 fps");
    let dts: Vec<i64> = packets.iter().map(|p| p.1.expect("dts")).collect();
    assert!(dts.windows(2).all(|w| w[0] < w[1]), "dts increases: {dts:?}");
    let mut pts: Vec<i64> = packets.iter().map(|p| p.0.expect("pts")).collect();
    assert!(packets.iter().any(|p| p.0 != p.1), "composition offsets were applied (b-frames)");
    assert!(packets.iter().all(|p| p.0 >= p.1), "no frame is shown before it is decoded");
    pts.sort_unstable();
    // Frames 33 or 34 ms apart in presentation order (FLV has millisecond timestamps): none lost or doubled.
    assert!(pts.windows(2).all(|w| (2970..=3060).contains(&(w[1] - w[0]))), "pts in order: {pts:?}");
    let warnings = common::remux_warnings(&all).await;
    assert!(!warnings.contains("monoton"), "ffmpeg: {warnings}");
    assert_eq!(video_frames(&segments, Some("aac")).await, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_only_publish_gives_video_segments() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (segments, _) = publish_and_collect(4, Tracks::VideoOnly, &[], dir.path()).await;
    assert!(segments.len() >= 2, "got {} segments", segments.len());
    assert_eq!(video_frames(&segments, None).await, 120);
}

/// Checks that every segment is H.264 640x360 (with `audio`, or without audio), starts on a
/// keyframe and decodes without errors; returns their video frames in all.
async fn video_frames(segments: &[PathBuf], audio: Option<&str>) -> u64 {
    let mut frames = 0;
    for (i, path) in segments.iter().enumerate() {
        let probe = common::probe(path).await;
        assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360), "segment {i}");
        assert_eq!(probe.audio_codec.as_deref(), audio, "segment {i}");
        assert!(probe.starts_with_keyframe, "segment {i} starts with a keyframe");
        assert!(common::decodes_cleanly(path).await, "segment {i} decodes without errors");
        frames += probe.video_frames;
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_publish_gives_audio_segments() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (segments, _) = publish_and_collect(4, Tracks::AudioOnly, &[], dir.path()).await;
    // Without video, segments are cut on audio at least a second apart.
    assert!(segments.len() >= 3, "got {} segments", segments.len());
    let mut packets = 0;
    for (i, path) in segments.iter().enumerate() {
        let streams = common::streams(path).await;
        let kinds: Vec<(&str, &str)> = streams.iter().map(|s| (s.codec_type.as_str(), s.codec_name.as_str())).collect();
        assert_eq!(kinds, [("audio", "aac")], "segment {i}");
        assert!(common::decodes_cleanly(path).await, "segment {i} decodes without errors");
        packets += streams.iter().map(|s| s.packets).sum::<u64>();
    }
    // 4 s of 1024-sample frames at 44.1 kHz: about 172.
    assert!((165..=180).contains(&packets), "{packets} AAC frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_codecs_are_dropped_and_a_publish_with_none_usable_is_refused() {
    if !common::peers_available() {
        return;
    }
    // MP3 beside H.264: the video goes on alone.
    let dir = tempfile::tempdir().expect("tempdir");
    let (segments, _) = publish_and_collect(3, Tracks::Both, &["-c:a", "libmp3lame"], dir.path()).await;
    assert!(!segments.is_empty());
    for (i, path) in segments.iter().enumerate() {
        let streams = common::streams(path).await;
        let kinds: Vec<(&str, &str)> = streams.iter().map(|s| (s.codec_type.as_str(), s.codec_name.as_str())).collect();
        assert_eq!(kinds, [("video", "h264")], "segment {i}");
    }

    // Sorenson H.263 and MP3: nothing to mux; the publisher is disconnected, no segment comes.
    let (server, mut publishes) = server().await;
    let mut publisher =
        common::publisher_with(&url(&server, "good"), 30, Tracks::Both, &["-c:v", "flv1", "-c:a", "libmp3lame"]);
    let mut rx = next_publish(&mut publishes).await;
    let (segments, ended) = collect(&mut rx, 10, 30).await;
    assert!(ended && segments.is_empty(), "{} segments", segments.len());
    let status = tokio::time::timeout(Duration::from_secs(20), publisher.wait()).await;
    assert!(status.is_ok(), "publisher disconnected");
    wait_no_publishes(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_consumer_does_not_hold_up_the_publisher() {
    if !common::peers_available() {
        return;
    }
    let config = RtmpConfig { consumer_wait: Duration::from_millis(300), ..RtmpConfig::default() };
    let (server, mut publishes) = piece_server(config, 2).await;
    let mut publisher = common::publisher(&url(&server, "good"), 4);
    let mut rx = next_publish(&mut publishes).await;
    // Nobody reads: the publisher still gets through its 4 s and leaves normally.
    let status = tokio::time::timeout(Duration::from_secs(30), publisher.wait()).await.expect("exits").expect("status");
    assert!(status.success());
    wait_no_publishes(&server).await;
    // What fit in the channel is a segment's beginning; the rest was dropped and the channel is closed.
    let mut pieces = Vec::new();
    while let Some(piece) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("channel closed") {
        pieces.push(piece);
    }
    assert!(pieces.first().is_some_and(Piece::is_start));
    assert!(pieces.len() <= 2);
}
