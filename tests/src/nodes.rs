//! What tests of the nodes share: the repository root, the bundled plugins (built on demand) and
//! `Livepeer` job headers.

use std::path::{Path, PathBuf};

use byoc_payment::job::JobRequest;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/plugins`, built with `cargo xtask plugins` if a bundled plugin is missing.
pub fn plugins_dir() -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = root().join("target/plugins");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !["passthrough", "ts-analyzer", "text-transform"].iter().all(|p| dir.join(p).join(format!("{p}.wasm")).is_file())
    {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(root())
            .args(["run", "-q", "-p", "xtask", "--", "plugins"])
            .status()
            .expect("running cargo xtask plugins");
        assert!(status.success(), "cargo xtask plugins failed");
    }
    dir
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
