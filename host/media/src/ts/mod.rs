//! MPEG-TS for the media legs: the keyframe segmenter, and the muxer and demuxer of access units. They
//! read packets, PSI tables, PES headers and timestamps with `byoc-ts`, the one transport stream parser
//! (plugins use it through `byoc_sdk::ts`).

mod aac;
mod demux;
mod mux;
mod segmenter;

pub use aac::AacConfig;
pub use demux::{FrameKind, TsDemuxer, TsFrame};
pub use mux::{AUDIO_PID, TsAudio, TsMuxer, VIDEO_PID};
pub use segmenter::{Piece, SegmenterConfig, StartGate, TsSegmenter};

use byoc_ts::{Codec, ElementaryStream, Pat, PesHeader, Pmt, Section, Timestamp, TsError};

/// Size of one transport stream packet.
pub use byoc_ts::PACKET_SIZE as TS_PACKET_SIZE;
/// The sync byte every packet starts with.
pub use byoc_ts::SYNC_BYTE;
/// PTS/DTS wrap at 2^33 ticks of 90 kHz.
pub(crate) const PTS_MASK: u64 = Timestamp::MODULUS - 1;

/// H.264 video.
pub(crate) const STREAM_TYPE_H264: u8 = 0x1b;
/// H.265 video.
pub(crate) const STREAM_TYPE_HEVC: u8 = 0x24;

/// The section of a one-packet PSI table that starts in `payload` (of a packet with
/// payload_unit_start); `None` when none starts and ends there. The CRC is taken as it comes: the legs
/// pass streams on, and must not stop at a table that players accept.
fn table(payload: &[u8]) -> Option<Result<Section<'_>, TsError>> {
    byoc_ts::section_in_unit_start(payload).map(Section::parse_unchecked)
}

/// PMT PIDs listed in the PAT that starts in `payload` (program 0, the NIT, is skipped): empty when
/// that section is no readable PAT, `None` when no section starts and ends in `payload`.
pub(crate) fn pat_pmt_pids(payload: &[u8]) -> Option<Vec<u16>> {
    let pat = table(payload)?.and_then(|section| Pat::parse(&section));
    Some(
        pat.map(|pat| pat.programs.iter().filter(|p| p.program_number != 0).map(|p| p.pid.value()).collect())
            .unwrap_or_default(),
    )
}

/// Elementary streams listed in the PMT that starts in `payload`: empty when that section is no
/// readable PMT, `None` when no section starts and ends in `payload`.
pub(crate) fn pmt_streams(payload: &[u8]) -> Option<Vec<ElementaryStream>> {
    let pmt = table(payload)?.and_then(|section| Pmt::parse(&section));
    Some(pmt.map(|pmt| pmt.streams).unwrap_or_default())
}

/// Video by stream_type (MPEG-1/2, MPEG-4 part 2, H.264, HEVC): what the segmenter cuts on and what
/// needs no audio transcode.
pub(crate) fn is_video(es: &ElementaryStream) -> bool {
    matches!(es.stream_type, 0x01 | 0x02 | 0x10 | STREAM_TYPE_H264 | STREAM_TYPE_HEVC)
}

/// Opus the way ffmpeg maps it: private data with an `Opus` registration descriptor.
pub(crate) fn is_opus(es: &ElementaryStream) -> bool {
    es.codec == Codec::Opus
}

/// The PES header at the start of `pes` when all of it is there (the elementary stream data starts
/// within `pes`).
pub(crate) fn pes_header(pes: &[u8]) -> Option<PesHeader> {
    PesHeader::parse(pes).ok().filter(|h| h.payload_offset <= pes.len())
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
    fn nal_scan_finds_idr_after_parameter_sets() {
        let au = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88];
        assert_eq!(first_picture(&au, false), Some(Picture::Key));
        assert_eq!(first_picture(&[0, 0, 1, 0x41, 0x9a], false), Some(Picture::Delta));
        assert_eq!(first_picture(&[0, 0, 1, 0x67, 0x42], false), None);
        assert_eq!(first_picture(&[0, 0, 1, 0x26, 0x01], true), Some(Picture::Key));
    }
}
