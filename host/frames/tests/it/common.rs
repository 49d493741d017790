//! Test media from ffmpeg, a pipeline run with a plugin task, and ffprobe readings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{
    Decoded, EncodeSettings, Encoded, FrameNeeds, PipelineConfig, PixelFormat, Processed, Stats, VideoFrame, start,
};
use bytes::Bytes;

/// Whether ffmpeg and ffprobe run; when not, the test is skipped (or fails under BYOC_REQUIRE_PEERS=1).
pub fn ffmpeg_available(test: &str) -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = runs("ffmpeg") && runs("ffprobe");
    if !ok {
        assert!(
            std::env::var("BYOC_REQUIRE_PEERS").map_or(true, |v| v != "1"),
            "{test}: ffmpeg is required (BYOC_REQUIRE_PEERS=1) but does not run"
        );
        eprintln!("{test}: skipped: ffmpeg not found; `cargo xtask test` installs it");
    }
    ok
}

pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `seconds` one-second TS segments of testsrc2 320x240 25 fps (H.264 with B-frames, a keyframe each
/// second) and a 440 Hz sine (AAC 48 kHz stereo), as ffmpeg's segment muxer cuts them.
pub fn make_segments(dir: &Path, seconds: u32) -> Vec<Vec<u8>> {
    let pattern = dir.join("in%03d.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-keyint_min",
        "25",
        "-sc_threshold",
        "0",
        "-bf",
        "2",
        "-c:a",
        "aac",
        "-ac",
        "2",
        "-b:a",
        "64k",
        "-threads",
        "1",
        "-f",
        "segment",
        "-segment_time",
        "1",
        "-segment_format",
        "mpegts",
        pattern.to_str().expect("utf-8 path"),
    ]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("in")))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).expect("segment")).collect()
}

/// What a plugin task does with each video frame (`None` drops it).
pub type VideoFn = Box<dyn FnMut(VideoFrame) -> Option<VideoFrame> + Send>;

/// What a pipeline run gave.
pub struct Run {
    /// The output segments, each as one TS file's bytes.
    pub segments: Vec<Vec<u8>>,
    /// (format, width, height) of every video frame the plugin saw.
    pub seen: Vec<(PixelFormat, u32, u32)>,
    /// Audio frames the plugin saw.
    pub audio_seen: usize,
    /// Segment ends the plugin saw.
    pub segment_ends: Vec<u64>,
    pub stats: Arc<Stats>,
    /// How long feeding the input took (longer than its pace when the machine is loaded).
    pub fed_in: Duration,
}

/// The usual configuration: I420 at the input's size, audio passed through.
pub fn config(needs: FrameNeeds, queue_frames: usize) -> PipelineConfig {
    PipelineConfig { needs, encode: EncodeSettings::default(), queue_frames, queue_bytes: 64 << 20, lossless: false }
}

/// Feeds `input` segments (chunked at odd sizes) through a pipeline whose plugin task applies `video`
/// (after sleeping `delay` per frame) and returns audio as it came.
pub async fn run(config: PipelineConfig, input: Vec<Vec<u8>>, video: VideoFn, delay: Duration) -> Run {
    run_paced(config, input, video, delay, Duration::ZERO).await
}

