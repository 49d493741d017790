//! The FLV → MPEG-TS remux of RTMP ingest, fed the tags of any FLV stream (an RTMP publish carries FLV
//! tag bodies): no panic, whole packets that all parse, the PAT and PMT first, and every H.264 access
//! unit the demuxer finds in it opens with an access unit delimiter.
#![no_main]

use byoc_ts::{FrameKind, Packet, TsDemuxer};
use libfuzzer_sys::fuzz_target;

// One byte of metadata (bit 0: the publisher sent some; bit 1: it announces video; bit 2: audio), then
// an FLV stream.
fuzz_target!(|input: &[u8]| {
    let Some((&meta, flv)) = input.split_first() else { return };
    let expected = (meta & 1 != 0).then_some((meta & 2 != 0, meta & 4 != 0));
    let (tags, _) = byoc_media::fuzzing::flv_tags([flv]);
    let (ts, _) = byoc_media::fuzzing::remux(tags, expected);
    assert_eq!(ts.len() % 188, 0, "partial packets");
    for packet in ts.chunks(188) {
        assert!(Packet::parse(packet).is_ok(), "a packet that does not parse");
    }
    if let Some(first) = ts.get(..188) {
        assert_eq!(Packet::parse(first).map(|p| p.pid.value()), Ok(0), "the PAT is not first");
    }
    let mut demux = TsDemuxer::new();
    let mut frames = demux.push(&ts);
    frames.extend(demux.finish());
    for frame in frames.iter().filter(|f| f.kind == FrameKind::H264) {
        assert!(frame.data.starts_with(&[0, 0, 0, 1, 0x09]), "an access unit without its delimiter");
    }
});
