//! The demuxer to access units (what WHEP egress and the frame pipeline read segments with), fed any
//! bytes in any chunking, and the first-picture scan of each frame. The frames found must not depend on
//! the chunking, nor on whether the stream was flushed piece by piece at segment boundaries.
#![no_main]

use byoc_ts::{TsDemuxer, TsFrame, first_picture};
use libfuzzer_sys::fuzz_target;

// The first byte picks the chunking; the rest is the stream.
fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let whole = demux(&[data]);
    let chunked = demux(&byoc_fuzz::chunks(data, seed));
    if byoc_fuzz::in_sync(data) {
        assert!(whole == chunked, "the frames found depend on how the bytes were chunked");
    }
    let total: usize = whole.iter().map(|f| f.data.len()).sum();
    assert!(total <= data.len(), "frames hold more bytes than the stream");
    for frame in &whole {
        let _ = first_picture(&frame.data, false);
        let _ = first_picture(&frame.data, true);
    }
});

fn demux(chunks: &[&[u8]]) -> Vec<TsFrame> {
    let mut demuxer = TsDemuxer::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        frames.extend(demuxer.push(chunk));
    }
    let _ = demuxer.streams().count();
    frames.extend(demuxer.finish());
    frames
}
