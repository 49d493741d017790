//! The encoder thread: the plugin's frames → H.264 (libx264) and AAC, muxed into TS segments with
//! what passed the plugin by.

use std::collections::VecDeque;
use std::sync::Arc;

use byoc_ts::{TsAudio, TsMuxer};
use bytes::Bytes;
use ffmpeg_next::codec;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::picture;
use ffmpeg_next::{Dictionary, Rational};
use tokio::sync::mpsc;

use super::audio::AudioEncoder;
use super::clock::ns_to_ticks;
use super::convert::{Scaler, fit, from_frame};
use super::decode::Unit;
use super::{EncodeSettings, Encoded, InputSegments, PipelineError, Processed, Stats, ToEncoder};
use crate::{AudioFrame, FrameNeeds, PixelFormat, VideoFrame};

/// Untouched access units held for interleaving beyond this many are written at once (bounds memory
/// when the plugin stalls).
const MAX_PENDING: usize = 4096;
/// The frame rate x264 is told when the input did not say (rate control follows the timestamps).
const DEFAULT_FRAME_RATE: (i32, i32) = (30, 1);
/// x264's own keyframe interval, in frames: long, as the pipeline forces keyframes itself.
const X264_GOP: u32 = 3000;

/// Fails when this FFmpeg has no libx264.
pub(crate) fn check_video_encoder() -> Result<(), PipelineError> {
    codec::encoder::find_by_name("libx264")
        .map(drop)
        .ok_or_else(|| PipelineError::Codec("this FFmpeg has no libx264 encoder".to_owned()))
}

/// A TS timestamp (33 bits) of an unwrapped tick count.
fn ts_ticks(ticks: i64) -> u64 {
    ticks.rem_euclid(1 << 33).unsigned_abs()
}

/// One encoded access unit.
pub(crate) struct Packet {
    pub(crate) pts: i64,
    pub(crate) dts: i64,
    pub(crate) keyframe: bool,
    pub(crate) data: Vec<u8>,
}

/// The encoder thread's state.
pub(crate) struct EncoderThread {
    needs: FrameNeeds,
    settings: EncodeSettings,
    rx: mpsc::Receiver<ToEncoder>,
    out: mpsc::Sender<Encoded>,
    stats: Arc<Stats>,
    video: Option<VideoEncoder>,
    audio: Option<AudioEncoder>,
    frame_rate: (i32, i32),
    mux: TsMuxer,
    /// Untouched units waiting for their place, tagged with their input segment.
    pending: VecDeque<(u64, Unit)>,
    /// Segment ends received from the plugin: the input segment being output.
    segment: u64,
    /// The input's segment count, once known: its last output segment stays open until the end.
    input_segments: Arc<InputSegments>,
    in_segment: bool,
    force_key: bool,
    last_key: Option<i64>,
    last_pts: Option<i64>,
    buf: Vec<u8>,
}

impl EncoderThread {
    pub(crate) fn new(
        needs: FrameNeeds,
        settings: EncodeSettings,
        rx: mpsc::Receiver<ToEncoder>,
        out: mpsc::Sender<Encoded>,
        stats: Arc<Stats>,
        input_segments: Arc<InputSegments>,
    ) -> Self {
        Self {
            needs,
            settings,
            rx,
            out,
            stats,
            video: None,
            audio: None,
            frame_rate: DEFAULT_FRAME_RATE,
            mux: TsMuxer::with_streams(true, Some(TsAudio::Aac)),
            pending: VecDeque::new(),
            segment: 0,
            input_segments,
            in_segment: false,
            force_key: false,
            last_key: None,
            last_pts: None,
            buf: Vec::new(),
        }
    }

    /// Runs until the plugin and the decoder are both done (then drains), or the output is gone.
    pub(crate) fn run(mut self) {
        while let Some(message) = self.rx.blocking_recv() {
            if self.message(message).is_err() {
                tracing::debug!("frame pipeline encoder: the output is gone");
                return;
            }
        }
        if self.finish().is_err() {
            tracing::debug!("frame pipeline encoder: the output is gone while draining");
        }
    }

