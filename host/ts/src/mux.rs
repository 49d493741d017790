//! An MPEG-TS muxer for H.264 with Opus or AAC, laid out the way ffmpeg writes and reads it. Opus is
//! stream_type 0x06 with an `Opus` registration descriptor, a 0x7f/0x80 extension descriptor,
//! private_stream_1 PES and 0x7FE0 control headers; AAC is stream_type 0x0F with ADTS frames. Needed
//! where no ffmpeg sits in between: RTP from WHIP, FLV from RTMP into segments.

use crate::aac::AacConfig;
use crate::{PACKET_SIZE as TS_PACKET_SIZE, SYNC_BYTE, Timestamp, crc32_mpeg2, encode_pcr};

/// PTS/DTS wrap at 2^33 ticks of 90 kHz.
const PTS_MASK: u64 = Timestamp::MODULUS - 1;
/// stream_type of H.264 video.
const STREAM_TYPE_H264: u8 = 0x1b;

const PMT_PID: u16 = 0x1000;
/// PID of the H.264 stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the audio stream (Opus or AAC).
pub const AUDIO_PID: u16 = 0x101;
/// The PCR sent with an access unit is this far (90 kHz ticks) behind its DTS, so that a decoder holds the
/// frame before it is due.
const PCR_LEAD: u64 = 9000;
/// stream_type of AAC in ADTS frames.
const STREAM_TYPE_AAC: u8 = 0x0f;

/// The audio stream of a [`TsMuxer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsAudio {
    /// Opus with 1 or 2 channels, in ffmpeg's layout ([`TsMuxer::opus`]).
    Opus {
        /// 1 (mono) or 2 (stereo).
        channels: u8,
    },
    /// AAC, each frame behind an ADTS header ([`TsMuxer::aac`]).
    Aac,
}

/// Writes PAT, PMT and PES packets for one program with H.264 video and/or one audio stream.
///
/// Sans-IO: every call appends whole 188-byte packets to `out`. Timestamps are 90 kHz ticks (they wrap at
/// 2^33). Write [`psi`](Self::psi) before each keyframe so that the stream can be cut there; a
/// segmenter after this muxer turns the output into segments (keyframes carry the
/// random_access_indicator). The PCR rides on the video, or on the audio when there is no video.
#[derive(Debug)]
pub struct TsMuxer {
    video: bool,
    audio: Option<TsAudio>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

impl TsMuxer {
    /// A muxer for H.264 video plus, when `opus_channels` is set (1 or 2), Opus audio.
    pub fn new(opus_channels: Option<u8>) -> TsMuxer {
        TsMuxer::with_streams(true, opus_channels.map(|channels| TsAudio::Opus { channels }))
    }

    /// A muxer for H.264 video (when `video`) and the given audio. Access units of a stream it was not
    /// made for are ignored.
    pub fn with_streams(video: bool, audio: Option<TsAudio>) -> TsMuxer {
        let audio = audio.map(|a| match a {
            TsAudio::Opus { channels } => TsAudio::Opus { channels: channels.clamp(1, 2) },
            TsAudio::Aac => TsAudio::Aac,
        });
        TsMuxer { video, audio, cc_pat: 0, cc_pmt: 0, cc_video: 0, cc_audio: 0 }
    }

    /// Changes the streams the next [`psi`](Self::psi) announces, keeping the continuity counters.
    pub fn set_streams(&mut self, video: bool, audio: Option<TsAudio>) {
        let fresh = TsMuxer::with_streams(video, audio);
        (self.video, self.audio) = (fresh.video, fresh.audio);
    }

    /// The PID that carries the PCR (none when the muxer has no stream at all).
    fn pcr_pid(&self) -> u16 {
        match (self.video, self.audio) {
            (true, _) => VIDEO_PID,
            (false, Some(_)) => AUDIO_PID,
            (false, None) => 0x1fff,
        }
    }

