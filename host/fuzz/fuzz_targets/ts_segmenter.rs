//! The segmenter that cuts every ingest's MPEG-TS at keyframes (RTMP and WHIP publishes, and what
//! plugins write), fed any bytes in any chunking: it must not panic, every piece is whole packets, a
//! segment opens with a `Piece::Start`, and the segments cut do not depend on the chunking.
#![no_main]

use std::time::Duration;

use byoc_media::{Piece, SegmenterConfig, TsSegmenter};
use libfuzzer_sys::fuzz_target;

// Three bytes of settings (chunking, minimum duration in 100 ms, largest segment in KiB), then the stream.
fuzz_target!(|input: &[u8]| {
    let Some((&[seed, min, kib], data)) = input.split_first_chunk::<3>() else { return };
    let config = SegmenterConfig {
        min_duration: Duration::from_millis(u64::from(min) * 100),
        max_segment_bytes: (usize::from(kib) + 1) * 1024,
        // Coalescing pieces never changes the segments they join into (0 to 140 ms).
        piece_window: Duration::from_millis(u64::from(min % 8) * 20),
    };
    let chunks = byoc_fuzz::chunks(data, seed);
    let whole = segments(&config, &[data], false);
    let chunked = segments(&config, &chunks, false);
    if byoc_fuzz::in_sync(data) {
        assert!(whole == chunked, "the segments depend on how the bytes were chunked");
    }
    // A cut asked after every chunk (as a waiting viewer asks): the pieces are still well formed.
    segments(&config, &chunks, true);
});

/// The segments cut from `chunks`, each as its pieces' bytes joined; with `cut_each`, a cut at the next
/// keyframe is asked after every chunk.
fn segments(config: &SegmenterConfig, chunks: &[&[u8]], cut_each: bool) -> Vec<Vec<u8>> {
    let mut segmenter = TsSegmenter::new(config.clone());
    let mut pieces = Vec::new();
    for chunk in chunks {
        pieces.extend(segmenter.push_pieces(chunk));
        if cut_each {
            segmenter.cut_at_next_keyframe();
        }
    }
    pieces.extend(segmenter.finish_pieces());
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let bytes = piece.bytes();
        assert_eq!(bytes.len() % 188, 0, "a piece of partial packets");
        assert!(bytes.chunks(188).all(|p| p.first() == Some(&0x47)), "a piece with a packet out of sync");
        match piece {
            Piece::Start(b) => out.push(b.to_vec()),
            Piece::More(b) => match out.last_mut() {
                Some(last) => last.extend_from_slice(b),
                None => panic!("piece {i} continues a segment that was never started"),
            },
        }
    }
    out
}
