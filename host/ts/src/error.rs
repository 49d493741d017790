//! What is wrong with transport stream bytes.

use std::fmt;

/// What is wrong with transport stream bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsError {
    /// [`Packet::parse`](crate::Packet::parse) was given a slice that is not 188 bytes long.
    PacketLength(usize),
    /// The packet does not start with the sync byte 0x47.
    NoSyncByte,
    /// Bytes that are not packets were skipped to find the next sync byte.
    LostSync {
        /// Offset of the first skipped byte.
        offset: u64,
        /// Number of bytes skipped.
        skipped: u64,
    },
    /// The input ends inside a packet.
    Truncated {
        /// Offset of the partial packet.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// `adaptation_field_control` has the reserved value 0.
    ReservedAdaptationControl,
    /// The adaptation field is longer than the packet, or shorter than its flags need.
    AdaptationFieldLength(usize),
    /// A payload that should start a PES packet lacks the 00 00 01 start code.
    PesStartCode,
    /// A malformed PES header; the message says what is wrong.
    PesHeader(&'static str),
    /// A malformed PSI section; the message says what is wrong.
    Section(&'static str),
    /// A PSI section's CRC does not match its content.
    SectionCrc {
        /// CRC carried in the section.
        expected: u32,
        /// CRC computed over the section.
        computed: u32,
    },
}

impl fmt::Display for TsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PacketLength(len) => write!(f, "a packet is 188 bytes, got {len}"),
            Self::NoSyncByte => f.write_str("packet does not start with the sync byte 0x47"),
            Self::LostSync { offset, skipped } => write!(f, "lost sync at offset {offset}: skipped {skipped} bytes"),
            Self::Truncated { offset, len } => {
                write!(f, "{len} trailing bytes at offset {offset} are not a whole packet")
            }
            Self::ReservedAdaptationControl => f.write_str("reserved adaptation_field_control value 0"),
            Self::AdaptationFieldLength(len) => write!(f, "bad adaptation_field_length {len}"),
            Self::PesStartCode => f.write_str("missing PES start code"),
            Self::PesHeader(what) => write!(f, "bad PES header: {what}"),
            Self::Section(what) => write!(f, "bad PSI section: {what}"),
            Self::SectionCrc { expected, computed } => {
                write!(f, "PSI section CRC mismatch: carried {expected:#010x}, computed {computed:#010x}")
            }
        }
    }
}

impl std::error::Error for TsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_fault() {
        assert_eq!(TsError::LostSync { offset: 3, skipped: 7 }.to_string(), "lost sync at offset 3: skipped 7 bytes");
        assert_eq!(
            TsError::SectionCrc { expected: 1, computed: 0x0376_e6e7 }.to_string(),
            "PSI section CRC mismatch: carried 0x00000001, computed 0x0376e6e7"
        );
        assert_eq!(TsError::PesHeader("timestamp cut short").to_string(), "bad PES header: timestamp cut short");
    }
}
