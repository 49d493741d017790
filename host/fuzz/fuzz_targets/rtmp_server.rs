//! The RTMP server's connection handling end to end: a client completes the handshake, then sends any
//! bytes (the seeds are real publishes by ffmpeg) into the server's own connection loop over an
//! in-memory pipe: rml_rtmp's chunk and AMF parsing, connect and publish, metadata, the FLV → TS remux
//! and the segmenter. The connection may fail; the process must not.
//!
//! rml_rtmp panics on some malformed messages; the server catches that per connection. libFuzzer's
//! panic hook aborts on any panic, caught or not, so this target installs one that lets a panic raised
//! inside rml_rtmp (an rml_rtmp function on the panicking stack) through to that catch, printing each
//! new place once, and aborts on any other.
#![no_main]

use std::sync::Once;
use std::time::Duration;

use byoc_media::{Piece, RtmpConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| byoc_fuzz::contain_panics_in(&["rml_rtmp", "rml_amf0"]));
    let config = RtmpConfig {
        // Small segments, so that short inputs are cut too.
        segmenter: byoc_media::SegmenterConfig {
            min_duration: Duration::from_millis(100),
            max_segment_bytes: 1 << 20,
            ..Default::default()
        },
        ..RtmpConfig::default()
    };
    let outcome = byoc_fuzz::paused_runtime().block_on(byoc_media::fuzzing::rtmp_connection(input, config));
    let mut started = false;
    for piece in &outcome.pieces {
        started |= piece.is_start();
        assert!(started, "a piece sent before any segment start");
        assert_eq!(piece.bytes().len() % 188, 0);
    }
    let _ = outcome.pieces.iter().filter(|p| matches!(p, Piece::Start(_))).count();
});
