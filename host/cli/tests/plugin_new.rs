//! A plugin author's path, outside the repository and without reading its sources: `byoc plugin
//! new` in a temporary directory, `byoc plugin build --install` into the plugin directory of a
//! running `byoc dev`, `byoc plugin reload` (which finds `byoc dev` through its state file), a
//! stream through the gateway and its output; then a new version replaces the installed one
//! while the node runs. And the crates `byoc plugin new` writes pass their own tests.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use byoc_e2e::media::{make_ts_segments, tool_available};
use common::{Node, byoc_with_env, legs, round_trip, started, wasm_target_available};
use serde_json::{Value, json};

/// Where the generated crates are built: kept between runs (in cargo's target directory), so
/// only the first run compiles their dependencies.
fn plugin_target_dir() -> String {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new").to_string_lossy().into_owned()
}

/// `byoc ARGS`, bounded, with the generated crates' target directory; panics with its output
/// when it fails. Returns its stdout.
async fn byoc_ok(args: &[&str]) -> String {
    let target = plugin_target_dir();
    let (ok, stdout, stderr) =
        byoc_with_env(args, &[("CARGO_TARGET_DIR", target.as_str())], Duration::from_secs(900)).await;
    assert!(ok, "byoc {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_is_built_installed_and_streamed_through_byoc_dev() {
    let test = "a_new_plugin_is_built_installed_and_streamed_through_byoc_dev";
    if !tool_available(test, "ffmpeg") || !wasm_target_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let state = root.join("dev.json");
    let (plugins_arg, state_arg) = (plugins.to_str().unwrap(), state.to_str().unwrap());
    let dev = Node::start(
        &[
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
            "--plugins",
            plugins_arg,
            "--state-file",
            state_arg,
        ],
        "byoc dev: gateway",
    )
    .await;
    let segments = make_ts_segments(root, 2).await.unwrap();
    let segment = std::fs::read(&segments[0]).unwrap();

    let began = Instant::now();
    let created = byoc_ok(&["plugin", "new", "probe", "--dir", root.to_str().unwrap()]).await;
    assert!(created.contains("created probe"), "{created}");
    let crate_dir = root.join("probe");
    let crate_arg = crate_dir.to_str().unwrap();
    let installed = byoc_ok(&["plugin", "build", crate_arg, "--install", plugins_arg]).await;
    assert!(installed.contains("installed probe 0.1.0"), "{installed}");
    let built = began.elapsed();
    let files: Vec<String> =
        std::fs::read_dir(&plugins).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, ["probe"], "one plugin directory, no staging left behind");
    assert!(plugins.join("probe/probe.wasm").is_file() && plugins.join("probe/manifest.toml").is_file());

    // `byoc plugin reload` finds the node through the state file and loads the new plugin now.
    let reloaded: Value =
        serde_json::from_str(&byoc_ok(&["plugin", "reload", "probe", "--state-file", state_arg]).await)
            .expect("reload answers JSON");
    assert_eq!(reloaded, json!([{"name": "probe", "ok": true, "version": "0.1.0"}]));

    let urls = started(&dev.url, "probe", legs(json!({})), "probe-1").await;
    let out = round_trip(&urls, &segment, Duration::from_secs(30)).await.expect("output segment");
    let first_output = began.elapsed();
    assert_eq!(out, segment, "the stream template passes video through unchanged");
    eprintln!(
        "plugin new → first output: {first_output:.1?} (new + build + install: {built:.1?}; compile cache in {})",
        plugin_target_dir()
    );

    // A new version, installed while the node runs: reload reports it, new streams get it.
    let cargo_toml = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml).unwrap();
    std::fs::write(&cargo_toml, text.replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1)).unwrap();
    let installed = byoc_ok(&["plugin", "build", crate_arg, "--install", plugins_arg]).await;
    assert!(installed.contains("installed probe 0.2.0"), "{installed}");
    let reloaded: Value = serde_json::from_str(&byoc_ok(&["plugin", "reload", "--state-file", state_arg]).await)
        .expect("reload answers JSON");
    assert!(
        reloaded.as_array().unwrap().contains(&json!({"name": "probe", "ok": true, "version": "0.2.0"})),
        "{reloaded}"
    );
    let urls = started(&dev.url, "probe", legs(json!({})), "probe-2").await;
    let out = round_trip(&urls, &segment, Duration::from_secs(30)).await.expect("output segment from 0.2.0");
    assert_eq!(out, segment);

    // `byoc plugin run` finds the installed plugin by name, and `inspect` describes the crate.
    let output = root.join("out");
    byoc_ok(&[
        "plugin",
        "run",
        "probe",
        "--plugins",
        plugins_arg,
        "--input",
        segments[1].to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
    .await;
    assert_eq!(std::fs::read(output.join("0.ts")).unwrap(), std::fs::read(&segments[1]).unwrap());
    let events = std::fs::read_to_string(output.join("events.jsonl")).unwrap();
    assert!(events.contains("\"type\":\"segment\""), "{events}");
    let inspected: Value = serde_json::from_str(&byoc_ok(&["plugin", "inspect", crate_arg]).await).unwrap();
    assert_eq!((inspected["name"].as_str(), inspected["version"].as_str()), (Some("probe"), Some("0.2.0")));
    assert_eq!(inspected["wit"], "0.2");
}

/// Every kind of crate `byoc plugin new` writes passes `cargo test` and `cargo clippy` as written
/// (the byte-level one with its ffmpeg-made fixture, when ffmpeg is installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_plugins_of_every_kind_pass_their_own_tests() {
    let test = "new_plugins_of_every_kind_pass_their_own_tests";
    if !wasm_target_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for kind in ["stream", "frames", "batch"] {
        let name = format!("new-{kind}");
        byoc_ok(&["plugin", "new", &name, "--kind", kind, "--dir", dir.path().to_str().unwrap()]).await;
        let crate_dir = dir.path().join(&name);
        for args in [&["test"][..], &["clippy", "--all-targets", "--", "-D", "warnings"]] {
            let out = tokio::process::Command::new(&cargo)
                .args(args)
                .current_dir(&crate_dir)
                .env("CARGO_TARGET_DIR", plugin_target_dir())
                .output()
                .await
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "cargo {args:?} in the new {kind} plugin failed:\n{text}");
            if kind == "stream" && args == ["test"] {
                assert!(text.contains("test result: ok. 3 passed"), "{text}");
            }
        }
        byoc_ok(&["plugin", "build", crate_dir.to_str().unwrap()]).await;
    }
}

