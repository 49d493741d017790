//! A frame plugin through the whole path: ffmpeg-made H.264 + AAC segments into the gateway, the
//! orchestrator decodes them for `video-effects` (wasm), encodes what it returns, and ffmpeg
//! decodes the output. `motion-detector` on a moving box and on a still picture; output timing
//! (video PTS, audio sync) through a frame plugin.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::http;
use crate::plugins::{nodes, start, start_answer};
use byoc_e2e::media::{
    chroma_offset, decode_i420, make_ts_segments, make_ts_segments_of, packet_times, tool_available,
};

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
    let legs = json!({}); // no leg named: the capability's own
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

/// The JSON of every `data:` line of an SSE text, in order.
fn sse_values(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str(d).ok()).collect()
}

/// Reads an SSE response into `got` until `done` holds for the JSON lines read so far, or `limit`
/// has passed; returns those lines.
async fn sse_values_until(
    resp: &mut reqwest::Response,
    got: &mut String,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&sse_values(got)) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    sse_values(got)
}

/// A started stream: its URLs from start.
struct Stream(Value);

impl Stream {
    fn url(&self, key: &str) -> &str {
        self.0[key].as_str().unwrap_or_else(|| panic!("no {key} in {}", self.0))
    }

    /// Posts input segment `seq` (the file) and reads the output segment it becomes, whole.
    async fn round_trip(&self, seq: usize, file: &PathBuf) -> bytes::Bytes {
        let secret = self.url("stream_secret");
        let body = std::fs::read(file).unwrap();
        let r = http().post(format!("{}/{seq}", self.url("ingest_url"))).bearer_auth(secret).body(body);
        assert_eq!(r.send().await.unwrap().status(), 200);
        let out = http().get(format!("{}/{seq}", self.url("egress_url"))).bearer_auth(secret).send().await.unwrap();
        assert_eq!(out.status(), 200);
        out.bytes().await.unwrap()
    }

    /// Every input segment through, one at a time (the next is posted once the last came out, so
    /// a fast plugin drops nothing); returns the output, concatenated.
    async fn run_all(&self, inputs: &[PathBuf]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, file) in inputs.iter().enumerate() {
            out.extend_from_slice(&self.round_trip(seq, file).await);
        }
        out
    }

    async fn sse(&self, key: &str) -> reqwest::Response {
        http().get(self.url(key)).send().await.unwrap()
    }

    async fn stop(&self) {
        assert_eq!(http().post(self.url("stop_url")).send().await.unwrap().status(), 200);
    }
}

/// The events of one type.
fn of_type<'a>(values: &'a [Value], kind: &str) -> Vec<&'a Value> {
    values.iter().filter(|v| v["type"] == kind).collect()
}

