//! RTMP play with real ffmpeg viewers on loopback: segments go in through a broadcast channel, viewers
//! pull FLV over RTMP.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use byoc_media::{Piece, PlayRequest, PublishRequest, RtmpConfig, RtmpServer, SegmenterConfig, TsSegmenter};
use bytes::Bytes;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, OnceCell, broadcast, mpsc};
use tokio::task::JoinHandle;

/// The tests share the machine's two cores and check for leftover ffmpeg children of this process, so
/// they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 12 s of 640x360 test pattern, GOP 30 (1 s), no B-frames, cut into ~1 s segments.
async fn segments(audio: &'static str) -> Vec<Bytes> {
    static AAC: OnceCell<Vec<Bytes>> = OnceCell::const_new();
    static OPUS: OnceCell<Vec<Bytes>> = OnceCell::const_new();
    let cell = if audio == "aac" { &AAC } else { &OPUS };
    cell.get_or_init(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = common::make_ts_with(dir.path(), 12, 30, audio, &["-bf", "0"]).await;
        let mut segmenter = TsSegmenter::new(SegmenterConfig::default());
        let mut segments = segmenter.push(&std::fs::read(path).expect("read ts"));
        segments.extend(segmenter.finish());
        assert!(segments.len() >= 10, "got {} segments", segments.len());
        segments
    })
    .await
    .clone()
}

/// The stream the play authorizer hands out (`live/good` only).
struct Source {
    tx: Mutex<Option<broadcast::Sender<Piece>>>,
    /// Play requests seen by the authorizer, accepted or not.
    asked: AtomicUsize,
    accepted: Notify,
    /// Segments sent so far.
    sent: AtomicUsize,
}

impl Source {
    fn new() -> Arc<Source> {
        let (tx, _) = broadcast::channel(16);
        Arc::new(Source {
            tx: Mutex::new(Some(tx)),
            asked: AtomicUsize::new(0),
            accepted: Notify::new(),
            sent: AtomicUsize::new(0),
        })
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Option<broadcast::Sender<Piece>>> {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn server(source: &Arc<Source>) -> RtmpServer {
    let source = source.clone();
    let play = move |req: PlayRequest| {
        let source = source.clone();
        async move {
            source.asked.fetch_add(1, Ordering::SeqCst);
            if req.app != "live" || req.stream_key != "good" {
                return None;
            }
            let rx = source.sender().as_ref()?.subscribe();
            source.accepted.notify_one();
            Some(rx)
        }
    };
    let no_publish = |_: PublishRequest| async { None::<mpsc::Sender<Piece>> };
    let addr = "127.0.0.1:0".parse().expect("addr");
    RtmpServer::bind_with_play(addr, RtmpConfig::default(), no_publish, play).await.expect("bind")
}

/// Sends `segments` one per `pace`, starting when the first play is accepted; then ends the stream if
/// `end` (drops the sender).
fn feed(source: &Arc<Source>, segments: Vec<Bytes>, pace: Duration, end: bool) -> JoinHandle<()> {
    let source = source.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(30), source.accepted.notified()).await;
        for segment in segments {
            if let Some(tx) = source.sender().as_ref() {
                // No receiver (no pipeline running) is fine.
                let _ = tx.send(Piece::Start(segment));
            }
            source.sent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(pace).await;
        }
        if end {
            source.sender().take();
        }
    })
}

/// An ffmpeg viewer recording `rtmp://.../live/{key}` into `out` (for `secs` of media, or until the end).
fn viewer(server: &RtmpServer, key: &str, secs: Option<u32>, out: &Path) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(format!("rtmp://127.0.0.1:{}/live/{key}", server.local_addr().port()));
    if let Some(secs) = secs {
        cmd.args(["-t", &secs.to_string()]);
    }
    cmd.args(["-c", "copy"]).arg(out).stdin(std::process::Stdio::null()).kill_on_drop(true);
    cmd.spawn().expect("ffmpeg starts")
}

async fn exits(child: &mut Child, what: &str) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} exits"))
        .expect("status")
}

/// Waits until `check` holds (bounded: 15 s).
async fn eventually(what: &str, check: impl Fn() -> bool) {
    byoc_e2e::wait::wait_until_within(what, Duration::from_secs(15), check).await
}

