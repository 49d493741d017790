//! H.264 as RTMP carries it into what MPEG-TS carries: the AVCDecoderConfigurationRecord parser and the
//! AVCC → Annex-B conversion, with any record and any frame. What comes out is an access unit delimiter,
//! then start-code-prefixed NAL units, never longer than what went in plus the parameter sets.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The record's length (2 bytes, big-endian), the record, then the frame.
fuzz_target!(|input: &[u8]| {
    let Some((&len, rest)) = input.split_first_chunk::<2>() else { return };
    let (record, frame) = rest.split_at(usize::from(u16::from_be_bytes(len)).min(rest.len()));
    let Some((converted, parameter_sets)) = byoc_media::fuzzing::avc_frame(record, frame) else { return };
    assert!(parameter_sets.len() <= record.len() * 2, "parameter sets larger than their record allows");
    let Some((annexb, idr)) = converted else { return };
    assert!(annexb.starts_with(&[0, 0, 0, 1, 0x09, 0xf0]), "no access unit delimiter first");
    // Each NAL unit's length prefix (1 to 4 bytes) becomes a 4-byte start code.
    assert!(annexb.len() <= 6 + parameter_sets.len() + frame.len() * 4 + 4);
    if idr {
        assert!(annexb.windows(4).any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5), "an IDR without IDR NAL");
    }
});
