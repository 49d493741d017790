//! TsDemuxer/TsMuxer against ffmpeg: an ffmpeg H.264+Opus TS, demuxed and muxed again by us, is read
//! back by ffmpeg with every frame, and segments cleanly.

use crate::common;

use byoc_media::ts::{FrameKind, TsDemuxer, TsMuxer};
use byoc_media::{SegmenterConfig, TsSegmenter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remuxed_h264_opus_is_read_by_ffmpeg() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let source = common::make_ts(dir.path(), 4, 30, "libopus").await;
    let mut demux = TsDemuxer::new();
    let mut frames = demux.push(&std::fs::read(&source).expect("read"));
    frames.extend(demux.finish());
    let opus_in = frames.iter().filter(|f| f.kind == FrameKind::Opus).count();
    assert_eq!(frames.iter().filter(|f| f.kind == FrameKind::H264).count(), 120);
    assert!(opus_in >= 190, "about 4 s of 20 ms Opus packets, got {opus_in}");

    let mut mux = TsMuxer::new(Some(1));
    let mut ts = Vec::new();
    for f in &frames {
        match f.kind {
            FrameKind::H264 => {
                if f.keyframe {
                    mux.psi(&mut ts);
                }
                let pts = f.pts.expect("pts");
                mux.video(pts, f.dts.unwrap_or(pts), f.keyframe, &f.data, &mut ts);
            }
            FrameKind::Opus => mux.opus(f.pts.expect("pts"), &f.data, &mut ts),
            FrameKind::Other(_) => {}
        }
    }
    let path = dir.path().join("remux.ts");
    std::fs::write(&path, &ts).expect("write");
    let probe = common::probe(&path).await;
    assert_eq!((probe.video_codec.as_str(), probe.width, probe.height), ("h264", 640, 360));
    assert_eq!(probe.audio_codec.as_deref(), Some("opus"));
    assert_eq!(probe.video_frames, 120);
    assert!(common::decodes_cleanly(&path).await, "our TS decodes without errors");

    let mut segmenter = TsSegmenter::new(SegmenterConfig::default());
    let mut segments = segmenter.push(&ts);
    segments.extend(segmenter.finish());
    assert_eq!(segments.len(), 4);
    for (i, s) in segments.iter().enumerate() {
        let p = dir.path().join(format!("seg{i}.ts"));
        std::fs::write(&p, s).expect("write");
        let probe = common::probe(&p).await;
        assert!(probe.starts_with_keyframe, "segment {i}");
        assert_eq!(probe.audio_codec.as_deref(), Some("opus"));
        assert!(common::decodes_cleanly(&p).await, "segment {i}");
    }
}
