//! Walking MPEG transport streams (ISO/IEC 13818-1): packets, adaptation fields, PES
//! headers with timestamps, PAT/PMT tables and codecs.
//!
//! This is the `byoc-ts` crate the host reads streams with, re-exported.
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

// One parser for the host and plugins: the transport stream core lives in `byoc-ts`; these
// are its items under the names plugins have always used.
pub use byoc_ts::{
    AdaptationField, Codec, Descriptors, ElementaryStream, MAX_SECTION_SIZE, PACKET_SIZE, Packet, PacketReader,
    Packets, Pat, PatEntry, PesHeader, Pid, Pmt, SYNC_BYTE, Section, SectionAssembler, StreamKind, Timestamp, TsError,
    crc32_mpeg2, encode_pcr, packets, section_in_unit_start, ticks_to_duration,
};
