//! The decoder thread: input TS → access units (byoc-ts) → frames in the plugin's format, or access
//! units passed untouched to the encoder thread.

use std::sync::atomic::Ordering;

use byoc_ts::{FrameKind, TsAudio, TsDemuxer, TsFrame};
use ffmpeg_next::codec;
use ffmpeg_next::frame;
use tokio::sync::mpsc::error::TrySendError;

use super::audio::AudioDecoder;
use super::clock::{Unwrapper, ticks_to_ns};
use super::convert::{Scaler, fit, pixel, to_frame};
use super::{Decoded, DecoderParts, Input, PipelineError, Stats, ToEncoder};
use crate::VideoNeeds;

/// stream_type of AAC in ADTS.
const STREAM_TYPE_AAC: u8 = 0x0f;
/// A frame this close (90 kHz ticks, 1 ms) before its slot under `max_fps` still takes the slot.
const FPS_TOLERANCE: i64 = 90;

/// An access unit that passes the plugin by.
#[derive(Debug)]
pub(crate) enum Unit {
    /// H.264, as it came.
    Video {
        /// The input's PTS and DTS (33-bit).
        pts: u64,
        dts: u64,
        keyframe: bool,
        data: Vec<u8>,
        /// The unwrapped PTS, to interleave it with encoded frames.
        order: i64,
    },
    /// AAC in ADTS, as it came.
    Audio { pts: u64, data: Vec<u8>, order: i64 },
    /// One Opus packet (WebRTC input), as it came: never decoded, always passed through.
    Opus { pts: u64, data: Vec<u8>, order: i64 },
}

impl Unit {
    /// The unwrapped PTS.
    pub(crate) fn order(&self) -> i64 {
        match self {
            Unit::Video { order, .. } | Unit::Audio { order, .. } | Unit::Opus { order, .. } => *order,
        }
    }
}

/// Fails when this FFmpeg has no H.264 decoder.
pub(crate) fn check_video_decoder() -> Result<(), PipelineError> {
    codec::decoder::find(codec::Id::H264)
        .map(drop)
        .ok_or_else(|| PipelineError::Codec("this FFmpeg has no H.264 decoder".to_owned()))
}

/// The decoder thread's state.
pub(crate) struct DecoderThread {
    parts: DecoderParts,
    demux: TsDemuxer,
    clock: Unwrapper,
    video: Option<VideoDecoder>,
    audio: Option<AudioDecoder>,
    /// Input segments ended so far: the tag of what passes through.
    segment: u64,
    /// The current input segment's sequence number.
    seq: u64,
    /// The streams last announced to the encoder.
    streams: Option<(bool, Option<TsAudio>)>,
}

impl DecoderThread {
    pub(crate) fn new(parts: DecoderParts) -> Self {
        Self {
            parts,
            demux: TsDemuxer::new(),
            clock: Unwrapper::default(),
            video: None,
            audio: None,
            segment: 0,
            seq: 0,
            streams: None,
        }
    }

    /// Runs until the input ends (then drains) or the other ends are gone.
    pub(crate) fn run(mut self) {
        while let Some(input) = self.parts.input.blocking_recv() {
            let step = match input {
                Input::SegmentStart(seq) => {
                    // What a segment without an end left behind belongs before the new one.
                    let units = self.demux.flush_all();
                    self.seq = seq;
                    self.units(units)
                }
                Input::Chunk(bytes) => {
                    let units = self.demux.push(&bytes);
                    self.units(units)
                }
                Input::SegmentEnd => self.segment_end(),
            };
            if step.is_err() {
                tracing::debug!("frame pipeline decoder: the other side is gone");
                return;
            }
        }
        let units = self.demux.flush_all();
        if self.units(units).and_then(|()| self.drain()).is_err() {
            tracing::debug!("frame pipeline decoder: the other side is gone while draining");
        }
    }

    /// Decodes what the segment still holds, then hands the plugin its end.
    fn segment_end(&mut self) -> Result<(), PipelineError> {
        let units = self.demux.flush_all();
        self.units(units)?;
        // Segments start on keyframes: draining the video here keeps every frame in its own
        // segment. The AAC decoder holds no frame back, and its state (each frame overlaps the
        // last) must carry over: restarting it at every cut would put a click there.
        self.drain_video()?;
        self.parts
            .frames
            .blocking_send(Decoded::SegmentEnd { input_seq: self.seq })
            .map_err(|_| PipelineError::Closed)?;
        self.segment += 1;
        Ok(())
    }

    /// Takes every frame still in the video decoder, which then starts afresh.
    fn drain_video(&mut self) -> Result<(), PipelineError> {
        if let Some(mut video) = self.video.take() {
            let result = video.drain(self);
            self.video = Some(video);
            result?;
        }
        Ok(())
    }

    /// Takes every frame still in the decoders, at the end of the input.
    fn drain(&mut self) -> Result<(), PipelineError> {
        self.drain_video()?;
        if let Some(mut audio) = self.audio.take() {
            let result = audio.drain(&self.parts);
            self.audio = Some(audio);
            result?;
        }
        Ok(())
    }