    fn message(&mut self, message: ToEncoder) -> Result<(), PipelineError> {
        match message {
            ToEncoder::Streams { video, audio } => {
                self.mux.set_streams(video, audio);
                Ok(())
            }
            ToEncoder::FrameRate(num, den) => {
                self.frame_rate = (num, den);
                Ok(())
            }
            ToEncoder::Passthrough { segment, unit } => {
                let nothing_decoded = self.needs.video.is_none() && self.needs.audio.is_none();
                if nothing_decoded && segment == self.segment {
                    return self.write_unit(unit);
                }
                self.pending.push_back((segment, unit));
                if self.pending.len() > MAX_PENDING
                    && let Some((_, unit)) = self.pending.pop_front()
                {
                    self.write_unit(unit)?;
                }
                Ok(())
            }
            ToEncoder::Processed(Processed::Video(frame)) => self.video_frame(&frame),
            ToEncoder::Processed(Processed::Audio(frame)) => self.audio_frame(frame),
            ToEncoder::Processed(Processed::SegmentEnd) => {
                let current = self.segment;
                self.write_pending(|segment, _| segment <= current)?;
                self.segment += 1;
                self.force_key = true;
                if self.input_segments.is_last(self.segment) {
                    // The input has ended with this segment: what the encoders still hold (AAC keeps
                    // its last frames until drained) joins it in `finish`. Nothing waits: with no
                    // more input, the end of this channel follows.
                    return self.flush_buf();
                }
                self.end_segment()
            }
        }
    }

    fn video_frame(&mut self, frame: &VideoFrame) -> Result<(), PipelineError> {
        if self.needs.video.is_none() {
            // The input's video passes untouched; a plugin's video frame has no place.
            return Ok(());
        }
        let mut ticks = ns_to_ticks(frame.pts_ns);
        if let Some(last) = self.last_pts
            && ticks <= last
        {
            ticks = last + 1;
        }
        self.last_pts = Some(ticks);
        let segment = self.segment;
        self.write_pending(|s, order| s < segment || (s == segment && order <= ticks))?;

        if self.video.is_none() {
            let (width, height) = fit(frame.width(), frame.height(), 0, 0, PixelFormat::I420);
            match VideoEncoder::open(width, height, self.frame_rate, &self.settings) {
                Ok(video) => self.video = Some(video),
                Err(e) => {
                    Stats::bump(&self.stats.encode_errors);
                    tracing::warn!(error = %e, "cannot open the H.264 encoder");
                    return Ok(());
                }
            }
        }
        let interval = i64::from(self.settings.max_keyframe_interval_ms) * 90;
        let due = match self.last_key {
            None => true,
            Some(key) => interval > 0 && ticks - key >= interval,
        };
        let Some(video) = &mut self.video else { return Ok(()) };
        let packets = match video.encode(frame, ticks, self.force_key || due) {
            Ok(packets) => packets,
            Err(e) => {
                Stats::bump(&self.stats.encode_errors);
                tracing::debug!(error = %e, "cannot encode a frame");
                return Ok(());
            }
        };
        self.force_key = false;
        self.write_video(packets)
    }

    fn write_video(&mut self, packets: Vec<Packet>) -> Result<(), PipelineError> {
        for packet in packets {
            Stats::bump(&self.stats.encoded_video);
            if packet.keyframe {
                self.last_key = Some(packet.pts);
            }
            self.begin_segment()?;
            let (pts, dts) = (ts_ticks(packet.pts), ts_ticks(packet.dts));
            self.mux.video(pts, dts, packet.keyframe, &packet.data, &mut self.buf);
            self.flush_buf()?;
        }
        Ok(())
    }

    fn audio_frame(&mut self, frame: AudioFrame) -> Result<(), PipelineError> {
        if self.needs.audio.is_none() {
            return Ok(());
        }
        let ticks = ns_to_ticks(frame.pts_ns);
        let segment = self.segment;
        self.write_pending(|s, order| s < segment || (s == segment && order <= ticks))?;
        let audio = self.audio.get_or_insert_with(AudioEncoder::default);
        let packets = audio.encode(&frame);
        self.write_audio(packets)
    }

