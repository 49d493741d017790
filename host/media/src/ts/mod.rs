//! MPEG-TS: packet-level parsing (no allocation, no panics on any input), the keyframe segmenter, and
//! the muxer and demuxer of access units.

mod aac;
mod demux;
mod mux;
mod segmenter;

pub use aac::AacConfig;
pub use demux::{FrameKind, TsDemuxer, TsFrame};
pub use mux::{AUDIO_PID, TsAudio, TsMuxer, VIDEO_PID};
pub use segmenter::{Piece, SegmenterConfig, StartGate, TsSegmenter};

/// Size of one transport stream packet.
pub const TS_PACKET_SIZE: usize = 188;
/// The sync byte every packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// PTS/DTS wrap at 2^33 ticks of 90 kHz.
pub(crate) const PTS_MASK: u64 = (1 << 33) - 1;

/// The parsed header of one 188-byte packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketHeader {
    pub pid: u16,
    /// payload_unit_start_indicator: a PES packet or PSI section starts here.
    pub pusi: bool,
    /// random_access_indicator from the adaptation field.
    pub random_access: bool,
    /// Offset of the payload within the packet (188 when there is none).
    pub payload_offset: usize,
}

impl PacketHeader {
    /// Parses a packet header; `None` when the packet is not well formed.
    pub fn parse(pkt: &[u8]) -> Option<PacketHeader> {
        if pkt.len() != TS_PACKET_SIZE || pkt[0] != SYNC_BYTE {
            return None;
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]);
        let afc = (pkt[3] >> 4) & 0x3;
        let mut payload_offset = 4;
        let mut random_access = false;
        if afc & 0x2 != 0 {
            let af_len = usize::from(pkt[4]);
            if af_len > 0 {
                random_access = pkt[5] & 0x40 != 0;
            }
            payload_offset = 5 + af_len;
            if payload_offset > TS_PACKET_SIZE {
                return None;
            }
        }
        if afc & 0x1 == 0 {
            payload_offset = TS_PACKET_SIZE;
        }
        Some(PacketHeader { pid, pusi, random_access, payload_offset })
    }
}

/// The start of a PSI section in a packet payload that carries one (skips the pointer field).
pub(crate) fn psi_section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let section = payload.get(1 + pointer..)?;
    let len = usize::from(u16::from_be_bytes([*section.get(1)?, *section.get(2)?]) & 0x0fff);
    section.get(..3 + len)
}

/// PMT PIDs listed in a PAT section (program 0, the NIT, is skipped).
pub(crate) fn parse_pat(section: &[u8]) -> Vec<u16> {
    let mut pids = Vec::new();
    if section.first() != Some(&0x00) || section.len() < 12 {
        return pids;
    }
    // 8 header bytes, entries of 4, then a 4-byte CRC.
    let entries = section.get(8..section.len() - 4).unwrap_or_default();
    for entry in entries.chunks_exact(4) {
        let program = u16::from_be_bytes([entry[0], entry[1]]);
        let pid = u16::from_be_bytes([entry[2], entry[3]]) & 0x1fff;
        if program != 0 {
            pids.push(pid);
        }
    }
    pids
}

/// One elementary stream announced in a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsInfo {
    pub stream_type: u8,
    pub pid: u16,
    /// Opus the way ffmpeg maps it: private data with an `Opus` registration descriptor.
    pub opus: bool,
}

/// H.264 video.
pub(crate) const STREAM_TYPE_H264: u8 = 0x1b;
/// H.265 video.
pub(crate) const STREAM_TYPE_HEVC: u8 = 0x24;

impl EsInfo {
    pub fn is_video(&self) -> bool {
        matches!(self.stream_type, 0x01 | 0x02 | 0x10 | STREAM_TYPE_H264 | STREAM_TYPE_HEVC)
    }
}

/// Elementary streams listed in a PMT section.
pub(crate) fn parse_pmt(section: &[u8]) -> Vec<EsInfo> {
    let mut streams = Vec::new();
    if section.first() != Some(&0x02) || section.len() < 16 {
        return streams;
    }
    let program_info_len = usize::from(u16::from_be_bytes([section[10], section[11]]) & 0x0fff);
    let end = section.len() - 4;
    let mut i = 12 + program_info_len;
    while i + 5 <= end {
        let stream_type = section[i];
        let pid = u16::from_be_bytes([section[i + 1], section[i + 2]]) & 0x1fff;
        let info_len = usize::from(u16::from_be_bytes([section[i + 3], section[i + 4]]) & 0x0fff);
        let descriptors = section.get(i + 5..(i + 5 + info_len).min(end)).unwrap_or_default();
        streams.push(EsInfo { stream_type, pid, opus: stream_type == 0x06 && has_opus_registration(descriptors) });
        i += 5 + info_len;
    }
    streams
}

fn has_opus_registration(mut descriptors: &[u8]) -> bool {
    while let [tag, len, rest @ ..] = descriptors {
        let len = usize::from(*len);
        if *tag == 0x05 && rest.get(..4) == Some(b"Opus") {
            return true;
        }
        descriptors = rest.get(len..).unwrap_or_default();
    }
    false
}

