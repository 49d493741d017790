//! PES packet headers: stream id and the PTS/DTS timestamps.

use crate::{Timestamp, TsError};

/// The fixed part of a PES header plus its timestamps.
///
/// ```
/// use byoc_ts::PesHeader;
///
/// // Video PES header with a PTS of 900 000 (10 s).
/// let bytes = [0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0x00, 0x37, 0x77, 0x41];
/// let header = PesHeader::parse(&bytes).unwrap();
/// assert_eq!(header.stream_id, 0xe0);
/// assert_eq!(header.pts.map(|t| t.ticks()), Some(900_000));
/// assert_eq!(header.dts, None);
/// assert_eq!(header.payload_offset, 14);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// `stream_id` (0xe0–0xef video, 0xc0–0xdf audio, 0xbd private stream 1, …).
    pub stream_id: u8,
    /// `PES_packet_length`; 0 means unbounded (common for video).
    pub packet_length: u16,
    /// Presentation timestamp.
    pub pts: Option<Timestamp>,
    /// Decoding timestamp (present only when it differs from the PTS).
    pub dts: Option<Timestamp>,
    /// `data_alignment_indicator`: the payload starts with an access unit or syncword.
    pub data_alignment: bool,
    /// Where the elementary stream data starts, counted from the PES start code. It can lie
    /// beyond the first transport packet's payload when the header is unusually long.
    pub payload_offset: usize,
}

impl PesHeader {
    /// Parses the PES header at the start of a payload that has
    /// `payload_unit_start_indicator` set.
    ///
    /// ```
    /// use byoc_ts::{PesHeader, TsError};
    /// assert_eq!(PesHeader::parse(&[0, 0, 2, 0xe0, 0, 0]), Err(TsError::PesStartCode));
    /// assert!(PesHeader::parse(&[0, 0, 1]).is_err());
    /// ```
    pub fn parse(payload: &[u8]) -> Result<Self, TsError> {
        let [a, b, c, stream_id, len_hi, len_lo] =
            *payload.first_chunk::<6>().ok_or(TsError::PesHeader("shorter than 6 bytes"))?;
        if [a, b, c] != [0, 0, 1] {
            return Err(TsError::PesStartCode);
        }
        let packet_length = u16::from_be_bytes([len_hi, len_lo]);
        let mut header =
            Self { stream_id, packet_length, pts: None, dts: None, data_alignment: false, payload_offset: 6 };
        if !has_optional_header(stream_id) {
            return Ok(header);
        }
        let [_, _, _, _, _, _, flags1, flags2, header_data_length] =
            *payload.first_chunk::<9>().ok_or(TsError::PesHeader("optional header cut short"))?;
        if flags1 & 0xc0 != 0x80 {
            return Err(TsError::PesHeader("missing '10' marker bits"));
        }
        header.data_alignment = flags1 & 0x04 != 0;
        header.payload_offset = 9 + usize::from(header_data_length);
        let optional = payload.get(9..).unwrap_or_default();
        let optional = optional.get(..usize::from(header_data_length)).unwrap_or(optional);
        match flags2 >> 6 {
            0b00 => {}
            0b10 => header.pts = Some(Timestamp::from_pes_field(optional)?),
            0b11 => {
                header.pts = Some(Timestamp::from_pes_field(optional)?);
                header.dts = Some(Timestamp::from_pes_field(optional.get(5..).unwrap_or_default())?);
            }
            _ => return Err(TsError::PesHeader("PTS_DTS_flags is the forbidden value 01")),
        }
        Ok(header)
    }
}

/// Stream ids whose PES packets have no optional header (ISO/IEC 13818-1, table 2-21).
fn has_optional_header(stream_id: u8) -> bool {
    !matches!(stream_id, 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(prefix: u8, ticks: u64) -> [u8; 5] {
        Timestamp::wrap(ticks).to_pes_field(prefix)
    }

    #[test]
    fn parses_pts_and_dts_across_the_33_bit_range() {
        for ticks in [0, 1, 90_000, (1 << 32) + 12_345, Timestamp::MODULUS - 1] {
            let mut bytes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
            bytes.extend_from_slice(&field(0b0011, ticks));
            bytes.extend_from_slice(&field(0b0001, ticks / 2));
            let header = PesHeader::parse(&bytes).unwrap();
            assert_eq!(header.pts.map(Timestamp::ticks), Some(ticks));
            assert_eq!(header.dts.map(Timestamp::ticks), Some(ticks / 2));
        }
    }

    #[test]
    fn pts_only_header_gives_payload_offset_and_nothing_when_cut() {
        let pts = 0x1_2345_6789 & (Timestamp::MODULUS - 1);
        let mut bytes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        bytes.extend_from_slice(&field(0b0010, pts));
        let header = PesHeader::parse(&bytes).unwrap();
        assert_eq!((header.pts.map(Timestamp::ticks), header.dts, header.payload_offset), (Some(pts), None, 14));
        assert!(PesHeader::parse(&bytes[..12]).is_err());
    }

    #[test]
    fn padding_stream_has_no_optional_header() {
        let header = PesHeader::parse(&[0, 0, 1, 0xbe, 0, 4]).unwrap();
        assert_eq!(header.payload_offset, 6);
        assert_eq!(header.pts, None);
    }

    #[test]
    fn rejects_missing_marker_and_truncated_pts() {
        let mut bytes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        bytes.extend_from_slice(&field(0b0010, 5));
        bytes[13] &= 0xfe;
        assert!(PesHeader::parse(&bytes).is_err());
        assert!(PesHeader::parse(&bytes[..11]).is_err());
    }
}