/// As [`run`], each input segment fed over `segment_time` (live pace) instead of at once.
pub async fn run_paced(
    config: PipelineConfig,
    input: Vec<Vec<u8>>,
    mut video: VideoFn,
    delay: Duration,
    segment_time: Duration,
) -> Run {
    let pipeline = start(config).expect("pipeline starts");
    let (feeder, mut frames, sink, mut output, stats) =
        (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);
    let began = std::time::Instant::now();
    let feed = tokio::spawn(async move {
        for (seq, segment) in input.iter().enumerate() {
            feeder.segment_start(seq as u64 + 100).await.expect("segment start");
            let chunks = segment.chunks(1000 + seq * 77);
            let pause = segment_time / u32::try_from(chunks.len().max(1)).unwrap_or(1);
            for chunk in chunks {
                feeder.chunk(Bytes::copy_from_slice(chunk)).await.expect("chunk");
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            if seq + 1 < input.len() {
                feeder.segment_end().await.expect("segment end");
            }
        }
        // The input ends with its last segment (none: with nothing).
        if input.is_empty() {
            feeder.finish().await;
        } else {
            feeder.last_segment_end().await.expect("segment end");
        }
        began.elapsed()
    });
    let plugin = tokio::spawn(async move {
        let (mut seen, mut audio_seen, mut ends) = (Vec::new(), 0, Vec::new());
        while let Some(item) = frames.recv().await {
            let processed = match item {
                Decoded::Video(frame) => {
                    seen.push((frame.format(), frame.width(), frame.height()));
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    match video(frame) {
                        Some(frame) => Processed::Video(frame),
                        None => continue,
                    }
                }
                Decoded::Audio(frame) => {
                    audio_seen += 1;
                    Processed::Audio(frame)
                }
                Decoded::SegmentEnd { input_seq } => {
                    ends.push(input_seq);
                    Processed::SegmentEnd
                }
            };
            sink.send(processed).await.expect("the encoder takes frames");
        }
        sink.finish();
        (seen, audio_seen, ends)
    });
    let collect = tokio::spawn(async move {
        let mut segments: Vec<Vec<u8>> = Vec::new();
        let mut open = false;
        while let Some(piece) = output.recv().await {
            match piece {
                Encoded::SegmentStart => {
                    assert!(!open, "a segment starts inside another");
                    open = true;
                    segments.push(Vec::new());
                }
                Encoded::Chunk(bytes) => {
                    assert!(open, "a chunk outside a segment");
                    segments.last_mut().expect("a segment").extend_from_slice(&bytes);
                }
                Encoded::SegmentEnd => {
                    assert!(open, "a segment ends that did not start");
                    open = false;
                }
            }
        }
        assert!(!open, "the last segment was not ended");
        segments
    });
    let all = async { (feed.await, plugin.await, collect.await) };
    let (fed, plugin, segments) = tokio::time::timeout(Duration::from_secs(180), all).await.expect("the run ends");
    let fed_in = fed.expect("feeder");
    let (seen, audio_seen, segment_ends) = plugin.expect("plugin");
    let segments = segments.expect("output");
    wait_stopped(&stats).await;
    Run { segments, seen, audio_seen, segment_ends, stats, fed_in }
}

/// Waits (bounded) until the pipeline's threads have ended.
pub async fn wait_stopped(stats: &Stats) {
    for _ in 0..500 {
        if stats.threads.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pipeline's threads still run: {}", stats.threads.load(Ordering::Relaxed));
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn ffprobe(file: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (pts, keyframe) of every decoded video frame, in presentation order.
pub fn video_frames(file: &Path) -> Vec<(i64, bool)> {
    let text = ffprobe(file, &["-select_streams", "v:0", "-show_entries", "frame=pts,key_frame", "-of", "csv=p=0"]);
    let mut frames: Vec<(i64, bool)> = text
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(',').map(str::trim);
            let key = fields.next()? == "1";
            let pts = fields.next()?.parse().ok()?;
            Some((pts, key))
        })
        .collect();
    frames.sort_by_key(|f| f.0);
    frames
}

/// (pts, size, data hash) of every audio packet.
pub fn audio_packets(file: &Path) -> Vec<(i64, u64, String)> {
    let text = ffprobe(
        file,
        &[
            "-select_streams",
            "a:0",
            "-show_data_hash",
            "md5",
            "-show_entries",
            "packet=pts,size,data_hash",
            "-of",
            "csv=p=0",
        ],
    );
    text.lines()
        .filter_map(|l| {
            let mut fields = l.split(',').map(str::trim);
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?, fields.next()?.to_owned()))
        })
        .collect()
}

/// The values of `entries` (`stream=width,height`) of the first stream `select` (`v:0`) picks.
pub fn stream_fields(file: &Path, select: &str, entries: &str) -> Vec<String> {
    let text = ffprobe(file, &["-select_streams", select, "-show_entries", entries, "-of", "csv=p=0"]);
    // ffprobe lists the stream under its program too; the first line is enough.
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    line.split(',').map(|f| f.trim().to_owned()).collect()
}

/// Width and height of the first video stream.
pub fn video_size(file: &Path) -> (u32, u32) {
    let fields = stream_fields(file, "v:0", "stream=width,height");
    let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).expect("a number");
    (number(0), number(1))
}

/// Every frame of `file`'s video as raw yuv420p.
pub fn raw_yuv(file: &Path) -> Vec<u8> {
    ffmpeg(&["-i", file.to_str().expect("utf-8 path"), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
}
