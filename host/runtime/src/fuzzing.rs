//! Feature `fuzzing`, for `host/fuzz` only: the host functions a plugin imports, called with
//! arbitrary arguments in an arbitrary order, as a guest could call them, on a real
//! [`HostState`](crate::state::HostState) with a real grant. After every call the harness checks what
//! the host promises a node whatever the plugin does:
//! - the output cap of a call is never exceeded, and output is well formed (segments numbered
//!   0, 1, 2, … in start/chunks/end order, data lines without line breaks, events JSON objects,
//!   log messages cut to their bound);
//! - frames the plugin creates never hold more than its memory grant, and the bytes the host
//!   counts for them are exactly those of the frames alive;
//! - config and secrets answer only for granted keys; an outbound request is let through only to
//!   a granted host;
//! - a handle the plugin does not hold, or of the wrong type, is an error (a trap), never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::Arbitrary;
use byoc_frames::{AudioFrame, VideoFrame};
use tokio::sync::mpsc;
use wasmtime::component::Resource;

use crate::bindings::v2::byoc::capability::frames::{HostAudioFrame, HostVideoFrame};
use crate::bindings::v2::byoc::capability::{host, output};
use crate::bindings::{WitLogLevel, WitPixelFormat};
use crate::manifest::HostPattern;
use crate::state::{Grant, HostState};
use crate::types::{Legs, Output};

/// One import called by the "guest". Frames are named by an index into the handles the script
/// has created so far (`None`, or past the end: a handle it never held).
#[derive(Debug, Arbitrary)]
pub enum HostCall {
    /// `host.log`
    Log { level: u8, message: String },
    /// `host.get-config`
    GetConfig(String),
    /// `host.get-secret`
    GetSecret(String),
    /// `host.monotonic-now`
    MonotonicNow,
    /// `host.set-tick`
    SetTick(u32),
    /// `output.segment-start`
    SegmentStart,
    /// `output.segment-chunk`
    SegmentChunk(Vec<u8>),
    /// `output.segment-end`
    SegmentEnd,
    /// `output.publish-data`
    PublishData(String),
    /// `output.publish-event`
    PublishEvent(String),
    /// The host starts a new call into the plugin (the per-call output budget resets).
    NextCall,
    /// `video-frame.create`
    VideoCreate { width: u32, height: u32, format: u8 },
    /// Every read-only `video-frame` method
    VideoRead { frame: Option<u8>, plane: u32 },
    /// `video-frame.set-plane`
    VideoSetPlane { frame: Option<u8>, plane: u32, bytes: Vec<u8> },
    /// `video-frame.set-pts`
    VideoSetPts { frame: Option<u8>, pts: i64 },
    /// The handle dropped
    VideoDrop(Option<u8>),
    /// `audio-frame.create`
    AudioCreate { sample_rate: u32, channels: u8, samples: Vec<f32>, pts: i64 },
    /// Every read-only `audio-frame` method
    AudioRead(Option<u8>),
    /// `audio-frame.set-samples`
    AudioSetSamples { frame: Option<u8>, samples: Vec<f32> },
    /// The handle dropped
    AudioDrop(Option<u8>),
    /// An outbound `wasi:http` request to this URI
    Outbound(String),
}

/// What the host granted, and what the plugin then calls.
#[derive(Debug, Arbitrary)]
pub struct Script {
    /// Legs declared: video out, data, events.
    pub legs: (bool, bool, bool),
    /// A frame plugin's session (no segment output).
    pub frame_session: bool,
    /// The memory grant, in KiB.
    pub memory_kib: u16,
    /// The output cap per call, in bytes.
    pub max_output_bytes: u16,
    /// Granted config keys (with or without a value) and secrets.
    pub config: Vec<(String, Option<String>)>,
    /// Granted secrets.
    pub secrets: Vec<(String, Option<String>)>,
    /// Outbound host patterns, as in a manifest (those that do not parse are left out).
    pub outbound: Vec<String>,
    /// The calls, in order.
    pub calls: Vec<HostCall>,
}

/// Longest a script runs (calls past it are ignored), so one input stays quick.
const MAX_CALLS: usize = 256;

/// Runs `script` and panics if the host breaks a promise (the fuzz target's crash).
pub fn run(script: Script) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    rt.block_on(drive(script));
}

