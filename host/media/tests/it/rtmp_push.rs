//! RTMP egress into a real `ffmpeg -listen 1` receiver on loopback.

use crate::common;

use std::time::Duration;

use byoc_media::{Piece, PushConfig, RtmpPush, SegmenterConfig, TsSegmenter};
use bytes::Bytes;
use tokio::process::{Child, Command};

async fn segments_of(path: &std::path::Path) -> Vec<Bytes> {
    let ts = std::fs::read(path).expect("read ts");
    let mut segmenter = TsSegmenter::new(SegmenterConfig::default());
    let mut segments = segmenter.push(&ts);
    segments.extend(segmenter.finish());
    segments
}

fn receiver(port: u16, out: &std::path::Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-listen", "1", "-i"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/out"))
        .args(["-c", "copy"])
        .arg(out)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts")
}

fn config() -> PushConfig {
    PushConfig { queue_segments: 64, min_backoff: Duration::from_millis(200), ..PushConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_segments_arrive_as_flv_with_every_frame() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Opus audio, as plugins produce: the push transcodes it to AAC for FLV.
    let source = common::make_ts(dir.path(), 3, 30, "libopus").await;
    let segments = segments_of(&source).await;
    assert!(segments.len() >= 2);

    let port = common::free_port();
    let out = dir.path().join("out.flv");
    let mut rx = receiver(port, &out);
    common::wait_listening(port).await;

    let push = RtmpPush::spawn(format!("rtmp://127.0.0.1:{port}/live/out"), config());
    for s in &segments {
        push.push(Piece::Start(s.clone()));
    }
    let stats = push.close().await;
    assert_eq!(stats.sent, segments.len() as u64);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.restarts, 0);

    let status =
        tokio::time::timeout(Duration::from_secs(30), rx.wait()).await.expect("receiver ends").expect("status");
    assert!(status.success());
    let probe = common::probe(&out).await;
    assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert_eq!(probe.video_frames, 90, "every frame of the 3 s source arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_restarts_until_the_destination_appears() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let source = common::make_ts(dir.path(), 4, 30, "aac").await;
    let segments = segments_of(&source).await;
    let port = common::free_port();
    let push = RtmpPush::spawn(format!("rtmp://127.0.0.1:{port}/live/out"), config());

    // Nothing listens yet: ffmpeg fails and is restarted.
    push.push(Piece::Start(segments[0].clone()));
    push.push(Piece::Start(segments[1].clone()));
    for _ in 0..200 {
        if push.stats().restarts >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(push.stats().restarts >= 1, "a failed ffmpeg was restarted");

    let out = dir.path().join("out.flv");
    let mut rx = receiver(port, &out);
    common::wait_listening(port).await;
    for s in &segments[2..] {
        push.push(Piece::Start(s.clone()));
    }
    let _ = push.close().await;
    let status =
        tokio::time::timeout(Duration::from_secs(30), rx.wait()).await.expect("receiver ends").expect("status");
    assert!(status.success());
    assert!(common::probe(&out).await.video_frames > 0, "frames arrived after the restart");
}
