//! H.264 as FLV and MP4 carry it ("AVCC": length-prefixed NAL units, parameter sets once in an
//! AVCDecoderConfigurationRecord) turned into what MPEG-TS carries (Annex-B: start codes, an access unit
//! delimiter first, parameter sets in band before each IDR).

/// NAL unit types we look at.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// An access unit delimiter that allows any slice type.
const AUD: [u8; 6] = [0, 0, 0, 1, NAL_AUD, 0xf0];

/// What an AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1) holds for a remuxer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AvcConfig {
    /// Bytes of each NAL unit's length prefix (1 to 4).
    pub length_size: usize,
    /// The SPS and PPS NAL units, each behind a start code.
    pub parameter_sets: Vec<u8>,
}

impl AvcConfig {
    /// Parses a record; `None` when it is not one (wrong version, truncated).
    pub fn parse(record: &[u8]) -> Option<AvcConfig> {
        let [1, _profile, _compatibility, _level, length, sps_count, rest @ ..] = record else { return None };
        let mut parameter_sets = Vec::new();
        let mut rest = rest;
        for _ in 0..sps_count & 0x1f {
            rest = copy_parameter_set(rest, &mut parameter_sets)?;
        }
        let (&pps_count, tail) = rest.split_first()?;
        rest = tail;
        for _ in 0..pps_count {
            rest = copy_parameter_set(rest, &mut parameter_sets)?;
        }
        // What may follow (High profile chroma and bit depth) is not needed.
        Some(AvcConfig { length_size: usize::from(length & 0x03) + 1, parameter_sets })
    }
}

/// Copies one 16-bit-length-prefixed parameter set behind a start code; returns what follows it.
fn copy_parameter_set<'a>(data: &'a [u8], out: &mut Vec<u8>) -> Option<&'a [u8]> {
    let (&[hi, lo], rest) = data.split_first_chunk::<2>()?;
    let (nal, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes([hi, lo])))?;
    if !nal.is_empty() {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    Some(rest)
}

/// The NAL units of an AVCC access unit; `Err(())` once a length runs past the end.
fn nal_units(mut data: &[u8], length_size: usize) -> impl Iterator<Item = Result<&[u8], ()>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let Some((prefix, rest)) = data.split_at_checked(length_size) else {
            data = &[];
            return Some(Err(()));
        };
        let len = prefix.iter().fold(0usize, |n, &b| n << 8 | usize::from(b));
        match rest.split_at_checked(len) {
            Some((nal, rest)) => {
                data = rest;
                Some(Ok(nal))
            }
            None => {
                data = &[];
                Some(Err(()))
            }
        }
    })
}

