//! The one MPEG transport stream (ISO/IEC 13818-1) reader of BYOC: 188-byte packets and
//! their adaptation fields, PSI sections with the PAT and PMT, PES headers, and the 33-bit
//! 90 kHz timestamps they carry.
//!
//! Beside the reader, the sans-IO muxer ([`TsMuxer`]: H.264 with AAC or Opus) and demuxer to access
//! units ([`TsDemuxer`]) that the media legs and the frame pipeline share.
//!
//! The host's media legs (`byoc-media`: segmenter, muxer, demuxer), the frame pipeline and plugins (through
//! `byoc_ts`, which re-exports this crate) read transport streams with it. It depends
//! on nothing outside std, so it builds for wasm plugins as it does for the host.
//!
//! Everything borrows from the input and nothing panics on malformed bytes: each parser
//! returns a [`TsError`] instead, and the walkers skip garbage and carry on, so broken
//! streams can be analysed as well as good ones.
//!
//! ```
//! use byoc_ts::{PacketReader, PesHeader};
//!
//! // Feed bytes in any chunking; count the PES packets that start with a PTS.
//! let mut reader = PacketReader::new();
//! let mut with_pts = 0;
//! reader.push(b"not a transport stream", |packet| {
//!     let Ok(packet) = packet else { return };
//!     let (true, Some(payload)) = (packet.payload_unit_start, packet.payload) else { return };
//!     with_pts += usize::from(PesHeader::parse(payload).is_ok_and(|pes| pes.pts.is_some()));
//! });
//! reader.finish(|_| {});
//! assert_eq!(with_pts, 0);
//! ```

#![forbid(unsafe_code)]

mod aac;
mod codec;
mod demux;
mod error;
mod mux;
mod nal;
mod packet;
mod pes;
mod psi;
mod timestamp;

pub use aac::AacConfig;
pub use codec::{Codec, Descriptors, StreamKind};
pub use demux::{FrameKind, TsDemuxer, TsFrame};
pub use error::TsError;
pub use mux::{AUDIO_PID, TsAudio, TsMuxer, VIDEO_PID};
pub use nal::{Picture, first_picture};
pub use packet::{AdaptationField, PACKET_SIZE, Packet, PacketReader, Packets, Pid, SYNC_BYTE, encode_pcr, packets};
pub use pes::PesHeader;
pub use psi::{
    ElementaryStream, MAX_SECTION_SIZE, Pat, PatEntry, Pmt, Section, SectionAssembler, crc32_mpeg2,
    section_in_unit_start,
};
pub use timestamp::{Timestamp, ticks_to_duration};

#[cfg(test)]
mod garbage_tests;
