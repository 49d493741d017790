//! The muxer and the demuxer agree: access units of any content, size and timestamps muxed to MPEG-TS
//! (H.264 with Opus or AAC, the layouts WHIP and RTMP ingest write) come back out of the demuxer as they
//! went in, whatever the chunking of the bytes between them.
#![no_main]

use arbitrary::Arbitrary;
use byoc_ts::{AacConfig, FrameKind, Picture, TsAudio, TsDemuxer, TsMuxer, first_picture};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Audio {
    None,
    Opus { stereo: bool },
    Aac { asc: [u8; 2] },
}

#[derive(Arbitrary, Debug)]
enum Unit {
    Video { pts: u64, dts_behind: u16, keyframe: bool, psi_first: bool, data: Vec<u8> },
    Audio { pts: u64, data: Vec<u8>, raw: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    video: bool,
    audio: Audio,
    units: Vec<Unit>,
    chunking: u8,
}

/// 2^33: timestamps wrap there.
const MODULUS: u64 = 1 << 33;

fuzz_target!(|input: Input| {
    let audio = match input.audio {
        Audio::None => None,
        Audio::Opus { stereo } => Some(TsAudio::Opus { channels: if stereo { 2 } else { 1 } }),
        Audio::Aac { .. } => Some(TsAudio::Aac),
    };
    let aac = match input.audio {
        Audio::Aac { asc } => AacConfig::parse(&asc),
        _ => None,
    };
    let mut mux = TsMuxer::with_streams(input.video, audio);
    let mut ts = Vec::new();
    mux.psi(&mut ts);
    // What each stream should give back: (pts, dts, keyframe at least, data).
    let mut want_video = Vec::new();
    let mut want_audio = Vec::new();
    for unit in input.units.into_iter().take(64) {
        match unit {
            Unit::Video { pts, dts_behind, keyframe, psi_first, mut data } => {
                data.truncate(1 << 17);
                let pts = pts % MODULUS;
                let dts = pts.saturating_sub(u64::from(dts_behind));
                if psi_first {
                    mux.psi(&mut ts);
                }
                mux.video(pts, dts, keyframe, &data, &mut ts);
                if input.video {
                    let mut es = Vec::new();
                    if !data.starts_with(&[0, 0, 0, 1, 0x09]) {
                        es.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
                    }
                    es.extend_from_slice(&data);
                    want_video.push((Some(pts), Some(dts), keyframe, es));
                }
            }
            Unit::Audio { pts, mut data, raw } => {
                data.truncate(1 << 17);
                let pts = pts % MODULUS;
                match (audio, aac) {
                    (Some(TsAudio::Opus { .. }), _) => {
                        mux.opus(pts, &data, &mut ts);
                        // Every Opus packet can be decoded on its own.
                        want_audio.push((Some(pts), Some(pts), true, data));
                    }
                    (Some(TsAudio::Aac), Some(config)) if raw => {
                        if mux.aac(pts, &config, &data, &mut ts) {
                            let mut es = config.adts_header(data.len()).expect("a header for what was muxed").to_vec();
                            es.extend_from_slice(&data);
                            want_audio.push((Some(pts), Some(pts), !input.video, es));
                        }
                    }
                    (Some(TsAudio::Aac), _) => {
                        mux.adts(pts, &data, &mut ts);
                        want_audio.push((Some(pts), Some(pts), !input.video, data));
                    }
                    (None, _) => assert!(!mux.aac(pts, &AacConfig::parse(&[0x12, 0x10]).expect("LC"), &data, &mut ts)),
                }
            }
        }
    }
    assert_eq!(ts.len() % 188, 0, "the muxer wrote a partial packet");

    let mut demux = TsDemuxer::new();
    let mut frames = Vec::new();
    for chunk in byoc_fuzz::chunks(&ts, input.chunking) {
        frames.extend(demux.push(chunk));
    }
    frames.extend(demux.finish());
    let check = |got: Vec<&byoc_ts::TsFrame>, want: &[(Option<u64>, Option<u64>, bool, Vec<u8>)], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: {} frames muxed, {} demuxed", want.len(), got.len());
        for (frame, (pts, dts, keyframe, data)) in got.iter().zip(want) {
            assert_eq!((frame.pts, frame.dts), (*pts, *dts), "{what}: timestamps");
            assert!(
                &frame.data == data,
                "{what}: data differs ({} bytes muxed, {} demuxed)",
                data.len(),
                frame.data.len()
            );
            // A keyframe is flagged as one; a frame that holds an IDR is one anyway.
            let idr = what == "video" && first_picture(data, false) == Some(Picture::Key);
            assert_eq!(frame.keyframe, *keyframe || idr, "{what}: keyframe flag");
        }
    };
    let video = frames.iter().filter(|f| f.kind == FrameKind::H264).collect();
    let audio_frames = frames.iter().filter(|f| f.kind != FrameKind::H264).collect();
    check(video, &want_video, "video");
    check(audio_frames, &want_audio, "audio");
});
