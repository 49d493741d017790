//! What tests of the nodes share: the repository root, the bundled plugins (built on demand) and
//! `Livepeer` job headers.

use std::path::{Path, PathBuf};

use byoc_payment::job::JobRequest;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundled plugins.
const BUNDLED: [&str; 6] =
    ["passthrough", "ts-analyzer", "text-transform", "http-adapter", "video-effects", "motion-detector"];

/// `target/plugins`, built with `cargo xtask plugins` (once per test process) if a bundled plugin
/// is missing or older than the sources it is built from (the plugins, the SDK, the WIT package and
/// the MPEG-TS crate the SDK uses): a stale component would fail tests for reasons the tree no
/// longer has.
pub fn plugins_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = root().join("target/plugins");
    BUILT.get_or_init(|| {
        let built = BUNDLED.iter().map(|p| modified(&dir.join(p).join(format!("{p}.wasm")))).min().flatten();
        let sources = ["plugins", "sdk", "wit", "host/ts"].iter().filter_map(|d| newest(&root().join(d))).max();
        if built.is_none() || sources.is_some_and(|s| Some(s) > built) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(cargo)
                .current_dir(root())
                .args(["run", "-q", "-p", "xtask", "--", "plugins"])
                .status()
                .expect("running cargo xtask plugins");
            assert!(status.success(), "cargo xtask plugins failed");
        }
    });
    dir
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files below `dir`, build output (`target`) aside.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != "target" {
                    pending.push(path);
                }
            } else {
                newest = newest.max(modified(&path));
            }
        }
    }
    newest
}

/// An unsigned `Livepeer` job header for `capability` with these `parameters` (the gateway signs
/// what it forwards).
pub fn job_header(capability: &str, parameters: &serde_json::Value) -> String {
    JobRequest {
        request: "{}".into(),
        parameters: parameters.to_string(),
        capability: capability.into(),
        timeout_seconds: 30,
        ..Default::default()
    }
    .to_header()
}

/// `job` stamped with the current time (`request.issued_at`) and signed by `key`, as a `Livepeer`
/// header: what our gateway sends.
pub fn signed_job(mut job: JobRequest, key: &byoc_payment::SecretKey) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    job.stamp_issued_at(u64::try_from(now).unwrap()).unwrap();
    job.sign(key).unwrap();
    job.to_header()
}