/// The frames of one type the script holds are their handle numbers (`rep`s) in the host's table.
fn handle<T: 'static>(held: &[u32], pick: Option<u8>) -> Resource<T> {
    match pick.and_then(|i| held.get(usize::from(i))) {
        Some(&rep) => Resource::new_borrow(rep),
        // A handle the plugin never held (or of another type): wasmtime would refuse a guest's
        // unknown handle before the host sees it, but a stale or mistyped rep must still fail.
        None => Resource::new_borrow(pick.map_or(u32::MAX, u32::from)),
    }
}

fn owned<T: 'static>(held: &mut Vec<u32>, pick: Option<u8>) -> Resource<T> {
    match pick.map(usize::from).filter(|i| *i < held.len()) {
        Some(i) => Resource::new_own(held.swap_remove(i)),
        None => Resource::new_own(pick.map_or(u32::MAX, u32::from)),
    }
}

fn pixel_format(n: u8) -> WitPixelFormat {
    match n % 3 {
        0 => WitPixelFormat::I420,
        1 => WitPixelFormat::Rgb24,
        _ => WitPixelFormat::Rgba,
    }
}

fn log_level(n: u8) -> WitLogLevel {
    match n % 5 {
        0 => WitLogLevel::Trace,
        1 => WitLogLevel::Debug,
        2 => WitLogLevel::Info,
        3 => WitLogLevel::Warn,
        _ => WitLogLevel::Error,
    }
}

