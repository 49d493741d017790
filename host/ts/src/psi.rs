//! Program-specific information: section reassembly, CRC check, PAT and PMT, and the codec
//! of each elementary stream.

use crate::{Codec, Descriptors, PACKET_SIZE, Packet, Pid, TsError};

/// Largest section the assembler accepts: private sections may be up to 4096 bytes;
/// PAT and PMT sections are at most 1024.
pub const MAX_SECTION_SIZE: usize = 4096;

/// CRC-32/MPEG-2 (polynomial 0x04c11db7, no reflection, initial value all ones, no final
/// xor), as PSI sections carry it.
///
/// ```
/// assert_eq!(byoc_ts::crc32_mpeg2(b"123456789"), 0x0376_e6e7);
/// ```
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// A PSI section with the long (syntax) header, CRC verified.
///
/// ```
/// use byoc_ts::Section;
/// // An empty PAT: table 0, transport stream id 1, version 0, current.
/// let mut bytes = vec![0x00, 0xb0, 0x09, 0x00, 0x01, 0xc1, 0x00, 0x00];
/// let crc = byoc_ts::crc32_mpeg2(&bytes);
/// bytes.extend_from_slice(&crc.to_be_bytes());
/// let section = Section::parse(&bytes).unwrap();
/// assert_eq!(section.table_id, 0);
/// assert_eq!(section.table_id_extension, 1);
/// assert!(section.body.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    /// `table_id` (0x00 PAT, 0x02 PMT, …).
    pub table_id: u8,
    /// `transport_stream_id` for a PAT, `program_number` for a PMT.
    pub table_id_extension: u16,
    /// `version_number` (5 bits).
    pub version: u8,
    /// `current_next_indicator`: the table applies now (not a future version).
    pub current: bool,
    /// `section_number`.
    pub section_number: u8,
    /// `last_section_number`.
    pub last_section_number: u8,
    /// The table data between the header and the CRC.
    pub body: &'a [u8],
}

impl<'a> Section<'a> {
    /// Parses a complete section (starting at `table_id`) with the long header and checks
    /// its CRC. Bytes after the section's length are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TsError> {
        Self::parse_inner(bytes, true)
    }

    /// Like [`parse`](Self::parse), but takes the CRC as it comes: for code that passes
    /// tables on rather than judging them, and must keep reading streams from muxers that
    /// get the CRC wrong.
    ///
    /// ```
    /// use byoc_ts::{Section, TsError};
    /// let bytes = [0x00, 0xb0, 0x09, 0x00, 0x01, 0xc1, 0x00, 0x00, 0, 0, 0, 0];
    /// assert!(matches!(Section::parse(&bytes), Err(TsError::SectionCrc { .. })));
    /// assert_eq!(Section::parse_unchecked(&bytes).map(|s| s.table_id_extension), Ok(1));
    /// ```
    pub fn parse_unchecked(bytes: &'a [u8]) -> Result<Self, TsError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], check_crc: bool) -> Result<Self, TsError> {
        let [table_id, b1, b2] = *bytes.first_chunk::<3>().ok_or(TsError::Section("shorter than its 3-byte header"))?;
        if b1 & 0x80 == 0 {
            return Err(TsError::Section("not a long-form section"));
        }
        let total = 3 + usize::from(u16::from_be_bytes([b1 & 0x0f, b2]));
        let section = bytes.get(..total).ok_or(TsError::Section("shorter than its section_length"))?;
        // 5 bytes of long header after the first 3, and 4 bytes of CRC.
        let (content, crc) = section
            .split_last_chunk::<4>()
            .filter(|(content, _)| content.len() >= 8)
            .ok_or(TsError::Section("section_length too small for the long header"))?;
        let expected = u32::from_be_bytes(*crc);
        let computed = if check_crc { crc32_mpeg2(content) } else { expected };
        if check_crc && expected != computed {
            return Err(TsError::SectionCrc { expected, computed });
        }
        let [_, _, _, ext_hi, ext_lo, version_byte, section_number, last_section_number] =
            *content.first_chunk::<8>().ok_or(TsError::Section("long header cut short"))?;
        Ok(Self {
            table_id,
            table_id_extension: u16::from_be_bytes([ext_hi, ext_lo]),
            version: (version_byte >> 1) & 0x1f,
            current: version_byte & 1 != 0,
            section_number,
            last_section_number,
            body: content.get(8..).unwrap_or_default(),
        })
    }
}

