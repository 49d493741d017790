//! The FLV reader that splits ffmpeg's output into tags for RTMP viewers, fed any bytes in any chunking:
//! no panic, no tag bigger than the input, and the same tags (and error) however the bytes come.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The first byte picks the chunking; the rest is the stream.
fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let (whole, whole_end) = byoc_media::fuzzing::flv_tags([data]);
    let (chunked, chunked_end) = byoc_media::fuzzing::flv_tags(byoc_fuzz::chunks(data, seed));
    assert!(whole == chunked, "the tags depend on how the bytes were chunked");
    assert_eq!(whole_end.is_ok(), chunked_end.is_ok(), "the error depends on the chunking");
    let total: usize = whole.iter().map(|(_, _, body)| body.len()).sum();
    assert!(total <= data.len());
    assert!(whole.iter().all(|(kind, _, _)| matches!(kind, 8 | 9 | 18)));
});
