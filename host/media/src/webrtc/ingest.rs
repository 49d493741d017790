//! One WHIP publish: depacketized H.264 and Opus frames from str0m, timed on one clock, muxed to TS and
//! cut into segments whose pieces go to the consumer's channel frame by frame.

use std::time::Instant;

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::ts::{PTS_MASK, Picture, TsMuxer, first_picture};
use crate::{Piece, SegmenterConfig, StartGate, TsSegmenter};

/// Maps one track's RTP clock onto the session's 90 kHz timeline: the track's first frame is placed at
/// its arrival time, later frames follow its RTP timestamps. Aligning the first arrivals of audio and
/// video is what keeps them in sync (RTP timestamps of different tracks have random offsets).
#[derive(Debug, Clone, Copy)]
struct Clock {
    first_rtp: u64,
    base: u64,
}

/// Where the timeline starts, so that PCR (a little before the first DTS) stays positive.
const TIMELINE_START: u64 = 90_000;

pub(crate) struct Ingest {
    tx: mpsc::Sender<Piece>,
    /// Closed when a piece was dropped (the consumer was full): the rest of that segment goes too.
    gate: StartGate,
    mux: TsMuxer,
    segmenter: Option<TsSegmenter>,
    start: Instant,
    video_mid: Option<Mid>,
    video: Option<Clock>,
    audio: Option<Clock>,
    last_keyframe_request: Option<Instant>,
    buf: Vec<u8>,
    dropped: u64,
}

impl Ingest {
    pub fn new(tx: mpsc::Sender<Piece>, segmenter: SegmenterConfig, with_audio: bool) -> Ingest {
        Ingest {
            tx,
            gate: StartGate::default(),
            mux: TsMuxer::new(with_audio.then_some(2)),
            segmenter: Some(TsSegmenter::new(segmenter)),
            start: Instant::now(),
            video_mid: None,
            video: None,
            audio: None,
            last_keyframe_request: None,
            buf: Vec::new(),
            dropped: 0,
        }
    }

    pub fn media_added(&mut self, mid: Mid, kind: MediaKind) {
        if kind == MediaKind::Video {
            self.video_mid = Some(mid);
        }
    }

    /// A viewer waits for a segment start: ask for a keyframe (unless one was asked for within the
    /// last 500 ms) and cut the next segment there.
    pub fn keyframe_for_viewer(&mut self, rtc: &mut Rtc) {
        if let Some(s) = self.segmenter.as_mut() {
            s.cut_at_next_keyframe();
        }
        if self.last_keyframe_request.is_none_or(|t| t.elapsed().as_millis() > 500) {
            self.request_keyframe(rtc);
        }
    }

    /// Asks the publisher for a keyframe (PLI).
    pub fn request_keyframe(&mut self, rtc: &mut Rtc) {
        let Some(mid) = self.video_mid else { return };
        if let Some(mut writer) = rtc.writer(mid) {
            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
            self.last_keyframe_request = Some(Instant::now());
        }
    }

    /// Takes one depacketized frame; `false` when the consumer is gone.
    pub fn media(&mut self, data: &MediaData, rtc: &mut Rtc) -> bool {
        let start = self.start;
        let to_90k = |clock: &mut Option<Clock>, time: MediaTime, arrival: Instant| {
            let rtp = time.rebase(MediaTime::from_90khz(0).frequency()).numer();
            let c = *clock.get_or_insert_with(|| Clock {
                first_rtp: rtp,
                base: TIMELINE_START
                    + MediaTime::from_micros(arrival.duration_since(start).as_micros() as u64)
                        .rebase(MediaTime::from_90khz(0).frequency())
                        .numer(),
            });
            c.base.wrapping_add(rtp.wrapping_sub(c.first_rtp)) & PTS_MASK
        };
        match data.params.spec().codec {
            Codec::H264 => {
                if !data.contiguous && self.last_keyframe_request.is_none_or(|t| t.elapsed().as_millis() > 500) {
                    self.request_keyframe(rtc);
                }
                let ts = to_90k(&mut self.video, data.time, data.network_time);
                let key = first_picture(&data.data, false) == Some(Picture::Key);
                if key {
                    self.mux.psi(&mut self.buf);
                }
                self.mux.video(ts, ts, key, &data.data, &mut self.buf);
            }
            Codec::Opus => {
                let ts = to_90k(&mut self.audio, data.time, data.network_time);
                self.mux.opus(ts, &data.data, &mut self.buf);
            }
            _ => return true,
        }
        let pieces = match &mut self.segmenter {
            Some(s) => s.push_pieces(&self.buf),
            None => Vec::new(),
        };
        self.buf.clear();
        pieces.into_iter().all(|p| self.send(p))
    }

    fn send(&mut self, piece: Piece) -> bool {
        if !self.gate.pass(&piece) {
            return true;
        }
        match self.tx.try_send(piece) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                // A segment with a hole would not decode: drop the rest of it, go on at the next one.
                self.dropped += 1;
                self.gate.lost();
                tracing::warn!(dropped_total = self.dropped, "whip consumer too slow: rest of a segment dropped");
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// The session ended: flush the rest of the open segment.
    pub fn finish(&mut self) {
        for piece in self.segmenter.take().map(TsSegmenter::finish_pieces).unwrap_or_default() {
            self.send(piece);
        }
    }
}
