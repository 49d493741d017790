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

use std::collections::HashSet;
use std::sync::{Mutex, Once};
use std::time::Duration;

use byoc_media::{Piece, RtmpConfig};
use libfuzzer_sys::fuzz_target;

/// Where rml_rtmp panicked (and the server caught it) so far.
static RML_PANICS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn contain_rml_rtmp_panics() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        if trace.contains("rml_rtmp::") || trace.contains("rml_amf0::") {
            let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let mut seen = RML_PANICS.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(place) {
                eprintln!("rtmp_server: rml_rtmp panicked, contained by the server: {info}");
            }
            return;
        }
        abort_hook(info);
    }));
}

fuzz_target!(|input: &[u8]| {
    static HOOK: Once = Once::new();
    HOOK.call_once(contain_rml_rtmp_panics);
    let config = RtmpConfig {
        // Small segments, so that short inputs are cut too.
        segmenter: byoc_media::SegmenterConfig { min_duration: Duration::from_millis(100), max_segment_bytes: 1 << 20 },
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
