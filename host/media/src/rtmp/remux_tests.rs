use super::*;
use crate::ts::{FrameKind, TsDemuxer};
use proptest::prelude::*;

/// An AVC sequence header: one SPS, one PPS, 4-byte lengths.
fn avc_config_tag() -> Bytes {
    let mut body = vec![0x17, 0, 0, 0, 0];
    body.extend_from_slice(&[1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 0x42, 1, 0, 2, 0x68, 0xce]);
    Bytes::from(body)
}

/// An AVC frame: one slice NAL (IDR or not) with a composition time offset.
fn avc_frame_tag(idr: bool, cts_ms: i32, fill: u8) -> Bytes {
    let cts = cts_ms.to_be_bytes();
    let mut body = vec![if idr { 0x17 } else { 0x27 }, 1, cts[1], cts[2], cts[3]];
    let nal = [if idr { 0x65 } else { 0x41 }, fill, fill, fill];
    body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
    body.extend_from_slice(&nal);
    Bytes::from(body)
}

/// AAC-LC, 44.1 kHz, stereo.
fn aac_config_tag() -> Bytes {
    Bytes::from_static(&[0xaf, 0, 0x12, 0x10])
}

fn aac_frame_tag(fill: u8) -> Bytes {
    Bytes::from(vec![0xaf, 1, fill, fill, fill])
}

fn demux(ts: &[u8]) -> Vec<crate::ts::TsFrame> {
    let mut demux = TsDemuxer::new();
    let mut frames = demux.push(ts);
    frames.extend(demux.finish());
    frames
}