async fn drive(script: Script) {
    let patterns: Vec<HostPattern> = script.outbound.iter().filter_map(|p| HostPattern::parse(p).ok()).collect();
    let config: BTreeMap<String, Option<String>> = script.config.into_iter().collect();
    let secrets: BTreeMap<String, Option<String>> = script.secrets.into_iter().collect();
    let (video_out, data, events) = script.legs;
    let grant = Arc::new(Grant {
        name: "fuzzed".into(),
        legs: Legs { video_in: true, video_out, data, events },
        config: config.clone(),
        secrets: secrets.clone(),
        outbound: Arc::new(patterns),
        memory_bytes: usize::from(script.memory_kib) * 1024,
        max_output_bytes: u64::from(script.max_output_bytes),
    });
    let (sink, mut outputs) = mpsc::channel(4);
    let mut state = HostState::new(grant.clone(), wasmtime_wasi::WasiCtx::builder().build(), Some(sink), 0);
    state.frame_session = script.frame_session;
    let mut videos: Vec<u32> = Vec::new();
    let mut audios: Vec<u32> = Vec::new();
    let mut stream = StreamCheck::default();

    for call in script.calls.into_iter().take(MAX_CALLS) {
        let what = format!("{call:.200?}");
        match call {
            HostCall::Log { level, message } => {
                host::Host::log(&mut state, log_level(level), message).await.expect("log never traps");
            }
            HostCall::GetConfig(key) => {
                let got = host::Host::get_config(&mut state, key.clone()).await.expect("no trap");
                assert_eq!(got.ok(), config.get(&key).cloned(), "config {key:?} answers only as granted");
            }
            HostCall::GetSecret(key) => {
                let got = host::Host::get_secret(&mut state, key.clone()).await.expect("no trap");
                assert_eq!(got.ok(), secrets.get(&key).cloned(), "secret {key:?} answers only as granted");
            }
            HostCall::MonotonicNow => {
                host::Host::monotonic_now(&mut state).await.expect("no trap");
            }
            HostCall::SetTick(ms) => {
                host::Host::set_tick(&mut state, ms).await.expect("no trap");
                if let Some(tick) = state.tick {
                    assert!(tick.as_millis() >= 10, "a tick below the floor: {tick:?}");
                }
            }
            HostCall::SegmentStart => {
                let _ = output::Host::segment_start(&mut state).await.expect("no trap");
            }
            HostCall::SegmentChunk(bytes) => {
                let _ = output::Host::segment_chunk(&mut state, bytes).await.expect("no trap");
            }
            HostCall::SegmentEnd => {
                let _ = output::Host::segment_end(&mut state).await.expect("no trap");
            }
            HostCall::PublishData(line) => {
                let _ = output::Host::publish_data(&mut state, line).await.expect("no trap");
            }
            HostCall::PublishEvent(json) => {
                let _ = output::Host::publish_event(&mut state, json).await.expect("no trap");
            }
            HostCall::NextCall => {
                state.out.used = 0;
                state.out.breached = false;
            }
            HostCall::VideoCreate { width, height, format } => {
                if let Ok(Ok(r)) = HostVideoFrame::create(&mut state, width, height, pixel_format(format)).await {
                    videos.push(r.rep());
                }
            }
            HostCall::VideoRead { frame, plane } => {
                let h = || handle::<VideoFrame>(&videos, frame);
                let _ = HostVideoFrame::width(&mut state, h()).await;
                let _ = HostVideoFrame::height(&mut state, h()).await;
                let _ = HostVideoFrame::format(&mut state, h()).await;
                let _ = HostVideoFrame::pts(&mut state, h()).await;
                let _ = HostVideoFrame::keyframe(&mut state, h()).await;
                let _ = HostVideoFrame::plane_count(&mut state, h()).await;
                let _ = HostVideoFrame::stride(&mut state, h(), plane).await;
                let _ = HostVideoFrame::plane(&mut state, h(), plane).await;
                if let Ok(f) = state.table.get(&h()) {
                    let _ = f.plane_shared(plane as usize);
                }
            }
            HostCall::VideoSetPlane { frame, plane, bytes } => {
                let _ = HostVideoFrame::set_plane(&mut state, handle(&videos, frame), plane, bytes).await;
            }
            HostCall::VideoSetPts { frame, pts } => {
                let _ = HostVideoFrame::set_pts(&mut state, handle(&videos, frame), pts).await;
            }
            HostCall::VideoDrop(frame) => {
                let known = frame.is_some_and(|i| usize::from(i) < videos.len());
                let dropped = HostVideoFrame::drop(&mut state, owned(&mut videos, frame)).await;
                assert!(!known || dropped.is_ok(), "dropping a held video frame failed: {dropped:?}");
            }
            HostCall::AudioCreate { sample_rate, channels, samples, pts } => {
                if let Ok(Ok(r)) = HostAudioFrame::create(&mut state, sample_rate, channels, samples, pts).await {
                    audios.push(r.rep());
                }
            }
            HostCall::AudioRead(frame) => {
                let h = || handle::<AudioFrame>(&audios, frame);
                let _ = HostAudioFrame::sample_rate(&mut state, h()).await;
                let _ = HostAudioFrame::channels(&mut state, h()).await;
                let _ = HostAudioFrame::pts(&mut state, h()).await;
                let _ = HostAudioFrame::samples(&mut state, h()).await;
            }
            HostCall::AudioSetSamples { frame, samples } => {
                let _ = HostAudioFrame::set_samples(&mut state, handle(&audios, frame), samples).await;
            }
            HostCall::AudioDrop(frame) => {
                let known = frame.is_some_and(|i| usize::from(i) < audios.len());
                let dropped = HostAudioFrame::drop(&mut state, owned(&mut audios, frame)).await;
                assert!(!known || dropped.is_ok(), "dropping a held audio frame failed: {dropped:?}");
            }
            HostCall::Outbound(uri) => {
                if let Ok(uri) = uri.parse::<http::Uri>()
                    && state.hooks.allows(&uri)
                {
                    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                    assert!(
                        script.outbound.iter().any(|p| p.to_ascii_lowercase().contains(&host.to_ascii_lowercase())),
                        "{uri} let through, though no grant names its host"
                    );
                }
            }
        }
        // What the host promises after every call.
        assert!(
            state.out.used <= grant.max_output_bytes,
            "after {what}: output cap exceeded: {} bytes",
            state.out.used
        );
        let held: usize = videos
            .iter()
            .filter_map(|&rep| state.table.get(&Resource::<VideoFrame>::new_borrow(rep)).ok())
            .map(crate::frames::video_cost)
            .chain(
                audios
                    .iter()
                    .filter_map(|&rep| state.table.get(&Resource::<AudioFrame>::new_borrow(rep)).ok())
                    .map(crate::frames::audio_cost),
            )
            .sum();
        assert_eq!(state.frame_bytes, held, "after {what}: frame bytes counted are not those of the frames alive");
        assert!(state.frame_bytes <= grant.memory_bytes, "after {what}: frames beyond the memory grant");
        while let Ok(out) = outputs.try_recv() {
            stream.check(out, &grant);
        }
    }
}

/// The order output must come in.
#[derive(Default)]
struct StreamCheck {
    next_seq: u64,
    open: bool,
}

