//! ts-analyzer against real MPEG-TS produced by ffmpeg (see `fixtures/README.md`), intact and
//! damaged, through the SDK's native harness.

// Test code: a failed unwrap or index is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use byoc_sdk::testing::{Harness, Outputs};
use byoc_sdk::{Body, Error, Request};
use serde_json::Value;
use ts_analyzer::TsAnalyzer;

const H264_AAC: &[u8] = include_bytes!("fixtures/h264-aac-2s.ts");
const HEVC_OPUS: &[u8] = include_bytes!("fixtures/hevc-opus-1s.ts");

/// Runs one session over `segments` and returns what it output.
fn run(segments: &[&[u8]], chunk_size: usize) -> Outputs {
    let harness = Harness::<TsAnalyzer>::new().with_chunk_size(chunk_size);
    let mut session = harness.open("{}").unwrap();
    for (seq, segment) in segments.iter().enumerate() {
        session.segment(seq as u64, segment).unwrap();
    }
    session.close().unwrap();
    session.outputs()
}

fn reports(out: &Outputs) -> Vec<Value> {
    out.data_json()
}

fn pid(report: &Value, pid: u64) -> &Value {
    report["pids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("PID {pid} missing from {report}"))
}

/// The packets of a fixture, as 188-byte slices.
fn packets(bytes: &[u8]) -> Vec<&[u8]> {
    assert_eq!(bytes.len() % 188, 0);
    bytes.chunks(188).collect()
}

fn pid_of(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[1] & 0x1f, packet[2]])
}

#[test]
fn reports_streams_keyframes_timestamps_and_bitrate_of_h264_aac() {
    let out = run(&[H264_AAC], 4096);
    let streams = out.events_of_type("ts-analyzer.streams");
    assert_eq!(streams.len(), 1);
    let codecs: Vec<(u64, &str, &str)> = streams[0]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["pid"].as_u64().unwrap(), s["codec"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(codecs, [(256, "h264", "video"), (257, "aac", "audio")]);

    let report = &reports(&out)[0];
    assert_eq!(report["type"], "segment");
    assert_eq!(report["bytes"], H264_AAC.len());
    assert_eq!(report["packets"], H264_AAC.len() / 188);
    // 20 frames at 10 fps, two GOPs of 10 (ffprobe: keyframes at PTS 144000 and 234000).
    assert_eq!(report["keyframes"], 2);
    assert_eq!(report["starts_with_keyframe"], true);
    assert_eq!(report["primary_pid"], 256);
    let video = pid(report, 256);
    assert_eq!(video["pes"], 20);
    assert_eq!(video["pts"]["min"], 144_000);
    assert_eq!(video["pts"]["max"], 315_000);
    assert_eq!(video["pts"]["first"], 144_000);
    assert_eq!(report["duration_ms"], 2000.0);
    let expected_bitrate = (H264_AAC.len() * 8) as f64 / 2.0;
    assert_eq!(report["bitrate_bps"].as_f64().unwrap(), expected_bitrate);
    assert_eq!(pid(report, 0)["role"], "pat");
    assert_eq!(pid(report, 4096)["role"], "pmt");
    assert_eq!(pid(report, 257)["codec"], "aac");
    assert_eq!(report["errors"]["continuity"], 0);
    assert!(out.events_of_type("ts-analyzer.errors").is_empty());
    assert!(out.events_of_type("ts-analyzer.warning").is_empty());
}

#[test]
fn identifies_hevc_and_opus() {
    let out = run(&[HEVC_OPUS], 1000);
    let streams = &out.events_of_type("ts-analyzer.streams")[0]["streams"];
    let codecs: Vec<&str> = streams.as_array().unwrap().iter().map(|s| s["codec"].as_str().unwrap()).collect();
    assert_eq!(codecs, ["hevc", "opus"]);
    let report = &reports(&out)[0];
    assert_eq!(report["keyframes"], 2);
    assert_eq!(report["errors"]["continuity"], 0);
    assert_eq!(report["duration_ms"], 1000.0);
}

#[test]
fn chunk_boundaries_do_not_change_the_report() {
    let reference = reports(&run(&[H264_AAC], H264_AAC.len()));
    for chunk_size in [1, 7, 187, 188, 189, 1000] {
        assert_eq!(reports(&run(&[H264_AAC], chunk_size)), reference, "chunk size {chunk_size}");
    }
}

#[test]
fn a_lost_packet_is_a_continuity_error_on_its_pid() {
    let all = packets(H264_AAC);
    // Drop the 5th video packet that is not the start of a PES.
    let victim =
        all.iter().enumerate().filter(|(_, p)| pid_of(p) == 256 && p[1] & 0x40 == 0).nth(5).map(|(i, _)| i).unwrap();
    let damaged: Vec<u8> =
        all.iter().enumerate().filter(|(i, _)| *i != victim).flat_map(|(_, p)| p.iter().copied()).collect();

    let out = run(&[&damaged], 4096);
    let report = &reports(&out)[0];
    assert_eq!(report["errors"]["continuity"], 1);
    assert_eq!(pid(report, 256)["continuity_errors"], 1);
    assert_eq!(pid(report, 257)["continuity_errors"], 0);
    let errors = out.events_of_type("ts-analyzer.errors");
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["samples"][0].as_str().unwrap().contains("PID 256"));
}