/// `motion-detector` on real H.264: a white box that moves (right, then back) from 2 s to 4 s of a 7 s input gives one
/// `motion_start` within 1 s of the movement (in stream time) and a `motion_end` after it stops; a
/// still picture gives no motion event in 30 s (of media time: the segments are posted as fast as
/// they come out, the detector goes by the frames' timestamps). Both streams get a data line
/// every second, also once the input has stopped (the orchestrator's tick driver), and their lines
/// count every frame.
#[tokio::test(flavor = "multi_thread")]
async fn motion_detector_reports_a_moving_box_and_nothing_in_a_still_picture() {
    if !tool_available("motion_detector_reports_a_moving_box", "ffmpeg") {
        return;
    }
    let n = nodes().await;
    let dir = tempfile::tempdir().unwrap();
    let (still_dir, moving_dir) = (dir.path().join("still"), dir.path().join("moving"));
    std::fs::create_dir_all(&still_dir).unwrap();
    std::fs::create_dir_all(&moving_dir).unwrap();
    let still = make_ts_segments_of(&still_dir, 30, "color=c=0x406080:size=320x240:rate=25").await.unwrap();
    // A 100-pixel box, 8 pixels a frame: 2% of the picture changes, twice the default threshold.
    // (drawbox takes no per-frame position in FFmpeg 5, overlay does.)
    let moving_box = "color=c=gray:size=320x240:rate=25[bg];color=c=white:size=100x100:rate=25[box];\
        [bg][box]overlay=x='if(between(t,2,4),20+200*min(t-2,4-t),20)':y=70[out0]";
    let moving = make_ts_segments_of(&moving_dir, 7, moving_box).await.unwrap();
    assert_eq!((still.len(), moving.len()), (30, 7));
    // Stream time of the first frame: the detector reports the frames' own PTS.
    let origin_ms = packet_times(&moving[0], "v:0").await.unwrap()[0] * 1000.0;

    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true, "enable_data_output": true});
    let (a, b) =
        tokio::join!(start(&n.gw, "motion-detector", legs.clone(), "{}"), start(&n.gw, "motion-detector", legs, "{}"));
    let (still_stream, moving_stream) = (Stream(a), Stream(b));
    let mut still_events = still_stream.sse("events_url").await;
    let mut moving_events = moving_stream.sse("events_url").await;
    let mut still_data = still_stream.sse("data_url").await;
    let mut moving_data = moving_stream.sse("data_url").await;
    tokio::join!(still_stream.run_all(&still), moving_stream.run_all(&moving));

    // Data lines: once the input has stopped, ticks still come (two lines with no frame), and by
    // then the lines have counted every frame of the input.
    for (name, data, seconds) in [("still", &mut still_data, 30), ("moving", &mut moving_data, 7)] {
        let mut text = String::new();
        let quiet = |v: &[Value]| v.iter().rev().take_while(|l| l["frames"] == 0).count() >= 2;
        let lines = sse_values_until(data, &mut text, Duration::from_secs(30), quiet).await;
        assert!(quiet(&lines), "{name}: no data line per second once the input stopped: {lines:?}");
        let frames: u64 = lines.iter().filter_map(|l| l["frames"].as_u64()).sum();
        assert_eq!(frames, seconds * 25, "{name}: {seconds} s at 25 fps, counted by the data lines {lines:?}");
        let peak = lines.iter().filter_map(|l| l["peak"].as_f64()).fold(0.0, f64::max);
        if name == "still" {
            assert!(lines.iter().all(|l| l["motion"] == false) && peak == 0.0, "still: {lines:?}");
        } else {
            assert!(peak >= 0.01, "moving: no line saw the motion: {lines:?}");
        }
    }
    let mut got = String::new();
    let events = sse_values_until(&mut moving_events, &mut got, Duration::from_secs(30), |v| {
        !of_type(v, "motion_end").is_empty()
    })
    .await;
    let events: Vec<Value> = events.into_iter().filter(|e| e["event"]["type"] != "heartbeat").collect();
    let starts = of_type(&events, "motion_start");
    assert_eq!(starts.len(), 1, "one movement, one motion_start: {events:?}");
    let start_ms = starts[0]["pts_ms"].as_f64().unwrap() - origin_ms;
    assert!((2000.0..=3000.0).contains(&start_ms), "motion_start at {start_ms} ms; the box moves from 2000 ms");
    let end = of_type(&events, "motion_end")[0];
    let end_ms = end["pts_ms"].as_f64().unwrap() - origin_ms;
    assert!(end_ms >= 4000.0, "motion_end at {end_ms} ms, before the box stopped at 4000 ms: {end}");
    let lasted = end["duration_ms"].as_f64().unwrap();
    assert!((1500.0..=2500.0).contains(&lasted), "the box moved for 2 s, motion lasted {lasted} ms: {end}");

    let still_seen = sse_within(&mut still_events, Duration::from_millis(500)).await;
    assert!(still_seen.contains("stream_started"), "{still_seen}");
    assert!(!still_seen.contains("motion_"), "motion in a still picture: {still_seen}");
    tokio::join!(still_stream.stop(), moving_stream.stop());
    assert_eq!(n.orch.registry.get("motion-detector").unwrap().capacity.in_use(), 0);
}