#[test]
fn h264_and_aac_become_ts_with_timestamps_on_one_timeline() {
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.expect(Expected { video: true, audio: true });
    remux.push(TagKind::Script, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData"), &mut ts).expect("ok");
    remux.push(TagKind::Video, 1000, avc_config_tag(), &mut ts).expect("ok");
    assert!(ts.is_empty(), "held until the audio is configured too");
    remux.push(TagKind::Audio, 1000, aac_config_tag(), &mut ts).expect("ok");
    // B-frame order: I (pts 1066), P (pts 1133), B (pts 1100).
    remux.push(TagKind::Video, 1000, avc_frame_tag(true, 66, 1), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 1010, aac_frame_tag(2), &mut ts).expect("ok");
    remux.push(TagKind::Video, 1033, avc_frame_tag(false, 100, 3), &mut ts).expect("ok");
    remux.push(TagKind::Video, 1066, avc_frame_tag(false, 34, 4), &mut ts).expect("ok");
    remux.finish(&mut ts).expect("ok");

    let frames = demux(&ts);
    let video: Vec<_> = frames.iter().filter(|f| f.kind == FrameKind::H264).collect();
    let audio: Vec<_> = frames.iter().filter(|f| f.kind == FrameKind::Other(0x0f)).collect();
    assert_eq!(video.len(), 3);
    assert_eq!(audio.len(), 1);
    let at = |ms: u64| Some(90_000 + ms * 90);
    assert_eq!((video[0].dts, video[0].pts, video[0].keyframe), (at(0), at(66), true));
    assert_eq!((video[1].dts, video[1].pts, video[1].keyframe), (at(33), at(133), false));
    assert_eq!((video[2].dts, video[2].pts), (at(66), at(100)));
    assert_eq!(audio[0].pts, at(10));
    // AUD, SPS, PPS, IDR.
    assert_eq!(
        &video[0].data[..],
        [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 1, 1, 1]
    );
    assert_eq!(&video[1].data[..], [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x41, 3, 3, 3]);
    // ADTS header for 3 bytes (frame length 10), then the frame.
    assert_eq!(&audio[0].data[..], [0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 2, 2, 2]);
}

#[test]
fn timestamps_go_on_across_the_32_bit_wrap() {
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.expect(Expected { video: true, audio: false });
    let start = u32::MAX - 40;
    remux.push(TagKind::Video, start, avc_config_tag(), &mut ts).expect("ok");
    for i in 0..4u32 {
        remux.push(TagKind::Video, start.wrapping_add(i * 33), avc_frame_tag(i == 0, 0, 1), &mut ts).expect("ok");
    }
    let dts: Vec<_> = demux(&ts).iter().map(|f| f.dts).collect();
    assert_eq!(dts, [0u64, 33, 66, 99].map(|ms| Some(90_000 + ms * 90)));
    // And the unwrapped clock itself, also going back a little.
    let mut remux = FlvToTs::new();
    assert_eq!(remux.unwrap(u32::MAX), i64::from(u32::MAX));
    assert_eq!(remux.unwrap(5), i64::from(u32::MAX) + 6);
    assert_eq!(remux.unwrap(u32::MAX - 1), i64::from(u32::MAX) - 1);
    assert_eq!(remux.unwrap(10), i64::from(u32::MAX) + 11);
}

#[test]
fn aac_timestamps_count_samples_while_they_agree_with_the_tags() {
    let config = AacConfig::parse(&[0x12, 0x10]).expect("lc, 44.1 kHz");
    let mut clock = None;
    // 1024 samples at 44.1 kHz are 23.22 ms (2089.8 ticks); the tags round to milliseconds.
    let got: Vec<i64> = [0, 23, 46, 70, 93].iter().map(|&ms| audio_ticks(&mut clock, ms * 90, &config)).collect();
    assert_eq!(got, [0, 2090, 4180, 6269, 8359]);
    // A gap (frames lost): anchored at the tag again.
    assert_eq!(audio_ticks(&mut clock, 200 * 90, &config), 18_000);
    assert_eq!(audio_ticks(&mut clock, 223 * 90, &config), 18_000 + 2090);
}

#[test]
fn the_first_frame_not_a_configuration_record_starts_the_timeline() {
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.expect(Expected { video: true, audio: true });
    remux.push(TagKind::Video, 5000, avc_config_tag(), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 5000, aac_config_tag(), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 20, aac_frame_tag(1), &mut ts).expect("ok");
    remux.push(TagKind::Video, 33, avc_frame_tag(true, 0, 2), &mut ts).expect("ok");
    let pts: Vec<_> = demux(&ts).iter().map(|f| f.pts).collect();
    assert_eq!(pts, [Some(90_000), Some(90_000 + 13 * 90)]);
}

#[test]
fn without_metadata_a_lone_track_starts_after_the_hold() {
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
    for i in 0..30u32 {
        remux.push(TagKind::Audio, i * 23, aac_frame_tag(i as u8), &mut ts).expect("ok");
        assert_eq!(ts.is_empty(), i * 23 < HOLD_MS as u32, "held while the video might still come");
    }
    remux.finish(&mut ts).expect("ok");
    let frames = demux(&ts);
    assert_eq!(frames.len(), 30);
    assert!(frames.iter().all(|f| f.kind == FrameKind::Other(0x0f)));
    // Audio only: the audio carries the PCR.
    let first_audio =
        ts.chunks(188).find(|p| p[1] & 0x40 != 0 && u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]) == 0x101);
    assert!(first_audio.is_some_and(|p| p[3] & 0x20 != 0 && p[5] & 0x10 != 0), "PCR on audio");
}

#[test]
fn unsupported_tracks_are_dropped_and_a_publish_without_any_is_refused() {
    // HEVC (legacy id 12) with AAC: audio only.
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.push(TagKind::Video, 0, Bytes::from_static(&[0x1c, 0, 0, 0, 0, 1]), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 20, aac_frame_tag(1), &mut ts).expect("ok");
    remux.push(TagKind::Video, 33, Bytes::from_static(&[0x2c, 1, 0, 0, 0, 0, 0, 0, 1, 0x02]), &mut ts).expect("ok");
    remux.finish(&mut ts).expect("ok");
    let frames = demux(&ts);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].kind, FrameKind::Other(0x0f));

    // Enhanced-RTMP HEVC with MP3: refused as soon as both are known.
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    let hevc = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1, 2, 3]);
    remux.push(TagKind::Video, 0, hevc, &mut ts).expect("still waiting for audio");
    let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb]);
    assert!(matches!(remux.push(TagKind::Audio, 0, mp3, &mut ts), Err(MediaError::Protocol(_))));
    assert!(ts.is_empty());
}

