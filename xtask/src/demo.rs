//! `cargo xtask demo`: builds the plugins and the host, starts `byoc dev` (gateway,
//! orchestrator and the bundled WebAssembly plugins in one process) and drives real streams
//! through real plugins: ffmpeg-generated H.264/AAC MPEG-TS in over the gateway's ingest URL,
//! processed video out over its egress URL, events and data over SSE. It checks what comes
//! back and prints the URLs a user would open.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cargo, env, exec, plugins};

const SEGMENTS: usize = 6;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Livepeer` job header a client sends to start a stream (free mode: unsigned).
fn job_header(capability: &str, parameters: &Value) -> String {
    let job = serde_json::json!({
        "request": "{}",
        "parameters": parameters.to_string(),
        "capability": capability,
        "timeout_seconds": 30,
    });
    base64(job.to_string().as_bytes())
}

fn curl_json(args: &[&str]) -> Result<Value> {
    let out = Command::new("curl").args(["-sS", "--max-time", "30"]).args(args).output().context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).with_context(|| format!("unexpected answer from the gateway: {text}"))
}

fn start_stream(gateway: &str, capability: &str, legs: Value, body: &str) -> Result<Value> {
    let header = format!("Livepeer: {}", job_header(capability, &legs));
    let urls = curl_json(&["-X", "POST", "-H", &header, "-d", body, &format!("{gateway}/process/stream/start")])?;
    if urls.get("stream_id").is_none() {
        bail!("the gateway refused the {capability} stream: {urls}");
    }
    Ok(urls)
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The stream's console page with its control secret (`player_url` holds the viewer token, which
/// cannot publish).
fn control_page(v: &Value) -> String {
    let page = field(v, "player_url").split('?').next().unwrap_or_default();
    format!("{page}?token={}", field(v, "stream_secret"))
}

/// `curl -N` on an SSE URL for `secs` seconds, into a file.
fn sse_to_file(url: &str, file: &Path, secs: u64) -> Result<KillOnDrop> {
    let out = std::fs::File::create(file)?;
    Ok(KillOnDrop(
        Command::new("curl").args(["-sN", "--max-time", &secs.to_string(), url]).stdout(out).spawn().context("curl")?,
    ))
}

/// Headless Chromium (when it is installed) opens a stream's player page: it publishes its fake camera
/// with WHIP and plays the output with WHEP for `secs`, then the page's WebRTC stats are summed up.
fn browser_legs(player_url: &str, work: &Path, secs: u64) -> Result<String> {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }) else {
        return Ok("skipped: chromium is not installed (apt-get install chromium)".into());
    };
    let profile = work.join("chromium-profile");
    let mut browser = KillOnDrop(
        Command::new(chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"])
            .args(["--disable-background-networking", "--disable-component-update"])
            .args(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
            .args(["--autoplay-policy=no-user-gesture-required", "--enable-logging=stderr", "--v=0"])
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("{player_url}&publish=1&play=1&report={secs}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting chromium")?,
    );
    let stderr = browser.0.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("RESULT ") {
                let rest = &line[at + "RESULT ".len()..];
                let _ = tx.send(rest[..rest.rfind('}').map_or(rest.len(), |e| e + 1)].to_string());
                return;
            }
        }
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(secs + 40)) else {
        return Ok("the browser reported nothing (see target/demo for its profile)".into());
    };
    let v: Value = serde_json::from_str(&line).unwrap_or_default();
    let n = |leg: &str, k: &str| v[leg][k].as_u64().unwrap_or(0);
    Ok(format!(
        "WHIP {} ({} frames sent, {}x{}), WHEP {} ({} frames decoded, {}x{})",
        v["whip"]["state"].as_str().unwrap_or("?"),
        n("whip", "frames_sent"),
        n("whip", "width"),
        n("whip", "height"),
        v["whep"]["state"].as_str().unwrap_or("?"),
        n("whep", "frames_decoded"),
        n("whep", "width"),
        n("whep", "height"),
    ))
}

pub fn run(root: &Path) -> Result<()> {
    env::ensure_rust_target("wasm32-wasip2")?;
    env::ensure_debian_library_packages(env::BUILD_LIBRARIES)?;
    env::ensure_debian_packages(&[("ffmpeg", "ffmpeg"), ("ffprobe", "ffmpeg"), ("curl", "curl")])?;
    // The browser step is optional: without Chromium the demo says so and goes on.
    if let Err(e) = env::ensure_debian_packages(&[("chromium", "chromium")]) {
        eprintln!("xtask: chromium could not be installed ({e:#}); the browser step will be skipped");
    }
    let plugin_dir = plugins::build(root)?;
    exec(cargo(root).args(["build", "--release", "-p", "byoc-cli"]))?;
    let byoc = root.join("target/release/byoc");
    let work = root.join("target/demo");
    let (input, output) = (work.join("in"), work.join("out"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&input)?;

    eprintln!("xtask: generating {SEGMENTS} one-second H.264 + AAC MPEG-TS segments with ffmpeg");
    exec(
        Command::new("ffmpeg")
            .args(["-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &SEGMENTS.to_string()])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .args(["-f", "segment", "-segment_time", "1", "-segment_format", "mpegts"])
            .arg(input.join("%03d.ts")),
    )?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&input)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();

    eprintln!("xtask: starting `byoc dev` (gateway + orchestrator + plugins from {})", plugin_dir.display());
    let mut dev = KillOnDrop(
        Command::new(&byoc)
            .args(["dev", "--listen", "127.0.0.1:0", "--rtmp-listen", "127.0.0.1:0", "--plugins"])
            .arg(&plugin_dir)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting byoc dev")?,
    );
    let mut lines = BufReader::new(dev.0.stdout.take().context("no stdout")?).lines();
    let mut gateway = String::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    for line in lines.by_ref() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("byoc dev: gateway") {
            gateway = rest.split_whitespace().next().unwrap_or_default().to_string();
        }
        if line.starts_with("byoc dev: free mode") || Instant::now() > deadline {
            break;
        }
    }
    if !gateway.starts_with("http://") {
        bail!("byoc dev did not print its gateway URL");
    }
    // Keep echoing what `byoc dev` prints.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| println!("{l}")));

    // 1. Video through the passthrough plugin: in over ingest, out over egress.
    let video = start_stream(
        &gateway,
        "passthrough",
        serde_json::json!({"enable_video_ingress": true, "enable_video_egress": true}),
        r#"{"stream_name":"demo-video"}"#,
    )?;
    let secret = field(&video, "stream_secret").to_string();
    let events = sse_to_file(field(&video, "events_url"), &work.join("video-events.txt"), 12)?;
    let mut subscriber = KillOnDrop(
        Command::new(&byoc)
            .args(["trickle", "subscribe", field(&video, "egress_url"), "--start", "0", "--bearer", &secret])
            .args(["--count", &files.len().to_string(), "--out"])
            .arg(&output)
            .spawn()
            .context("starting the egress subscriber")?,
    );
    std::thread::sleep(Duration::from_millis(300));
    eprintln!("xtask: publishing the segments at real time through the gateway");
    exec(
        Command::new(&byoc)
            .args(["trickle", "publish", field(&video, "ingest_url"), "--interval-ms", "1000", "--bearer", &secret])
            .args(&files),
    )?;
    let status = subscriber.0.wait()?;
    if !status.success() {
        bail!("the egress subscriber failed: {status}");
    }
    for (i, f) in files.iter().enumerate() {
        let got =
            std::fs::read(output.join(format!("{i}.ts"))).with_context(|| format!("output segment {i} missing"))?;
        if got != std::fs::read(f)? {
            bail!("output segment {i} differs from the input");
        }
    }
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "compact"])
        .arg(output.join("0.ts"))
        .output()?;
    let status_json = curl_json(&[field(&video, "status_url")])?;

    // 2. The same video through ts-analyzer: what it sees arrives as data over SSE.
    let analysis = start_stream(
        &gateway,
        "ts-analyzer",
        serde_json::json!({"enable_video_ingress": true, "enable_data_output": true}),
        r#"{"stream_name":"demo-analysis"}"#,
    )?;
    let data = sse_to_file(field(&analysis, "data_url"), &work.join("analysis-data.txt"), 6)?;
    std::thread::sleep(Duration::from_millis(300));
    exec(
        Command::new(&byoc)
            .args(["trickle", "publish", field(&analysis, "ingest_url"), "--bearer", field(&analysis, "stream_secret")])
            .args(&files[..2]),
    )?;
    // 3. RTMP in and out: ffmpeg publishes a test pattern to the stream's rtmp_url; the processed
    //    output is pushed to an RTMP receiver (ffmpeg -listen) given as rtmp_output, and played
    //    from the gateway's own RTMP play URL (the last of rtmp_output_url) by another ffmpeg.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let rtmp_dest = format!("rtmp://127.0.0.1:{port}/live/out");
    let rtmp_file = work.join("rtmp-output.flv");
    let mut receiver = KillOnDrop(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-listen", "1", "-i", &rtmp_dest])
            .args(["-c", "copy"])
            .arg(&rtmp_file)
            .spawn()
            .context("starting the RTMP receiver")?,
    );
    // Through the `video-effects` frame plugin: the orchestrator decodes the H.264, the plugin
    // grays every frame, the orchestrator encodes it again; halfway through, an update switches
    // the effect to `invert`, live.
    let rtmp = start_stream(
        &gateway,
        "video-effects",
        serde_json::json!({"enable_video_ingress": true, "enable_video_egress": true}),
        &serde_json::json!({"stream_name": "demo-rtmp", "rtmp_output": rtmp_dest, "params": {"effect": "grayscale"}})
            .to_string(),
    )?;
    let play_url = field(&rtmp, "rtmp_output_url").rsplit(',').next().unwrap_or_default().to_string();
    let played_file = work.join("rtmp-played.flv");
    let mut player = KillOnDrop(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", &play_url, "-t", "4"])
            .args(["-c", "copy"])
            .arg(&played_file)
            .spawn()
            .context("starting the RTMP player")?,
    );
    eprintln!(
        "xtask: publishing 6 s of a test pattern over RTMP to {} (video-effects: grayscale)",
        field(&rtmp, "rtmp_url")
    );
    let switch = format!("curl -s -X POST '{}' -d '{{\"effect\":\"invert\"}}'", field(&rtmp, "update_url"));
    let switcher = {
        let update_url = field(&rtmp, "update_url").to_string();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            eprintln!("xtask: switching the effect to invert, live");
            let _ =
                Command::new("curl").args(["-s", "-X", "POST", &update_url, "-d", r#"{"effect":"invert"}"#]).output();
        })
    };
    exec(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"])
            .args(["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-f", "flv", field(&rtmp, "rtmp_url")]),
    )?;
    let _ = switcher.join();
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("curl").args(["-s", "-X", "POST", field(&rtmp, "stop_url")]).output();
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.0.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = receiver.0.kill();
    let _ = player.0.kill();
    let probe_flv = |file: &Path| -> Result<String> {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "compact"])
            .arg(file)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let (rtmp_probe, played_probe) = (probe_flv(&rtmp_file)?, probe_flv(&played_file)?);

    // 4. WebRTC in a real browser: the player page of a fourth stream publishes a camera with WHIP
    //    and plays the output (through video-effects, pixelated) with WHEP.
    let webrtc = start_stream(
        &gateway,
        "video-effects",
        serde_json::json!({"enable_video_ingress": true, "enable_video_egress": true}),
        r#"{"stream_name":"demo-webrtc","params":{"effect":"pixelate","strength":0.5}}"#,
    )?;
    eprintln!("xtask: a headless browser publishes with WHIP and plays with WHEP for 10 s");
    let browser = browser_legs(&control_page(&webrtc), &work, 10)?;
    let _ = Command::new("curl").args(["-s", "-X", "POST", field(&webrtc, "stop_url")]).output();

    // A video-effects stream left up for a person to try: its player page, RTMP ingest, and the
    // command that switches its effect live.
    let effects = start_stream(
        &gateway,
        "video-effects",
        serde_json::json!({}),
        r#"{"stream_name":"demo-effects","params":{"effect":"grayscale"}}"#,
    )?;

    let mut data = data;
    let _ = data.0.wait();
    let mut events = events;
    let _ = events.0.kill();
    let analysis_data = std::fs::read_to_string(work.join("analysis-data.txt")).unwrap_or_default();
    let first_report = analysis_data.lines().find(|l| l.starts_with("data: ")).unwrap_or("(none)");

    println!();
    println!(
        "demo: {} one-second segments went through the passthrough plugin and came back byte for byte",
        files.len()
    );
    println!("demo: ffprobe of the first output segment:\n{}", String::from_utf8_lossy(&probe.stdout).trim());
    println!("demo: stream status: {status_json}");
    println!("demo: ts-analyzer data (first line): {}", first_report.chars().take(300).collect::<String>());
    println!(
        "demo: RTMP in -> video-effects (grayscale, then invert) -> RTMP out, pushed to ffmpeg -listen: {rtmp_probe}"
    );
    println!("demo: RTMP in -> video-effects -> RTMP out, played from the gateway (4 s): {played_probe}");
    println!(
        "demo: a browser's camera -> WHIP -> video-effects (pixelate) -> WHEP -> the same browser (10 s): {browser}"
    );
    println!("demo: the effect was switched live with: {switch}");
    println!();
    println!("  gateway              {gateway}");
    println!("  the console          {gateway}/  (open it in a browser: start, watch and stop streams)");
    println!("  video stream         {}", field(&video, "stream_id"));
    println!("  status               curl -s '{}'", field(&video, "status_url"));
    println!("  events (SSE)         curl -sN '{}'", field(&video, "events_url"));
    println!(
        "  latest output        curl -s -H 'Authorization: Bearer {secret}' {}/-2 | ffprobe -",
        field(&video, "egress_url")
    );
    println!("  analysis data (SSE)  curl -sN '{}'", field(&analysis, "data_url"));
    println!("  RTMP ingest          ffmpeg -re -i INPUT -c:v libx264 -c:a aac -f flv '{}'", field(&video, "rtmp_url"));
    println!(
        "  WHIP ingest / WHEP   POST an SDP offer to '{}' / '{}'",
        field(&video, "whip_url"),
        field(&video, "whep_url")
    );
    println!(
        "  in a browser         {}  (the console: publish your camera with WHIP, watch the output with WHEP)",
        control_page(&video)
    );
    println!("  RTMP play (output)   ffplay '{}'", field(&video, "rtmp_output_url"));
    println!("  video-effects        {}  (your camera, grayscale)", control_page(&effects));
    println!(
        "    RTMP ingest        ffmpeg -re -i INPUT -c:v libx264 -c:a aac -f flv '{}'",
        field(&effects, "rtmp_url")
    );
    println!(
        "    switch the effect  curl -s -X POST '{}' -d '{{\"effect\":\"invert\"}}'  (or pixelate, blur, mirror, overlay…)",
        field(&effects, "update_url")
    );
    println!("  output segments      {}", output.display());
    println!();
    println!("The node stays up for 20 s so you can try the URLs above; then the streams are stopped.");
    std::thread::sleep(Duration::from_secs(20));
    for s in [&video, &analysis, &effects] {
        let _ = Command::new("curl").args(["-s", "-X", "POST", field(s, "stop_url")]).output();
    }
    drop(dev);
    println!("demo: done");
    Ok(())
}