    /// Appends a PAT and a PMT.
    pub fn psi(&mut self, out: &mut Vec<u8>) {
        // PAT: program 1 → PMT_PID.
        let mut pat = vec![0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01];
        pat.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
        finish_section(&mut pat);
        psi_packet(0, &mut self.cc_pat, &pat, out);

        let mut pmt = vec![0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00];
        pmt.extend_from_slice(&(0xe000 | self.pcr_pid()).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]);
        if self.video {
            pmt.push(STREAM_TYPE_H264);
            pmt.extend_from_slice(&(0xe000 | VIDEO_PID).to_be_bytes());
            pmt.extend_from_slice(&[0xf0, 0x00]);
        }
        match self.audio {
            Some(TsAudio::Opus { channels }) => {
                pmt.push(0x06);
                pmt.extend_from_slice(&(0xe000 | AUDIO_PID).to_be_bytes());
                let descriptors = [0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, channels];
                pmt.extend_from_slice(&(0xf000 | descriptors.len() as u16).to_be_bytes());
                pmt.extend_from_slice(&descriptors);
            }
            Some(TsAudio::Aac) => {
                pmt.push(STREAM_TYPE_AAC);
                pmt.extend_from_slice(&(0xe000 | AUDIO_PID).to_be_bytes());
                pmt.extend_from_slice(&[0xf0, 0x00]);
            }
            None => {}
        }
        finish_section(&mut pmt);
        psi_packet(PMT_PID, &mut self.cc_pmt, &pmt, out);
    }

    /// Appends one H.264 access unit (Annex-B, with SPS/PPS before IDRs) as a PES (ignored when the muxer
    /// has no video). Keyframes get the random_access_indicator; every AU carries a PCR.
    pub fn video(&mut self, pts: u64, dts: u64, keyframe: bool, annexb: &[u8], out: &mut Vec<u8>) {
        if !self.video {
            return;
        }
        let (pts, dts) = (pts & PTS_MASK, dts & PTS_MASK);
        let mut pes = pes_header(0xe0, pts, (dts != pts).then_some(dts), None);
        // An access unit delimiter first, as H.264 in TS requires.
        if !annexb.starts_with(&[0, 0, 0, 1, 0x09]) {
            pes.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
        }
        pes.extend_from_slice(annexb);
        let pcr = dts.wrapping_sub(PCR_LEAD) & PTS_MASK;
        write_pes(VIDEO_PID, &mut self.cc_video, &pes, Some(pcr), keyframe, out);
    }

    /// Appends one Opus packet as a PES (ignored when the muxer has no Opus audio).
    pub fn opus(&mut self, pts: u64, packet: &[u8], out: &mut Vec<u8>) {
        if !matches!(self.audio, Some(TsAudio::Opus { .. })) {
            return;
        }
        let mut es = Vec::with_capacity(packet.len() + 3 + packet.len() / 255);
        es.extend_from_slice(&[0x7f, 0xe0]);
        es.extend(std::iter::repeat_n(0xff, packet.len() / 255));
        es.push((packet.len() % 255) as u8);
        es.extend_from_slice(packet);
        self.audio_pes(pts, &es, out);
    }

    /// Appends one raw AAC frame (as FLV and MP4 carry it), behind an ADTS header made from `config`, as
    /// a PES. Returns `false` when nothing was written: the muxer has no AAC audio, or the frame is too
    /// long for ADTS.
    pub fn aac(&mut self, pts: u64, config: &AacConfig, raw: &[u8], out: &mut Vec<u8>) -> bool {
        if self.audio != Some(TsAudio::Aac) {
            return false;
        }
        let Some(header) = config.adts_header(raw.len()) else { return false };
        let mut es = Vec::with_capacity(header.len() + raw.len());
        es.extend_from_slice(&header);
        es.extend_from_slice(raw);
        self.audio_pes(pts, &es, out);
        true
    }

    /// Appends AAC already in ADTS frames (a PES payload as it came from another transport stream) as
    /// one PES (ignored when the muxer has no AAC audio).
    pub fn adts(&mut self, pts: u64, adts: &[u8], out: &mut Vec<u8>) {
        if self.audio == Some(TsAudio::Aac) {
            self.audio_pes(pts, adts, out);
        }
    }

    /// Writes an audio PES; without video it carries the PCR (and random access, every frame being one).
    fn audio_pes(&mut self, pts: u64, es: &[u8], out: &mut Vec<u8>) {
        let pts = pts & PTS_MASK;
        let stream_id = if self.audio == Some(TsAudio::Aac) { 0xc0 } else { 0xbd };
        let mut pes = pes_header(stream_id, pts, None, Some(es.len()));
        pes.extend_from_slice(es);
        let pcr = (!self.video).then(|| pts.wrapping_sub(PCR_LEAD) & PTS_MASK);
        write_pes(AUDIO_PID, &mut self.cc_audio, &pes, pcr, pcr.is_some(), out);
    }
}

