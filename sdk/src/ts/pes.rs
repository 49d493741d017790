//! PES packet headers: stream id and the PTS/DTS timestamps.

use std::time::Duration;

use super::TsError;

/// A 33-bit presentation or decoding timestamp in 90 kHz ticks.
///
/// Timestamps wrap around every 2^33 ticks (about 26.5 hours); use
/// [`ticks_since`](Self::ticks_since) for differences.
///
/// ```
/// use byoc_sdk::ts::Timestamp;
/// let t = Timestamp::new(90_000).unwrap();
/// assert_eq!(t.as_duration(), std::time::Duration::from_secs(1));
/// let wrapped = Timestamp::new(10).unwrap();
/// let before_wrap = Timestamp::new(Timestamp::MODULUS - 10).unwrap();
/// assert_eq!(wrapped.ticks_since(before_wrap), 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Ticks per second.
    pub const HZ: u64 = 90_000;
    /// Timestamps are modulo this (2^33).
    pub const MODULUS: u64 = 1 << 33;

    /// A timestamp from ticks, or `None` if it does not fit in 33 bits.
    ///
    /// ```
    /// assert!(byoc_sdk::ts::Timestamp::new(1 << 33).is_none());
    /// ```
    pub const fn new(ticks: u64) -> Option<Self> {
        if ticks < Self::MODULUS { Some(Self(ticks)) } else { None }
    }

    /// The value in 90 kHz ticks.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::ts::Timestamp::new(5).unwrap().ticks(), 5);
    /// ```
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// The value as a duration since timestamp zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(byoc_sdk::ts::Timestamp::new(45_000).unwrap().as_duration(), Duration::from_millis(500));
    /// ```
    pub fn as_duration(self) -> Duration {
        ticks_to_duration(self.0)
    }

    /// Ticks from `earlier` to `self`, modulo 2^33 (correct across one wrap-around).
    ///
    /// ```
    /// use byoc_sdk::ts::Timestamp;
    /// let (a, b) = (Timestamp::new(100).unwrap(), Timestamp::new(400).unwrap());
    /// assert_eq!(b.ticks_since(a), 300);
    /// ```
    pub const fn ticks_since(self, earlier: Self) -> u64 {
        self.0.wrapping_sub(earlier.0) & (Self::MODULUS - 1)
    }
}

/// Converts 90 kHz ticks to a duration.
///
/// ```
/// assert_eq!(byoc_sdk::ts::ticks_to_duration(9), std::time::Duration::from_micros(100));
/// ```
pub fn ticks_to_duration(ticks: u64) -> Duration {
    let secs = ticks / Timestamp::HZ;
    let rem = ticks % Timestamp::HZ;
    // rem < 90 000, so rem × 100 000 / 9 fits easily and is exact in nanoseconds.
    Duration::new(secs, (rem * 100_000 / 9) as u32)
}

/// The fixed part of a PES header plus its timestamps.
///
/// ```
/// use byoc_sdk::ts::PesHeader;
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
    /// use byoc_sdk::ts::{PesHeader, TsError};
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
            0b10 => header.pts = Some(parse_timestamp(optional)?),
            0b11 => {
                header.pts = Some(parse_timestamp(optional)?);
                header.dts = Some(parse_timestamp(optional.get(5..).unwrap_or_default())?);
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

/// Parses a 5-byte timestamp: 3 + 15 + 15 bits, each group followed by a marker bit of 1.
fn parse_timestamp(bytes: &[u8]) -> Result<Timestamp, TsError> {
    let raw = bytes.first_chunk::<5>().ok_or(TsError::PesHeader("timestamp cut short"))?;
    if (raw[0] & raw[2] & raw[4]) & 1 == 0 {
        return Err(TsError::PesHeader("timestamp marker bit is 0"));
    }
    let [a, b, c, d, e] = raw.map(u64::from);
    let ticks = (((a >> 1) & 0x07) << 30) | (b << 22) | ((c >> 1) << 15) | (d << 7) | (e >> 1);
    // Masked to 33 bits above, so this always succeeds.
    Timestamp::new(ticks).ok_or(TsError::PesHeader("timestamp out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_timestamp(prefix: u8, ticks: u64) -> [u8; 5] {
        [
            (prefix << 4) | (((ticks >> 30) as u8 & 0x07) << 1) | 1,
            (ticks >> 22) as u8,
            (((ticks >> 15) as u8) << 1) | 1,
            (ticks >> 7) as u8,
            ((ticks as u8) << 1) | 1,
        ]
    }

    #[test]
    fn parses_pts_and_dts_across_the_33_bit_range() {
        for ticks in [0, 1, 90_000, (1 << 32) + 12_345, Timestamp::MODULUS - 1] {
            let mut bytes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
            bytes.extend_from_slice(&encode_timestamp(0b0011, ticks));
            bytes.extend_from_slice(&encode_timestamp(0b0001, ticks / 2));
            let header = PesHeader::parse(&bytes).unwrap();
            assert_eq!(header.pts.map(Timestamp::ticks), Some(ticks));
            assert_eq!(header.dts.map(Timestamp::ticks), Some(ticks / 2));
        }
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
        bytes.extend_from_slice(&encode_timestamp(0b0010, 5));
        bytes[13] &= 0xfe;
        assert!(PesHeader::parse(&bytes).is_err());
        assert!(PesHeader::parse(&bytes[..11]).is_err());
    }

    #[test]
    fn tick_conversion_is_exact() {
        assert_eq!(ticks_to_duration(3_003), Duration::from_nanos(33_366_666));
        assert_eq!(ticks_to_duration(90_000 * 3 + 1), Duration::new(3, 11_111));
    }
}