#[test]
fn garbage_and_truncation_are_counted_and_the_rest_still_analysed() {
    let mut damaged = H264_AAC[..188 * 50].to_vec();
    damaged.extend_from_slice(b"not a packet");
    damaged.extend_from_slice(&H264_AAC[188 * 50..]);
    damaged.extend_from_slice(&H264_AAC[..100]);

    let report = &reports(&run(&[&damaged], 512))[0];
    assert_eq!(report["errors"]["sync"], 1);
    assert_eq!(report["errors"]["truncated"], 1);
    assert_eq!(report["keyframes"], 2);
    assert_eq!(report["packets"], H264_AAC.len() / 188);
}

#[test]
fn a_segment_starting_mid_gop_is_flagged_and_tables_carry_over() {
    let all = packets(H264_AAC);
    // The second video PES start is a non-keyframe (the GOP is 10 frames).
    let cut =
        all.iter().enumerate().filter(|(_, p)| pid_of(p) == 256 && p[1] & 0x40 != 0).nth(1).map(|(i, _)| i).unwrap();
    let (first, second): (Vec<u8>, Vec<u8>) = (all[..cut].concat(), all[cut..].concat());

    let out = run(&[&first, &second], 4096);
    let warnings = out.events_of_type("ts-analyzer.warning");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["seq"], 1);
    let second_report = &reports(&out)[1];
    assert_eq!(second_report["starts_with_keyframe"], false);
    // No PAT/PMT in the second segment, yet its streams are still known.
    assert_eq!(pid(second_report, 256)["codec"], "h264");
    assert_eq!(second_report["keyframes"], 1);
    assert_eq!(out.events_of_type("ts-analyzer.streams").len(), 1);
    // Continuity carries across the cut in the real stream but is checked per segment.
    assert_eq!(second_report["errors"]["continuity"], 0);
}