/// Fills in section_length and appends the CRC.
fn finish_section(section: &mut Vec<u8>) {
    let len = (section.len() + 1) as u16;
    if let Some([hi, lo]) = section.get_mut(1..3) {
        *hi = 0xb0 | ((len >> 8) as u8 & 0x0f);
        *lo = len as u8;
    }
    let crc = crc32_mpeg2(section);
    section.extend_from_slice(&crc.to_be_bytes());
}

fn psi_packet(pid: u16, cc: &mut u8, section: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | (*cc & 0x0f), 0x00]);
    *cc = cc.wrapping_add(1);
    out.extend_from_slice(section);
    out.resize(start + TS_PACKET_SIZE, 0xff);
}

/// A PES header; `len` is the elementary stream length when the PES length field can hold it.
fn pes_header(stream_id: u8, pts: u64, dts: Option<u64>, es_len: Option<usize>) -> Vec<u8> {
    let header_data = if dts.is_some() { 10 } else { 5 };
    let pes_len = es_len.map(|l| l + 3 + header_data).filter(|&l| l <= usize::from(u16::MAX)).unwrap_or(0);
    let mut h = vec![0, 0, 1, stream_id];
    h.extend_from_slice(&(pes_len as u16).to_be_bytes());
    h.push(0x80);
    match dts {
        Some(dts) => {
            h.extend_from_slice(&[0xc0, 10]);
            h.extend_from_slice(&Timestamp::wrap(pts).to_pes_field(0b0011));
            h.extend_from_slice(&Timestamp::wrap(dts).to_pes_field(0b0001));
        }
        None => {
            h.extend_from_slice(&[0x80, 5]);
            h.extend_from_slice(&Timestamp::wrap(pts).to_pes_field(0b0010));
        }
    }
    h
}

/// Splits a PES into packets; the first carries PUSI and, when asked, a PCR and the random access flag.
fn write_pes(pid: u16, cc: &mut u8, pes: &[u8], pcr: Option<u64>, random_access: bool, out: &mut Vec<u8>) {
    let mut rest = pes;
    let mut first = true;
    while !rest.is_empty() {
        let mut af: Vec<u8> = Vec::new();
        if first && (pcr.is_some() || random_access) {
            af.push((if random_access { 0x40 } else { 0 }) | (if pcr.is_some() { 0x10 } else { 0 }));
            if let Some(pcr) = pcr {
                // `pcr` is in 90 kHz ticks: the PCR base, with a zero 27 MHz extension.
                af.extend_from_slice(&encode_pcr(pcr * 300));
            }
        }
        // Room for payload when the adaptation field (if any) is its length byte plus `af`.
        let af_total = if af.is_empty() { 0 } else { 1 + af.len() };
        let room = TS_PACKET_SIZE - 4 - af_total;
        let take = rest.len().min(room);
        let mut stuffing = room - take;
        if stuffing > 0 && af.is_empty() {
            // Open an adaptation field to hold the stuffing: its length byte takes one byte.
            stuffing -= 1;
            if stuffing > 0 {
                af.push(0x00);
                stuffing -= 1;
            }
            af.extend(std::iter::repeat_n(0xff, stuffing));
            out.extend_from_slice(&header(pid, first, cc, true));
            out.push(af.len() as u8);
        } else {
            af.extend(std::iter::repeat_n(0xff, stuffing));
            out.extend_from_slice(&header(pid, first, cc, !af.is_empty()));
            if !af.is_empty() {
                out.push(af.len() as u8);
            }
        }
        out.extend_from_slice(&af);
        let (now, later) = rest.split_at(take);
        out.extend_from_slice(now);
        rest = later;
        first = false;
    }
}

fn header(pid: u16, pusi: bool, cc: &mut u8, adaptation: bool) -> [u8; 4] {
    let h = [
        SYNC_BYTE,
        (if pusi { 0x40 } else { 0 }) | (pid >> 8) as u8 & 0x1f,
        pid as u8,
        (if adaptation { 0x30 } else { 0x10 }) | (*cc & 0x0f),
    ];
    *cc = cc.wrapping_add(1);
    h
}

#[cfg(test)]
mod tests {
    use crate::{Packet, Pat, PesHeader, Pmt, Section, section_in_unit_start};

    use super::*;

