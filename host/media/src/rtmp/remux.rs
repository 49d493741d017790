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
                tracing::warn!(
                    track = if kind == TagKind::Video { "video" } else { "audio" },
                    "rtmp ingest: a track that started after the others is dropped"
                );
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
#[path = "remux_tests.rs"]
mod tests;
