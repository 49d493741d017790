//! FLV → MPEG-TS without ffmpeg: the tags of an RTMP publish (FLV tag bodies, as `rml_rtmp` hands them
//! over) become TS packets of H.264 and AAC, laid out as ffmpeg's `-c copy -f mpegts` would.
//!
//! Video: the AVCDecoderConfigurationRecord gives the NAL length size and SPS/PPS; each frame is turned
//! into Annex-B with an access unit delimiter first and SPS/PPS before every IDR (see [`crate::avc`]);
//! PTS = DTS + the tag's composition time offset. Audio: the AudioSpecificConfig gives the ADTS header
//! put before every raw AAC frame. Timestamps are milliseconds (32 bits, wrapping) turned into 90 kHz on
//! one timeline that starts at [`TIMELINE_START`]. Script data (`onMetaData`) is not muxed.
//!
//! The PMT must list the streams before the first frame, so tags are held back until each track is
//! known: configured, unsupported, or absent according to the publisher's metadata; or, without that
//! certainty, for [`HOLD_MS`] of media. Other codecs (HEVC, AV1 and the like through enhanced RTMP, MP3,
//! Speex, ...) are logged and their track dropped; a publish with no usable track is refused.

use bytes::Bytes;

use crate::MediaError;
use crate::avc::{self, AvcConfig};
use crate::flv::{CODEC_AVC, SOUND_AAC, TagKind};
use crate::ts::{AacConfig, PTS_MASK, TsAudio, TsMuxer};

/// Where the first tag lands on the 90 kHz timeline: one second in, so that tags a little older than it
/// (audio and video interleave loosely) and the PCR (a little behind each DTS) stay positive.
const TIMELINE_START: i64 = 90_000;
/// How much media (by DTS) is held back at most while a track is still unknown.
const HOLD_MS: i64 = 500;
/// Bounds on the tags held back meanwhile.
const HOLD_MAX_TAGS: usize = 256;
const HOLD_MAX_BYTES: usize = 8 << 20;

/// FLV video frame type of video info/command frames (no media).
const FRAME_TYPE_COMMAND: u8 = 5;
/// AVC and AAC packet types.
const PACKET_CONFIG: u8 = 0;
const PACKET_MEDIA: u8 = 1;
/// The sound format and video flag that mark enhanced RTMP's extended headers.
const SOUND_EX_HEADER: u8 = 9;
const VIDEO_EX_HEADER: u8 = 0x80;

/// What the publisher's metadata (`onMetaData`) says will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    pub video: bool,
    pub audio: bool,
}

/// What is known about one track.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Track {
    /// Nothing seen yet.
    Absent,
    /// A codec we carry, without its configuration yet.
    Pending,
    /// Configured: it can be muxed.
    Ready,
    /// A codec we do not carry (named for the log).
    Unsupported(String),
}