impl StreamCheck {
    fn check(&mut self, out: Output, grant: &Grant) {
        match out {
            Output::SegmentStart { seq } => {
                assert!(grant.legs.video_out && !self.open, "segment start out of order");
                assert_eq!(seq, self.next_seq, "segments numbered in order");
                self.next_seq += 1;
                self.open = true;
            }
            Output::SegmentChunk(_) => assert!(self.open, "a chunk outside a segment"),
            Output::SegmentEnd => {
                assert!(self.open, "an end outside a segment");
                self.open = false;
            }
            Output::Data(line) => assert!(grant.legs.data && !line.contains(['\n', '\r']), "data line {line:?}"),
            Output::Event(json) => assert!(
                grant.legs.events
                    && matches!(serde_json::from_str::<serde_json::Value>(&json), Ok(serde_json::Value::Object(_))),
                "event {json:?}"
            ),
            Output::Log { msg, .. } => assert!(msg.chars().count() <= 4096, "a log message over its bound"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(calls: Vec<HostCall>) -> Script {
        Script {
            legs: (true, true, true),
            frame_session: false,
            memory_kib: 64,
            max_output_bytes: 2048,
            config: vec![("mode".into(), Some("fast".into())), ("unset".into(), None)],
            secrets: vec![("token".into(), Some("s3cret".into()))],
            outbound: vec!["api.example.com:443".into(), "http://LOCALHOST:*".into(), "no port".into()],
            calls,
        }
    }

    /// A guest doing everything right and everything wrong: the harness's checks hold (so the fuzz
    /// target starts from a harness that passes on sane input).
    #[test]
    fn a_script_of_every_call_keeps_the_promises() {
        use HostCall::*;
        run(script(vec![
            GetConfig("mode".into()),
            GetConfig("unset".into()),
            GetConfig("other".into()),
            GetSecret("token".into()),
            GetSecret("mode".into()),
            SetTick(1),
            SetTick(0),
            MonotonicNow,
            Log { level: 9, message: "é".repeat(5000) },
            SegmentChunk(vec![1; 10]),
            SegmentStart,
            SegmentStart,
            SegmentChunk(vec![2; 100]),
            SegmentEnd,
            SegmentEnd,
            PublishData("a\nb".into()),
            PublishData("one line".into()),
            PublishEvent("[1]".into()),
            PublishEvent("{\"ok\":true}".into()),
            SegmentStart,
            SegmentChunk(vec![3; 4000]),
            NextCall,
            SegmentChunk(vec![3; 1000]),
            SegmentEnd,
            VideoCreate { width: 16, height: 16, format: 0 },
            VideoCreate { width: 100_000, height: 100_000, format: 2 },
            VideoCreate { width: 3, height: 3, format: 0 },
            VideoRead { frame: Some(0), plane: 0 },
            VideoRead { frame: Some(0), plane: 7 },
            VideoRead { frame: None, plane: 0 },
            VideoSetPlane { frame: Some(0), plane: 0, bytes: vec![9; 256] },
            VideoSetPlane { frame: Some(0), plane: 1, bytes: vec![9; 3] },
            VideoSetPts { frame: Some(0), pts: i64::MIN },
            AudioCreate { sample_rate: 48_000, channels: 2, samples: vec![0.5; 960], pts: 0 },
            AudioCreate { sample_rate: 0, channels: 0, samples: vec![], pts: 0 },
            AudioRead(Some(0)),
            AudioSetSamples { frame: Some(0), samples: vec![0.25; 20_000] },
            AudioSetSamples { frame: Some(0), samples: vec![0.25; 3] },
            VideoRead { frame: Some(0), plane: 0 },
            AudioDrop(Some(0)),
            AudioDrop(Some(0)),
            VideoDrop(Some(0)),
            VideoDrop(Some(5)),
            VideoDrop(None),
            Outbound("https://api.example.com/v1".into()),
            Outbound("http://localhost:8080/x".into()),
            Outbound("https://evil.example.com/".into()),
            Outbound("http://[::1]:80/".into()),
        ]));
    }

    /// Arbitrary scripts from fixed bytes: the checks hold on what the fuzzer starts from.
    #[test]
    fn arbitrary_scripts_keep_the_promises() {
        for seed in 0u64..64 {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let bytes: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if let Ok(s) = Script::arbitrary(&mut arbitrary::Unstructured::new(&bytes)) {
                run(s);
            }
        }
    }
}
