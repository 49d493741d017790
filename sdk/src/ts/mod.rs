//! Walking MPEG transport streams (ISO/IEC 13818-1): packets, adaptation fields, PES
//! headers with timestamps, PAT/PMT tables and codecs.
//!
//! Everything here borrows from the input and never panics on malformed bytes: each
//! function returns a [`TsError`] instead, and the walkers skip garbage and carry on, so a
//! plugin can analyse broken streams as well as good ones.
//!
//! ```
//! use byoc_sdk::ts::{packets, PesHeader};
//!
//! /// Video keyframes and the first video PTS of a segment. (Muxers set the random access
//! /// flag on audio frames too, hence the PES stream id check; a full analysis would map
//! /// PIDs to codecs through the PAT and PMT instead.)
//! fn keyframes_and_first_pts(segment: &[u8]) -> (usize, Option<u64>) {
//!     let mut keyframes = 0;
//!     let mut first_pts = None;
//!     for packet in packets(segment).flatten() {
//!         let (true, Some(payload)) = (packet.payload_unit_start, packet.payload) else {
//!             continue;
//!         };
//!         let Ok(pes) = PesHeader::parse(payload) else { continue };
//!         if !(0xe0..=0xef).contains(&pes.stream_id) {
//!             continue;
//!         }
//!         if packet.is_random_access() {
//!             keyframes += 1;
//!         }
//!         if let Some(pts) = pes.pts {
//!             first_pts.get_or_insert(pts.ticks());
//!         }
//!     }
//!     (keyframes, first_pts)
//! }
//! assert_eq!(keyframes_and_first_pts(b"not a transport stream"), (0, None));
//! ```

mod packet;
mod pes;
mod psi;

pub use packet::{AdaptationField, PACKET_SIZE, Packet, PacketReader, Packets, Pid, SYNC_BYTE, packets};
pub use pes::{PesHeader, Timestamp, ticks_to_duration};
pub use psi::{
    Codec, Descriptors, ElementaryStream, MAX_SECTION_SIZE, Pat, PatEntry, Pmt, Section, SectionAssembler, StreamKind,
    crc32_mpeg2,
};

/// What is wrong with transport stream bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// [`Packet::parse`] was given a slice that is not 188 bytes long.
    #[error("a packet is 188 bytes, got {0}")]
    PacketLength(usize),
    /// The packet does not start with the sync byte 0x47.
    #[error("packet does not start with the sync byte 0x47")]
    NoSyncByte,
    /// Bytes that are not packets were skipped to find the next sync byte.
    #[error("lost sync at offset {offset}: skipped {skipped} bytes")]
    LostSync {
        /// Offset of the first skipped byte.
        offset: u64,
        /// Number of bytes skipped.
        skipped: u64,
    },
    /// The input ends inside a packet.
    #[error("{len} trailing bytes at offset {offset} are not a whole packet")]
    Truncated {
        /// Offset of the partial packet.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// `adaptation_field_control` has the reserved value 0.
    #[error("reserved adaptation_field_control value 0")]
    ReservedAdaptationControl,
    /// The adaptation field is longer than the packet, or shorter than its flags need.
    #[error("bad adaptation_field_length {0}")]
    AdaptationFieldLength(usize),
    /// A payload that should start a PES packet lacks the 00 00 01 start code.
    #[error("missing PES start code")]
    PesStartCode,
    /// A malformed PES header; the message says what is wrong.
    #[error("bad PES header: {0}")]
    PesHeader(&'static str),
    /// A malformed PSI section; the message says what is wrong.
    #[error("bad PSI section: {0}")]
    Section(&'static str),
    /// A PSI section's CRC does not match its content.
    #[error("PSI section CRC mismatch: carried {expected:#010x}, computed {computed:#010x}")]
    SectionCrc {
        /// CRC carried in the section.
        expected: u32,
        /// CRC computed over the section.
        computed: u32,
    },
}

#[cfg(test)]
mod garbage_tests;
