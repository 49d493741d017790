//! MPEG-TS for the media legs: the keyframe segmenter, and the muxer and demuxer of access units. They
//! read packets, PSI tables, PES headers and timestamps with `byoc-ts`, the one transport stream parser
//! (plugins use it through `byoc_sdk::ts`).

mod segmenter;

// The muxer and demuxer live in byoc-ts (shared with the frame pipeline, which must not depend on the
// media legs); re-exported here as the media legs' API.
pub use byoc_ts::{AUDIO_PID, AacConfig, FrameKind, TsAudio, TsDemuxer, TsFrame, TsMuxer, VIDEO_PID};
pub(crate) use byoc_ts::{Picture, first_picture};
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
