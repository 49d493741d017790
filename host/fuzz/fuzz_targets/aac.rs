//! AAC as RTMP carries it into what MPEG-TS carries: the AudioSpecificConfig parser and the ADTS header
//! made from it, for any config and frame length. A header that is made describes the frame exactly and
//! reads back as the config; the muxer writes such frames as whole packets.
#![no_main]

use byoc_ts::{AacConfig, TsAudio, TsMuxer};
use libfuzzer_sys::fuzz_target;

// The config's length (1 byte), the AudioSpecificConfig, a frame length (2 bytes), then a raw frame.
fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else { return };
    let (asc, rest) = rest.split_at(usize::from(n).min(rest.len()));
    let Some((&len, raw)) = rest.split_first_chunk::<2>() else { return };
    let len = u16::from_be_bytes(len);
    let Some(config) = AacConfig::parse(asc) else { return };
    assert!(config.sample_rate() > 0);
    assert!((1..=4).contains(&config.object_type) && (1..=7).contains(&config.channels));
    if let Some(h) = config.adts_header(usize::from(len)) {
        assert_eq!(h[0], 0xff);
        assert_eq!(h[1] & 0xf6, 0xf0, "syncword, MPEG-4, layer 0");
        let frame_length = usize::from(h[3] & 0x03) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
        assert_eq!(frame_length, usize::from(len) + 7);
        assert_eq!(h[2] >> 6, config.object_type - 1, "profile");
        assert_eq!((h[2] >> 2) & 0x0f, config.sampling_index);
        assert_eq!((h[2] & 1) << 2 | h[3] >> 6, config.channels);
    }
    let mut mux = TsMuxer::with_streams(false, Some(TsAudio::Aac));
    let mut out = Vec::new();
    mux.psi(&mut out);
    let written = mux.aac(0, &config, raw, &mut out);
    assert_eq!(written, config.adts_header(raw.len()).is_some());
    assert_eq!(out.len() % 188, 0);
});