/// `byoc plugin watch` installs the crate at once, and again when its sources change: a version
/// bump in `Cargo.toml` reaches the plugin directory without another command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_plugin_is_reinstalled_when_its_sources_change() {
    let test = "a_watched_plugin_is_reinstalled_when_its_sources_change";
    if !wasm_target_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    byoc_ok(&["plugin", "new", "watched", "--kind", "batch", "--dir", dir.path().to_str().unwrap()]).await;
    let crate_dir = dir.path().join("watched");
    let _watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_byoc"))
        .args(["plugin", "watch"])
        .arg(&crate_dir)
        .arg("--install")
        .arg(&plugins)
        .args(["--interval-ms", "200"])
        .env("CARGO_TARGET_DIR", plugin_target_dir())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let installed = plugins.join("watched");
    let version = || async {
        let (ok, stdout, _) = byoc_with_env(
            &["plugin", "inspect", installed.to_str().unwrap()],
            &[("RUST_LOG", "warn")],
            Duration::from_secs(120),
        )
        .await;
        ok.then(|| serde_json::from_str::<Value>(&stdout).ok())
            .flatten()
            .and_then(|v| v["version"].as_str().map(str::to_owned))
    };
    let wait_for = |wanted: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(900);
        while Instant::now() < deadline {
            if version().await.as_deref() == Some(wanted) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the watched plugin did not reach version {wanted}");
    };
    wait_for("0.1.0").await;
    let cargo_toml = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml).unwrap();
    std::fs::write(&cargo_toml, text.replacen("version = \"0.1.0\"", "version = \"0.3.0\"", 1)).unwrap();
    wait_for("0.3.0").await;
}
