//! The gateway's media legs with real peers. RTMP with ffmpeg: a test pattern published to a
//! stream's `rtmp_url` goes through the `passthrough` plugin and comes out of the egress as H.264
//! segments; a wrong stream key is refused; a stream's output is pushed to the client's
//! `rtmp_output` and can be played from the gateway itself (`rtmp_output_url`). WebRTC with aiortc: a
//! WHIP publisher feeds a stream, a WHEP viewer watches it, also through the `video-effects` frame
//! plugin.

use crate::common;

use std::time::Duration;

use byoc_e2e::media::tool_available;
use byoc_e2e::nodes::root;
use byoc_trickle::{HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use common::{http, media_nodes, start_video as start};
use serde_json::{Value, json};

/// `ffmpeg` publishing `seconds` of a test pattern (H.264 + AAC) to `url`, in real time.
fn publish(url: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url])
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_in_through_a_plugin_and_rtmp_out() {
    if !tool_available("rtmp_in_through_a_plugin_and_rtmp_out", "ffmpeg") {
        return;
    }
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let (gw, rtmp) = (nodes.url.as_str(), &nodes.rtmp);
    let dir = tempfile::tempdir().unwrap();

    // RTMP in: a wrong key is refused, the stream's own rtmp_url is served.
    let urls = start(gw, json!({})).await;
    let rtmp_url = urls["rtmp_url"].as_str().unwrap().to_string();
    assert!(rtmp_url.starts_with(&format!("rtmp://{}/live/", rtmp.local_addr())), "{rtmp_url}");
    let wrong = format!("rtmp://{}/live/{}-0000", rtmp.local_addr(), urls["stream_id"].as_str().unwrap());
    let refused = tokio::time::timeout(Duration::from_secs(30), publish(&wrong, 2).wait()).await.unwrap().unwrap();
    assert!(!refused.success(), "a wrong stream key must be refused");

    let egress = urls["egress_url"].as_str().unwrap().to_string();
    let secret = urls["stream_secret"].as_str().unwrap().to_string();
    let reader = tokio::spawn(async move {
        let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), max_retries: 50, ..Default::default() };
        let client = byoc_trickle::http_client_builder()
            .default_headers(
                [(http::header::AUTHORIZATION, format!("Bearer {secret}").parse().unwrap())].into_iter().collect(),
            )
            .build()
            .unwrap();
        let mut sub = HttpSubscriber::with_client(client, egress, opts);
        let mut out = Vec::new();
        for _ in 0..2 {
            let Ok(Some(seg)) = sub.next_segment().await else { break };
            out.extend_from_slice(&seg.read_all().await.unwrap());
        }
        out
    });
    let mut ffmpeg = publish(&rtmp_url, 4);
    let out = tokio::time::timeout(Duration::from_secs(40), reader).await.expect("output segments").unwrap();
    let _ = ffmpeg.wait().await;
    let file = dir.path().join("out.ts");
    std::fs::write(&file, &out).unwrap();
    let (codec, frames) = byoc_e2e::media::probe_video(&file);
    assert_eq!(codec, "h264");
    assert!(frames >= 20, "{frames} frames in two output segments");
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    // RTMP out: the output of a stream fed over RTMP goes to each of the client's rtmp_output
    // destinations (two here, comma-separated).
    let mut receivers = Vec::new();
    for name in ["a", "b"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dest = format!("rtmp://127.0.0.1:{port}/live/{name}");
        let file = dir.path().join(format!("received-{name}.flv"));
        let child = tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-listen", "1", "-i", &dest, "-c", "copy"])
            .arg(&file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        receivers.push((dest, file, child));
    }
    let dests: Vec<&str> = receivers.iter().map(|(d, _, _)| d.as_str()).collect();
    let bad = http()
        .post(format!("{gw}/process/stream/start"))
        .header("Livepeer", byoc_e2e::nodes::job_header("passthrough", &json!({"enable_video_egress": true})))
        .json(&json!({"rtmp_output": format!("{},http://x", dests[0])}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "every rtmp_output destination must be rtmp:// or rtmps://");
    let urls = start(gw, json!({"rtmp_output": dests.join(", ")})).await;
    // rtmp_output_url lists the client's destinations and the gateway's own play URL.
    let outputs: Vec<&str> = urls["rtmp_output_url"].as_str().unwrap().split(',').collect();
    let (id, viewer) = (urls["stream_id"].as_str().unwrap(), urls["viewer_token"].as_str().unwrap());
    // The play URL handed out carries the viewer token: it can be shared.
    let play = format!("rtmp://{}/live/{id}-{viewer}-out", rtmp.local_addr());
    assert_eq!(outputs, [dests[0], dests[1], play.as_str()]);
    let mut ffmpeg = publish(urls["rtmp_url"].as_str().unwrap(), 5);
    // RTMP play: a viewer pulls the output from the gateway while it is published; a wrong key is refused.
    let wrong_play = format!("rtmp://{}/live/{id}-0000-out", rtmp.local_addr());
    let played = dir.path().join("played.flv");
    let viewer = |url: &str, file: &std::path::Path| {
        tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", url, "-t", "2", "-c", "copy"])
            .arg(file)
            .kill_on_drop(true)
            .status()
    };
    let refused = tokio::time::timeout(Duration::from_secs(20), viewer(&wrong_play, &dir.path().join("x.flv")));
    assert!(!refused.await.unwrap().unwrap().success(), "a wrong play key must be refused");
    let _ = tokio::time::timeout(Duration::from_secs(40), viewer(&play, &played)).await;
    let (codec, frames) = byoc_e2e::media::probe_video(&played);
    assert_eq!(codec, "h264", "nothing playable came from the gateway's RTMP play URL");
    assert!(frames >= 25, "{frames} frames played from the gateway");
    let _ = tokio::time::timeout(Duration::from_secs(40), ffmpeg.wait()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
    for (dest, file, mut receiver) in receivers {
        let _ = tokio::time::timeout(Duration::from_secs(20), receiver.wait()).await;
        let _ = receiver.start_kill();
        let (codec, frames) = byoc_e2e::media::probe_video(&file);
        assert_eq!(codec, "h264", "nothing usable arrived at the rtmp_output destination {dest}");
        assert!(frames >= 10, "{frames} frames at the rtmp_output destination {dest}");
    }
}

/// Ends a WHIP publisher's and a WHEP viewer's sessions (DELETE of each resource at its
/// `locations`, with the stream's token), then lets both peers finish.
async fn hang_up(base: &str, token: &str, locations: [String; 2], mut publisher: Peer, mut viewer: Peer) {
    for location in locations {
        let r = http().delete(format!("{base}{location}?token={token}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "DELETE {location}");
    }
    viewer.send(json!({})).await;
    let _ = publisher.line().await;
    publisher.send(json!({})).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), publisher.child.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), viewer.child.wait()).await;
}

/// The value of the series `name` (with its labels) in a Prometheus text page; 0 when absent.
fn metric(page: &str, name: &str) -> f64 {
    page.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
}

/// One of `byoc-media`'s aiortc peers (`whip_client.py` / `whep_client.py`), signalling over stdio.
struct Peer {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stdin: tokio::process::ChildStdin,
}

impl Peer {
    async fn start(python: &str, script: &str, seconds: u32) -> Peer {
        use tokio::io::AsyncBufReadExt;
        let path = root().join("host/media/tests/peers").join(script);
        let mut child = tokio::process::Command::new(python)
            .arg(path)
            .arg(seconds.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python");
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let stdin = child.stdin.take().unwrap();
        Peer { child, lines, stdin }
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line()).await.unwrap().unwrap();
        serde_json::from_str(&line.expect("peer output")).unwrap()
    }

    async fn send(&mut self, v: Value) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Offers to `url`; answers the peer with the gateway's SDP; returns the session's Location.
    async fn connect(&mut self, url: &str) -> String {
        let offer = self.line().await["offer"].as_str().unwrap().to_string();
        let r = http().post(url).header("Content-Type", "application/sdp").body(offer).send().await.unwrap();
        assert_eq!(r.status(), 201, "{url}");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(r.headers()["content-type"], "application/sdp");
        self.send(json!({"answer": r.text().await.unwrap()})).await;
        location
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_in_through_a_plugin_and_whep_out() {
    let Some(python) = byoc_e2e::media::aiortc_python("whip_in_through_a_plugin_and_whep_out") else { return };
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let gw = nodes.url.as_str();
    let urls = start(gw, json!({})).await;
    let (whip, whep) = (urls["whip_url"].as_str().unwrap(), urls["whep_url"].as_str().unwrap());
    assert!(whip.contains("/whip?token=") && whep.contains("/whep?token="), "{urls}");

    // Bad offers: unknown stream, wrong secret, wrong content type, bad SDP; a leg the stream does not
    // have.
    let sdp = |url: String| http().post(url).header("Content-Type", "application/sdp").body("v=0");
    let id = urls["stream_id"].as_str().unwrap();
    assert_eq!(sdp(whip.replace(id, "no-such-stream")).send().await.unwrap().status(), 404);
    assert_eq!(sdp(whip.replace("token=", "token=wrong")).send().await.unwrap().status(), 403);
    let data_only = http()
        .post(format!("{gw}/process/stream/start"))
        .header(
            "Livepeer",
            byoc_e2e::nodes::job_header(
                "passthrough",
                &json!({"enable_video_ingress": true, "enable_video_egress": false}),
            ),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let no_egress = format!(
        "{gw}/process/stream/{}/whep?token={}",
        data_only["stream_id"].as_str().unwrap(),
        data_only["stream_secret"].as_str().unwrap()
    );
    assert_eq!(sdp(no_egress).send().await.unwrap().status(), 409, "WHEP of a stream without video egress");
    let r = http().post(whip).header("Content-Type", "text/plain").body("v=0").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = http().post(whip).header("Content-Type", "application/sdp").body("not sdp").send().await.unwrap();
    assert_eq!(r.status(), 400);

    let mut publisher = Peer::start(&python, "whip_client.py", 10).await;
    let session = publisher.connect(whip).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = http().get(format!("{gw}/metrics")).send().await.unwrap().text().await.unwrap();
    // One registry for the test process: another test's WHIP session may be counted too.
    assert!(metric(&metrics, "byoc_gateway_media_sessions{leg=\"whip\"}") >= 1.0, "{metrics}");
    let mut viewer = Peer::start(&python, "whep_client.py", 6).await;
    let viewing = viewer.connect(whep).await;
    let seen = viewer.line().await;
    assert!(seen["video_frames"].as_u64().unwrap_or(0) >= 30, "the WHEP viewer decoded too little: {seen}");
    assert_eq!((seen["width"].as_u64(), seen["height"].as_u64()), (Some(640), Some(360)), "{seen}");
    // The viewer's join asked the WHIP publisher for a keyframe (a segment start for it to begin at).
    let metrics = http().get(format!("{gw}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, "byoc_gateway_keyframe_requests_total{reason=\"viewer_joined\"}") >= 1.0, "{metrics}");

    let base = gw.trim_end_matches('/');
    let token = urls["stream_secret"].as_str().unwrap();
    // No trickle ICE with an ICE-lite server: a PATCH of the session is 405, as WHIP asks.
    let r = http()
        .patch(format!("{base}{session}?token={token}"))
        .header("Content-Type", "application/trickle-ice-sdpfrag")
        .body("a=candidate:1 1 udp 1 127.0.0.1 9 typ host")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // A second publisher with the stream secret replaces the first (a tab that died without saying so
    // must not hold the stream): it is accepted, and the first session is closed.
    let mut second = Peer::start(&python, "whip_client.py", 3).await;
    let replacing = second.connect(whip).await;
    assert_ne!(replacing, session);
    let r = http().delete(format!("{base}{session}?token={token}")).send().await.unwrap();
    assert_eq!(r.status(), 404, "the replaced session is closed already");
    let metrics = http().get(format!("{gw}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, "byoc_gateway_whip_replaced_total") >= 1.0, "{metrics}");
    drop(publisher);
    hang_up(base, token, [viewing, replacing], second, viewer).await;
    // Nothing leaks: once DELETEd, both sessions are gone (the gauges count live sessions).
    let gone = ["byoc_gateway_media_sessions{leg=\"whip\"} 0", "byoc_gateway_media_sessions{leg=\"whep\"} 0"];
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http().get(format!("{gw}/metrics")).send().await.unwrap().text().await.unwrap();
        if gone.iter().all(|g| metrics.contains(g)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone.iter().all(|g| metrics.contains(g)), "sessions left after DELETE: {metrics}");
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}

/// WHIP in (aiortc publishing a colour test pattern) → `video-effects` grayscale → WHEP out (aiortc
/// watching): the frame plugin sits between two WebRTC legs, every frame the viewer decodes is
/// gray (its U and V samples within 3 of 128), and the publisher's sound reaches the viewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_in_through_video_effects_and_whep_out_is_gray() {
    let Some(python) = byoc_e2e::media::aiortc_python("whip_in_through_video_effects_and_whep_out_is_gray") else {
        return;
    };
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true});
    let urls = crate::plugins::start(&nodes.url, "video-effects", legs, r#"{"params": {"effect": "grayscale"}}"#).await;
    let mut publisher = Peer::start(&python, "whip_client.py", 9).await;
    let session = publisher.connect(urls["whip_url"].as_str().unwrap()).await;
    let mut viewer = Peer::start(&python, "whep_client.py", 6).await;
    let viewing = viewer.connect(urls["whep_url"].as_str().unwrap()).await;
    let seen = viewer.line().await;
    eprintln!("WHEP viewer of video-effects: {seen}");
    let frames = seen["video_frames"].as_u64().unwrap_or(0);
    assert!(frames >= 30, "the WHEP viewer decoded too little: {seen}");
    assert_eq!((seen["width"].as_u64(), seen["height"].as_u64()), (Some(640), Some(360)), "{seen}");
    assert_eq!(seen["gray_frames"].as_u64(), Some(frames), "frames in colour came out: {seen}");
    assert!(seen["chroma_max"].as_u64().is_some_and(|c| c <= 3), "{seen}");
    // The publisher's Opus passes the frame plugin by (20 ms frames: at least half a second).
    assert!(seen["audio_frames"].as_u64().unwrap_or(0) >= 25, "the WHIP audio did not reach the viewer: {seen}");

    let (base, token) = (nodes.url.trim_end_matches('/'), urls["stream_secret"].as_str().unwrap());
    hang_up(base, token, [viewing, session], publisher, viewer).await;
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}

/// The gateway's `segment_min_duration` reaches its RTMP ingest: with 3 s, a publisher's 1 s GOPs are
/// cut into segments of 3 s (75 frames at 25 fps), not 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_segment_duration_is_the_gateways() {
    if !tool_available("the_minimum_segment_duration_is_the_gateways", "ffmpeg") {
        return;
    }
    let nodes = common::media_nodes_with("127.0.0.1:0".parse().unwrap(), |c| {
        c.segment_min_duration = Duration::from_secs(3);
    })
    .await;
    let urls = start(&nodes.url, json!({})).await;
    let (egress, secret) = (urls["egress_url"].as_str().unwrap().to_string(), urls["stream_secret"].as_str().unwrap());
    let client = byoc_trickle::http_client_builder()
        .default_headers(
            [(http::header::AUTHORIZATION, format!("Bearer {secret}").parse().unwrap())].into_iter().collect(),
        )
        .build()
        .unwrap();
    let opts = SubscriberOptions { start: SeqRequest::At(Seq(0)), max_retries: 50, ..Default::default() };
    let mut sub = HttpSubscriber::with_client(client, egress, opts);
    let mut ffmpeg = publish(urls["rtmp_url"].as_str().unwrap(), 5);
    let first = tokio::time::timeout(Duration::from_secs(40), async {
        sub.next_segment().await.unwrap().unwrap().read_all().await.unwrap()
    })
    .await
    .expect("a first output segment");
    let _ = ffmpeg.wait().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("first.ts");
    std::fs::write(&file, &first).unwrap();
    let (codec, frames) = byoc_e2e::media::probe_video(&file);
    assert_eq!(codec, "h264");
    assert!((70..=80).contains(&frames), "{frames} frames in the first segment (3 s at 25 fps expected)");
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}

/// RTMP in, WHEP out: the output's AAC audio reaches the WebRTC viewer as Opus (re-encoded once per
/// stream), with the picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_in_whep_out_gets_its_audio_as_opus() {
    let Some(python) = byoc_e2e::media::aiortc_python("rtmp_in_whep_out_gets_its_audio_as_opus") else { return };
    if !tool_available("rtmp_in_whep_out_gets_its_audio_as_opus", "ffmpeg") {
        return;
    }
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let urls = start(&nodes.url, json!({})).await;
    let mut ffmpeg = publish(urls["rtmp_url"].as_str().unwrap(), 10);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut viewer = Peer::start(&python, "whep_client.py", 6).await;
    let _ = viewer.connect(urls["whep_url"].as_str().unwrap()).await;
    let seen = viewer.line().await;
    assert_eq!((seen["width"].as_u64(), seen["height"].as_u64()), (Some(320), Some(240)), "{seen}");
    assert!(seen["video_frames"].as_u64().unwrap_or(0) >= 40, "too little video: {seen}");
    // 20 ms Opus frames: a few seconds of them.
    assert!(seen["audio_frames"].as_u64().unwrap_or(0) >= 100, "the AAC audio did not reach the viewer: {seen}");
    viewer.send(json!({})).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), viewer.child.wait()).await;
    let _ = ffmpeg.start_kill();
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
}

/// RTMP in through the `video-effects` frame plugin and RTMP out (played from the gateway), as
/// `cargo xtask demo` shows it: the orchestrator decodes the H.264, the plugin grays it, the
/// orchestrator encodes it again, and a viewer plays gray H.264 (with its AAC) over RTMP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_in_through_video_effects_and_rtmp_play_is_gray() {
    if !tool_available("rtmp_in_through_video_effects_and_rtmp_play_is_gray", "ffmpeg") {
        return;
    }
    let nodes = media_nodes("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let legs = json!({"enable_video_ingress": true, "enable_video_egress": true});
    let urls: Value = http()
        .post(format!("{}/process/stream/start", nodes.url))
        .header("Livepeer", byoc_e2e::nodes::job_header("video-effects", &legs))
        .json(&json!({"params": {"effect": "grayscale"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let play = urls["rtmp_output_url"].as_str().unwrap().rsplit(',').next().unwrap().to_string();
    let mut ffmpeg = publish(urls["rtmp_url"].as_str().unwrap(), 6);
    let played = dir.path().join("played.flv");
    let viewer = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", &play, "-t", "2", "-c", "copy"])
        .arg(&played)
        .kill_on_drop(true)
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(40), viewer).await;
    let _ = tokio::time::timeout(Duration::from_secs(40), ffmpeg.wait()).await;
    assert_eq!(http().post(urls["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);
    let codecs = byoc_e2e::media::probe_codecs(&played).await.unwrap();
    assert!(codecs.contains(&"h264".to_string()) && codecs.contains(&"aac".to_string()), "{codecs:?}");
    let (width, height, frames) = byoc_e2e::media::decode_i420(&played).await.unwrap();
    assert!(frames.len() >= 25, "{} frames played from the gateway", frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let (_, max) = byoc_e2e::media::chroma_offset(width, height, frame);
        assert!(max <= 3, "frame {i}: chroma {max} away from gray");
    }
}