    fn announce_streams(&mut self) -> Result<(), PipelineError> {
        let mut streams = (false, None);
        for (_, kind) in self.demux.streams() {
            match kind {
                FrameKind::H264 => streams.0 = true,
                FrameKind::Other(STREAM_TYPE_AAC) => streams.1 = Some(TsAudio::Aac),
                // WebRTC's Opus is stereo as carried (RFC 7587); the TS descriptor says so.
                FrameKind::Opus => streams.1 = Some(TsAudio::Opus { channels: 2 }),
                _ => {}
            }
        }
        if self.streams != Some(streams) {
            self.streams = Some(streams);
            let (video, audio) = streams;
            self.to_encoder(ToEncoder::Streams { video, audio })?;
        }
        Ok(())
    }

    fn to_encoder(&self, message: ToEncoder) -> Result<(), PipelineError> {
        self.parts.encoder.blocking_send(message).map_err(|_| PipelineError::Closed)
    }

    fn units(&mut self, units: Vec<TsFrame>) -> Result<(), PipelineError> {
        if units.is_empty() {
            return Ok(());
        }
        self.announce_streams()?;
        for unit in units {
            let Some(pts) = unit.pts.or(unit.dts) else {
                Stats::bump(&self.parts.stats.decode_errors);
                tracing::debug!(pid = unit.pid, "access unit without a timestamp; dropped");
                continue;
            };
            let dts = unit.dts.unwrap_or(pts);
            match unit.kind {
                FrameKind::H264 => match self.parts.needs.video {
                    None => {
                        let order = self.clock.unwrap(pts);
                        let (keyframe, data) = (unit.keyframe, unit.data);
                        let unit = Unit::Video { pts, dts, keyframe, data, order };
                        self.to_encoder(ToEncoder::Passthrough { segment: self.segment, unit })?;
                    }
                    Some(needs) => {
                        let (pts, dts) = (self.clock.unwrap(pts), self.clock.unwrap(dts));
                        let mut video = match self.video.take() {
                            Some(video) => video,
                            None => match VideoDecoder::open(needs) {
                                Ok(video) => video,
                                Err(e) => {
                                    Stats::bump(&self.parts.stats.decode_errors);
                                    tracing::warn!(error = %e, "cannot open the H.264 decoder");
                                    continue;
                                }
                            },
                        };
                        let result = video.decode(self, pts, dts, &unit.data);
                        self.video = Some(video);
                        result?;
                    }
                },
                FrameKind::Other(STREAM_TYPE_AAC) => match self.parts.needs.audio {
                    None => {
                        let order = self.clock.unwrap(pts);
                        let unit = Unit::Audio { pts, data: unit.data, order };
                        self.to_encoder(ToEncoder::Passthrough { segment: self.segment, unit })?;
                    }
                    Some(needs) => {
                        let pts = self.clock.unwrap(pts);
                        let mut audio = match self.audio.take() {
                            Some(audio) => audio,
                            None => AudioDecoder::new(needs),
                        };
                        let result = audio.decode(&self.parts, pts, &unit.data);
                        self.audio = Some(audio);
                        result?;
                    }
                },
                // Opus (WebRTC input) passes through untouched, even to a plugin that asked for
                // audio frames: only AAC is decoded.
                FrameKind::Opus => {
                    let order = self.clock.unwrap(pts);
                    let unit = Unit::Opus { pts, data: unit.data, order };
                    self.to_encoder(ToEncoder::Passthrough { segment: self.segment, unit })?;
                }
                // Other streams (data) are not carried by the frame pipeline.
                _ => {}
            }
        }
        Ok(())
    }
}

/// Keeps frames evenly under a frame rate.
struct Thinner {
    /// Ticks between kept frames; 0 keeps all.
    interval: i64,
    /// The earliest time of the next kept frame.
    next: Option<i64>,
}

impl Thinner {
    fn new(max_fps: u32) -> Self {
        Self { interval: if max_fps == 0 { 0 } else { 90_000 / i64::from(max_fps) }, next: None }
    }

    fn keep(&mut self, ticks: i64) -> bool {
        if self.interval == 0 {
            return true;
        }
        let keep = match self.next {
            None => true,
            // A jump back (a new clock): start over.
            Some(next) if ticks < next.saturating_sub(8 * self.interval) => true,
            Some(next) => ticks.saturating_add(FPS_TOLERANCE) >= next,
        };
        if keep {
            self.next = Some(match self.next {
                // Far behind (a gap in the input): the next slot counts from this frame.
                Some(next)
                    if ticks.saturating_sub(next) < self.interval && ticks >= next.saturating_sub(FPS_TOLERANCE) =>
                {
                    next + self.interval
                }
                _ => ticks + self.interval,
            });
        }
        keep
    }
}

/// H.264 → frames in the plugin's format.
struct VideoDecoder {
    decoder: codec::decoder::Video,
    needs: VideoNeeds,
    thinner: Thinner,
    scaler: Scaler,
    rate_sent: bool,
    last_ticks: i64,
}