/// What one tag body holds.
#[derive(Debug, PartialEq, Eq)]
enum Media<'a> {
    AvcConfig(&'a [u8]),
    AvcFrame {
        cts_ms: i32,
        data: &'a [u8],
    },
    AacConfig(&'a [u8]),
    AacFrame(&'a [u8]),
    /// Another codec.
    Unsupported(String),
    /// Nothing to mux (script data, command frames, end of sequence, empty tags).
    Nothing,
}

fn classify(kind: TagKind, body: &[u8]) -> Media<'_> {
    match (kind, body) {
        (TagKind::Video, [first, rest @ ..]) if first & VIDEO_EX_HEADER != 0 => {
            let fourcc = rest.get(..4).map(String::from_utf8_lossy).unwrap_or_default();
            Media::Unsupported(format!("enhanced RTMP video {fourcc:?}"))
        }
        (TagKind::Video, [first, ..]) if first >> 4 == FRAME_TYPE_COMMAND => Media::Nothing,
        (TagKind::Video, [first, rest @ ..]) if first & 0x0f == CODEC_AVC => match rest {
            [PACKET_CONFIG, _, _, _, record @ ..] => Media::AvcConfig(record),
            [PACKET_MEDIA, c0, c1, c2, data @ ..] => {
                // Composition time: signed 24 bits.
                let cts_ms = i32::from_be_bytes([*c0, *c1, *c2, 0]) >> 8;
                Media::AvcFrame { cts_ms, data }
            }
            _ => Media::Nothing,
        },
        (TagKind::Video, [first, ..]) => Media::Unsupported(video_codec_name(first & 0x0f)),
        (TagKind::Audio, [first, ..]) if first >> 4 == SOUND_EX_HEADER => {
            let fourcc = body.get(1..5).map(String::from_utf8_lossy).unwrap_or_default();
            Media::Unsupported(format!("enhanced RTMP audio {fourcc:?}"))
        }
        (TagKind::Audio, [first, rest @ ..]) if first >> 4 == SOUND_AAC => match rest {
            [PACKET_CONFIG, asc @ ..] => Media::AacConfig(asc),
            [PACKET_MEDIA, raw @ ..] if !raw.is_empty() => Media::AacFrame(raw),
            _ => Media::Nothing,
        },
        (TagKind::Audio, [first, ..]) => Media::Unsupported(sound_format_name(first >> 4)),
        _ => Media::Nothing,
    }
}

fn video_codec_name(id: u8) -> String {
    match id {
        2 => "Sorenson H.263 video".into(),
        3 | 6 => "Screen video".into(),
        4 | 5 => "VP6 video".into(),
        12 => "HEVC video (codec id 12)".into(),
        other => format!("video codec id {other}"),
    }
}

fn sound_format_name(format: u8) -> String {
    match format {
        0 | 3 => "PCM audio".into(),
        2 | 14 => "MP3 audio".into(),
        4..=6 => "Nellymoser audio".into(),
        7 | 8 => "G.711 audio".into(),
        11 => "Speex audio".into(),
        other => format!("sound format {other}"),
    }
}

/// A tag held back until the streams are known.
struct Held {
    kind: TagKind,
    ms: i64,
    body: Bytes,
}

/// Remuxes the FLV tags of one publish into MPEG-TS. Sans-IO: [`push`](Self::push) tags in arrival order,
/// [`finish`](Self::finish) at the end; both append whole TS packets to `out` (PAT/PMT first, then before
/// every keyframe), ready for a [`crate::TsSegmenter`]. Never panics on any input.
pub(crate) struct FlvToTs {
    expected: Option<Expected>,
    video: Track,
    audio: Track,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    held: Vec<Held>,
    held_bytes: usize,
    /// Set once the streams are decided.
    mux: Option<TsMuxer>,
    muxes_video: bool,
    muxes_audio: bool,
    /// The last raw timestamp and its unwrapped value.
    clock: Option<(u32, i64)>,
    audio_clock: Option<AudioClock>,
    /// The unwrapped timestamp that lands on [`TIMELINE_START`]: the earliest frame's.
    origin_ms: Option<i64>,
    au: Vec<u8>,
    /// Frames dropped as malformed, too large, without configuration, or of a track not muxed (for the log
    /// at the end).
    dropped: u64,
    warned_late_track: bool,
}

impl FlvToTs {
    pub fn new() -> FlvToTs {
        FlvToTs {
            expected: None,
            video: Track::Absent,
            audio: Track::Absent,
            avc: None,
            aac: None,
            held: Vec::new(),
            held_bytes: 0,
            mux: None,
            muxes_video: false,
            muxes_audio: false,
            clock: None,
            audio_clock: None,
            origin_ms: None,
            au: Vec::new(),
            dropped: 0,
            warned_late_track: false,
        }
    }

    /// The publisher's metadata announced these tracks: once they are configured there is no need to wait
    /// for others. Ignored once muxing started, or when it announces nothing.
    pub fn expect(&mut self, expected: Expected) {
        if self.mux.is_none() && (expected.video || expected.audio) {
            self.expected = Some(expected);
        }
    }

    /// Takes one tag (its RTMP timestamp is the DTS in ms). Fails when the streams were decided and none
    /// can be muxed (every track has a codec we do not carry).
    pub fn push(&mut self, kind: TagKind, timestamp: u32, body: Bytes, out: &mut Vec<u8>) -> Result<(), MediaError> {
        if kind == TagKind::Script {
            return Ok(());
        }
        let ms = self.unwrap(timestamp);
        if self.mux.is_some() {
            self.mux_tag(kind, ms, &body, out);
            return Ok(());
        }
        self.learn(kind, &body);
        self.held_bytes += body.len();
        self.held.push(Held { kind, ms, body });
        if self.decided() { self.start(out) } else { Ok(()) }
    }

    /// The publish ended: muxes what is held (deciding the streams with what is known).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let started = if self.mux.is_none() && !self.held.is_empty() { self.start(out) } else { Ok(()) };
        if self.dropped > 0 {
            tracing::info!(dropped = self.dropped, "rtmp ingest: frames dropped by the remux");
        }
        started
    }

    /// Extends a 32-bit millisecond timestamp (which wraps after ~49.7 days) to a continuous one; steps
    /// of up to ±2^31 ms from the previous tag are taken as they are, so tags may go back a little.
    fn unwrap(&mut self, raw: u32) -> i64 {
        let ms = match self.clock {
            None => i64::from(raw),
            Some((last_raw, last_ms)) => last_ms.wrapping_add(i64::from(raw.wrapping_sub(last_raw) as i32)),
        };
        self.clock = Some((raw, ms));
        ms
    }

    /// Updates what is known about the tracks from a tag seen before muxing started.
    fn learn(&mut self, kind: TagKind, body: &[u8]) {
        match classify(kind, body) {
            Media::AvcConfig(record) => match AvcConfig::parse(record) {
                Some(config) => {
                    self.avc = Some(config);
                    self.video = Track::Ready;
                }
                None => note_pending(&mut self.video),
            },
            Media::AacConfig(asc) => match AacConfig::parse(asc) {
                Some(config) => {
                    self.aac = Some(config);
                    self.audio = Track::Ready;
                }
                None if self.audio != Track::Ready => {
                    let start = asc.get(..asc.len().min(8)).unwrap_or_default();
                    self.audio =
                        Track::Unsupported(format!("AAC configuration {start:02x?} (not expressible in ADTS)"));
                }
                None => {}
            },
            Media::AvcFrame { .. } => note_pending(&mut self.video),
            Media::AacFrame(_) => note_pending(&mut self.audio),
            Media::Unsupported(what) => {
                let track = if kind == TagKind::Video { &mut self.video } else { &mut self.audio };
                if matches!(track, Track::Absent | Track::Pending) {
                    *track = Track::Unsupported(what);
                }
            }
            Media::Nothing => {}
        }
    }

    /// Whether the streams can be decided: every track is configured, unsupported, or (by the metadata)
    /// not coming; or enough was held back waiting.
    fn decided(&self) -> bool {
        let settled = |track: &Track, expected: Option<bool>| match track {
            Track::Ready | Track::Unsupported(_) => true,
            Track::Pending => false,
            Track::Absent => expected == Some(false),
        };
        let known = settled(&self.video, self.expected.map(|e| e.video))
            && settled(&self.audio, self.expected.map(|e| e.audio));
        let span = match (self.held.first(), self.held.last()) {
            (Some(first), Some(last)) => last.ms.wrapping_sub(first.ms),
            _ => 0,
        };
        known || span >= HOLD_MS || self.held.len() >= HOLD_MAX_TAGS || self.held_bytes >= HOLD_MAX_BYTES
    }

    /// Decides the streams, writes PAT/PMT and muxes what was held.
    fn start(&mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.muxes_video = self.video == Track::Ready;
        self.muxes_audio = self.audio == Track::Ready;
        for (name, track) in [("video", &self.video), ("audio", &self.audio)] {
            match track {
                Track::Unsupported(what) => {
                    tracing::warn!(track = name, "rtmp ingest: {what} is not supported; dropped")
                }
                Track::Pending => tracing::warn!(track = name, "rtmp ingest: no codec configuration; dropped"),
                Track::Absent | Track::Ready => {}
            }
        }
        if !self.muxes_video && !self.muxes_audio {
            self.held.clear();
            return Err(MediaError::Protocol("rtmp publish has no H.264 video or AAC audio".into()));
        }
        tracing::debug!(video = self.muxes_video, audio = self.muxes_audio, "rtmp ingest: streams decided");
        // Frames (not configuration records, whose timestamps some publishers set apart) set the origin.
        let muxed_frame = |h: &&Held| match classify(h.kind, &h.body) {
            Media::AvcFrame { .. } => self.muxes_video,
            Media::AacFrame(_) => self.muxes_audio,
            _ => false,
        };
        self.origin_ms = self.held.iter().filter(muxed_frame).map(|h| h.ms).min();
        let mut mux = TsMuxer::with_streams(self.muxes_video, self.muxes_audio.then_some(TsAudio::Aac));
        mux.psi(out);
        self.mux = Some(mux);
        for held in std::mem::take(&mut self.held) {
            self.mux_tag(held.kind, held.ms, &held.body, out);
        }
        self.held_bytes = 0;
        Ok(())
    }

    /// Muxes one tag once the streams are decided.
    fn mux_tag(&mut self, kind: TagKind, ms: i64, body: &[u8], out: &mut Vec<u8>) {
        let media = classify(kind, body);
        let muxed = if kind == TagKind::Video { self.muxes_video } else { self.muxes_audio };
        if !muxed {
            let track = if kind == TagKind::Video { &self.video } else { &self.audio };
            if *track == Track::Absent && !matches!(media, Media::Nothing) && !self.warned_late_track {
                tracing::warn!(?kind, "rtmp ingest: a track that started after the others is dropped");
                self.warned_late_track = true;
            }
            if matches!(media, Media::AvcFrame { .. } | Media::AacFrame(_)) {
                self.dropped += 1;
            }
            return;
        }
        let Some(mux) = self.mux.as_mut() else { return };
        match media {
            Media::AvcConfig(record) => match AvcConfig::parse(record) {
                Some(config) => self.avc = Some(config),
                None => tracing::debug!("rtmp ingest: malformed AVC configuration ignored"),
            },
            Media::AvcFrame { cts_ms, data } => {
                let Some(config) = &self.avc else {
                    self.dropped += 1;
                    return;
                };
                self.au.clear();
                match avc::to_annexb(data, config, &mut self.au) {
                    Some(keyframe) => {
                        let origin = *self.origin_ms.get_or_insert(ms);
                        let dts = wrap(ticks(origin, ms));
                        let pts = wrap(ticks(origin, ms.wrapping_add(i64::from(cts_ms))));
                        if keyframe {
                            mux.psi(out);
                        }
                        mux.video(pts, dts, keyframe, &self.au, out);
                    }
                    None => self.dropped += 1,
                }
            }
            Media::AacConfig(asc) => match AacConfig::parse(asc) {
                Some(config) => self.aac = Some(config),
                None => tracing::debug!("rtmp ingest: unusable AAC configuration ignored"),
            },
            Media::AacFrame(raw) => {
                let Some(config) = self.aac else {
                    self.dropped += 1;
                    return;
                };
                let origin = *self.origin_ms.get_or_insert(ms);
                let pts = wrap(audio_ticks(&mut self.audio_clock, ticks(origin, ms), &config));
                self.dropped += u64::from(!mux.aac(pts, &config, raw, out));
            }
            // The codec changed mid-stream.
            Media::Unsupported(_) => self.dropped += 1,
            Media::Nothing => {}
        }
    }
}

