//! A frame plugin through the whole path: ffmpeg-made H.264 + AAC segments into the gateway, the
//! orchestrator decodes them for `video-effects` (wasm), encodes what it returns, and ffmpeg
//! decodes the output.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::http;
use crate::plugins::{nodes, start};
use byoc_e2e::media::{decode_i420, make_ts_segments, tool_available};

/// Everything an SSE response sends within `limit`.
async fn sse_within(resp: &mut reqwest::Response, limit: Duration) -> String {
    let mut got = String::new();
    let _ = tokio::time::timeout(limit, async {
        while let Ok(Some(c)) = resp.chunk().await {
            got.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    got
}

/// The largest `dropped_video` the `frames_dropped` events report (0 when none came).
fn dropped(events: &str) -> u64 {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "frames_dropped")
        .filter_map(|v| v["dropped_video"].as_u64())
        .max()
        .unwrap_or(0)
}

/// How far a frame's chroma is from gray: the mean of |U - 128| and |V - 128|, and the largest.
fn chroma_offset(width: u32, height: u32, frame: &[u8]) -> (f64, u8) {
    let luma = (width * height) as usize;
    let chroma = &frame[luma..];
    let max = chroma.iter().map(|&c| c.abs_diff(128)).max().unwrap_or(0);
    let mean = chroma.iter().map(|&c| f64::from(c.abs_diff(128))).sum::<f64>() / chroma.len() as f64;
    (mean, max)
}

/// `video-effects` grays every frame of a real H.264 stream (frames out = frames in minus the drops
/// it reports, each segment out decodable on its own), and an update switches the effect live.
#[tokio::test(flavor = "multi_thread")]
async fn video_effects_grays_every_frame_then_switches_effect_live() {
    if !tool_available("video_effects_grays_every_frame", "ffmpeg") {
        return;
    }
    let n = nodes().await;
    let dir = tempfile::tempdir().unwrap();
    let inputs = make_ts_segments(dir.path(), 6).await.unwrap();
    assert!(inputs.len() >= 6, "{inputs:?}");
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true});
    let urls = start(&n.gw, "video-effects", legs, r#"{"params": {"effect": "grayscale"}}"#).await;
    let secret = urls["stream_secret"].as_str().unwrap();
    let (ingest, egress) = (urls["ingest_url"].as_str().unwrap(), urls["egress_url"].as_str().unwrap());
    let mut events = http().get(urls["events_url"].as_str().unwrap()).send().await.unwrap();

    let mut gray = Vec::new();
    let fetch = async |seq: usize, into: &mut Vec<u8>| {
        let body = std::fs::read(&inputs[seq]).unwrap();
        let r = http().post(format!("{ingest}/{seq}")).bearer_auth(secret).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let out = http().get(format!("{egress}/{seq}")).bearer_auth(secret).send().await.unwrap();
        assert_eq!(out.status(), 200);
        let bytes = out.bytes().await.unwrap();
        // Each output segment stands alone: it decodes from its first byte.
        let file = dir.path().join(format!("out{seq}.ts"));
        std::fs::write(&file, &bytes).unwrap();
        let (_, _, frames) = decode_i420(&file).await.unwrap();
        assert!(!frames.is_empty(), "output segment {seq} decodes to no frame");
        into.extend_from_slice(&bytes);
    };
    for seq in 0..4 {
        fetch(seq, &mut gray).await;
    }
    let file = dir.path().join("gray.ts");
    std::fs::write(&file, &gray).unwrap();
    let (width, height, frames) = decode_i420(&file).await.unwrap();
    assert_eq!((width, height), (320, 240));
    for (i, frame) in frames.iter().enumerate() {
        let (_, max) = chroma_offset(width, height, frame);
        assert!(max <= 3, "frame {i}: chroma {max} away from gray");
    }
    let reported = sse_within(&mut events, Duration::from_millis(1500)).await;
    assert!(reported.contains("stream_started"), "{reported}");
    let dropped = dropped(&reported);
    assert_eq!(frames.len() as u64 + dropped, 100, "4 s at 25 fps in: {} out, {dropped} dropped", frames.len());

    // Switched live: the next segment's frames are inverted, in colour again.
    let update = http().post(urls["update_url"].as_str().unwrap()).body(r#"{"effect":"invert"}"#).send().await.unwrap();
    assert_eq!(update.status(), 200);
    let mut after = Vec::new();
    for seq in 4..6 {
        fetch(seq, &mut after).await;
    }
    let file = dir.path().join("inverted.ts");
    std::fs::write(&file, &after).unwrap();
    let (_, _, frames) = decode_i420(&file).await.unwrap();
    let last = frames.last().expect("frames after the update");
    let (mean, _) = chroma_offset(width, height, last);
    assert!(mean > 10.0, "the last frame is still gray (mean chroma offset {mean:.1})");
    let switched = sse_within(&mut events, Duration::from_millis(500)).await;
    assert!(switched.contains("invert"), "no effect event: {switched}");
    let stop = http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(stop.status(), 200);
    assert_eq!(n.orch.registry.get("video-effects").unwrap().capacity.in_use(), 0);
}
