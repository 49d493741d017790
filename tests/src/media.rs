//! Real media for the tests: MPEG-TS segments from ffmpeg's test sources, and ffprobe.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::peers_required;

/// Whether `tool` (e.g. `ffmpeg`) runs. When it does not: panics if the run requires every peer
/// and tool (`BYOC_REQUIRE_PEERS=1`), otherwise prints a skip line and returns false.
pub fn tool_available(test: &str, tool: &str) -> bool {
    let runs = |cmd: &mut std::process::Command| {
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    required_or_skip(test, tool, runs(std::process::Command::new(tool).arg("-version")))
}

/// `ok`, or else: a panic when the run requires every peer, a skip line otherwise.
fn required_or_skip(test: &str, what: &str, ok: bool) -> bool {
    if !ok {
        if peers_required() {
            panic!("{test}: {what} is required (BYOC_REQUIRE_PEERS=1) but does not run");
        }
        eprintln!("{test}: skipped: {what} not found; `cargo xtask test` installs it");
    }
    ok
}

async fn run(cmd: &mut Command, what: &str, timeout: Duration) -> Result<std::process::Output> {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish within {timeout:?}"))??;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

/// Writes `seconds` one-second MPEG-TS segments (H.264 + AAC, 320x240, 25 fps, a keyframe every
/// second) from ffmpeg's `testsrc` and `sine` sources into `dir` as `seg000.ts`, `seg001.ts`...
/// and returns their paths in order.
pub async fn make_ts_segments(dir: &Path, seconds: u32) -> Result<Vec<PathBuf>> {
    make_ts_segments_of(dir, seconds, "testsrc=size=320x240:rate=25").await
}

/// [`make_ts_segments`] with another lavfi video source (a filter graph, e.g.
/// `color=c=gray:size=320x240:rate=25,drawbox=...`); keep it at 25 fps for one-second GOPs.
pub async fn make_ts_segments_of(dir: &Path, seconds: u32, video: &str) -> Result<Vec<PathBuf>> {
    let pattern = dir.join("seg%03d.ts");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", video])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25"])
        .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k", "-threads", "1"])
        .args(["-f", "segment", "-segment_time", "1", "-segment_format", "mpegts"])
        .arg(&pattern);
    run(&mut cmd, "ffmpeg", Duration::from_secs(60)).await?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ts"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("ffmpeg wrote no segments into {}", dir.display());
    }
    Ok(files)
}

/// The codec names of a media file's streams (e.g. `["h264", "aac"]`), from ffprobe.
pub async fn probe_codecs(file: &Path) -> Result<Vec<String>> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]).arg(file);
    let out = run(&mut cmd, "ffprobe", Duration::from_secs(20)).await?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// `(codec, frames)` of a file's first video stream, as ffprobe decodes it (`("", 0)` when
/// there is none).
pub fn probe_video(file: &Path) -> (String, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output();
    let Ok(out) = out else { return (String::new(), 0) };
    // One line per stream (MPEG-TS repeats it under its program); the first is enough.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.lines().next().unwrap_or_default().trim().split(',');
    let codec = parts.next().unwrap_or_default().to_string();
    let frames = parts.next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    (codec, frames)
}

/// The Python with aiortc for WebRTC peers (`BYOC_PYTHON`, set by `cargo xtask test` to the peers
/// venv; else `python3`). When it has no aiortc: panics if the run requires every peer
/// (`BYOC_REQUIRE_PEERS=1`), otherwise prints a skip line and returns `None`.
pub fn aiortc_python(test: &str) -> Option<String> {
    let python = std::env::var("BYOC_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import aiortc, aiohttp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    required_or_skip(test, &format!("aiortc (for {python}, BYOC_PYTHON)"), ok).then_some(python)
}

/// Every video frame of a media file, decoded by ffmpeg to planar YUV 4:2:0 of its own size:
/// `(width, height, frames)`, each frame `width × height` bytes of Y then the U and V planes.
pub async fn decode_i420(file: &Path) -> Result<(u32, u32, Vec<Vec<u8>>)> {
    let mut probe = Command::new("ffprobe");
    probe.args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"]);
    let out = run(probe.arg(file), "ffprobe", Duration::from_secs(20)).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut size = text.lines().next().unwrap_or_default().trim().split(',').map(|n| n.trim().parse::<u32>());
    let (Some(Ok(width)), Some(Ok(height))) = (size.next(), size.next()) else { bail!("no video size in {text:?}") };
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"]).arg(file);
    cmd.args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-"]);
    let out = run(&mut cmd, "ffmpeg", Duration::from_secs(60)).await?;
    let (w, h) = (width as usize, height as usize);
    let frame = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
    Ok((width, height, out.stdout.chunks_exact(frame).map(<[u8]>::to_vec).collect()))
}

/// The presentation times (seconds) of the packets of one stream of a media file (`select` as
/// ffprobe takes it: `v:0`, `a:0`), in presentation order, from ffprobe.
pub async fn packet_times(file: &Path, select: &str) -> Result<Vec<f64>> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-select_streams", select, "-show_entries", "packet=pts_time", "-of", "csv=p=0"]);
    let out = run(cmd.arg(file), "ffprobe", Duration::from_secs(20)).await?;
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// How far an I420 frame (as [`decode_i420`] gives it) is from gray: the mean and the largest of
/// |U - 128| and |V - 128| over its chroma planes.
pub fn chroma_offset(width: u32, height: u32, frame: &[u8]) -> (f64, u8) {
    let chroma = frame.get((width * height) as usize..).unwrap_or_default();
    let max = chroma.iter().map(|&c| c.abs_diff(128)).max().unwrap_or(0);
    let mean = chroma.iter().map(|&c| f64::from(c.abs_diff(128))).sum::<f64>() / chroma.len().max(1) as f64;
    (mean, max)
}
