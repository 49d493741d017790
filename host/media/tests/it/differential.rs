//! Differential checks against FFmpeg, the reference for what a stream contains:
//! - our TS demuxer reads mutated-but-parseable TS (packets dropped, repeated, swapped, payload bytes
//!   flipped, the file cut short) as ffprobe does: the same access units per stream, with the same
//!   PTS and DTS;
//! - our FLV → TS remux (RTMP ingest) of mutated FLV (tags dropped or repeated, tag bodies flipped)
//!   writes TS that ffprobe demuxes without a container error into exactly the access units our
//!   demuxer finds in it, and that ffmpeg decodes to the end.
//!
//! The mutations are seeded, so a failure names a seed that reproduces it.

use std::path::Path;

use byoc_media::ts::{FrameKind, TsDemuxer};
use tokio::process::Command;

use crate::common;

/// The video PID of ffmpeg's MPEG-TS muxer.
const VIDEO_PID: u16 = 0x100;

/// Mutated inputs per check.
const ROUNDS: u64 = 24;

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// (PTS, DTS) of each access unit, video and audio apart.
type Units = (Vec<(i64, i64)>, Vec<(i64, i64)>);

/// What ffprobe reads in `path`, and what its demuxer said on stderr.
async fn ffprobe_units(path: &Path) -> (Units, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=codec_type,pts,dts", "-show_entries", "stream=index,codec_type"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .await
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let mut units: Units = Default::default();
    for p in json["packets"].as_array().into_iter().flatten() {
        let t = |k: &str| p[k].as_i64().unwrap_or(-1);
        let unit = (t("pts"), t("dts"));
        match p["codec_type"].as_str() {
            Some("video") => units.0.push(unit),
            Some("audio") => units.1.push(unit),
            _ => {}
        }
    }
    (units, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What our demuxer reads in `ts` (units without a timestamp count as -1, as ffprobe prints N/A),
/// and the AAC frames in its audio units: ffprobe splits a PES of several ADTS frames into one
/// packet each (its parser, PTS interpolated), where we hand the PES on whole.
fn our_units(ts: &[u8]) -> (Units, usize) {
    let mut demux = TsDemuxer::new();
    let mut frames = demux.push(ts);
    frames.extend(demux.finish());
    let mut units: Units = Default::default();
    let mut aac_frames = 0;
    for f in frames {
        let pts = f.pts.map_or(-1, |p| p as i64);
        let unit = (pts, f.dts.map_or(pts, |d| d as i64));
        match f.kind {
            FrameKind::H264 => units.0.push(unit),
            FrameKind::Opus | FrameKind::Other(_) => {
                aac_frames += adts_frames(&f.data);
                units.1.push(unit);
            }
        }
    }
    (units, aac_frames)
}

/// Whole ADTS frames at the start of `data`, back to back.
fn adts_frames(mut data: &[u8]) -> usize {
    let mut n = 0;
    while data.len() >= 7 && data[0] == 0xFF && data[1] & 0xF0 == 0xF0 {
        let len = usize::from(data[3] & 0x03) << 11 | usize::from(data[4]) << 3 | usize::from(data[5]) >> 5;
        if len < 7 {
            break;
        }
        // A frame cut short (the file ends in it) is still a packet to ffprobe.
        n += 1;
        data = data.get(len..).unwrap_or_default();
    }
    n
}

/// Our units and ffprobe's agree: video unit for unit; audio (`whole_audio`: when its packets are
/// as muxed, so its ADTS framing is intact), every PES of ours opens one of ffprobe's AAC packets
/// with the same timestamps, in order, and the AAC frames are as many.
fn agree(ts: &[u8], theirs: &Units, whole_audio: bool) -> Result<(), String> {
    let ((video, audio), aac_frames) = our_units(ts);
    if video != theirs.0 {
        return Err(format!("video: ours {video:?}\ntheirs {:?}", theirs.0));
    }
    if !whole_audio {
        return Ok(());
    }
    let mut rest = theirs.1.iter();
    if let Some(missing) = audio.iter().find(|u| !rest.any(|t| t == *u)) {
        return Err(format!("audio unit {missing:?} of ours is not ffprobe's, in order: {:?}", theirs.1));
    }
    if aac_frames != theirs.1.len() {
        return Err(format!("{aac_frames} AAC frames in our audio units, {} packets for ffprobe", theirs.1.len()));
    }
    Ok(())
}

fn pid(packet: &[u8]) -> u16 {
    u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2])
}

