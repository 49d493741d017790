//! Where output segments end: one per input segment, also when audio is encoded again (the AAC
//! encoder holds its last frames until it is drained), and a live segment ends without waiting
//! for more input.

use std::time::Duration;

use byoc_frames::{AudioNeeds, Decoded, Encoded, FrameNeeds, PixelFormat, Processed, VideoNeeds, start};
use bytes::Bytes;

use crate::common::{audio_packets, config, ffmpeg_available, make_segments, run, video_frames, write};

/// Video and audio both through the plugin.
fn video_and_audio() -> FrameNeeds {
    FrameNeeds {
        video: Some(VideoNeeds { format: PixelFormat::I420, max_width: 0, max_height: 0, max_fps: 0 }),
        audio: Some(AudioNeeds { sample_rate: 48_000, channels: 2 }),
    }
}

/// H.264 + AAC through a plugin that takes both: as many output segments as input segments, each
/// starting on a keyframe; the audio the encoder still held at the end is in the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_audio_makes_no_segment_of_its_own_at_the_end() {
    if !ffmpeg_available("encoded_audio_makes_no_segment_of_its_own_at_the_end") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 3);
    let input_file = write(dir.path(), "in.ts", &input.concat());
    let out = run(config(video_and_audio(), 256), input.clone(), Box::new(Some), Duration::ZERO).await;
    assert!(out.audio_seen > 0, "the plugin was given audio");
    assert_eq!(out.segments.len(), input.len(), "one output segment per input segment");
    for (i, segment) in out.segments.iter().enumerate() {
        let frames = video_frames(&write(dir.path(), &format!("out{i}.ts"), segment));
        assert!(frames.first().is_some_and(|f| f.1), "segment {i} starts on a keyframe");
    }
    let output_file = write(dir.path(), "out.ts", &out.segments.concat());
    let (want, got) = (audio_packets(&input_file), audio_packets(&output_file));
    assert!(got.len().abs_diff(want.len()) <= 2, "{} AAC frames out, {} in", got.len(), want.len());
    // The last input packet's time is covered by the last output segment (to within one AAC frame).
    let last_in = want.iter().map(|p| p.0).max().expect("audio in");
    let last = write(dir.path(), "last.ts", out.segments.last().expect("a segment"));
    let last_out = audio_packets(&last).iter().map(|p| p.0).max().expect("audio in the last segment");
    assert!(last_out >= last_in - 1920, "the last segment's audio ends at {last_out}, the input's at {last_in}");
}

/// A live client that sends its next segment only once the last one came out is never stalled:
/// each output segment ends once its input segment has been through, with no more input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_output_segment_ends_without_more_input() {
    if !ffmpeg_available("a_live_output_segment_ends_without_more_input") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_segments(dir.path(), 3);
    let pipeline = start(config(video_and_audio(), 256)).expect("pipeline starts");
    let (feeder, mut frames, sink, mut output) = (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output);
    let plugin = tokio::spawn(async move {
        while let Some(item) = frames.recv().await {
            let processed = match item {
                Decoded::Video(frame) => Processed::Video(frame),
                Decoded::Audio(frame) => Processed::Audio(frame),
                Decoded::SegmentEnd { .. } => Processed::SegmentEnd,
            };
            sink.send(processed).await.expect("the encoder takes frames");
        }
    });
    for (seq, segment) in input.iter().enumerate() {
        feeder.segment_start(seq as u64).await.expect("segment start");
        feeder.chunk(Bytes::copy_from_slice(segment)).await.expect("chunk");
        feeder.segment_end().await.expect("segment end");
        // A stall here (the end waiting for the next input) fails the test, however slow the machine.
        let ended = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(piece) = output.recv().await {
                if piece == Encoded::SegmentEnd {
                    return true;
                }
            }
            false
        });
        let ended = ended.await.unwrap_or_else(|_| panic!("output segment {seq} did not end without more input"));
        assert!(ended, "the output ended before segment {seq} did");
    }
    feeder.finish().await;
    plugin.await.expect("plugin");
}
