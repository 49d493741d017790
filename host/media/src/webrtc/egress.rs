//! One WHEP viewer: pieces of TS segments demuxed to H.264 AUs and Opus packets as they arrive, paced by
//! DTS in a task of their own, and written into the viewer's `Rtc` by the driver.

use std::time::{Duration, Instant};

use byoc_ts::Timestamp;
use bytes::Bytes;
use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::SessionId;
use crate::Piece;
use crate::ts::{FrameKind, TsDemuxer, TsFrame};

/// A frame due now, from a viewer's pacing task to the driver.
pub(crate) enum Paced {
    Frame {
        session: SessionId,
        video: bool,
        pts: u64,
        data: Bytes,
    },
    /// The viewer's segment stream ended.
    End(SessionId),
}

/// A jump in DTS larger than this (either way) restarts the pacing clock instead of sleeping it out.
const MAX_JUMP: i64 = 10 * 90_000;

pub(crate) struct Egress {
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    connected: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Egress {
    /// Starts the pacing task; it waits until [`connected`](Self::connected) before it reads segments.
    pub fn new(session: SessionId, segments: mpsc::Receiver<Piece>, out: mpsc::Sender<Paced>) -> Egress {
        let (connected, wait) = oneshot::channel();
        let task = tokio::spawn(pace(session, segments, out, wait));
        Egress { video_mid: None, audio_mid: None, connected: Some(connected), task }
    }

    pub fn media_added(&mut self, mid: Mid, kind: MediaKind) {
        match kind {
            MediaKind::Video => self.video_mid = Some(mid),
            MediaKind::Audio => self.audio_mid = Some(mid),
        }
    }

    pub fn connected(&mut self) {
        if let Some(tx) = self.connected.take() {
            let _ = tx.send(());
        }
    }

    /// Writes one frame to the viewer. Frames of a kind the viewer did not ask for are skipped.
    pub fn write(&self, rtc: &mut Rtc, video: bool, pts: u64, data: Bytes) {
        let (mid, codec) = if video { (self.video_mid, Codec::H264) } else { (self.audio_mid, Codec::Opus) };
        let Some(writer) = mid.and_then(|mid| rtc.writer(mid)) else { return };
        let Some(pt) = writer.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt()) else { return };
        let time = if video {
            MediaTime::from_90khz(pts)
        } else {
            // Opus runs on a 48 kHz RTP clock.
            MediaTime::from_90khz(pts).rebase(Frequency::FORTY_EIGHT_KHZ)
        };
        if let Err(e) = writer.write(pt, Instant::now(), time, data.to_vec()) {
            tracing::debug!(error = %e, "whep write failed");
        }
    }
}

/// Reads pieces of segments, demuxes them and hands each frame to the driver when its DTS is due.
/// Reading goes on while frames wait for their time (up to [`MAX_QUEUED`] of them), so a late frame
/// of one track is never held back by an early one of the other.
async fn pace(
    session: SessionId,
    mut segments: mpsc::Receiver<Piece>,
    out: mpsc::Sender<Paced>,
    connected: oneshot::Receiver<()>,
) {
    if connected.await.is_err() {
        return;
    }
    let mut schedule = Schedule::default();
    // Each segment is self-contained and starts on a keyframe, so a fresh demuxer per segment is
    // right, and a viewer's first picture is a keyframe. Pieces before the first start are skipped.
    let mut demux: Option<TsDemuxer> = None;
    let mut reading = true;
    loop {
        while let Some((video, pts, data)) = schedule.pop_due(Instant::now()) {
            if out.send(Paced::Frame { session, video, pts, data }).await.is_err() {
                return;
            }
        }
        let next_due = schedule.next_due();
        if !reading && next_due.is_none() {
            break;
        }
        tokio::select! {
            piece = segments.recv(), if reading && schedule.len() < MAX_QUEUED => {
                let frames = match (piece, demux.as_mut()) {
                    (Some(Piece::Start(bytes)), _) => {
                        let mut frames = demux.take().map(TsDemuxer::finish).unwrap_or_default();
                        let mut next = TsDemuxer::new();
                        frames.extend(next.push(&bytes));
                        demux = Some(next);
                        frames
                    }
                    (Some(Piece::More(bytes)), Some(d)) => d.push(&bytes),
                    (Some(Piece::More(_)), None) => continue,
                    (None, _) => {
                        reading = false;
                        demux.take().map(TsDemuxer::finish).unwrap_or_default()
                    }
                };
                let now = Instant::now();
                for f in frames {
                    schedule.add(f, now);
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now).into()), if next_due.is_some() => {}
        }
    }
    let _ = out.send(Paced::End(session)).await;
}