/// Children of this process that are play pipelines (`ffmpeg ... pipe:0 ... -f flv pipe:1`) or ffmpeg
/// processes nobody reaped.
fn leftover_pipelines() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir: PathBuf = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
        if ppid != me || !head.ends_with("(ffmpeg") {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if state == "Z" || (cmdline.contains("pipe:0") && cmdline.contains("flv pipe:1")) {
            found.push(format!("{} {state} {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

async fn nothing_left(server: &RtmpServer) {
    eventually("no viewer left", || server.active_plays() == 0).await;
    eventually("no pipeline ffmpeg left", || leftover_pipelines().is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_gets_h264_and_aac_and_leaving_stops_the_pipeline() {
    if !common::peers_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Source::new();
    let server = server(&source).await;
    let feeder = feed(&source, segments("aac").await, Duration::from_millis(700), true);

    let out = dir.path().join("a.flv");
    let mut a = viewer(&server, "good", Some(3), &out);
    assert!(exits(&mut a, "viewer").await.success());
    let probe = common::probe(&out).await;
    assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert!(probe.starts_with_keyframe);
    // 3 s at 30 fps.
    assert!((75..=95).contains(&probe.video_frames), "got {} frames", probe.video_frames);
    assert!(common::decodes_cleanly(&out).await);

    // The only viewer left while the stream goes on: the pipeline stops.
    nothing_left(&server).await;
    feeder.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_viewers_share_the_stream_and_a_late_one_starts_decodable() {
    if !common::peers_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Source::new();
    let server = server(&source).await;
    let feeder = feed(&source, segments("aac").await, Duration::from_secs(1), true);

    let first_out = dir.path().join("first.flv");
    let mut first = viewer(&server, "good", Some(6), &first_out);
    // Join mid-GOP, a few segments in.
    eventually("segments flow", || source.sent.load(Ordering::SeqCst) >= 3).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late_out = dir.path().join("late.flv");
    let mut late = viewer(&server, "good", Some(3), &late_out);
    eventually("both play", || server.active_plays() == 2).await;

    assert!(exits(&mut first, "first viewer").await.success());
    assert!(exits(&mut late, "late viewer").await.success());
    assert_eq!(source.asked.load(Ordering::SeqCst), 2, "every viewer is authorized");
    for out in [&first_out, &late_out] {
        let probe = common::probe(out).await;
        assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360), "{out:?}");
        assert_eq!(probe.audio_codec.as_deref(), Some("aac"), "{out:?}");
        assert!(probe.video_frames > 30, "{out:?}: {} frames", probe.video_frames);
        assert!(probe.starts_with_keyframe, "{out:?} starts with a keyframe");
        assert!(common::decodes_cleanly(out).await, "{out:?} decodes without errors");
    }
    nothing_left(&server).await;
    feeder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_play_fails_and_the_server_stays_healthy() {
    if !common::peers_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Source::new();
    let server = server(&source).await;

    let mut bad = viewer(&server, "bad", Some(2), &dir.path().join("bad.flv"));
    assert!(!exits(&mut bad, "rejected viewer").await.success(), "a play with a wrong key must fail");
    assert_eq!(source.asked.load(Ordering::SeqCst), 1);
    assert_eq!(server.active_plays(), 0);
    assert!(leftover_pipelines().is_empty(), "no pipeline for a rejected play");

    // The publish-only server refuses every play too.
    let publish_only =
        RtmpServer::bind("127.0.0.1:0".parse().expect("addr"), RtmpConfig::default(), |_: PublishRequest| async {
            None::<mpsc::Sender<Piece>>
        })
        .await
        .expect("bind");
    let mut refused = viewer(&publish_only, "good", Some(2), &dir.path().join("refused.flv"));
    assert!(!exits(&mut refused, "refused viewer").await.success());
    publish_only.shutdown().await;

    let feeder = feed(&source, segments("aac").await, Duration::from_millis(700), true);
    let out = dir.path().join("good.flv");
    let mut good = viewer(&server, "good", Some(2), &out);
    assert!(exits(&mut good, "viewer").await.success());
    assert!(common::probe(&out).await.video_frames > 0, "a valid play after a rejected one works");
    nothing_left(&server).await;
    feeder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_end_disconnects_viewers_and_opus_arrives_as_aac() {
    if !common::peers_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Source::new();
    let server = server(&source).await;
    let segments: Vec<Bytes> = segments("libopus").await.into_iter().take(6).collect();
    let frames_sent = 30 * segments.len() as u64;
    let feeder = feed(&source, segments, Duration::from_millis(500), true);

    let out = dir.path().join("whole.flv");
    // No duration: the viewer ends because the stream does.
    let mut whole = viewer(&server, "good", None, &out);
    assert!(exits(&mut whole, "viewer of an ended stream").await.success());
    feeder.await.expect("feeder");
    nothing_left(&server).await;

    let probe = common::probe(&out).await;
    assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"), "Opus is transcoded for FLV");
    assert!(
        probe.video_frames >= frames_sent - 30 && probe.video_frames <= frames_sent,
        "got {} of {frames_sent} frames",
        probe.video_frames
    );
    assert!(common::decodes_cleanly(&out).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_play_leaves_nothing_behind() {
    if !common::peers_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Source::new();
    let server = server(&source).await;
    let feeder = feed(&source, segments("aac").await, Duration::from_secs(1), false);

    let mut playing = viewer(&server, "good", None, &dir.path().join("cut.flv"));
    eventually("segments flow", || source.sent.load(Ordering::SeqCst) >= 3).await;
    assert_eq!(server.active_plays(), 1);
    assert_eq!(leftover_pipelines().len(), 1, "the scan sees the running pipeline");
    server.shutdown().await;
    // The viewer would wait for more; it ends because the server closed its connection.
    let _ = exits(&mut playing, "viewer of a stopped server").await;
    assert!(leftover_pipelines().is_empty(), "shutdown reaped the pipeline's ffmpeg: {:?}", leftover_pipelines());
    feeder.abort();
}