    /// The section starting in a packet, its CRC checked.
    fn section_of(pkt: &[u8]) -> Section<'_> {
        let payload = Packet::parse(pkt).expect("packet").payload.expect("payload");
        Section::parse(section_in_unit_start(payload).expect("section")).expect("valid section")
    }

    /// The streams of the PMT and its PCR PID.
    fn pmt_of(ts: &[u8]) -> (Vec<(u8, u16)>, u16) {
        let pmt = Pmt::parse(&section_of(&ts[TS_PACKET_SIZE..2 * TS_PACKET_SIZE])).expect("pmt");
        (pmt.streams.iter().map(|s| (s.stream_type, s.pid.value())).collect(), pmt.pcr_pid.value())
    }

    fn pes_pts(pes: &[u8]) -> Option<u64> {
        PesHeader::parse(pes).ok()?.pts.map(Timestamp::ticks)
    }

    #[test]
    fn aac_goes_in_adts_and_carries_the_pcr_without_video() {
        let config = AacConfig { object_type: 2, sampling_index: 4, channels: 2, frame_samples: 1024 };
        let mut mux = TsMuxer::with_streams(false, Some(TsAudio::Aac));
        let mut out = Vec::new();
        mux.psi(&mut out);
        assert_eq!(pmt_of(&out), (vec![(0x0f, AUDIO_PID)], AUDIO_PID));
        assert!(mux.aac(90_000, &config, &[0x21; 300], &mut out));
        assert!(!mux.aac(90_000, &config, &vec![0; 9000], &mut out), "too long for ADTS");
        let mut adts = Vec::new();
        mux.adts(90_000, &[0xff, 0xf1], &mut adts);
        assert_eq!(adts.len(), TS_PACKET_SIZE, "ADTS as it comes");
        mux.video(0, 0, true, &[0, 0, 0, 1, 0x65], &mut out);
        mux.opus(0, &[1], &mut out);
        assert_eq!(out.len(), 4 * TS_PACKET_SIZE, "PSI and one AAC frame; nothing else");
        let pkt = &out[2 * TS_PACKET_SIZE..3 * TS_PACKET_SIZE];
        let p = Packet::parse(pkt).expect("audio");
        assert_eq!((p.pid.value(), p.payload_unit_start, p.is_random_access()), (AUDIO_PID, true, true));
        assert_eq!(pkt[5] & 0x10, 0x10, "PCR");
        let pes = p.payload.expect("payload");
        assert_eq!((pes[3], pes_pts(pes)), (0xc0, Some(90_000)));
        assert_eq!(&pes[14..21], config.adts_header(300).expect("fits"));

        // With video: AAC beside H.264, the PCR on the video.
        let mut mux = TsMuxer::with_streams(true, Some(TsAudio::Aac));
        let mut out = Vec::new();
        mux.psi(&mut out);
        assert_eq!(pmt_of(&out), (vec![(0x1b, VIDEO_PID), (0x0f, AUDIO_PID)], VIDEO_PID));
    }

    #[test]
    fn psi_and_pes_parse_back() {
        let mut mux = TsMuxer::new(Some(2));
        let mut out = Vec::new();
        mux.psi(&mut out);
        for len in [0usize, 1, 150, 170, 175, 176, 177, 182, 183, 184, 185, 400, 2000] {
            mux.video(90_000 + len as u64, 90_000, len % 2 == 0, &vec![0x42; len], &mut out);
            mux.opus(90_000, &vec![0x11; len], &mut out);
        }
        assert_eq!(out.len() % TS_PACKET_SIZE, 0);
        let packets: Vec<&[u8]> = out.chunks(TS_PACKET_SIZE).collect();
        let pat = Pat::parse(&section_of(packets[0])).expect("pat");
        assert_eq!(pat.programs.iter().map(|p| (p.program_number, p.pid.value())).collect::<Vec<_>>(), [(1, PMT_PID)]);
        let pmt = Pmt::parse(&section_of(packets[1])).expect("pmt");
        assert_eq!(
            pmt.streams.iter().map(|s| (s.stream_type, s.pid.value())).collect::<Vec<_>>(),
            [(0x1b, VIDEO_PID), (0x06, AUDIO_PID)]
        );
        for pkt in &packets[2..] {
            let p = Packet::parse(pkt).expect("every packet parses");
            if p.payload_unit_start && p.pid.value() == VIDEO_PID {
                assert!(pes_pts(p.payload.unwrap_or_default()).is_some());
            }
        }
    }
}
