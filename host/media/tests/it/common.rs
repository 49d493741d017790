//! Helpers for tests that run real ffmpeg/ffprobe on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The owner the single-stream WebRTC tests give their sessions: stream `s`, no client address.
pub fn owner() -> byoc_media::SessionOwner {
    byoc_media::SessionOwner { stream: "s".into(), client: None }
}

/// True when ffmpeg and ffprobe run. Without them, tests print a notice and pass, unless
/// `BYOC_REQUIRE_PEERS=1`, which makes their absence a failure.
pub fn peers_available() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|bin| {
        std::process::Command::new(bin)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(std::env::var("BYOC_REQUIRE_PEERS").as_deref() != Ok("1"), "ffmpeg/ffprobe required but absent");
        eprintln!("NOTICE: ffmpeg/ffprobe not found; skipping this test");
    }
    ok
}

/// Runs a command to completion within `secs`, returning stdout (panics on failure or timeout).
pub async fn run(cmd: &mut Command, secs: u64) -> Vec<u8> {
    cmd.kill_on_drop(true).stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .expect("command timed out")
        .expect("command runs");
    assert!(out.status.success(), "command failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// An ffmpeg-made MPEG-TS file: 640x360 test pattern at 30 fps, GOP `gop`, audio `audio` ("aac"/"libopus").
pub async fn make_ts(dir: &Path, secs: u32, gop: u32, audio: &str) -> PathBuf {
    make_ts_with(dir, secs, gop, audio, &[]).await
}

/// [`make_ts`] with extra encoder options (e.g. `-bf 0`).
pub async fn make_ts_with(dir: &Path, secs: u32, gop: u32, audio: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(format!("src-{secs}-{gop}-{audio}-{}.ts", extra.len()));
    let gop = gop.to_string();
    let t = secs.to_string();
    run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=640x360:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                &t,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-g",
                &gop,
                "-c:a",
                audio,
            ])
            .args(extra)
            .args(["-f", "mpegts"])
            .arg(&path),
        60,
    )
    .await;
    path
}

/// A publisher pushing a live test pattern to `url` for `secs` seconds.
pub fn publisher(url: &str, secs: u32) -> Child {
    publisher_with(url, secs, Tracks::Both, &[])
}

/// Which tracks a [`publisher_with`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    Both,
    VideoOnly,
    AudioOnly,
}

/// [`publisher`] with a choice of tracks and extra encoder options (e.g. `["-bf", "2"]`).
pub fn publisher_with(url: &str, secs: u32, tracks: Tracks, extra: &[&str]) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"]);
    let (video, audio) = (tracks != Tracks::AudioOnly, tracks != Tracks::VideoOnly);
    // Inputs first: an option before `-i` would apply to that input.
    if video {
        cmd.args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"]);
    }
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440"]);
    }
    if video {
        cmd.args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30"]);
    }
    if audio {
        cmd.args(["-c:a", "aac"]);
    }
    cmd.args(extra)
        .args(["-t", &secs.to_string(), "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts")
}

/// What ffprobe says about a media file.
#[derive(Debug)]
pub struct Probe {
    pub video_codec: String,
    pub width: u64,
    pub height: u64,
    pub audio_codec: Option<String>,
    /// Frames counted by decoding (`-count_frames`).
    pub video_frames: u64,
    /// Whether the first video packet is a keyframe.
    pub starts_with_keyframe: bool,
}

pub async fn probe(path: &Path) -> Probe {
    let out = run(
        Command::new("ffprobe").args(["-v", "error", "-count_frames", "-show_streams", "-of", "json"]).arg(path),
        60,
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&out).expect("ffprobe json");
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio");
    let first = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags"])
            .args(["-read_intervals", "%+#1", "-of", "csv=p=0"])
            .arg(path),
        60,
    )
    .await;
    Probe {
        video_codec: video["codec_name"].as_str().unwrap_or_default().to_string(),
        width: video["width"].as_u64().unwrap_or_default(),
        height: video["height"].as_u64().unwrap_or_default(),
        audio_codec: audio.and_then(|a| a["codec_name"].as_str()).map(str::to_string),
        video_frames: video["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or_default(),
        starts_with_keyframe: String::from_utf8_lossy(&first).trim_start().starts_with('K'),
    }
}

