//! The codec of an elementary stream, from its PMT `stream_type` and descriptors.

/// What kind of content an elementary stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Video.
    Video,
    /// Audio.
    Audio,
    /// Metadata, subtitles, splice information and other data.
    Data,
    /// Not recognised.
    Unknown,
}

/// The codec of an elementary stream, from its PMT `stream_type` and descriptors.
///
/// ```
/// use byoc_ts::{Codec, StreamKind};
/// assert_eq!(Codec::from_stream_type(0x1b, &[]), Codec::H264);
/// // Opus is private data (0x06) with a registration descriptor "Opus".
/// assert_eq!(Codec::from_stream_type(0x06, &[0x05, 4, b'O', b'p', b'u', b's']), Codec::Opus);
/// assert_eq!(Codec::Hevc.kind(), StreamKind::Video);
/// assert_eq!(Codec::Aac.name(), "aac");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MPEG-1 video (0x01).
    Mpeg1Video,
    /// MPEG-2 video (0x02).
    Mpeg2Video,
    /// H.264 / AVC (0x1b).
    H264,
    /// H.265 / HEVC (0x24).
    Hevc,
    /// H.266 / VVC (0x33).
    Vvc,
    /// AV1 (0x06 with registration `AV01`).
    Av1,
    /// MPEG-1 audio, e.g. MP3 (0x03).
    Mpeg1Audio,
    /// MPEG-2 audio (0x04).
    Mpeg2Audio,
    /// AAC in ADTS (0x0f).
    Aac,
    /// AAC in LATM (0x11).
    AacLatm,
    /// AC-3 (0x81, or 0x06 with an AC-3 descriptor or registration).
    Ac3,
    /// E-AC-3 (0x87, or 0x06 with an E-AC-3 descriptor or registration).
    Eac3,
    /// Opus (0x06 with registration `Opus`).
    Opus,
    /// ID3 timed metadata (0x15).
    Id3,
    /// SCTE-35 splice information (0x86).
    Scte35,
    /// Private data without a recognised descriptor (0x06).
    PrivateData,
    /// Any other stream type.
    Other(u8),
}

impl Codec {
    /// Identifies the codec from a PMT entry's `stream_type` and its ES descriptors.
    pub fn from_stream_type(stream_type: u8, descriptors: &[u8]) -> Self {
        match stream_type {
            0x01 => Self::Mpeg1Video,
            0x02 => Self::Mpeg2Video,
            0x03 => Self::Mpeg1Audio,
            0x04 => Self::Mpeg2Audio,
            0x0f => Self::Aac,
            0x11 => Self::AacLatm,
            0x15 => Self::Id3,
            0x1b => Self::H264,
            0x24 => Self::Hevc,
            0x33 => Self::Vvc,
            0x81 => Self::Ac3,
            0x86 => Self::Scte35,
            0x87 => Self::Eac3,
            0x06 => Self::from_private_descriptors(descriptors),
            other => Self::Other(other),
        }
    }

    /// Private-data streams are told apart by their descriptors (DVB and registration).
    fn from_private_descriptors(descriptors: &[u8]) -> Self {
        for (tag, body) in Descriptors::new(descriptors) {
            match (tag, body) {
                (0x05, [b'O', b'p', b'u', b's', ..]) => return Self::Opus,
                (0x05, [b'A', b'V', b'0', b'1', ..]) => return Self::Av1,
                (0x05, [b'A', b'C', b'-', b'3', ..]) | (0x6a, _) => return Self::Ac3,
                (0x05, [b'E', b'A', b'C', b'3', ..]) | (0x7a, _) => return Self::Eac3,
                (0x05, [b'I', b'D', b'3', b' ', ..]) => return Self::Id3,
                _ => {}
            }
        }
        Self::PrivateData
    }

    /// Short lowercase name, e.g. `h264`, `aac`, `opus`; `other` for unknown types.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mpeg1Video => "mpeg1video",
            Self::Mpeg2Video => "mpeg2video",
            Self::H264 => "h264",
            Self::Hevc => "hevc",
            Self::Vvc => "vvc",
            Self::Av1 => "av1",
            Self::Mpeg1Audio => "mp1audio",
            Self::Mpeg2Audio => "mp2audio",
            Self::Aac => "aac",
            Self::AacLatm => "aac_latm",
            Self::Ac3 => "ac3",
            Self::Eac3 => "eac3",
            Self::Opus => "opus",
            Self::Id3 => "id3",
            Self::Scte35 => "scte35",
            Self::PrivateData => "private",
            Self::Other(_) => "other",
        }
    }

    /// Video, audio or data.
    pub fn kind(self) -> StreamKind {
        match self {
            Self::Mpeg1Video | Self::Mpeg2Video | Self::H264 | Self::Hevc | Self::Vvc | Self::Av1 => StreamKind::Video,
            Self::Mpeg1Audio | Self::Mpeg2Audio | Self::Aac | Self::AacLatm | Self::Ac3 | Self::Eac3 | Self::Opus => {
                StreamKind::Audio
            }
            Self::Id3 | Self::Scte35 | Self::PrivateData => StreamKind::Data,
            Self::Other(_) => StreamKind::Unknown,
        }
    }
}

/// Iterates `(tag, body)` pairs of a descriptor loop; stops at a truncated descriptor.
///
/// ```
/// let pairs: Vec<_> = byoc_ts::Descriptors::new(&[0x0a, 1, 7, 0x05, 9]).collect();
/// assert_eq!(pairs, vec![(0x0a, &[7u8][..])]);
/// ```
#[derive(Debug, Clone)]
pub struct Descriptors<'a> {
    rest: &'a [u8],
}

impl<'a> Descriptors<'a> {
    /// Iterates the descriptors in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Descriptors<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&[tag, len], rest) = self.rest.split_first_chunk::<2>()?;
        let Some((body, rest)) = rest.split_at_checked(usize::from(len)) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some((tag, body))
    }
}
