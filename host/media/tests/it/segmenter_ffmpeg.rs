//! TsSegmenter on MPEG-TS written by ffmpeg: segments are valid on their own and lose no frame.

use crate::common;

use std::time::Duration;

use byoc_media::{SegmenterConfig, TsSegmenter};
use bytes::Bytes;
use proptest::prelude::*;

fn segment(ts: &[u8], chunk: usize, min: Duration) -> Vec<Bytes> {
    let mut segmenter = TsSegmenter::new(SegmenterConfig { min_duration: min, ..SegmenterConfig::default() });
    let mut out = Vec::new();
    for c in ts.chunks(chunk.max(1)) {
        out.extend(segmenter.push(c));
    }
    out.extend(segmenter.finish());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_ts_segments_are_self_contained_and_complete() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // GOP of 15 (0.5 s) with libx264's B-frames and Opus audio.
    let source = common::make_ts(dir.path(), 4, 15, "libopus").await;
    let ts = std::fs::read(&source).expect("read");
    let segments = segment(&ts, 4096, Duration::from_secs(1));
    assert_eq!(segments.len(), 4, "1 s minimum over a 0.5 s GOP gives 1 s segments");

    let mut frames = 0;
    for (i, s) in segments.iter().enumerate() {
        let path = dir.path().join(format!("seg{i}.ts"));
        std::fs::write(&path, s).expect("write");
        let probe = common::probe(&path).await;
        assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360));
        assert_eq!(probe.audio_codec.as_deref(), Some("opus"));
        assert!(probe.starts_with_keyframe, "segment {i}");
        assert!(common::decodes_cleanly(&path).await, "segment {i} decodes without errors");
        frames += probe.video_frames;
    }
    assert_eq!(frames, 120, "no frame lost or duplicated");

    // Any chunking of the input gives the same segments.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(32));
    runner
        .run(&(1usize..20_000), |chunk| {
            prop_assert_eq!(&segment(&ts, chunk, Duration::from_secs(1)), &segments);
            Ok(())
        })
        .expect("chunking invariant");
}