/// Decodes a file completely; true when ffmpeg reports no error.
pub async fn decodes_cleanly(path: &Path) -> bool {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ffmpeg runs");
    out.status.success() && out.stderr.is_empty()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits (bounded) until something listens on 127.0.0.1:`port`, without connecting to it (ffmpeg
/// `-listen 1` serves a single connection). Reads /proc/net/tcp.
pub async fn wait_listening(port: u16) {
    let needle = format!("0100007F:{port:04X}");
    for _ in 0..200 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        if table.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&needle.as_str()) && cols.get(3) == Some(&"0A")
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// The next JSON line from a stdio peer (within 60 s).
/// An aiortc peer script from `tests/peers/` that speaks JSON lines: it prints its offer, reads the
/// answer, prints its result, and leaves on `bye`.
pub struct AiortcPeer {
    child: Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl AiortcPeer {
    /// Starts `tests/peers/{script}` with `arg` on `python`.
    pub fn start(python: &str, script: &str, arg: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(script);
        let mut child = Command::new(python)
            .arg(script)
            .arg(arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().expect("stdin");
        let lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        AiortcPeer { child, stdin, lines }
    }

    /// The peer's next JSON line (its offer, then its result).
    pub async fn read_json(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("peer answers in time")
            .expect("read")
            .expect("a line");
        serde_json::from_str(&line).expect("json line")
    }

    /// The peer's SDP offer (its first line).
    pub async fn offer(&mut self) -> String {
        self.read_json().await["offer"].as_str().expect("offer").to_owned()
    }

    /// Gives the peer the server's SDP answer.
    pub async fn answer(&mut self, answer: &str) {
        let line = format!("{}\n", serde_json::json!({ "answer": answer }));
        self.stdin.write_all(line.as_bytes()).await.expect("write");
    }

    /// Tells the peer to leave and waits (bounded) for it to exit.
    pub async fn bye(mut self) {
        self.stdin.write_all(b"bye\n").await.expect("write");
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// Whole segments from a channel of pieces (what the live paths send), for tests that look at
/// segments: a task joins the pieces and forwards each segment once the next one starts (or the
/// pieces end). Also checks that the first piece opens a segment.
#[allow(dead_code)]
pub fn whole_segments(
    mut pieces: tokio::sync::mpsc::Receiver<byoc_media::Piece>,
) -> tokio::sync::mpsc::Receiver<bytes::Bytes> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut open: Option<Vec<u8>> = None;
        while let Some(piece) = pieces.recv().await {
            match (piece, open.as_mut()) {
                (byoc_media::Piece::Start(b), _) => {
                    if let Some(done) = open.replace(b.to_vec())
                        && tx.send(bytes::Bytes::from(done)).await.is_err()
                    {
                        return;
                    }
                }
                (byoc_media::Piece::More(b), Some(seg)) => seg.extend_from_slice(&b),
                (byoc_media::Piece::More(_), None) => panic!("a piece before the first segment start"),
            }
        }
        if let Some(done) = open {
            let _ = tx.send(bytes::Bytes::from(done)).await;
        }
    });
    rx
}

/// A whole segment cut into pieces at `cuts` (byte offsets, any alignment), as a live path sends it.
#[allow(dead_code)]
pub fn into_pieces(segment: &bytes::Bytes, cuts: &[usize]) -> Vec<byoc_media::Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([segment.len()].iter()) {
        let cut = cut.min(segment.len());
        if cut <= at && !out.is_empty() {
            continue;
        }
        let part = segment.slice(at..cut.max(at));
        out.push(if out.is_empty() { byoc_media::Piece::Start(part) } else { byoc_media::Piece::More(part) });
        at = cut.max(at);
    }
    out
}

/// One stream as ffprobe sees it (`-count_packets -show_streams`).
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub codec_type: String,
    pub codec_name: String,
    /// Seconds.
    pub start_time: Option<f64>,
    pub packets: u64,
}

pub async fn streams(path: &Path) -> Vec<StreamInfo> {
    let out = run(
        Command::new("ffprobe").args(["-v", "error", "-count_packets", "-show_streams", "-of", "json"]).arg(path),
        60,
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&out).expect("ffprobe json");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    json["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| StreamInfo {
            codec_type: text(&s["codec_type"]),
            codec_name: text(&s["codec_name"]),
            start_time: s["start_time"].as_str().and_then(|t| t.parse().ok()),
            packets: s["nb_read_packets"].as_str().and_then(|n| n.parse().ok()).unwrap_or_default(),
        })
        .collect()
}

/// The video packets of a file in stream order: (pts, dts, keyframe), 90 kHz ticks.
pub async fn video_packets(path: &Path) -> Vec<(Option<i64>, Option<i64>, bool)> {
    let out = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,dts,flags"])
            .args(["-of", "csv=p=0"])
            .arg(path),
        60,
    )
    .await;
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let num = |i: usize| cols.get(i).and_then(|c| c.trim().parse().ok());
            (num(0), num(1), cols.get(2).is_some_and(|f| f.starts_with('K')))
        })
        .collect()
}

/// What ffmpeg warns about when it reads a file and muxes it again unchanged (`-c copy -f null`):
/// timestamp problems such as non monotonically increasing DTS show up here.
pub async fn remux_warnings(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "warning", "-i"])
        .arg(path)
        .args(["-map", "0", "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