#[test]
fn late_tracks_and_frames_before_configuration_are_dropped() {
    let mut remux = FlvToTs::new();
    let mut ts = Vec::new();
    remux.expect(Expected { video: true, audio: false });
    remux.push(TagKind::Video, 0, avc_config_tag(), &mut ts).expect("ok");
    remux.push(TagKind::Video, 0, avc_frame_tag(true, 0, 1), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 0, aac_config_tag(), &mut ts).expect("ok");
    remux.push(TagKind::Audio, 10, aac_frame_tag(1), &mut ts).expect("ok");
    remux.push(TagKind::Video, 33, avc_frame_tag(false, 0, 2), &mut ts).expect("ok");
    let frames = demux(&ts);
    assert_eq!(frames.iter().map(|f| f.kind).collect::<Vec<_>>(), [FrameKind::H264, FrameKind::H264]);
    assert_eq!(remux.dropped, 1);
}

#[test]
fn composition_offsets_are_signed_24_bits() {
    assert_eq!(classify(TagKind::Video, &[0x27, 1, 0xff, 0xff, 0xdf, 7]), Media::AvcFrame { cts_ms: -33, data: &[7] });
    assert_eq!(classify(TagKind::Video, &[0x27, 1, 0, 0x01, 0, 7]), Media::AvcFrame { cts_ms: 256, data: &[7] });
    assert_eq!(classify(TagKind::Video, &[0x57, 0]), Media::Nothing, "command frame");
    assert_eq!(classify(TagKind::Video, &[0x17, 2, 0, 0, 0]), Media::Nothing, "end of sequence");
    assert_eq!(classify(TagKind::Audio, &[]), Media::Nothing);
}

fn tag_strategy() -> impl Strategy<Value = (bool, u32, Vec<u8>)> {
    let header = prop_oneof![
        Just(vec![0x17, 0]),
        Just(vec![0x17, 1]),
        Just(vec![0x27, 1]),
        Just(vec![0xaf, 0]),
        Just(vec![0xaf, 1]),
        Just(vec![0x90]),
        Just(vec![]),
    ];
    (any::<bool>(), any::<u32>(), header, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(
        |(video, ts, mut head, tail)| {
            head.extend(tail);
            (video, ts, head)
        },
    )
}

proptest! {
    #[test]
    fn never_panics_and_writes_whole_packets(tags in proptest::collection::vec(tag_strategy(), 0..60), meta in any::<Option<(bool, bool)>>()) {
        let mut remux = FlvToTs::new();
        if let Some((video, audio)) = meta {
            remux.expect(Expected { video, audio });
        }
        let mut ts = Vec::new();
        for (video, timestamp, body) in tags {
            let kind = if video { TagKind::Video } else { TagKind::Audio };
            if remux.push(kind, timestamp, Bytes::from(body), &mut ts).is_err() {
                break;
            }
        }
        let _ = remux.finish(&mut ts);
        prop_assert_eq!(ts.len() % 188, 0);
        let _ = demux(&ts);
    }

    #[test]
    fn valid_streams_keep_every_frame(frames in proptest::collection::vec((any::<bool>(), 0u32..100, -50i32..200), 1..80), base in any::<u32>()) {
        let mut remux = FlvToTs::new();
        let mut ts = Vec::new();
        remux.push(TagKind::Video, base, avc_config_tag(), &mut ts).expect("ok");
        remux.push(TagKind::Audio, base, aac_config_tag(), &mut ts).expect("ok");
        let mut dts = base;
        let (mut videos, mut audios) = (0, 0);
        for (i, (video, step, cts)) in frames.into_iter().enumerate() {
            dts = dts.wrapping_add(step);
            let body = if video { avc_frame_tag(i == 0, cts, i as u8) } else { aac_frame_tag(i as u8) };
            let kind = if video { TagKind::Video } else { TagKind::Audio };
            remux.push(kind, dts, body, &mut ts).expect("ok");
            if video { videos += 1 } else { audios += 1 }
        }
        remux.finish(&mut ts).expect("ok");
        let frames = demux(&ts);
        prop_assert_eq!(frames.iter().filter(|f| f.kind == FrameKind::H264).count(), videos);
        prop_assert_eq!(frames.iter().filter(|f| f.kind == FrameKind::Other(0x0f)).count(), audios);
    }
}