/// Cuts bytes (any chunking) into 188-byte packets: what precedes a sync byte is skipped (and
/// counted), a partial packet is kept for the next call.
#[derive(Debug, Default)]
pub(crate) struct PacketReader {
    buf: Vec<u8>,
    /// Bytes skipped to find a sync byte, so far.
    pub skipped: u64,
}

impl PacketReader {
    /// Appends `data` and hands every whole packet in it to `packet`, in order.
    pub fn push(&mut self, data: &[u8], mut packet: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut i = 0;
        while i < self.buf.len() {
            if self.buf[i] != SYNC_BYTE {
                self.skipped += 1;
                i += 1;
                continue;
            }
            let Some(pkt) = self.buf.get(i..i + TS_PACKET_SIZE) else { break };
            packet(pkt);
            i += TS_PACKET_SIZE;
        }
        self.buf.drain(..i);
    }
}

/// The PTS of a PES packet, from its first bytes; `None` when absent or truncated.
pub(crate) fn pes_pts(pes: &[u8]) -> Option<u64> {
    if pes.get(..3)? != [0, 0, 1] || *pes.get(7)? & 0x80 == 0 {
        return None;
    }
    timestamp(pes.get(9..14)?)
}

/// The DTS of a PES packet (its PTS when it carries no DTS).
pub(crate) fn pes_dts(pes: &[u8]) -> Option<u64> {
    if *pes.get(7)? & 0xc0 != 0xc0 {
        return pes_pts(pes);
    }
    timestamp(pes.get(14..19)?)
}

/// A 33-bit PES timestamp from its 5 bytes (with their marker bits).
fn timestamp(b: &[u8]) -> Option<u64> {
    let [b0, b1, b2, b3, b4] = *b else { return None };
    Some(
        (u64::from(b0 >> 1) & 0x7) << 30
            | u64::from(b1) << 22
            | u64::from(b2 >> 1) << 15
            | u64::from(b3) << 7
            | u64::from(b4 >> 1),
    )
}

/// Length of the PES header (where the elementary stream data starts), when complete in `pes`.
pub(crate) fn pes_header_len(pes: &[u8]) -> Option<usize> {
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let len = 9 + usize::from(*pes.get(8)?);
    (len <= pes.len()).then_some(len)
}

/// What an Annex-B NAL scan found about an access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Picture {
    /// A picture decodable on its own (H.264 IDR, HEVC IRAP).
    Key,
    /// A picture that needs earlier ones.
    Delta,
}

/// Scans Annex-B data for the first picture (VCL) NAL unit and classifies it. `None` when no picture NAL
/// header is in `data` yet.
pub(crate) fn first_picture(data: &[u8], hevc: bool) -> Option<Picture> {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let header = data[i + 3];
            if hevc {
                match (header >> 1) & 0x3f {
                    0..=9 => return Some(Picture::Delta),
                    16..=21 => return Some(Picture::Key),
                    _ => {}
                }
            } else {
                match header & 0x1f {
                    1..=4 => return Some(Picture::Delta),
                    5 => return Some(Picture::Key),
                    _ => {}
                }
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_of_payload_only_packet() {
        let mut pkt = [0xffu8; TS_PACKET_SIZE];
        pkt[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        let h = PacketHeader::parse(&pkt).expect("valid");
        assert_eq!(h, PacketHeader { pid: 0x100, pusi: true, random_access: false, payload_offset: 4 });
    }

    #[test]
    fn header_with_random_access_adaptation_field() {
        let mut pkt = [0xffu8; TS_PACKET_SIZE];
        pkt[..6].copy_from_slice(&[0x47, 0x41, 0x00, 0x30, 0x07, 0x50]);
        let h = PacketHeader::parse(&pkt).expect("valid");
        assert!(h.random_access);
        assert_eq!(h.payload_offset, 12);
    }

    #[test]
    fn header_rejects_overlong_adaptation_field_and_bad_sync() {
        let mut pkt = [0u8; TS_PACKET_SIZE];
        pkt[..5].copy_from_slice(&[0x47, 0x01, 0x00, 0x30, 0xff]);
        assert_eq!(PacketHeader::parse(&pkt), None);
        pkt[0] = 0x46;
        assert_eq!(PacketHeader::parse(&pkt), None);
    }

    #[test]
    fn pts_round_trip() {
        let pts: u64 = 0x1_2345_6789 & PTS_MASK;
        let pes = [
            0,
            0,
            1,
            0xe0,
            0,
            0,
            0x80,
            0x80,
            5,
            0x21 | ((pts >> 29) as u8 & 0x0e),
            (pts >> 22) as u8,
            ((pts >> 14) as u8) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8) | 1,
        ];
        assert_eq!(pes_pts(&pes), Some(pts));
        assert_eq!(pes_header_len(&pes), Some(14));
        assert_eq!(pes_pts(&pes[..12]), None);
    }

    #[test]
    fn nal_scan_finds_idr_after_parameter_sets() {
        let au = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88];
        assert_eq!(first_picture(&au, false), Some(Picture::Key));
        assert_eq!(first_picture(&[0, 0, 1, 0x41, 0x9a], false), Some(Picture::Delta));
        assert_eq!(first_picture(&[0, 0, 1, 0x67, 0x42], false), None);
        assert_eq!(first_picture(&[0, 0, 1, 0x26, 0x01], true), Some(Picture::Key));
    }
}