/// Output timing through a frame plugin (`video-effects`, which takes no audio, so the AAC passes
/// untouched): every output frame keeps its input PTS, and each audio packet stays within 40 ms
/// of its input time over the whole input, 60 s of media (sixty segments, each encoded on its
/// own), posted as fast as they come out: the pipeline goes by timestamps, not the clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_plugin_keeps_video_pts_and_audio_in_sync() {
    if !tool_available("a_frame_plugin_keeps_video_pts_and_audio_in_sync", "ffmpeg") {
        return;
    }
    let n = nodes().await;
    let dir = tempfile::tempdir().unwrap();
    let inputs = make_ts_segments(dir.path(), 60).await.unwrap();
    assert_eq!(inputs.len(), 60);
    let legs = json!({}); // no leg named: the capability's own
    let stream = Stream(start(&n.gw, "video-effects", legs, r#"{"params": {"effect": "grayscale"}}"#).await);
    let mut events = stream.sse("events_url").await;
    let started = Instant::now();
    let out = stream.run_all(&inputs).await;
    eprintln!("60 s of input through video-effects in {:?}", started.elapsed());
    let input: Vec<u8> = inputs.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    let (in_file, out_file) = (dir.path().join("in.ts"), dir.path().join("out.ts"));
    std::fs::write(&in_file, &input).unwrap();
    std::fs::write(&out_file, &out).unwrap();
    let dropped = dropped(&sse_within(&mut events, Duration::from_millis(1500)).await);

    let (in_video, out_video) =
        (packet_times(&in_file, "v:0").await.unwrap(), packet_times(&out_file, "v:0").await.unwrap());
    assert_eq!(in_video.len(), 1500);
    assert_eq!(out_video.len() as u64 + dropped, 1500, "frames out + dropped = frames in");
    for t in &out_video {
        let nearest = in_video.iter().map(|i| (i - t).abs()).fold(f64::MAX, f64::min);
        assert!(nearest < 0.001, "output frame at {t} s is at no input frame's time");
    }
    let (in_audio, out_audio) =
        (packet_times(&in_file, "a:0").await.unwrap(), packet_times(&out_file, "a:0").await.unwrap());
    assert!(in_audio.len() > 2700, "{} audio packets in 60 s", in_audio.len());
    assert_eq!(out_audio.len(), in_audio.len(), "audio passes untouched, every packet");
    let drift = in_audio.iter().zip(&out_audio).map(|(i, o)| (o - i).abs()).fold(0.0, f64::max);
    assert!(drift <= 0.040, "audio moved by up to {:.1} ms against its input", drift * 1000.0);
    // And against the video: the first frame and the first audio packet keep their distance.
    let skew = ((out_video[0] - out_audio[0]) - (in_video[0] - in_audio[0])).abs();
    assert!(dropped > 0 || skew <= 0.040, "audio/video start moved by {:.1} ms", skew * 1000.0);
    stream.stop().await;
}

/// A plugin slower than the input (`slow-frames`, a test plugin sleeping here 60 ms on each frame
/// of a 25 fps stream) beside `video-effects` on the same node: the slow stream's frames are dropped
/// and counted (`frames_dropped` events, `byoc_frames_dropped_total{capability}`), frames out + dropped = in;
/// its backlog stays bounded (the plugin gets at most what its pace allowed while the input came,
/// plus the host's queue: frames are dropped, not stored); the other stream loses no frame.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_plugin_drops_counted_frames_and_other_streams_keep_theirs() {
    if !tool_available("a_slow_plugin_drops_counted_frames", "ffmpeg") {
        return;
    }
    let slow_dir = byoc_e2e::nodes::root().join("target/hostile-plugins/slow-frames");
    if !slow_dir.join("slow-frames.wasm").is_file() {
        assert!(!byoc_e2e::peers_required(), "target/hostile-plugins missing: `cargo xtask test` builds it");
        eprintln!("skipped: hostile plugins not built (run through `cargo xtask test`)");
        return;
    }
    let runtime = crate::common::bundled_plugins(crate::plugins::runtime_config()).await;
    runtime.load_plugin(&slow_dir).await.unwrap();
    let n = crate::plugins::nodes_with(&runtime).await;
    let dir = tempfile::tempdir().unwrap();
    // Eight segments in a burst, then two more each once the last came out.
    let all = make_ts_segments(dir.path(), 10).await.unwrap();
    let (inputs, later) = all.split_at(8);
    assert_eq!((inputs.len(), later.len()), (8, 2));
    let legs = json!({}); // no leg named: the capability's own
    let (slow, other) = tokio::join!(
        start(&n.gw, "slow-frames", legs.clone(), r#"{"params": {"sleep_ms": 60}}"#),
        start(&n.gw, "video-effects", legs, r#"{"params": {"effect": "grayscale"}}"#)
    );
    let (slow, other) = (Stream(slow), Stream(other));
    let (mut slow_events, mut other_events) = (slow.sse("events_url").await, other.sse("events_url").await);

    // The slow stream gets its input as fast as the ingest takes it (as a burst of segments
    // would come); its output is read as it comes.
    let (egress, secret) = (slow.url("egress_url").to_owned(), slow.url("stream_secret").to_owned());
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        for seq in 0..8 {
            let r = http().get(format!("{egress}/{seq}")).bearer_auth(&secret).send().await.unwrap();
            assert_eq!(r.status(), 200, "slow output segment {seq}");
            out.extend_from_slice(&r.bytes().await.unwrap());
        }
        out
    });
    let feed = async {
        let began = Instant::now();
        for (seq, file) in inputs.iter().enumerate() {
            let r = http()
                .post(format!("{}/{seq}", slow.url("ingest_url")))
                .bearer_auth(slow.url("stream_secret"))
                .body(std::fs::read(file).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        began.elapsed()
    };
    let (fed_in, other_out) = tokio::join!(feed, other.run_all(inputs));
    let slow_out = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("the slow output").unwrap();

    let write = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        file
    };
    let slow_frames = packet_times(&write("slow.ts", &slow_out), "v:0").await.unwrap().len() as u64;
    let slow_seen = sse_within(&mut slow_events, Duration::from_millis(1500)).await;
    let slow_dropped = dropped(&slow_seen);
    eprintln!("slow plugin: {slow_frames} frames out, {slow_dropped} dropped, input fed in {fed_in:?}");
    assert!(slow_dropped > 0, "a plugin taking 60 ms a frame of 40 ms dropped nothing: {slow_seen}");
    assert_eq!(slow_frames + slow_dropped, 200, "8 s at 25 fps: frames out + dropped = in");
    // Bounded: what the plugin got is what it could take (16.7 frames/s) while the input came in
    // (plus 3 s for the last segment to be decoded), plus the host's queue (60 frames) and a
    // segment; a host that queued everything would hand it all 200.
    let bound = (fed_in.as_secs_f64() + 3.0) * 1000.0 / 60.0 + 60.0 + 25.0;
    assert!((slow_frames as f64) <= bound, "{slow_frames} frames reached the slow plugin, at most {bound:.0} expected");
    let metrics = http().get(format!("{}/metrics", n.orch_url)).send().await.unwrap().text().await.unwrap();
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("byoc_frames_dropped_total{capability=\"slow-frames\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no byoc_frames_dropped_total for slow-frames in /metrics:\n{metrics}"));
    // One registry for the whole test process, but only this test runs slow-frames.
    assert!(counted >= slow_dropped as f64, "metric {counted} < {slow_dropped} dropped frames reported");
    // Two more segments at the plugin's pace: nothing more dropped. Once the input has stopped
    // coming, a last report gives the counts as they are (every frame decoded), not those of the
    // last drop.
    for (seq, file) in later.iter().enumerate() {
        slow.round_trip(8 + seq, file).await;
    }
    let mut text = slow_seen.clone();
    let settled = |v: &[Value]| of_type(v, "frames_dropped").last().is_some_and(|e| e["decoded_video"] == 250);
    let reports = sse_values_until(&mut slow_events, &mut text, Duration::from_secs(30), settled).await;
    let last = *of_type(&reports, "frames_dropped").last().expect("frames_dropped events");
    assert_eq!(last["decoded_video"], 250, "the last report: {last}");
    assert_eq!(last["dropped_video"], slow_dropped, "the last report: {last}");

    // The other stream on the node: every frame, none dropped.
    let other_frames = packet_times(&write("other.ts", &other_out), "v:0").await.unwrap().len();
    let other_seen = sse_within(&mut other_events, Duration::from_millis(500)).await;
    assert_eq!(dropped(&other_seen), 0, "video-effects dropped frames: {other_seen}");
    assert_eq!(other_frames, 200, "video-effects beside the slow plugin");
    tokio::join!(slow.stop(), other.stop());
    assert_eq!(n.orch.registry.get("slow-frames").unwrap().capacity.in_use(), 0);
}