/// Milliseconds on the unwrapped clock → 90 kHz ticks on the (not yet wrapped) TS timeline, where
/// `origin` lands on [`TIMELINE_START`].
fn ticks(origin: i64, ms: i64) -> i64 {
    TIMELINE_START.wrapping_add(ms.wrapping_sub(origin).wrapping_mul(90))
}

/// A TS timestamp (33 bits) from the timeline.
fn wrap(ticks: i64) -> u64 {
    // By a positive modulus: in 0..2^33.
    ticks.rem_euclid(PTS_MASK as i64 + 1) as u64
}

/// Audio time counted in samples from an anchor, as ffmpeg does when it copies audio: tags only have
/// milliseconds, so this keeps AAC timestamps exact (and evenly spaced) while they agree with the tags.
#[derive(Debug, Clone, Copy)]
struct AudioClock {
    /// Timeline ticks of the anchor frame.
    anchor: i64,
    /// Samples since the anchor.
    samples: i64,
}

/// How far (90 kHz ticks) the sample count may be from a tag's timestamp before it is re-anchored:
/// millisecond rounding, with the margin ffmpeg allows.
const AUDIO_CLOCK_SLACK: u64 = 135;

impl AudioClock {
    fn ticks(&self, rate: i64) -> i64 {
        self.anchor.wrapping_add(self.samples.saturating_mul(90_000).saturating_add(rate / 2) / rate)
    }
}