/// The section that starts in the payload of a packet with `payload_unit_start` set (after
/// its `pointer_field`), if it ends within that payload too: the common case of tables that
/// fit in one packet, read without keeping state. Tables that span packets need a
/// [`SectionAssembler`].
///
/// ```
/// let payload = [0x00, 0x00, 0xb0, 0x09, 0x00, 0x01, 0xc1, 0x00, 0x00, 1, 2, 3, 4, 0xff, 0xff];
/// assert_eq!(byoc_ts::section_in_unit_start(&payload), Some(&payload[1..13]));
/// assert_eq!(byoc_ts::section_in_unit_start(&payload[..10]), None);
/// ```
pub fn section_in_unit_start(payload: &[u8]) -> Option<&[u8]> {
    let (&pointer, rest) = payload.split_first()?;
    let section = rest.get(usize::from(pointer)..)?;
    let &[_, len_hi, len_lo] = section.first_chunk::<3>()?;
    section.get(..3 + usize::from(u16::from_be_bytes([len_hi & 0x0f, len_lo])))
}

/// Reassembles PSI sections of one PID from its packets, including sections that span
/// packets and several sections in one packet.
///
/// ```
/// use byoc_ts::{Packet, SectionAssembler};
///
/// // One packet: pointer_field 0, then an empty PAT section, then stuffing.
/// let mut section = vec![0x00, 0xb0, 0x09, 0x00, 0x01, 0xc1, 0x00, 0x00];
/// section.extend_from_slice(&byoc_ts::crc32_mpeg2(&section).to_be_bytes());
/// let mut bytes = [0xffu8; 188];
/// bytes[..5].copy_from_slice(&[0x47, 0x40, 0x00, 0x10, 0x00]);
/// bytes[5..5 + section.len()].copy_from_slice(&section);
///
/// let mut assembler = SectionAssembler::new();
/// let mut found = Vec::new();
/// assembler.push(&Packet::parse(&bytes).unwrap(), |s| found.push(s.map(<[u8]>::to_vec)));
/// assert_eq!(found, vec![Ok(section)]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct SectionAssembler {
    buffer: Vec<u8>,
    /// Whether `buffer` holds the start of a section (we saw its payload unit start).
    active: bool,
}

impl SectionAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet of the PID; `on_section` receives each complete section's bytes
    /// (not yet CRC-checked; use [`Section::parse`]) or an error.
    pub fn push(&mut self, packet: &Packet<'_>, mut on_section: impl FnMut(Result<&[u8], TsError>)) {
        let Some(payload) = packet.payload else {
            return;
        };
        if packet.payload_unit_start {
            let Some((&pointer, rest)) = payload.split_first() else {
                self.reset();
                return on_section(Err(TsError::Section("empty payload with PUSI set")));
            };
            let Some((previous_tail, start)) = rest.split_at_checked(usize::from(pointer)) else {
                self.reset();
                return on_section(Err(TsError::Section("pointer_field beyond the payload")));
            };
            if self.active {
                self.buffer.extend_from_slice(previous_tail);
                self.drain(&mut on_section);
                if self.active && !self.buffer.is_empty() {
                    on_section(Err(TsError::Section("section cut short by the next one")));
                }
            }
            self.buffer.clear();
            self.buffer.extend_from_slice(start);
            self.active = true;
        } else if self.active {
            if self.buffer.len() + payload.len() > MAX_SECTION_SIZE + PACKET_SIZE {
                self.reset();
                return on_section(Err(TsError::Section("section larger than 4096 bytes")));
            }
            self.buffer.extend_from_slice(payload);
        } else {
            // Continuation of a section whose start we never saw: nothing to do with it.
            return;
        }
        self.drain(&mut on_section);
    }

    /// Emits every complete section at the start of the buffer.
    fn drain(&mut self, on_section: &mut impl FnMut(Result<&[u8], TsError>)) {
        loop {
            let Some([table_id, b1, b2]) = self.buffer.first_chunk::<3>().copied() else {
                return;
            };
            if table_id == 0xff {
                // Stuffing: no more sections until the next payload unit start.
                self.reset();
                return;
            }
            let total = 3 + usize::from(u16::from_be_bytes([b1 & 0x0f, b2]));
            if total > MAX_SECTION_SIZE {
                self.reset();
                return on_section(Err(TsError::Section("section_length above 4093")));
            }
            let Some(section) = self.buffer.get(..total) else {
                return;
            };
            on_section(Ok(section));
            self.buffer.drain(..total);
        }
    }

    /// Forgets any partial section (e.g. after a continuity error).
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.active = false;
    }
}