/// A stream's `params.encoder` sets its output's bitrate within the node's limits (6000 kbit/s,
/// presets up to `veryfast`, the defaults): 200 kbit/s gives a fraction of 2000 kbit/s's bytes for
/// the same input. A start beyond a limit is refused with 400 naming it, through the gateway,
/// starting nothing; an update naming `encoder` is refused with 400 and the stream goes on.
#[tokio::test(flavor = "multi_thread")]
async fn encoder_settings_come_from_the_params_within_the_nodes_limits() {
    if !tool_available("encoder_settings_come_from_the_params", "ffmpeg") {
        return;
    }
    let n = nodes().await;
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true});
    for (body, limit) in [
        (r#"{"params": {"effect": "none", "encoder": {"bitrate_kbps": 9000}}}"#, "limit of 6000 kbit/s"),
        (r#"{"params": {"effect": "none", "encoder": {"preset": "slow"}}}"#, r#"its slowest is \"veryfast\""#),
        (r#"{"params": {"effect": "none", "encoder": {"bitrate": 900}}}"#, "unknown field"),
    ] {
        let r = start_answer(&n.gw, "video-effects", legs.clone(), body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(limit), "{body}: {text}");
    }
    assert!(n.orch.streams().is_empty(), "a refused start starts nothing");
    assert_eq!(n.orch.registry.get("video-effects").unwrap().capacity.in_use(), 0);

    let dir = tempfile::tempdir().unwrap();
    // Noisy pictures: an encoder spends all the bits it is given on them.
    let noisy = "testsrc2=size=320x240:rate=25,noise=alls=40:allf=t";
    let inputs = make_ts_segments_of(dir.path(), 3, noisy).await.unwrap();
    let (low, high) = tokio::join!(
        start(
            &n.gw,
            "video-effects",
            legs.clone(),
            r#"{"params": {"effect": "none", "encoder": {"bitrate_kbps": 200}}}"#
        ),
        start(
            &n.gw,
            "video-effects",
            legs,
            r#"{"params": {"effect": "none", "encoder": {"bitrate_kbps": 2000, "preset": "ultrafast"}}}"#
        )
    );
    let (low, high) = (Stream(low), Stream(high));
    let refused =
        http().post(low.url("update_url")).body(r#"{"encoder": {"bitrate_kbps": 3000}}"#).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("cannot be updated"));
    let (low_out, high_out) = tokio::join!(low.run_all(&inputs), high.run_all(&inputs));
    let write = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        file
    };
    let (low_file, high_file) = (write("low.ts", &low_out), write("high.ts", &high_out));
    assert_eq!(byoc_e2e::media::probe_video(&low_file), ("h264".to_owned(), 75));
    assert_eq!(byoc_e2e::media::probe_video(&high_file), ("h264".to_owned(), 75));
    // 3 s of video: about 75 kB at 200 kbit/s, 750 kB at 2000 kbit/s; the same AAC (24 kB) in both.
    let (low_bytes, high_bytes) = (low_out.len(), high_out.len());
    assert!(low_bytes < 200_000, "200 kbit/s for 3 s gave {low_bytes} bytes of TS");
    assert!(high_bytes > 3 * low_bytes, "2000 kbit/s gave {high_bytes} bytes of TS, 200 kbit/s {low_bytes}");
    tokio::join!(low.stop(), high.stop());
}

/// A message on a frame plugin stream's control channel (where go-livepeer's gateway, the
/// channel's only publisher, sends updates) naming `encoder` is refused as an update naming it
/// is: the plugin never gets it (its effect stays), the events say why, and the next message is
/// applied. The stream is started on the orchestrator directly, so nothing else publishes there.
#[tokio::test(flavor = "multi_thread")]
async fn a_control_message_naming_the_encoder_is_refused_with_an_event() {
    use byoc_trickle::{LocalPublisher, LocalSubscriber, Seq, SeqRequest};
    let n = nodes().await;
    let job = byoc_payment::job::JobRequest {
        id: "fx".into(),
        request: json!({"stream_id": "fx"}).to_string(),
        parameters: json!({"enable_video_ingress": true, "enable_video_egress": true}).to_string(),
        capability: "video-effects".into(),
        timeout_seconds: 30,
        ..Default::default()
    };
    let header = byoc_e2e::nodes::signed_job(job, &byoc_payment::SecretKey::generate());
    let body = r#"{"params": {"effect": "grayscale"}}"#;
    let r = http().post(format!("{}/ai/stream/start", n.orch_url)).header("Livepeer", header).body(body);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let channels = n.orch.streams().into_iter().find(|s| s.id == "fx").expect("the stream").channels;
    let control = LocalPublisher::new(&n.orch.trickle, &channels.control).unwrap();
    for message in [r#"{"effect": "invert", "encoder": {"bitrate_kbps": 300}}"#, r#"{"effect": "mirror"}"#] {
        let mut segment = control.next_segment().unwrap();
        segment.write(bytes::Bytes::from_static(message.as_bytes())).unwrap();
        segment.finish();
    }
    let mut events = LocalSubscriber::new(&n.orch.trickle, &channels.events, SeqRequest::At(Seq(0)));
    let mut seen: Vec<Value> = Vec::new();
    let mirrored = |seen: &[Value]| of_type(seen, "effect").iter().any(|e| e["effect"] == "mirror");
    let read = async {
        while !mirrored(&seen) {
            let segment = events.next_segment().await.unwrap().expect("the events go on");
            seen.extend(serde_json::from_slice::<Value>(&segment.read_all().await.unwrap()));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.unwrap_or_else(|_| panic!("no mirror: {seen:?}"));
    let effects: Vec<&Value> = of_type(&seen, "effect").into_iter().map(|e| &e["effect"]).collect();
    assert_eq!(effects, [&json!("grayscale"), &json!("mirror")], "{seen:?}");
    let refused = of_type(&seen, "control_refused");
    assert_eq!(refused.len(), 1, "{seen:?}");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(reason.contains("params.encoder is set when a stream starts"), "{seen:?}");
    assert!(of_type(&seen, "error").is_empty(), "the plugin got the message: {seen:?}");
    n.orch.shutdown().await;
}