/// One to three packet-level mutations that keep the TS parseable; also whether one moved or
/// removed an audio packet (ffprobe's AAC parser then resyncs on the ADTS framing, dropping frames
/// the demuxer rightly handed it: the audio is then compared by neither).
fn mutate_ts(source: &[u8], rng: &mut Rng) -> (Vec<u8>, Vec<String>, bool) {
    let mut packets: Vec<Vec<u8>> = source.chunks(188).map(<[u8]>::to_vec).collect();
    let mut did = Vec::new();
    let mut audio_touched = false;
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(packets.len());
        let audio = |p: &[u8]| pid(p) != VIDEO_PID && pid(p) > 0x20;
        match rng.below(5) {
            0 => {
                audio_touched |= audio(&packets[at]);
                packets.remove(at);
                did.push(format!("dropped packet {at}"));
            }
            1 => {
                audio_touched |= audio(&packets[at]);
                let copy = packets[at].clone();
                packets.insert(at, copy);
                did.push(format!("repeated packet {at}"));
            }
            2 if at + 1 < packets.len() => {
                audio_touched |= audio(&packets[at]) || audio(&packets[at + 1]);
                packets.swap(at, at + 1);
                did.push(format!("swapped packets {at} and {}", at + 1));
            }
            3 => {
                // A payload byte of a video packet that starts no PES: contents change, timestamps
                // and framing do not. (In audio it could break the ADTS framing, which is the
                // elementary stream's business, not the demuxer's.)
                let p = &mut packets[at];
                let video = pid(p) == VIDEO_PID;
                let starts_unit = !video || p[1] & 0x40 != 0;
                let payload_from = if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 };
                if !starts_unit && payload_from < 188 {
                    let i = payload_from + rng.below(188 - payload_from);
                    p[i] ^= 1 << rng.below(8);
                    did.push(format!("flipped byte {i} of packet {at}"));
                }
            }
            _ => {
                packets.truncate(at.max(1));
                did.push(format!("cut after packet {}", at.max(1)));
            }
        }
    }
    (packets.concat(), did, audio_touched)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_ts_demuxer_reads_mutated_ts_as_ffprobe_does() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let source = std::fs::read(common::make_ts(dir.path(), 2, 30, "aac").await).expect("read");
    let (whole, _) = ffprobe_units(&dir.path().join("src-2-30-aac-0.ts")).await;
    agree(&source, &whole, true).unwrap_or_else(|e| panic!("the unmutated file: {e}"));
    assert!(whole.0.len() == 60 && whole.1.len() > 80, "2 s of video and audio: {} / {}", whole.0.len(), whole.1.len());
    let mut audio_compared = 0;
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (ts, did, audio_touched) = mutate_ts(&source, &mut rng);
        let path = dir.path().join(format!("mutated-{seed}.ts"));
        std::fs::write(&path, &ts).expect("write");
        let (theirs, _) = ffprobe_units(&path).await;
        agree(&ts, &theirs, !audio_touched)
            .unwrap_or_else(|e| panic!("seed {seed} ({did:?}): our demuxer and ffprobe disagree: {e}"));
        audio_compared += usize::from(!audio_touched);
    }
    assert!(audio_compared >= 8, "only {audio_compared} rounds compared the audio");
}