/// One entry of a PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatEntry {
    /// `program_number`; 0 designates the network information table.
    pub program_number: u16,
    /// PID of the program's PMT (or of the NIT for program 0).
    pub pid: Pid,
}

/// A Program Association Table.
///
/// ```
/// use byoc_ts::{Pat, Section};
/// let mut bytes = vec![0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
/// bytes.extend_from_slice(&byoc_ts::crc32_mpeg2(&bytes).to_be_bytes());
/// let pat = Pat::parse(&Section::parse(&bytes).unwrap()).unwrap();
/// assert_eq!(pat.programs[0].program_number, 1);
/// assert_eq!(pat.programs[0].pid.value(), 0x1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pat {
    /// `transport_stream_id`.
    pub transport_stream_id: u16,
    /// `version_number`.
    pub version: u8,
    /// Programs in table order.
    pub programs: Vec<PatEntry>,
}

impl Pat {
    /// Table id of a PAT section.
    pub const TABLE_ID: u8 = 0x00;

    /// Interprets a section as a PAT.
    pub fn parse(section: &Section<'_>) -> Result<Self, TsError> {
        if section.table_id != Self::TABLE_ID {
            return Err(TsError::Section("not a PAT (table_id != 0)"));
        }
        let entries = section.body.chunks_exact(4);
        if !entries.remainder().is_empty() {
            return Err(TsError::Section("PAT body is not a whole number of entries"));
        }
        let programs = entries
            .filter_map(|entry| entry.first_chunk::<4>())
            .map(|&[num_hi, num_lo, pid_hi, pid_lo]| PatEntry {
                program_number: u16::from_be_bytes([num_hi, num_lo]),
                pid: Pid::from_be_bytes(pid_hi, pid_lo),
            })
            .collect();
        Ok(Self { transport_stream_id: section.table_id_extension, version: section.version, programs })
    }
}

/// One elementary stream of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementaryStream {
    /// `stream_type` as in the PMT.
    pub stream_type: u8,
    /// PID carrying the stream.
    pub pid: Pid,
    /// Codec derived from the type and descriptors.
    pub codec: Codec,
    /// ISO 639 language code from a language descriptor, if any.
    pub language: Option<String>,
}

/// A Program Map Table.
///
/// ```
/// use byoc_ts::{Codec, Pmt, Section};
/// // Program 1, PCR on PID 0x100, one H.264 stream on PID 0x100.
/// let mut bytes = vec![0x02, 0xb0, 0x12, 0x00, 0x01, 0xc1, 0x00, 0x00,
///                      0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00];
/// bytes.extend_from_slice(&byoc_ts::crc32_mpeg2(&bytes).to_be_bytes());
/// let pmt = Pmt::parse(&Section::parse(&bytes).unwrap()).unwrap();
/// assert_eq!(pmt.streams[0].codec, Codec::H264);
/// assert_eq!(pmt.pcr_pid.value(), 0x100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    /// `program_number`.
    pub program_number: u16,
    /// `version_number`.
    pub version: u8,
    /// PID carrying the program clock reference.
    pub pcr_pid: Pid,
    /// Elementary streams in table order.
    pub streams: Vec<ElementaryStream>,
}

impl Pmt {
    /// Table id of a PMT section.
    pub const TABLE_ID: u8 = 0x02;

    /// Interprets a section as a PMT.
    pub fn parse(section: &Section<'_>) -> Result<Self, TsError> {
        if section.table_id != Self::TABLE_ID {
            return Err(TsError::Section("not a PMT (table_id != 2)"));
        }
        let (&[pcr_hi, pcr_lo, info_hi, info_lo], rest) =
            section.body.split_first_chunk::<4>().ok_or(TsError::Section("PMT header cut short"))?;
        let program_info_length = usize::from(u16::from_be_bytes([info_hi & 0x0f, info_lo]));
        let mut rest =
            rest.get(program_info_length..).ok_or(TsError::Section("program_info_length beyond the section"))?;
        let mut streams = Vec::new();
        while !rest.is_empty() {
            let (&[stream_type, pid_hi, pid_lo, len_hi, len_lo], after) =
                rest.split_first_chunk::<5>().ok_or(TsError::Section("PMT stream entry cut short"))?;
            let es_info_length = usize::from(u16::from_be_bytes([len_hi & 0x0f, len_lo]));
            let (descriptors, after) =
                after.split_at_checked(es_info_length).ok_or(TsError::Section("ES_info_length beyond the section"))?;
            streams.push(ElementaryStream {
                stream_type,
                pid: Pid::from_be_bytes(pid_hi, pid_lo),
                codec: Codec::from_stream_type(stream_type, descriptors),
                language: language(descriptors),
            });
            rest = after;
        }
        Ok(Self {
            program_number: section.table_id_extension,
            version: section.version,
            pcr_pid: Pid::from_be_bytes(pcr_hi, pcr_lo),
            streams,
        })
    }
}