/// At most this many frames wait for their time; then pieces are not read until some are sent
/// (about 3 s of 30 fps video with its audio).
const MAX_QUEUED: usize = 256;

/// When each frame is due: at the wallclock time of the pacing origin plus its DTS past the
/// origin's; late frames at once. Frames of one track go out in their order.
#[derive(Default)]
struct Schedule {
    /// (wallclock, dts) of the pacing origin.
    origin: Option<(Instant, u64)>,
    waiting: std::collections::BinaryHeap<std::cmp::Reverse<Waiting>>,
    /// The last due time given to a video frame and to an audio frame.
    last_due: [Option<Instant>; 2],
    added: u64,
}

struct Waiting {
    due: Instant,
    /// Order of arrival, among frames due at the same time.
    n: u64,
    video: bool,
    pts: u64,
    data: Bytes,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.n) == (other.due, other.n)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.n).cmp(&(other.due, other.n))
    }
}

impl Schedule {
    fn add(&mut self, f: TsFrame, now: Instant) {
        let video = match f.kind {
            FrameKind::H264 => true,
            FrameKind::Opus => false,
            FrameKind::Other(_) => return,
        };
        let Some(pts) = f.pts else { return };
        let dts = f.dts.unwrap_or(pts);
        let (t0, d0) = *self.origin.get_or_insert((now, dts));
        let due = match Timestamp::wrap(dts).signed_ticks_since(Timestamp::wrap(d0)) {
            // Audio and video interleave a little out of DTS order: what is late goes at once.
            diff if diff < 0 && diff > -MAX_JUMP => now,
            diff if (0..=MAX_JUMP).contains(&diff) => t0 + Duration::from_micros(diff.unsigned_abs() * 100 / 9),
            _ => {
                self.origin = Some((now, dts));
                now
            }
        };
        // Never before an earlier frame of the same track.
        let last = &mut self.last_due[usize::from(video)];
        let due = last.map_or(due, |l| due.max(l));
        *last = Some(due);
        self.added += 1;
        self.waiting.push(std::cmp::Reverse(Waiting { due, n: self.added, video, pts, data: f.data.into() }));
    }

    /// The next frame due at `now`: (video, pts, data).
    fn pop_due(&mut self, now: Instant) -> Option<(bool, u64, Bytes)> {
        if self.waiting.peek()?.0.due > now {
            return None;
        }
        let std::cmp::Reverse(w) = self.waiting.pop()?;
        Some((w.video, w.pts, w.data))
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.peek().map(|w| w.0.due)
    }

    fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    fn frame(video: bool, dts_ms: u64) -> TsFrame {
        let pts = 900_000 + dts_ms * 90;
        TsFrame {
            kind: if video { FrameKind::H264 } else { FrameKind::Opus },
            pid: if video { 0x100 } else { 0x101 },
            pts: Some(pts),
            dts: Some(pts),
            keyframe: false,
            data: vec![u8::from(video)],
        }
    }

    fn due_order(s: &mut Schedule, at: Instant) -> Vec<(bool, u64)> {
        std::iter::from_fn(|| s.pop_due(at)).map(|(video, pts, _)| (video, (pts - 900_000) / 90)).collect()
    }

    #[test]
    fn an_early_audio_frame_does_not_hold_back_a_late_video_frame_after_it() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.add(frame(true, 0), t0);
        // 100 ms later one piece brings audio whose time has not come (its clock runs ahead of the
        // video's) and video frames that are late already.
        let now = t0 + Duration::from_millis(100);
        for f in [frame(false, 120), frame(false, 140), frame(true, 66), frame(false, 160), frame(true, 100)] {
            s.add(f, now);
        }
        assert_eq!(due_order(&mut s, now), [(true, 0), (true, 66), (true, 100)], "the late video goes at once");
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(120)));
        assert_eq!(due_order(&mut s, t0 + Duration::from_millis(150)), [(false, 120), (false, 140)]);
        assert_eq!(due_order(&mut s, t0 + Duration::from_secs(1)), [(false, 160)]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn frames_of_one_track_keep_their_order_and_a_jump_restarts_the_clock() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        for f in [frame(true, 0), frame(true, 40), frame(true, 20), frame(true, 60)] {
            s.add(f, t0);
        }
        assert_eq!(due_order(&mut s, t0 + Duration::from_secs(1)), [(true, 0), (true, 40), (true, 20), (true, 60)]);
        // A DTS an hour on: sent at once, and the clock starts again from it.
        let later = t0 + Duration::from_secs(2);
        s.add(frame(true, 3_600_000), later);
        s.add(frame(true, 3_600_033), later);
        assert_eq!(due_order(&mut s, later), [(true, 3_600_000)]);
        assert_eq!(s.next_due(), Some(later + Duration::from_millis(33)));
    }
}