    fn write_audio(
        &mut self,
        packets: Result<Vec<super::audio::AacPacket>, PipelineError>,
    ) -> Result<(), PipelineError> {
        let packets = match packets {
            Ok(packets) => packets,
            Err(e) => {
                Stats::bump(&self.stats.encode_errors);
                tracing::debug!(error = %e, "cannot encode audio");
                return Ok(());
            }
        };
        for packet in packets {
            Stats::bump(&self.stats.encoded_audio);
            self.begin_segment()?;
            self.mux.aac(ts_ticks(packet.pts), &packet.config, &packet.data, &mut self.buf);
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes, in order, the pending units `due(segment, pts)` picks.
    fn write_pending(&mut self, due: impl Fn(u64, i64) -> bool) -> Result<(), PipelineError> {
        while let Some((segment, unit)) = self.pending.front() {
            if !due(*segment, unit.order()) {
                break;
            }
            if let Some((_, unit)) = self.pending.pop_front() {
                self.write_unit(unit)?;
            }
        }
        Ok(())
    }

    fn write_unit(&mut self, unit: Unit) -> Result<(), PipelineError> {
        self.begin_segment()?;
        match unit {
            Unit::Video { pts, dts, keyframe, data, .. } => self.mux.video(pts, dts, keyframe, &data, &mut self.buf),
            Unit::Audio { pts, data, .. } => self.mux.adts(pts, &data, &mut self.buf),
            Unit::Opus { pts, data, .. } => self.mux.opus(pts, &data, &mut self.buf),
        }
        self.flush_buf()
    }

    fn send(&self, encoded: Encoded) -> Result<(), PipelineError> {
        self.out.blocking_send(encoded).map_err(|_| PipelineError::Closed)
    }

    fn begin_segment(&mut self) -> Result<(), PipelineError> {
        if !self.in_segment {
            self.in_segment = true;
            self.send(Encoded::SegmentStart)?;
            self.mux.psi(&mut self.buf);
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), PipelineError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.send(Encoded::Chunk(chunk))
    }

    fn end_segment(&mut self) -> Result<(), PipelineError> {
        if self.in_segment {
            self.flush_buf()?;
            self.in_segment = false;
            self.send(Encoded::SegmentEnd)?;
        }
        Ok(())
    }

    /// Drains the encoders, writes what is left (into the input's last segment when it was left
    /// open), and ends the last segment.
    fn finish(&mut self) -> Result<(), PipelineError> {
        if let Some(video) = &mut self.video {
            let packets = video.flush();
            self.write_video(packets)?;
        }
        if let Some(audio) = &mut self.audio {
            let packets = audio.flush();
            self.write_audio(packets)?;
        }
        self.write_pending(|_, _| true)?;
        self.end_segment()
    }
}

/// libx264 at one output size; frames of another size or format are scaled to it.
struct VideoEncoder {
    encoder: codec::encoder::video::Encoder,
    width: u32,
    height: u32,
    scaler: Scaler,
}

impl VideoEncoder {
    fn open(width: u32, height: u32, rate: (i32, i32), settings: &EncodeSettings) -> Result<Self, PipelineError> {
        let codec = codec::encoder::find_by_name("libx264")
            .ok_or_else(|| PipelineError::Codec("this FFmpeg has no libx264 encoder".to_owned()))?;
        let mut encoder = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| PipelineError::Codec(format!("libx264: {e}")))?;
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(Pixel::YUV420P);
        encoder.set_time_base(Rational::new(1, 90_000));
        encoder.set_frame_rate(Some(Rational::new(rate.0, rate.1)));
        encoder.set_bit_rate(settings.bitrate_kbps as usize * 1000);
        encoder.set_max_b_frames(0);
        encoder.set_gop(X264_GOP);
        let mut options = Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("tune", "zerolatency");
        // A frame marked I becomes an IDR: every output segment can be decoded on its own.
        options.set("forced-idr", "1");
        let encoder = encoder
            .open_with(options)
            .map_err(|e| PipelineError::Codec(format!("open libx264 {width}x{height} ({}): {e}", settings.preset)))?;
        Ok(Self { encoder, width, height, scaler: Scaler::default() })
    }

    fn encode(&mut self, frame: &VideoFrame, ticks: i64, keyframe: bool) -> Result<Vec<Packet>, PipelineError> {
        let fits = frame.format() == PixelFormat::I420 && frame.width() == self.width && frame.height() == self.height;
        let mut picture = if fits {
            from_frame(frame)?
        } else {
            self.scaler.run(&from_frame(frame)?, Pixel::YUV420P, self.width, self.height)?
        };
        picture.set_pts(Some(ticks));
        picture.set_kind(if keyframe { picture::Type::I } else { picture::Type::None });
        self.encoder.send_frame(&picture).map_err(|e| PipelineError::Codec(format!("libx264: {e}")))?;
        Ok(self.receive())
    }

    fn receive(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        let mut packet = ffmpeg_next::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let Some(pts) = packet.pts() else { continue };
            let data = packet.data().unwrap_or_default().to_vec();
            packets.push(Packet { pts, dts: packet.dts().unwrap_or(pts), keyframe: packet.is_key(), data });
        }
        packets
    }

    fn flush(&mut self) -> Vec<Packet> {
        if self.encoder.send_eof().is_err() {
            return Vec::new();
        }
        self.receive()
    }
}
