//! What a node needs from the machine and from its operator, said once at start: a missing tool
//! names the features it turns off; no plugins says how to get them; and in JSON log mode the
//! startup banner is also a log event.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// How to get plugins, for the places that find none.
pub const HOW_TO_GET_PLUGINS: &str = "build the bundled ones with `cargo xtask plugins` (into target/plugins) or \
write one with `byoc plugin new NAME`, then pass --plugins DIR";

static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Notes that logs are JSON lines (`--log-format json`).
pub fn set_json_logs(on: bool) {
    JSON_LOGS.store(on, Ordering::Relaxed);
}

/// Whether logs are JSON lines: then a startup banner printed for people is logged as an event too.
pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// Whether `program -version` runs.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Warns, once, of what the gateway cannot do on this machine. It needs ffmpeg (on `PATH`) for
/// RTMP output (pushes to `rtmp_output` and RTMP play) and for WebRTC viewers' audio when the input's
/// audio is AAC (RTMP or HTTP ingest): without it those are off, and everything else works.
pub fn warn_missing_for_gateway() {
    if !runs("ffmpeg") {
        tracing::warn!(
            missing = "ffmpeg",
            "ffmpeg not found on PATH: RTMP output (rtmp_output pushes, RTMP play) and audio for WebRTC viewers \
             of AAC input are off; install ffmpeg to turn them on"
        );
    }
}
