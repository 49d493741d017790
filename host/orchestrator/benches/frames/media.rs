//! What every phase of the bench shares: the H.264 input (made by ffmpeg), the video PES starts of a
//! transport stream (to time frames in and out), and process CPU time read from `/proc`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;

use crate::R;

/// One frame's worth of input TS: the packets from its PES start up to the next frame's.
pub struct FrameChunk {
    /// The frame's presentation time (90 kHz).
    pub pts: u64,
    pub bytes: Bytes,
}

/// One input segment, split at its video frames.
pub struct Segment {
    /// The whole segment, for feeders that do not pace frame by frame.
    pub bytes: Bytes,
    pub frames: Vec<FrameChunk>,
}

/// A test clip: `seconds` of ffmpeg's `testsrc2` at `width`x`height`, 30 fps, H.264 in 1 s TS
/// segments (a keyframe each second, no B-frames), plus the whole clip as one file for ffmpeg.
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    pub segments: Vec<Segment>,
    pub file: std::path::PathBuf,
}

impl Clip {
    pub fn make(dir: &Path, width: u32, height: u32, seconds: u32) -> R<Clip> {
        let name = format!("clip-{width}x{height}");
        let file = dir.join(format!("{name}.ts"));
        let pattern = dir.join(format!("{name}-%03d.ts"));
        let source = format!("testsrc2=size={width}x{height}:rate=30");
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", &source])
            .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency"])
            .args(["-b:v", "3000k", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "mpegts"])
            .arg(&file))?;
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&file)
            .args(["-c", "copy", "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts"])
            .arg(&pattern))?;
        let mut segments = Vec::new();
        for i in 0.. {
            let Ok(bytes) = std::fs::read(dir.join(format!("{name}-{i:03}.ts"))) else { break };
            let bytes = Bytes::from(bytes);
            segments.push(Segment { frames: split_frames(&bytes), bytes });
        }
        let frames: usize = segments.iter().map(|s| s.frames.len()).sum();
        if segments.is_empty() || frames == 0 {
            return Err(format!("ffmpeg made no usable segments of {name}").into());
        }
        Ok(Clip { width, height, seconds, segments, file })
    }

    pub fn frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds))
    }
}

pub fn run(cmd: &mut Command) -> R<()> {
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

const PACKET: usize = 188;

/// The PTS of the video PES starting in `packet`, if one does (stream id 0xE0–0xEF).
fn video_pes_pts(packet: &[u8]) -> Option<u64> {
    if packet.len() != PACKET || packet.first() != Some(&0x47) {
        return None;
    }
    let unit_start = packet.get(1)? & 0x40 != 0;
    let control = packet.get(3)? >> 4 & 0x3;
    if !unit_start || control & 0x1 == 0 {
        return None;
    }
    let mut at = 4;
    if control & 0x2 != 0 {
        at += 1 + usize::from(*packet.get(4)?);
    }
    let pes = packet.get(at..)?;
    if pes.get(..3)? != [0, 0, 1] || pes.get(3)? & 0xF0 != 0xE0 || pes.get(7)? & 0x80 == 0 {
        return None;
    }
    let p = pes.get(9..14)?;
    let pts = (u64::from(p[0] >> 1 & 0x7) << 30)
        | (u64::from(p[1]) << 22)
        | (u64::from(p[2] >> 1) << 15)
        | (u64::from(p[3]) << 7)
        | u64::from(p[4] >> 1);
    Some(pts)
}

/// The PTS of every video PES starting in `ts` (whole packets), in order.
pub fn video_pts(ts: &[u8]) -> Vec<u64> {
    ts.chunks_exact(PACKET).filter_map(video_pes_pts).collect()
}

/// `ts` cut before each video PES start; what precedes the first (PAT, PMT) goes with it.
fn split_frames(ts: &Bytes) -> Vec<FrameChunk> {
    let starts: Vec<(usize, u64)> = ts
        .chunks_exact(PACKET)
        .enumerate()
        .filter_map(|(i, p)| video_pes_pts(p).map(|pts| (i * PACKET, pts)))
        .collect();
    let end = ts.len() / PACKET * PACKET;
    let mut frames = Vec::with_capacity(starts.len());
    for (i, &(at, pts)) in starts.iter().enumerate() {
        let from = if i == 0 { 0 } else { at };
        let to = starts.get(i + 1).map_or(end, |&(next, _)| next);
        frames.push(FrameChunk { pts, bytes: ts.slice(from..to) });
    }
    frames
}

/// User + system CPU time of a process (all its threads) from `/proc/<pid>/stat`, with the time
/// of its children it has waited for. `None` where there is no `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub own: Duration,
    pub children: Duration,
}

/// Clock ticks per second in `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

impl Cpu {
    pub fn of(pid: &str) -> Option<Cpu> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces, closed by the last ')').
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        // utime, stime, cutime, cstime are fields 14–17 of the line, 12–15 after the name.
        let ticks = |i: usize| fields.get(i - 3).copied().unwrap_or(0);
        let d = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SECOND);
        Some(Cpu { own: d(ticks(14) + ticks(15)), children: d(ticks(16) + ticks(17)) })
    }

    pub fn this_process() -> Option<Cpu> {
        Cpu::of("self")
    }
}

/// The `p`-th percentile (0–100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = (sorted.len() - 1) * p / 100;
    sorted.get(i).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