/// Appends an AVCC access unit to `out` as Annex-B: an access unit delimiter, then (before an IDR that
/// does not bring its own) the parameter sets of `config`, then the NAL units (the stream's own
/// delimiters dropped). Returns whether the access unit holds an IDR; `None` (and `out` untouched) when
/// the data is malformed or holds no NAL unit.
pub(crate) fn to_annexb(data: &[u8], config: &AvcConfig, out: &mut Vec<u8>) -> Option<bool> {
    let (mut idr, mut sps, mut pps, mut any) = (false, false, false, false);
    for nal in nal_units(data, config.length_size) {
        let Some(&header) = nal.ok()?.first() else { continue };
        any = true;
        match header & 0x1f {
            NAL_IDR => idr = true,
            NAL_SPS => sps = true,
            NAL_PPS => pps = true,
            _ => {}
        }
    }
    if !any {
        return None;
    }
    out.reserve(AUD.len() + config.parameter_sets.len() + data.len());
    out.extend_from_slice(&AUD);
    if idr && !(sps && pps) {
        out.extend_from_slice(&config.parameter_sets);
    }
    for nal in nal_units(data, config.length_size).flatten() {
        if nal.first().is_some_and(|h| h & 0x1f != NAL_AUD) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
    }
    Some(idr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A record with one SPS (`67 42 c0 1e`) and one PPS (`68 ce 3c 80`), 4-byte lengths.
    const RECORD: [u8; 19] =
        [1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn parses_a_configuration_record() {
        let config = AvcConfig::parse(&RECORD).expect("valid");
        assert_eq!(config.length_size, 4);
        assert_eq!(config.parameter_sets, [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        assert_eq!(AvcConfig::parse(&RECORD[..RECORD.len() - 1]), None, "truncated PPS");
        let mut v2 = RECORD;
        v2[0] = 2;
        assert_eq!(AvcConfig::parse(&v2), None, "unknown version");
        // lengthSizeMinusOne = 1: 2-byte lengths.
        let mut short = RECORD;
        short[4] = 0xfd;
        assert_eq!(AvcConfig::parse(&short).map(|c| c.length_size), Some(2));
    }

    #[test]
    fn idr_gets_delimiter_and_parameter_sets_first() {
        let config = AvcConfig::parse(&RECORD).expect("valid");
        // SEI, IDR slice; 4-byte lengths.
        let au = [0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 3, 0x65, 0x88, 0x84];
        let mut out = Vec::new();
        assert_eq!(to_annexb(&au, &config, &mut out), Some(true));
        let mut expected = AUD.to_vec();
        expected.extend_from_slice(&config.parameter_sets);
        expected.extend_from_slice(&[0, 0, 0, 1, 0x06, 0x05, 0, 0, 0, 1, 0x65, 0x88, 0x84]);
        assert_eq!(out, expected);
    }

    #[test]
    fn delta_frame_keeps_its_nals_and_drops_its_own_delimiter() {
        let config = AvcConfig { length_size: 2, parameter_sets: vec![0, 0, 0, 1, 0x67] };
        // AUD, a P slice, an empty NAL; 2-byte lengths.
        let au = [0, 2, 0x09, 0x30, 0, 2, 0x41, 0x9a, 0, 0];
        let mut out = Vec::new();
        assert_eq!(to_annexb(&au, &config, &mut out), Some(false));
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a]);
    }

    #[test]
    fn idr_with_its_own_parameter_sets_gets_no_copies() {
        let config = AvcConfig { length_size: 1, parameter_sets: vec![0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0xbb] };
        let au = [2, 0x67, 0x01, 2, 0x68, 0x02, 2, 0x65, 0x03];
        let mut out = Vec::new();
        assert_eq!(to_annexb(&au, &config, &mut out), Some(true));
        assert_eq!(out, [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3]);
    }

    #[test]
    fn malformed_access_units_are_refused() {
        let config = AvcConfig { length_size: 4, parameter_sets: Vec::new() };
        let mut out = vec![0xee];
        assert_eq!(to_annexb(&[0, 0, 0, 9, 0x65, 1], &config, &mut out), None, "length past the end");
        assert_eq!(to_annexb(&[0, 0, 0, 1, 0x41, 0, 0], &config, &mut out), None, "truncated length");
        assert_eq!(to_annexb(&[], &config, &mut out), None, "nothing");
        assert_eq!(to_annexb(&[0, 0, 0, 0], &config, &mut out), None, "only an empty NAL");
        assert_eq!(out, [0xee], "output untouched");
    }

    proptest! {
        #[test]
        fn never_panics(record in proptest::collection::vec(any::<u8>(), 0..64), au in proptest::collection::vec(any::<u8>(), 0..512), length_size in 1usize..=4) {
            let _ = AvcConfig::parse(&record);
            let config = AvcConfig { length_size, parameter_sets: vec![0, 0, 0, 1, 0x67] };
            let mut out = Vec::new();
            if to_annexb(&au, &config, &mut out).is_some() {
                prop_assert!(out.starts_with(&AUD));
            } else {
                prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn round_trips_nal_units(nals in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..300), 1..8)) {
            // NAL units without zero bytes (so no start code can appear inside), not delimiters.
            let nals: Vec<Vec<u8>> = nals.into_iter().filter(|n| n[0] & 0x1f != NAL_AUD).collect();
            prop_assume!(!nals.is_empty());
            let mut avcc = Vec::new();
            for nal in &nals {
                avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                avcc.extend_from_slice(nal);
            }
            let config = AvcConfig { length_size: 4, parameter_sets: Vec::new() };
            let mut out = Vec::new();
            prop_assert!(to_annexb(&avcc, &config, &mut out).is_some());
            let back: Vec<&[u8]> = out[AUD.len()..].split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| &s[1..]).collect();
            prop_assert_eq!(back, nals.iter().map(|n| &n[..]).collect::<Vec<_>>());
        }
    }
}