#[test]
fn control_messages_change_params_live_and_bad_ones_change_nothing() {
    let harness = Harness::<TsAnalyzer>::new();
    let mut session = harness.open(r#"{"max_error_samples": 1}"#).unwrap();
    session.segment(0, H264_AAC).unwrap();

    session.control(r#"{"data": false}"#).unwrap();
    session.segment(1, H264_AAC).unwrap();
    assert!(matches!(session.control(r#"{"max_error_samples": 1000}"#), Err(Error::InvalidParams(_))));
    assert!(matches!(session.control(r#"{"colour": "blue"}"#), Err(Error::InvalidParams(_))));
    assert_eq!(session.session().params().max_error_samples, 1);
    assert!(!session.session().params().data);
    session.close().unwrap();

    let out = session.outputs();
    assert_eq!(out.data.len(), 1, "the second segment published no data line");
    let changes = out.events_of_type("ts-analyzer.params");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["params"]["data"], false);
    let summary = out.events_of_type("ts-analyzer.summary");
    assert_eq!(summary[0]["totals"]["segments"], 2);
    assert_eq!(summary[0]["totals"]["keyframes"], 4);
}

#[test]
fn invalid_open_params_refuse_the_stream() {
    let harness = Harness::<TsAnalyzer>::new();
    assert!(matches!(harness.open("[1]"), Err(Error::InvalidParams(_))));
    assert!(matches!(harness.open(r#"{"data": "yes"}"#), Err(Error::InvalidParams(_))));
}

#[test]
fn random_bytes_never_break_a_session() {
    // A fixed xorshift sequence: reproducible noise, plus noise with sync bytes every 188.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push(state as u8);
    }
    let mut synced = noise.clone();
    for packet in synced.chunks_mut(188) {
        packet[0] = 0x47;
    }
    let out = run(&[&noise, &synced, H264_AAC], 333);
    let reports = reports(&out);
    assert_eq!(reports.len(), 3);
    assert!(reports[0]["errors"]["sync"].as_u64().unwrap() > 0);
    // The good segment after the noise is analysed correctly.
    assert_eq!(reports[2]["keyframes"], 2);
}

#[test]
fn batch_analyses_a_posted_file() {
    let harness = Harness::<TsAnalyzer>::new();
    let response = harness.process(Request::new("/analyze", "video/mp2t", H264_AAC.to_vec())).unwrap();
    assert_eq!(response.status, 200);
    let Body::Bytes(body) = response.body else {
        panic!("expected a JSON body");
    };
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["report"]["keyframes"], 2);
    assert_eq!(json["streams"][0]["codec"], "h264");

    assert!(matches!(
        harness.process(Request::new("/analyze", "video/mp2t", b"hello".to_vec())),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        harness.process(Request::new("/other", "video/mp2t", H264_AAC.to_vec())),
        Err(Error::NotFound(_))
    ));
}

/// What the Livepeer SDK's `submit_byoc_job` sends: `POST /process/request/ts-analyzer` (the
/// plugin sees `/ts-analyzer`) with a JSON body, so the segment comes in base64.
#[test]
fn the_capability_name_is_the_default_route_and_takes_a_segment_in_json() {
    use base64::Engine as _;
    let harness = Harness::<TsAnalyzer>::new();
    let analyse = |route: &str, content_type: &str, body: Vec<u8>| {
        let response = harness.process(Request::new(route, content_type, body))?;
        let Body::Bytes(body) = response.body else {
            panic!("expected a JSON body");
        };
        Ok::<Value, Error>(serde_json::from_slice(&body).unwrap())
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(HEVC_OPUS);
    let sdk = serde_json::json!({"ts_base64": encoded}).to_string().into_bytes();
    let from_json = analyse("/ts-analyzer", "application/json", sdk).unwrap();
    assert_eq!(from_json["report"]["keyframes"], 2);
    assert_eq!(from_json["report"]["bytes"], HEVC_OPUS.len());
    assert_eq!(from_json["streams"][0]["codec"], "hevc");

    // The same answer as the raw file on the default route, on /analyze and on /ts-analyzer/analyze.
    for route in ["/ts-analyzer", "/analyze", "/ts-analyzer/analyze", "/"] {
        assert_eq!(analyse(route, "video/mp2t", HEVC_OPUS.to_vec()).unwrap(), from_json, "{route}");
    }

    // A JSON body without the segment, or with bad base64, is the client's mistake (400).
    for bad in [r#"{"prompt": "x"}"#, r#"{"ts_base64": "not base64!"}"#, "[]"] {
        match harness.process(Request::new("/ts-analyzer", "application/json", bad.as_bytes().to_vec())) {
            Err(e @ Error::InvalidInput(_)) => assert!(e.to_string().contains("ts_base64"), "{e}"),
            other => panic!("{bad}: expected invalid input, got {other:?}"),
        }
    }
    assert!(matches!(
        harness.process(Request::new("/ts-analyzers", "video/mp2t", HEVC_OPUS.to_vec())),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn describe_passes_host_validation() {
    let info = Harness::<TsAnalyzer>::new().describe().unwrap();
    assert_eq!(info.name, "ts-analyzer");
}
