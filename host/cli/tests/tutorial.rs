//! The plugin tutorial (`plugins/README.md`, also the book's "Tutorial: writing a plugin") run as
//! written, so it cannot rot: its shell blocks become one bash script, in order, run in an empty
//! temporary directory with the `byoc` under test first on the `PATH`; a Rust block introduced by
//! "Replace `FILE`" is written to that file. Two things differ from a reader's run, both for a
//! shared test machine: the block that is only `byoc dev` (a second terminal, in the tutorial)
//! runs in the background on free ports, and the gateway address the later blocks name is the
//! one it announced.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use byoc_e2e::media::tool_available;
use common::wasm_target_available;

/// The address the tutorial's clients use, which `byoc dev` listens on by default.
const TUTORIAL_GATEWAY: &str = "http://127.0.0.1:8937";

/// A fenced block of the tutorial: its language, its text, and the paragraph just before it.
struct Block {
    lang: String,
    text: String,
    intro: String,
}

/// The fenced blocks between the tutorial's heading and the next `##` heading.
fn tutorial_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().skip_while(|l| !l.starts_with("## Tutorial")).skip(1);
    // The paragraph being read, and the last one finished.
    let (mut paragraph, mut last) = (String::new(), String::new());
    while let Some(line) = lines.next() {
        if line.starts_with("## ") {
            break;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let text: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            let intro = if paragraph.is_empty() { std::mem::take(&mut last) } else { std::mem::take(&mut paragraph) };
            blocks.push(Block { lang: lang.trim().to_owned(), text: text.join("\n") + "\n", intro });
            last.clear();
        } else if line.trim().is_empty() {
            if !paragraph.is_empty() {
                last = std::mem::take(&mut paragraph);
            }
        } else {
            paragraph.push_str(line);
            paragraph.push(' ');
        }
    }
    blocks
}

/// The bash script the blocks make.
fn script(blocks: &[Block]) -> String {
    let mut script = String::from("set -e\ntrap 'kill $DEV_PID 2>/dev/null || true' EXIT\nDEV_PID=\n");
    for block in blocks {
        match block.lang.as_str() {
            "sh" if block.text.trim() == "byoc dev" => script.push_str(
                "byoc dev --listen 127.0.0.1:0 --rtmp-listen 127.0.0.1:0 > dev.out 2> dev.err &\nDEV_PID=$!\n\
                 for _ in $(seq 600); do grep -q '^byoc dev: gateway' dev.out 2>/dev/null && break; sleep 0.5; done\n\
                 GATEWAY=$(sed -n 's/^byoc dev: gateway *\\([^ ]*\\).*/\\1/p' dev.out)\n\
                 test -n \"$GATEWAY\" || { cat dev.err; exit 1; }\n",
            ),
            "sh" => script.push_str(&block.text.replace(TUTORIAL_GATEWAY, "$GATEWAY")),
            "rust" => {
                let file = block.intro.split('`').nth(1).filter(|_| block.intro.contains("Replace"));
                let file = file
                    .unwrap_or_else(|| panic!("a Rust block not introduced by \"Replace `FILE`\": {}", block.intro));
                script.push_str(&format!("cat > {file} <<'TUTORIAL_EOF'\n{}TUTORIAL_EOF\n", block.text));
            }
            _ => {}
        }
    }
    script
}

#[test]
fn the_tutorial_splits_into_commands_and_files() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/README.md")).unwrap();
    let blocks = tutorial_blocks(&readme);
    let script = script(&blocks);
    assert!(script.contains("byoc plugin new keyframes"), "{script}");
    assert!(script.contains("cat > src/lib.rs <<'TUTORIAL_EOF'\n//! `keyframes`"), "{script}");
    assert!(script.contains("cat > tests/keyframes.rs"), "{script}");
    assert!(script.contains("byoc plugin build --install"), "{script}");
    assert!(script.contains("DEV_PID=$!") && !script.contains(TUTORIAL_GATEWAY), "{script}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_tutorial_runs_as_written() {
    let test = "the_plugin_tutorial_runs_as_written";
    if !tool_available(test, "ffmpeg") || !wasm_target_available(test) {
        return;
    }
    for tool in ["curl", "jq", "bash"] {
        let runs = std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        if !runs {
            assert!(!byoc_e2e::peers_required(), "{test}: {tool} is required (BYOC_REQUIRE_PEERS=1) but does not run");
            eprintln!("{test}: skipped: {tool} not found");
            return;
        }
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/README.md")).unwrap();
    let script = script(&tutorial_blocks(&readme));
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_byoc")).parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    // Built where the other plugin tests build, so only the first run compiles the dependencies.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new");
    let began = Instant::now();
    let run = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &target)
        .env("BYOC_DEV_STATE", dir.path().join("dev.json"))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(1200), run).await.expect("the tutorial finished").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the tutorial failed ({}):\n{stdout}\n{stderr}\nscript:\n{script}", out.status);
    eprintln!("the tutorial ran in {:.1?}", began.elapsed());
    // The local run (`cat out/events.jsonl`) and the stream through byoc dev (its events, as
    // server-sent events) both counted the keyframes.
    let local = stdout.lines().filter(|l| l.starts_with('{') && l.contains("\"keyframes\":2")).count();
    let streamed = stdout.lines().any(|l| l.starts_with("data:") && l.contains("\"keyframes\":2"));
    assert!(
        local == 2 && streamed,
        "expected keyframe counts from `plugin run` and from the stream:\n{stdout}\n{stderr}"
    );
}
