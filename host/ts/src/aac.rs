//! AAC in MPEG-TS: the AudioSpecificConfig that RTMP/FLV (and MP4) send once, and the ADTS header that
//! TS needs before every frame instead (ISO 14496-3 §1.6.2.1 and §1.A.2.2).

/// Sampling frequencies by index; an ADTS header can only name these.
const SAMPLING_FREQUENCIES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/// Audio object types that signal SBR (HE-AAC) or PS (HE-AACv2) explicitly, ahead of the core's type.
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// Largest raw frame an ADTS header can describe (13-bit frame length, 7 of them the header).
const MAX_ADTS_PAYLOAD: usize = (1 << 13) - 1 - ADTS_HEADER_LEN;
const ADTS_HEADER_LEN: usize = 7;

/// What an ADTS header needs from an AAC AudioSpecificConfig.
///
/// For HE-AAC (SBR, PS) signalled explicitly, these are the core's values; a decoder finds SBR/PS in
/// the frames themselves (implicit signalling), which is how ADTS carries HE-AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// The audio object type: 1 Main, 2 LC, 3 SSR, 4 LTP (the profiles ADTS can carry).
    pub object_type: u8,
    /// The sampling frequency index (0 = 96 kHz … 12 = 7.35 kHz).
    pub sampling_index: u8,
    /// The channel configuration (1 = mono … 7 = 7.1).
    pub channels: u8,
    /// Samples per frame (per channel, at the sampling frequency): 1024, or 960.
    pub frame_samples: u16,
}

impl AacConfig {
    /// Parses an AudioSpecificConfig. `None` when it is truncated or describes what ADTS cannot carry: an
    /// object type beyond LTP, a sampling frequency without an index, channels described by a program
    /// config element (channel configuration 0).
    pub fn parse(asc: &[u8]) -> Option<AacConfig> {
        let mut bits = BitReader { data: asc, pos: 0 };
        let mut object_type = read_object_type(&mut bits)?;
        let sampling_index = read_sampling_index(&mut bits)?;
        let channels = u8::try_from(bits.read(4)?).ok()?;
        if object_type == AOT_SBR || object_type == AOT_PS {
            // The extension's (output) sampling frequency, then the core's object type.
            let _extension = read_sampling_index(&mut bits)?;
            object_type = read_object_type(&mut bits)?;
        }
        // GASpecificConfig's frameLengthFlag (absent from some short configs: the usual 1024 then).
        let frame_samples = if bits.read(1) == Some(1) { 960 } else { 1024 };
        let valid = (1..=4).contains(&object_type)
            && usize::from(sampling_index) < SAMPLING_FREQUENCIES.len()
            && (1..=7).contains(&channels);
        valid.then_some(AacConfig { object_type, sampling_index, channels, frame_samples })
    }

    /// The sampling frequency in Hz.
    pub fn sample_rate(&self) -> u32 {
        SAMPLING_FREQUENCIES.get(usize::from(self.sampling_index)).copied().unwrap_or(0)
    }

    /// The 7-byte ADTS header (MPEG-4, no CRC, one raw data block) for a raw frame of `raw_len` bytes;
    /// `None` when the frame is too long for ADTS.
    pub fn adts_header(&self, raw_len: usize) -> Option<[u8; ADTS_HEADER_LEN]> {
        if raw_len > MAX_ADTS_PAYLOAD {
            return None;
        }
        let len = raw_len + ADTS_HEADER_LEN;
        let profile = self.object_type.wrapping_sub(1) & 0x03;
        Some([
            0xff,
            // Sync word end, MPEG-4, layer 0, protection absent.
            0xf1,
            profile << 6 | (self.sampling_index & 0x0f) << 2 | (self.channels >> 2) & 0x01,
            (self.channels & 0x03) << 6 | (len >> 11) as u8 & 0x03,
            (len >> 3) as u8,
            ((len & 0x07) as u8) << 5 | 0x1f,
            // Buffer fullness 0x7FF (variable rate), one raw data block.
            0xfc,
        ])
    }
}

fn read_object_type(bits: &mut BitReader) -> Option<u8> {
    let t = bits.read(5)?;
    let t = if t == 31 { 32 + bits.read(6)? } else { t };
    u8::try_from(t).ok()
}

