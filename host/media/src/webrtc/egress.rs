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
async fn pace(
    session: SessionId,
    mut segments: mpsc::Receiver<Piece>,
    out: mpsc::Sender<Paced>,
    connected: oneshot::Receiver<()>,
) {
    if connected.await.is_err() {
        return;
    }
    let mut pacer = Pacer { session, out, origin: None };
    // Each segment is self-contained and starts on a keyframe, so a fresh demuxer per segment is
    // right, and a viewer's first picture is a keyframe. Pieces before the first start are skipped.
    let mut demux: Option<TsDemuxer> = None;
    while let Some(piece) = segments.recv().await {
        let frames = match (piece, demux.as_mut()) {
            (Piece::Start(bytes), _) => {
                let mut frames = demux.take().map(TsDemuxer::finish).unwrap_or_default();
                let mut next = TsDemuxer::new();
                frames.extend(next.push(&bytes));
                demux = Some(next);
                frames
            }
            (Piece::More(bytes), Some(d)) => d.push(&bytes),
            (Piece::More(_), None) => continue,
        };
        if !pacer.send(frames).await {
            return;
        }
    }
    if let Some(d) = demux
        && !pacer.send(d.finish()).await
    {
        return;
    }
    let _ = pacer.out.send(Paced::End(session)).await;
}

struct Pacer {
    session: SessionId,
    out: mpsc::Sender<Paced>,
    /// (wallclock, dts) of the pacing origin.
    origin: Option<(Instant, u64)>,
}

impl Pacer {
    /// Hands `frames` to the driver, each when due; false when the driver is gone.
    async fn send(&mut self, frames: Vec<TsFrame>) -> bool {
        for f in frames {
            let video = match f.kind {
                FrameKind::H264 => true,
                FrameKind::Opus => false,
                FrameKind::Other(_) => continue,
            };
            let Some(pts) = f.pts else { continue };
            let dts = f.dts.unwrap_or(pts);
            let (t0, d0) = *self.origin.get_or_insert((Instant::now(), dts));
            match Timestamp::wrap(dts).signed_ticks_since(Timestamp::wrap(d0)) {
                // Audio and video interleave a little out of DTS order: send what is late at once.
                diff if diff < 0 && diff > -MAX_JUMP => {}
                diff if (0..=MAX_JUMP).contains(&diff) => {
                    let due = t0 + Duration::from_micros(diff.unsigned_abs() * 100 / 9);
                    tokio::time::sleep_until(due.into()).await;
                }
                _ => self.origin = Some((Instant::now(), dts)),
            }
            if self.out.send(Paced::Frame { session: self.session, video, pts, data: f.data.into() }).await.is_err() {
                return false;
            }
        }
        true
    }
}