/// The first ISO 639 language code (descriptor 0x0a), if it is printable ASCII.
fn language(descriptors: &[u8]) -> Option<String> {
    Descriptors::new(descriptors)
        .find(|(tag, _)| *tag == 0x0a)
        .and_then(|(_, body)| body.first_chunk::<3>())
        .filter(|code| code.iter().all(u8::is_ascii_alphabetic))
        .map(|code| code.iter().map(|&b| char::from(b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
        let crc = crc32_mpeg2(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn packet(pusi: bool, payload: &[u8]) -> [u8; 188] {
        let mut p = [0xffu8; 188];
        p[..4].copy_from_slice(&[0x47, if pusi { 0x40 } else { 0x00 }, 0x20, 0x10]);
        p[4..4 + payload.len()].copy_from_slice(payload);
        p
    }

    #[test]
    fn crc_of_known_pat() {
        // The PAT ffmpeg writes for one program with PMT PID 0x1000.
        let pat = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        assert_eq!(crc32_mpeg2(&pat), 0x2ab104b2);
    }

    #[test]
    fn crc_mismatch_is_reported_with_both_values() {
        let mut bytes = with_crc(vec![0x00, 0xb0, 0x09, 0x00, 0x01, 0xc1, 0x00, 0x00]);
        bytes[4] ^= 1;
        assert!(matches!(Section::parse(&bytes), Err(TsError::SectionCrc { .. })));
    }

    #[test]
    fn assembles_a_section_spanning_two_packets() {
        // A PMT with enough streams to exceed one packet's payload.
        let mut body = vec![0x02, 0xb0, 0x00, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00];
        for i in 0..40u8 {
            body.extend_from_slice(&[0x0f, 0xe1, i, 0xf0, 0x00]);
        }
        let section_length = body.len() - 3 + 4;
        body[1] = 0xb0 | (section_length >> 8) as u8;
        body[2] = section_length as u8;
        let section = with_crc(body);
        let mut first = vec![0u8]; // pointer_field
        first.extend_from_slice(&section[..183]);
        let p1 = packet(true, &first);
        let p2 = packet(false, &section[183..]);

        let mut assembler = SectionAssembler::new();
        let mut out = Vec::new();
        for p in [&p1, &p2] {
            assembler.push(&Packet::parse(p).unwrap(), |s| out.push(s.map(<[u8]>::to_vec)));
        }
        assert_eq!(out.len(), 1);
        let bytes = out.remove(0).unwrap();
        let pmt = Pmt::parse(&Section::parse(&bytes).unwrap()).unwrap();
        assert_eq!(pmt.streams.len(), 40);
        assert!(pmt.streams.iter().all(|s| s.codec == Codec::Aac));
    }

    #[test]
    fn pointer_field_beyond_payload_is_an_error() {
        let p = packet(true, &[200]);
        let mut assembler = SectionAssembler::new();
        let mut errors = 0;
        assembler.push(&Packet::parse(&p).unwrap(), |s| errors += usize::from(s.is_err()));
        assert_eq!(errors, 1);
    }

    #[test]
    fn pmt_reads_language_and_tolerates_truncated_descriptors() {
        let section = with_crc(vec![
            0x02, 0xb0, 0x1d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x01, 0xf0, 0x00, //
            0x0f, 0xe1, 0x01, 0xf0, 0x06, 0x0a, 0x04, b'e', b'n', b'g', 0x00, //
            0x06, 0xe1, 0x02, 0xf0, 0x00,
        ]);
        let pmt = Pmt::parse(&Section::parse(&section).unwrap()).unwrap();
        assert_eq!(pmt.streams[0].language.as_deref(), Some("eng"));
        assert_eq!(pmt.streams[1].codec, Codec::PrivateData);
        assert_eq!(Descriptors::new(&[0x05, 10, 1]).count(), 0);
    }
}