impl VideoDecoder {
    fn open(needs: VideoNeeds) -> Result<Self, PipelineError> {
        let codec = codec::decoder::find(codec::Id::H264)
            .ok_or_else(|| PipelineError::Codec("this FFmpeg has no H.264 decoder".to_owned()))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        context.set_time_base(ffmpeg_next::Rational::new(1, 90_000));
        let decoder =
            context.decoder().video().map_err(|e| PipelineError::Codec(format!("open the H.264 decoder: {e}")))?;
        Ok(Self {
            decoder,
            needs,
            thinner: Thinner::new(needs.max_fps),
            scaler: Scaler::default(),
            rate_sent: false,
            last_ticks: 0,
        })
    }

    fn decode(&mut self, owner: &DecoderThread, pts: i64, dts: i64, data: &[u8]) -> Result<(), PipelineError> {
        let mut packet = ffmpeg_next::Packet::copy(data);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(dts));
        if let Err(e) = self.decoder.send_packet(&packet) {
            Stats::bump(&owner.parts.stats.decode_errors);
            tracing::debug!(error = %e, "H.264 decoder refused an access unit");
        }
        self.receive(owner)
    }

    fn drain(&mut self, owner: &DecoderThread) -> Result<(), PipelineError> {
        if self.decoder.send_eof().is_ok() {
            self.receive(owner)?;
        }
        self.decoder.flush();
        Ok(())
    }

    fn receive(&mut self, owner: &DecoderThread) -> Result<(), PipelineError> {
        let mut decoded = frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            self.frame(owner, &decoded)?;
        }
        Ok(())
    }

    fn frame(&mut self, owner: &DecoderThread, decoded: &frame::Video) -> Result<(), PipelineError> {
        let parts = &owner.parts;
        Stats::bump(&parts.stats.decoded_video);
        let ticks = decoded.timestamp().or(decoded.pts()).unwrap_or(self.last_ticks + 1);
        self.last_ticks = ticks;
        if !self.rate_sent {
            self.rate_sent = true;
            if let Some(rate) = self.decoder.frame_rate().filter(|r| r.numerator() > 0 && r.denominator() > 0) {
                owner.to_encoder(ToEncoder::FrameRate(rate.numerator(), rate.denominator()))?;
            }
        }
        if !self.thinner.keep(ticks) {
            Stats::bump(&parts.stats.skipped_fps);
            return Ok(());
        }
        let format = self.needs.format;
        let (width, height) =
            fit(decoded.width(), decoded.height(), self.needs.max_width, self.needs.max_height, format);
        let bytes = format.frame_bytes(width, height);
        let queued = parts.queued_video.load(Ordering::Relaxed);
        let queued_bytes = parts.queued_bytes.load(Ordering::Relaxed);
        let full =
            queued >= parts.queue_frames || (queued > 0 && queued_bytes.saturating_add(bytes) > parts.queue_bytes);
        if full && !parts.lossless {
            Stats::bump(&parts.stats.dropped_video);
            return Ok(());
        }
        let same = decoded.format() == pixel(format) && decoded.width() == width && decoded.height() == height;
        let converted = if same {
            to_frame(decoded, format, ticks_to_ns(ticks))
        } else {
            self.scaler
                .run(decoded, pixel(format), width, height)
                .and_then(|scaled| to_frame(&scaled, format, ticks_to_ns(ticks)))
        };
        let mut frame = match converted {
            Ok(frame) => frame,
            Err(e) => {
                Stats::bump(&parts.stats.decode_errors);
                tracing::debug!(error = %e, "cannot convert a decoded frame");
                return Ok(());
            }
        };
        frame.keyframe = decoded.is_key();
        let bytes = frame.byte_len();
        parts.queued_video.fetch_add(1, Ordering::Relaxed);
        parts.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if parts.lossless {
            // Waits for room: only the byte and frame bounds of the channel apply.
            return parts.frames.blocking_send(Decoded::Video(frame)).map_err(|_| PipelineError::Closed);
        }
        match parts.frames.try_send(Decoded::Video(frame)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                parts.queued_video.fetch_sub(1, Ordering::Relaxed);
                parts.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                Stats::bump(&parts.stats.dropped_video);
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(PipelineError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_frames_evenly() {
        // 25 fps input (3600 ticks) down to 10 fps: 4 of 10 frames kept, spread out.
        let mut thin = Thinner::new(10);
        let kept: Vec<i64> = (0..10).map(|i| i * 3600).filter(|&t| thin.keep(t)).collect();
        assert_eq!(kept, [0, 10_800, 18_000, 28_800]);
        // No limit, or a limit above the input's rate: everything.
        let mut thin = Thinner::new(0);
        assert!((0..50).all(|i| thin.keep(i * 3600)));
        let mut thin = Thinner::new(30);
        assert!((0..50).all(|i| thin.keep(i * 3600)));
        // Jittery 30 fps timestamps at a 30 fps limit: all kept.
        let mut thin = Thinner::new(30);
        let mut t = 0;
        assert!((0..60).all(|i| {
            t += if i % 2 == 0 { 2970 } else { 3060 };
            thin.keep(t)
        }));
    }
}