/// The sampling frequency index; an explicit frequency maps to its index when it has one (else 0x0f).
fn read_sampling_index(bits: &mut BitReader) -> Option<u8> {
    let index = bits.read(4)?;
    if index != 0x0f {
        return u8::try_from(index).ok();
    }
    let hz = bits.read(24)?;
    Some(SAMPLING_FREQUENCIES.iter().position(|&f| f == hz).and_then(|i| u8::try_from(i).ok()).unwrap_or(0x0f))
}

/// Reads big-endian bit fields; `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = v << 1 | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lc_and_writes_the_adts_header_ffmpeg_writes() {
        // AAC-LC, 44.1 kHz, stereo: what ffmpeg's aac encoder puts in FLV.
        let config = AacConfig::parse(&[0x12, 0x10]).expect("lc");
        assert_eq!(config, AacConfig { object_type: 2, sampling_index: 4, channels: 2, frame_samples: 1024 });
        assert_eq!(config.sample_rate(), 44100);
        // The first ADTS header ffmpeg 5.1 writes (`-c:a aac -ac 2 -f adts`): a 338-byte frame.
        assert_eq!(config.adts_header(338), Some([0xff, 0xf1, 0x50, 0x80, 0x2b, 0x3f, 0xfc]));
        // 48 kHz mono.
        let mono = AacConfig::parse(&[0x11, 0x88]).expect("mono");
        assert_eq!(mono, AacConfig { object_type: 2, sampling_index: 3, channels: 1, frame_samples: 1024 });
        // Likewise with `-ar 48000 -ac 1`: a 212-byte frame.
        assert_eq!(mono.adts_header(212), Some([0xff, 0xf1, 0x4c, 0x40, 0x1b, 0x7f, 0xfc]));
    }

    #[test]
    fn frame_length_limit() {
        let config = AacConfig { object_type: 2, sampling_index: 3, channels: 2, frame_samples: 1024 };
        let header = config.adts_header(MAX_ADTS_PAYLOAD).expect("largest frame");
        let len = usize::from(header[3] & 3) << 11 | usize::from(header[4]) << 3 | usize::from(header[5] >> 5);
        assert_eq!(len, 8191);
        assert_eq!(config.adts_header(MAX_ADTS_PAYLOAD + 1), None);
    }

    #[test]
    fn he_aac_uses_the_core_and_the_rest_is_refused() {
        // Explicit SBR: AOT 5, 24 kHz core (index 6), stereo, extension 48 kHz (index 3), core AOT 2.
        // Bits: 00101 0110 0010 0011 00010 (+ padding).
        let he = AacConfig::parse(&[0b0010_1011, 0b0001_0001, 0b1000_1000]).expect("he-aac");
        assert_eq!(he, AacConfig { object_type: 2, sampling_index: 6, channels: 2, frame_samples: 1024 });
        // An explicit frequency that has an index (48000 = 0x00bb80): LC, stereo.
        // Bits: 00010 1111 000000001011101110000000 0010.
        let explicit = AacConfig::parse(&[0x17, 0x80, 0x5d, 0xc0, 0x10]).expect("explicit 48 kHz");
        assert_eq!(explicit, AacConfig { object_type: 2, sampling_index: 3, channels: 2, frame_samples: 1024 });
        // 960-sample frames (frameLengthFlag set).
        assert_eq!(AacConfig::parse(&[0x12, 0x14]).map(|c| c.frame_samples), Some(960));
        // Channel configuration 0 (a PCE), object type 42 (USAC), truncated, empty.
        assert_eq!(AacConfig::parse(&[0x12, 0x00]), None);
        assert_eq!(AacConfig::parse(&[0xf9, 0x46, 0x40]), None);
        assert_eq!(AacConfig::parse(&[0x12]), None);
        assert_eq!(AacConfig::parse(&[]), None);
    }

    proptest! {
        #[test]
        fn never_panics(asc in proptest::collection::vec(any::<u8>(), 0..8), len in 0usize..10_000) {
            if let Some(config) = AacConfig::parse(&asc) {
                prop_assert!((1..=4).contains(&config.object_type));
                let _ = config.adts_header(len);
            }
        }
    }
}