/// An FLV stream's tags: (header bytes, tags as whole byte runs with their previous-tag-size).
fn flv_split(flv: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header_len = 9 + 4;
    let mut tags = Vec::new();
    let mut at = header_len;
    while at + 11 <= flv.len() {
        let size = usize::from(flv[at + 1]) << 16 | usize::from(flv[at + 2]) << 8 | usize::from(flv[at + 3]);
        let end = (at + 11 + size + 4).min(flv.len());
        tags.push(flv[at..end].to_vec());
        at = end;
    }
    (flv[..header_len.min(flv.len())].to_vec(), tags)
}

/// One to three tag-level mutations that keep the FLV framing whole.
fn mutate_flv(tags: &mut Vec<Vec<u8>>, rng: &mut Rng) -> Vec<String> {
    let mut did = Vec::new();
    for _ in 0..1 + rng.below(3) {
        // Never the first three (metadata and the codec configurations): without them there is
        // nothing to remux, which is not what this checks.
        let at = 3 + rng.below(tags.len().saturating_sub(3));
        if at >= tags.len() {
            continue;
        }
        match rng.below(3) {
            0 => {
                tags.remove(at);
                did.push(format!("dropped tag {at}"));
            }
            1 => {
                let copy = tags[at].clone();
                tags.insert(at, copy);
                did.push(format!("repeated tag {at}"));
            }
            _ => {
                // A byte of the body past the codec headers (5 bytes for video, 2 for audio).
                let tag = &mut tags[at];
                let body = 11 + 5;
                if tag.len() > body + 4 {
                    let i = body + rng.below(tag.len() - 4 - body);
                    tag[i] ^= 1 << rng.below(8);
                    did.push(format!("flipped byte {i} of tag {at}"));
                }
            }
        }
    }
    did
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_flv_to_ts_remux_of_mutated_flv_is_ts_ffmpeg_reads_as_we_do() {
    if !common::peers_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let flv_path = dir.path().join("src.flv");
    common::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac"])
            .args(["-f", "flv"])
            .arg(&flv_path),
        60,
    )
    .await;
    let flv = std::fs::read(&flv_path).expect("read");
    let (header, source_tags) = flv_split(&flv);
    assert!(source_tags.len() > 100, "2 s of tags, got {}", source_tags.len());
    for seed in 0..=ROUNDS {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let mut tags = source_tags.clone();
        let did = if seed == 0 { vec!["none".to_string()] } else { mutate_flv(&mut tags, &mut rng) };
        let mutated = [header.clone(), tags.concat()].concat();
        let (flv_tags, read) = byoc_media::fuzzing::flv_tags([mutated.as_slice()]);
        assert!(read.is_ok(), "seed {seed} ({did:?}): the FLV framing is whole: {read:?}");
        let (ts, remuxed) = byoc_media::fuzzing::remux(flv_tags, Some((true, true)));
        assert!(remuxed.is_ok(), "seed {seed} ({did:?}): {remuxed:?}");
        let path = dir.path().join(format!("remux-{seed}.ts"));
        std::fs::write(&path, &ts).expect("write");
        let (theirs, errors) = ffprobe_units(&path).await;
        // The decoder's complaints about flipped bytes are expected; the container must be clean.
        let container: Vec<&str> = errors.lines().filter(|l| l.contains("[mpegts")).collect();
        assert!(container.is_empty(), "seed {seed} ({did:?}): ffprobe's demuxer reports: {container:?}");
        agree(&ts, &theirs, true).unwrap_or_else(|e| {
            panic!("seed {seed} ({did:?}): our remux read back differently by ffprobe and us: {e}")
        });
        assert!(theirs.0.len() >= 55, "seed {seed} ({did:?}): video units {}", theirs.0.len());
        let decoded = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .await
            .expect("ffmpeg runs");
        assert!(decoded.status.success(), "seed {seed} ({did:?}): ffmpeg cannot decode our remux");
        if seed == 0 {
            assert!(decoded.stderr.is_empty(), "the unmutated remux decodes cleanly");
            assert!(errors.is_empty(), "the unmutated remux probes cleanly: {errors}");
        }
    }
}
