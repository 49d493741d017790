//! `byoc plugin run` on a frame plugin, as a plugin author runs it: ffmpeg-made H.264 + AAC
//! segments in, `video-effects` (the bundled wasm) turning them gray, TS segments out that ffmpeg
//! decodes. Offline runs drop nothing, so every input frame comes out, in the segment it came in.

use std::path::Path;
use std::time::Duration;

use byoc_e2e::media::{decode_i420, make_ts_segments, tool_available};
use byoc_e2e::nodes::{plugins_dir, root};

/// Runs `byoc ARGS` to its end (bounded); returns whether it succeeded and its stderr.
async fn byoc(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_byoc"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out).await.expect("byoc plugin run finished").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The frames of a file, decoded by ffmpeg: `(width, height, frames)`.
async fn frames_of(file: &Path) -> (u32, u32, Vec<Vec<u8>>) {
    decode_i420(file).await.unwrap_or_else(|e| panic!("{}: {e:#}", file.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_grays_ts_segments_with_video_effects_losing_no_frame() {
    if !tool_available("plugin_run_grays_ts_segments_with_video_effects", "ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (input_dir, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input_dir).unwrap();
    let inputs = make_ts_segments(&input_dir, 3).await.unwrap();
    assert_eq!(inputs.len(), 3);
    let plugin = plugins_dir().join("video-effects");
    // The compiled-component cache the other tests share: a debug build compiles a plugin slowly.
    let cache = root().join("target/runtime-test-cache");
    let mut args: Vec<&std::ffi::OsStr> = vec!["plugin".as_ref(), "run".as_ref(), plugin.as_os_str()];
    args.extend(["--cache-dir".as_ref(), cache.as_os_str(), "--input".as_ref()]);
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    args.extend(["--output".as_ref(), output.as_os_str(), "--params".as_ref(), r#"{"effect":"grayscale"}"#.as_ref()]);
    let began = std::time::Instant::now();
    let (ok, stderr) = byoc(&args).await;
    eprintln!("byoc plugin run: {:?}", began.elapsed());
    assert!(ok, "byoc plugin run failed: {stderr}");

    for (seq, input) in inputs.iter().enumerate() {
        let out = output.join(format!("{seq}.ts"));
        assert!(out.is_file(), "no output segment {seq}: {stderr}");
        let (_, _, want) = frames_of(input).await;
        let (width, height, got) = frames_of(&out).await;
        assert_eq!((width, height), (320, 240));
        assert_eq!(got.len(), want.len(), "segment {seq}: frames out = frames in ({stderr})");
        for (i, frame) in got.iter().enumerate() {
            let (_, max) = byoc_e2e::media::chroma_offset(width, height, frame);
            assert!(max <= 3, "segment {seq} frame {i}: chroma {max} away from gray");
        }
    }
    assert!(!output.join("3.ts").exists(), "one output segment per input segment");
    // The effect is announced on the events file.
    let events = std::fs::read_to_string(output.join("events.jsonl")).unwrap();
    assert!(events.contains("grayscale"), "{events}");
}

/// `byoc plugin inspect` says what a frame plugin wants (its `frames` needs), and says nothing of
/// frames for a byte-level plugin.
#[tokio::test]
async fn plugin_inspect_shows_a_frame_plugins_needs() {
    let cache = root().join("target/runtime-test-cache");
    let inspect = |name: &str| {
        let plugin = plugins_dir().join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_byoc"))
            .args(["plugin", "inspect"])
            .arg(&plugin)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .expect("byoc plugin inspect runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")
    };
    let effects = inspect("video-effects");
    let frames = &effects["describe"]["frames"];
    assert_eq!(frames["video"]["format"], "i420", "{effects}");
    assert_eq!(
        (frames["video"]["max_width"].as_u64(), frames["video"]["max_height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert!(frames["audio"].is_null(), "{effects}");
    let passthrough = inspect("passthrough");
    assert!(passthrough["describe"].get("frames").is_none(), "{passthrough}");
}

/// The loudest sample of a file's audio in dBFS, from ffmpeg's `volumedetect` (`-inf` for
/// digital silence).
async fn max_volume_db(file: &Path) -> f64 {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .args(["-vn", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let value = text.lines().find_map(|l| l.split("max_volume:").nth(1)).unwrap_or_else(|| panic!("{text}"));
    let value = value.trim().trim_end_matches("dB").trim();
    if value == "-inf" { f64::NEG_INFINITY } else { value.parse().unwrap_or_else(|_| panic!("{value:?} in {text}")) }
}

/// Audio frames through a wasm plugin and back: `audio-gain` (a test plugin asking for audio
/// only, `tests/hostile/audio-gain`) gets every segment's AAC decoded to f32 frames; with gain 0
/// the re-encoded audio out is silent, with gain 1 it is as loud as the input; the video, which
/// it did not ask for, comes out frame for frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_passes_audio_frames_through_a_wasm_plugin() {
    if !tool_available("plugin_run_passes_audio_frames_through_a_wasm_plugin", "ffmpeg") {
        return;
    }
    let plugin = root().join("target/hostile-plugins/audio-gain");
    if !plugin.join("audio-gain.wasm").is_file() {
        assert!(!byoc_e2e::peers_required(), "target/hostile-plugins missing: `cargo xtask test` builds it");
        eprintln!("skipped: hostile plugins not built (run through `cargo xtask test`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input_dir = dir.path().join("in");
    std::fs::create_dir_all(&input_dir).unwrap();
    let inputs = make_ts_segments(&input_dir, 2).await.unwrap();
    let input = dir.path().join("in.ts");
    std::fs::write(&input, inputs.iter().flat_map(|f| std::fs::read(f).unwrap()).collect::<Vec<u8>>()).unwrap();
    let loud = max_volume_db(&input).await;
    assert!(loud > -30.0, "the input's sine is at {loud} dB");
    let cache = root().join("target/runtime-test-cache");

    for (gain, silent) in [("0", true), ("1", false)] {
        let output = dir.path().join(format!("out-{gain}"));
        let params = format!(r#"{{"gain":{gain}}}"#);
        let mut args: Vec<&std::ffi::OsStr> = vec!["plugin".as_ref(), "run".as_ref(), plugin.as_os_str()];
        args.extend(["--cache-dir".as_ref(), cache.as_os_str(), "--input".as_ref()]);
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        args.extend(["--output".as_ref(), output.as_os_str(), "--params".as_ref(), params.as_ref()]);
        let (ok, stderr) = byoc(&args).await;
        assert!(ok, "byoc plugin run (gain {gain}) failed: {stderr}");
        // One output segment per input segment: what the AAC encoder holds at the end goes into the last.
        let segments = std::fs::read_dir(&output)
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "ts")));
        assert_eq!(segments.count(), inputs.len(), "gain {gain}: output segments");
        let joined = dir.path().join(format!("out-{gain}.ts"));
        let bytes = (0..inputs.len()).flat_map(|seq| std::fs::read(output.join(format!("{seq}.ts"))).unwrap());
        std::fs::write(&joined, bytes.collect::<Vec<u8>>()).unwrap();

        let volume = max_volume_db(&joined).await;
        if silent {
            assert!(volume < -60.0, "gain 0: the audio out peaks at {volume} dB");
        } else {
            assert!((volume - loud).abs() < 3.0, "gain 1: the audio out peaks at {volume} dB, the input at {loud} dB");
        }
        let audio = byoc_e2e::media::packet_times(&joined, "a:0").await.unwrap();
        assert!(audio.len() >= 90, "gain {gain}: {} AAC frames out of 2 s at 48 kHz", audio.len());
        assert_eq!(byoc_e2e::media::probe_video(&joined), ("h264".to_owned(), 50), "gain {gain}: the video");
        let events = std::fs::read_to_string(output.join("events.jsonl")).unwrap();
        assert!(events.contains(r#""type":"audio""#) && events.contains(r#""sample_rate":48000"#), "{events}");
    }
}

/// `--realtime` makes time pass as live: `motion-detector` publishes its data line on a
/// one-second timer tick only, so fed as fast as it goes (no media time passes) it publishes none,
/// and fed at the segments' pace (three one-second segments) it publishes at least one. Bare names
/// are looked up in `--plugins`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_run_realtime_paces_input_and_drives_the_timer() {
    if !tool_available("plugin_run_realtime_paces_input_and_drives_the_timer", "ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input_dir = dir.path().join("in");
    std::fs::create_dir_all(&input_dir).unwrap();
    let inputs = make_ts_segments(&input_dir, 3).await.unwrap();
    let (plugins, cache) = (plugins_dir(), root().join("target/runtime-test-cache"));
    let mut data_lines = Vec::new();
    for realtime in [false, true] {
        let output = dir.path().join(format!("out-{realtime}"));
        let mut args: Vec<&std::ffi::OsStr> = vec!["plugin".as_ref(), "run".as_ref(), "motion-detector".as_ref()];
        args.extend(["--plugins".as_ref(), plugins.as_os_str(), "--cache-dir".as_ref(), cache.as_os_str()]);
        args.extend(["--output".as_ref(), output.as_os_str(), "--input".as_ref()]);
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        if realtime {
            args.push("--realtime".as_ref());
        }
        let (ok, stderr) = byoc(&args).await;
        assert!(ok, "byoc plugin run (realtime: {realtime}) failed: {stderr}");
        let data = std::fs::read_to_string(output.join("data.jsonl")).unwrap();
        data_lines.push(data.lines().count());
    }
    assert_eq!(data_lines[0], 0, "no media time passes when input goes as fast as it can");
    assert!(data_lines[1] >= 1, "timer ticks while segments are paced: {data_lines:?}");
}