/// The timeline ticks of an AAC frame whose tag says `tag_ticks`; advances the clock by one frame.
fn audio_ticks(clock: &mut Option<AudioClock>, tag_ticks: i64, config: &AacConfig) -> i64 {
    let rate = i64::from(config.sample_rate().max(1));
    let now = match *clock {
        Some(c) if c.ticks(rate).wrapping_sub(tag_ticks).unsigned_abs() <= AUDIO_CLOCK_SLACK => c,
        _ => AudioClock { anchor: tag_ticks, samples: 0 },
    };
    *clock = Some(AudioClock { samples: now.samples.saturating_add(i64::from(config.frame_samples)), ..now });
    now.ticks(rate)
}

/// A supported codec was seen without (a usable) configuration.
fn note_pending(track: &mut Track) {
    if *track == Track::Absent {
        *track = Track::Pending;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{FrameKind, TsDemuxer};
    use proptest::prelude::*;

    /// An AVC sequence header: one SPS, one PPS, 4-byte lengths.
    fn avc_config_tag() -> Bytes {
        let mut body = vec![0x17, 0, 0, 0, 0];
        body.extend_from_slice(&[1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 0x42, 1, 0, 2, 0x68, 0xce]);
        Bytes::from(body)
    }

    /// An AVC frame: one slice NAL (IDR or not) with a composition time offset.
    fn avc_frame_tag(idr: bool, cts_ms: i32, fill: u8) -> Bytes {
        let cts = cts_ms.to_be_bytes();
        let mut body = vec![if idr { 0x17 } else { 0x27 }, 1, cts[1], cts[2], cts[3]];
        let nal = [if idr { 0x65 } else { 0x41 }, fill, fill, fill];
        body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        body.extend_from_slice(&nal);
        Bytes::from(body)
    }

    /// AAC-LC, 44.1 kHz, stereo.
    fn aac_config_tag() -> Bytes {
        Bytes::from_static(&[0xaf, 0, 0x12, 0x10])
    }

    fn aac_frame_tag(fill: u8) -> Bytes {
        Bytes::from(vec![0xaf, 1, fill, fill, fill])
    }

    fn demux(ts: &[u8]) -> Vec<crate::ts::TsFrame> {
        let mut demux = TsDemuxer::new();
        let mut frames = demux.push(ts);
        frames.extend(demux.finish());
        frames
    }

    #[test]
    fn h264_and_aac_become_ts_with_timestamps_on_one_timeline() {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.expect(Expected { video: true, audio: true });
        remux.push(TagKind::Script, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData"), &mut ts).expect("ok");
        remux.push(TagKind::Video, 1000, avc_config_tag(), &mut ts).expect("ok");
        assert!(ts.is_empty(), "held until the audio is configured too");
        remux.push(TagKind::Audio, 1000, aac_config_tag(), &mut ts).expect("ok");
        // B-frame order: I (pts 1066), P (pts 1133), B (pts 1100).
        remux.push(TagKind::Video, 1000, avc_frame_tag(true, 66, 1), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 1010, aac_frame_tag(2), &mut ts).expect("ok");
        remux.push(TagKind::Video, 1033, avc_frame_tag(false, 100, 3), &mut ts).expect("ok");
        remux.push(TagKind::Video, 1066, avc_frame_tag(false, 34, 4), &mut ts).expect("ok");
        remux.finish(&mut ts).expect("ok");

        let frames = demux(&ts);
        let video: Vec<_> = frames.iter().filter(|f| f.kind == FrameKind::H264).collect();
        let audio: Vec<_> = frames.iter().filter(|f| f.kind == FrameKind::Other(0x0f)).collect();
        assert_eq!(video.len(), 3);
        assert_eq!(audio.len(), 1);
        let at = |ms: u64| Some(90_000 + ms * 90);
        assert_eq!((video[0].dts, video[0].pts, video[0].keyframe), (at(0), at(66), true));
        assert_eq!((video[1].dts, video[1].pts, video[1].keyframe), (at(33), at(133), false));
        assert_eq!((video[2].dts, video[2].pts), (at(66), at(100)));
        assert_eq!(audio[0].pts, at(10));
        // AUD, SPS, PPS, IDR.
        assert_eq!(
            &video[0].data[..],
            [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 1, 1, 1]
        );
        assert_eq!(&video[1].data[..], [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x41, 3, 3, 3]);
        // ADTS header for 3 bytes (frame length 10), then the frame.
        assert_eq!(&audio[0].data[..], [0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 2, 2, 2]);
    }

    #[test]
    fn timestamps_go_on_across_the_32_bit_wrap() {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.expect(Expected { video: true, audio: false });
        let start = u32::MAX - 40;
        remux.push(TagKind::Video, start, avc_config_tag(), &mut ts).expect("ok");
        for i in 0..4u32 {
            remux.push(TagKind::Video, start.wrapping_add(i * 33), avc_frame_tag(i == 0, 0, 1), &mut ts).expect("ok");
        }
        let dts: Vec<_> = demux(&ts).iter().map(|f| f.dts).collect();
        assert_eq!(dts, [0u64, 33, 66, 99].map(|ms| Some(90_000 + ms * 90)));
        // And the unwrapped clock itself, also going back a little.
        let mut remux = FlvToTs::new();
        assert_eq!(remux.unwrap(u32::MAX), i64::from(u32::MAX));
        assert_eq!(remux.unwrap(5), i64::from(u32::MAX) + 6);
        assert_eq!(remux.unwrap(u32::MAX - 1), i64::from(u32::MAX) - 1);
        assert_eq!(remux.unwrap(10), i64::from(u32::MAX) + 11);
    }

    #[test]
    fn aac_timestamps_count_samples_while_they_agree_with_the_tags() {
        let config = AacConfig::parse(&[0x12, 0x10]).expect("lc, 44.1 kHz");
        let mut clock = None;
        // 1024 samples at 44.1 kHz are 23.22 ms (2089.8 ticks); the tags round to milliseconds.
        let got: Vec<i64> = [0, 23, 46, 70, 93].iter().map(|&ms| audio_ticks(&mut clock, ms * 90, &config)).collect();
        assert_eq!(got, [0, 2090, 4180, 6269, 8359]);
        // A gap (frames lost): anchored at the tag again.
        assert_eq!(audio_ticks(&mut clock, 200 * 90, &config), 18_000);
        assert_eq!(audio_ticks(&mut clock, 223 * 90, &config), 18_000 + 2090);
    }

    #[test]
    fn the_first_frame_not_a_configuration_record_starts_the_timeline() {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.expect(Expected { video: true, audio: true });
        remux.push(TagKind::Video, 5000, avc_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 5000, aac_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 20, aac_frame_tag(1), &mut ts).expect("ok");
        remux.push(TagKind::Video, 33, avc_frame_tag(true, 0, 2), &mut ts).expect("ok");
        let pts: Vec<_> = demux(&ts).iter().map(|f| f.pts).collect();
        assert_eq!(pts, [Some(90_000), Some(90_000 + 13 * 90)]);
    }

    #[test]
    fn without_metadata_a_lone_track_starts_after_the_hold() {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
        for i in 0..30u32 {
            remux.push(TagKind::Audio, i * 23, aac_frame_tag(i as u8), &mut ts).expect("ok");
            assert_eq!(ts.is_empty(), i * 23 < HOLD_MS as u32, "held while the video might still come");
        }
        remux.finish(&mut ts).expect("ok");
        let frames = demux(&ts);
        assert_eq!(frames.len(), 30);
        assert!(frames.iter().all(|f| f.kind == FrameKind::Other(0x0f)));
        // Audio only: the audio carries the PCR.
        let first_audio =
            ts.chunks(188).find(|p| p[1] & 0x40 != 0 && u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]) == 0x101);
        assert!(first_audio.is_some_and(|p| p[3] & 0x20 != 0 && p[5] & 0x10 != 0), "PCR on audio");
    }

    #[test]
    fn unsupported_tracks_are_dropped_and_a_publish_without_any_is_refused() {
        // HEVC (legacy id 12) with AAC: audio only.
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.push(TagKind::Video, 0, Bytes::from_static(&[0x1c, 0, 0, 0, 0, 1]), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 20, aac_frame_tag(1), &mut ts).expect("ok");
        remux.push(TagKind::Video, 33, Bytes::from_static(&[0x2c, 1, 0, 0, 0, 0, 0, 0, 1, 0x02]), &mut ts).expect("ok");
        remux.finish(&mut ts).expect("ok");
        let frames = demux(&ts);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].kind, FrameKind::Other(0x0f));

        // Enhanced-RTMP HEVC with MP3: refused as soon as both are known.
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        let hevc = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1, 2, 3]);
        remux.push(TagKind::Video, 0, hevc, &mut ts).expect("still waiting for audio");
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb]);
        assert!(matches!(remux.push(TagKind::Audio, 0, mp3, &mut ts), Err(MediaError::Protocol(_))));
        assert!(ts.is_empty());
    }

    #[test]
    fn late_tracks_and_frames_before_configuration_are_dropped() {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.expect(Expected { video: true, audio: false });
        remux.push(TagKind::Video, 0, avc_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Video, 0, avc_frame_tag(true, 0, 1), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Audio, 10, aac_frame_tag(1), &mut ts).expect("ok");
        remux.push(TagKind::Video, 33, avc_frame_tag(false, 0, 2), &mut ts).expect("ok");
        let frames = demux(&ts);
        assert_eq!(frames.iter().map(|f| f.kind).collect::<Vec<_>>(), [FrameKind::H264, FrameKind::H264]);
        assert_eq!(remux.dropped, 1);
    }

    #[test]
    fn composition_offsets_are_signed_24_bits() {
        assert_eq!(
            classify(TagKind::Video, &[0x27, 1, 0xff, 0xff, 0xdf, 7]),
            Media::AvcFrame { cts_ms: -33, data: &[7] }
        );
        assert_eq!(classify(TagKind::Video, &[0x27, 1, 0, 0x01, 0, 7]), Media::AvcFrame { cts_ms: 256, data: &[7] });
        assert_eq!(classify(TagKind::Video, &[0x57, 0]), Media::Nothing, "command frame");
        assert_eq!(classify(TagKind::Video, &[0x17, 2, 0, 0, 0]), Media::Nothing, "end of sequence");
        assert_eq!(classify(TagKind::Audio, &[]), Media::Nothing);
    }

    fn tag_strategy() -> impl Strategy<Value = (bool, u32, Vec<u8>)> {
        let header = prop_oneof![
            Just(vec![0x17, 0]),
            Just(vec![0x17, 1]),
            Just(vec![0x27, 1]),
            Just(vec![0xaf, 0]),
            Just(vec![0xaf, 1]),
            Just(vec![0x90]),
            Just(vec![]),
        ];
        (any::<bool>(), any::<u32>(), header, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(
            |(video, ts, mut head, tail)| {
                head.extend(tail);
                (video, ts, head)
            },
        )
    }

    proptest! {
        #[test]
        fn never_panics_and_writes_whole_packets(tags in proptest::collection::vec(tag_strategy(), 0..60), meta in any::<Option<(bool, bool)>>()) {
            let mut remux = FlvToTs::new();
            if let Some((video, audio)) = meta {
                remux.expect(Expected { video, audio });
            }
            let mut ts = Vec::new();
            for (video, timestamp, body) in tags {
                let kind = if video { TagKind::Video } else { TagKind::Audio };
                if remux.push(kind, timestamp, Bytes::from(body), &mut ts).is_err() {
                    break;
                }
            }
            let _ = remux.finish(&mut ts);
            prop_assert_eq!(ts.len() % 188, 0);
            let _ = demux(&ts);
        }

        #[test]
        fn valid_streams_keep_every_frame(frames in proptest::collection::vec((any::<bool>(), 0u32..100, -50i32..200), 1..80), base in any::<u32>()) {
            let mut remux = FlvToTs::new();
            let mut ts = Vec::new();
            remux.push(TagKind::Video, base, avc_config_tag(), &mut ts).expect("ok");
            remux.push(TagKind::Audio, base, aac_config_tag(), &mut ts).expect("ok");
            let mut dts = base;
            let (mut videos, mut audios) = (0, 0);
            for (i, (video, step, cts)) in frames.into_iter().enumerate() {
                dts = dts.wrapping_add(step);
                let body = if video { avc_frame_tag(i == 0, cts, i as u8) } else { aac_frame_tag(i as u8) };
                let kind = if video { TagKind::Video } else { TagKind::Audio };
                remux.push(kind, dts, body, &mut ts).expect("ok");
                if video { videos += 1 } else { audios += 1 }
            }
            remux.finish(&mut ts).expect("ok");
            let frames = demux(&ts);
            prop_assert_eq!(frames.iter().filter(|f| f.kind == FrameKind::H264).count(), videos);
            prop_assert_eq!(frames.iter().filter(|f| f.kind == FrameKind::Other(0x0f)).count(), audios);
        }
    }
}
