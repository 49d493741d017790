//! Any MPEG-TS (mutated from real H.264 + AAC, so that the mutations reach the codecs), cut into
//! segments, into a frame plugin's pipeline (byoc-ts demux, libavcodec decode, conversion to the plugin's
//! format, libx264/AAC encode of what the "plugin" returns). Whatever the bytes: no panic, every
//! input segment's end comes back to the plugin in order, output segments are well formed, and the
//! pipeline's threads end: errors stay inside the stream.
#![no_main]

use std::sync::atomic::Ordering;
use std::time::Duration;

use byoc_frames::{
    AudioNeeds, Decoded, EncodeSettings, Encoded, FrameNeeds, PipelineConfig, PixelFormat, Processed, VideoNeeds,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// What the "plugin" asked for, from the settings byte: bits 0-1 the video format (0: passed
/// through), bit 2 audio decoded, bits 3-4 the largest side (0: any, else 64 << n), bits 5-7 where
/// the input is cut into segments.
fn needs(settings: u8) -> FrameNeeds {
    let format = match settings & 3 {
        0 => None,
        1 => Some(PixelFormat::I420),
        2 => Some(PixelFormat::Rgb24),
        _ => Some(PixelFormat::Rgba),
    };
    let side = match (settings >> 3) & 3 {
        0 => 0,
        n => 64 << n,
    };
    FrameNeeds {
        video: format.map(|format| VideoNeeds { format, max_width: side, max_height: side, max_fps: 0 }),
        audio: (settings & 4 != 0).then_some(AudioNeeds { sample_rate: 0, channels: 0 }),
    }
}

// A settings byte, then MPEG-TS (the seeds: ffmpeg's H.264 + AAC), cut into up to four segments at
// packet boundaries.
fuzz_target!(|input: &[u8]| {
    let Some((&settings, ts)) = input.split_first() else { return };
    let config = PipelineConfig {
        needs: needs(settings),
        encode: EncodeSettings::default(),
        queue_frames: 4,
        queue_bytes: 8 << 20,
        lossless: true,
    };
    let packets = ts.len() / 188 + 1;
    let cuts = usize::from(settings >> 5);
    let mut segments = Vec::new();
    let mut rest = ts;
    for i in 0..cuts.min(3) {
        let at = (packets * (i + 1) / (cuts + 1) * 188).saturating_sub(ts.len() - rest.len()).min(rest.len());
        let (segment, after) = rest.split_at(at);
        segments.push(segment.to_vec());
        rest = after;
    }
    segments.push(rest.to_vec());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let Ok(pipeline) = byoc_frames::start(config) else { return };
        let (feeder, mut frames, sink, mut output, stats) =
            (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);
        let count = segments.len() as u64;
        let feed = tokio::spawn(async move {
            for (seq, segment) in segments.into_iter().enumerate() {
                feeder.segment_start(seq as u64).await?;
                for chunk in segment.chunks(1316) {
                    feeder.chunk(Bytes::copy_from_slice(chunk)).await?;
                }
                if seq as u64 + 1 < count {
                    feeder.segment_end().await?;
                }
            }
            feeder.last_segment_end().await
        });
        // The "plugin": every frame back as it came.
        let plugin = tokio::spawn(async move {
            let mut ends = Vec::new();
            while let Some(item) = frames.recv().await {
                let processed = match item {
                    Decoded::Video(frame) => Processed::Video(frame),
                    Decoded::Audio(frame) => Processed::Audio(frame),
                    Decoded::SegmentEnd { input_seq } => {
                        ends.push(input_seq);
                        Processed::SegmentEnd
                    }
                };
                if sink.send(processed).await.is_err() {
                    break;
                }
            }
            sink.finish();
            ends
        });
        let collect = tokio::spawn(async move {
            let mut open = false;
            let mut segments = 0u64;
            while let Some(piece) = output.recv().await {
                match piece {
                    Encoded::SegmentStart => {
                        assert!(!open, "an output segment starts inside another");
                        open = true;
                        segments += 1;
                    }
                    Encoded::Chunk(_) => assert!(open, "output bytes outside a segment"),
                    Encoded::SegmentEnd => {
                        assert!(open, "an output segment ends that did not start");
                        open = false;
                    }
                }
            }
            assert!(!open, "the last output segment was not ended");
            segments
        });
        let all = async { (feed.await, plugin.await, collect.await) };
        let (fed, ends, made) = tokio::time::timeout(Duration::from_secs(8), all).await.expect("the pipeline ends");
        fed.expect("feeder task").expect("the pipeline takes its whole input");
        let ends = ends.expect("plugin task");
        assert_eq!(ends, (0..count).collect::<Vec<_>>(), "every input segment's end, in order");
        assert!(made.expect("output task") <= count, "more output segments than input segments");
        for _ in 0..400 {
            if stats.threads.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the pipeline's threads still run");
    });
});
