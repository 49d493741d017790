//! `cargo xtask plugins`: build every plugin for `wasm32-wasip2` and lay them out as one
//! loadable plugin directory; and the plugins' checks (format, lints for both targets, tests).
//!
//! Layout produced by [`build`], read by `byoc plugin inspect`, `byoc orchestrator` and
//! `byoc dev` when no plugin path is given:
//!
//! ```text
//! target/plugins/
//!   passthrough/passthrough.wasm    the component (named after the plugin, not the crate)
//!   passthrough/manifest.toml       copied from plugins/passthrough/manifest.toml
//!   ts-analyzer/ts-analyzer.wasm
//!   …
//! ```
//!
//! A plugin is a directory `plugins/<name>/` holding `manifest.toml` (grants, limits, failure
//! policy) and a cargo crate whose library compiles to `<lib_name>.wasm`; `<name>` is the name
//! its `describe()` returns, which the runtime checks when it loads the plugin.
//!
//! The plugins are their own cargo workspace (`plugins/Cargo.toml`, kept out of the root
//! workspace so that root builds never need the wasm target). Their build output stays in
//! their own target directory, `plugins/target/`, passed explicitly as `--target-dir` so that
//! a `CARGO_TARGET_DIR` in the environment cannot move it; it never mixes with the host's
//! `target/`, whose only plugin content is the laid-out `target/plugins/`.
//!
//! Files in `target/plugins/` are replaced by an atomic rename, so a node watching the
//! directory for hot reload never reads a half-written component.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The compilation target of plugins: wasm with WASI 0.2, which makes components directly.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A plugin found under `plugins/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plugin {
    /// Directory and manifest name, e.g. `ts-analyzer`.
    name: String,
    /// The crate's library name, e.g. `ts_analyzer` (the `.wasm` file cargo writes).
    lib_name: String,
    /// `plugins/<name>/manifest.toml`.
    manifest: PathBuf,
}

/// Builds all plugins in release mode for [`WASM_TARGET`] and lays them out in
/// `root/target/plugins/<name>/`. Returns that directory.
pub fn build(root: &Path) -> Result<PathBuf> {
    let plugins_dir = root.join("plugins");
    let plugins = discover(&plugins_dir)?;
    ensure!(!plugins.is_empty(), "no plugin found: no {}/*/manifest.toml", plugins_dir.display());
    ensure_wasm_target()?;

    let target_dir = plugins_dir.join("target");
    println!(
        "building {} plugin(s) for {WASM_TARGET}: {}",
        plugins.len(),
        plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    run(cargo()
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir))?;

    let built = target_dir.join(WASM_TARGET).join("release");
    let out = root.join("target").join("plugins");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for plugin in &plugins {
        let dir = out.join(&plugin.name);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let wasm = built.join(format!("{}.wasm", plugin.lib_name));
        ensure!(wasm.is_file(), "cargo built no {} for plugin {}", wasm.display(), plugin.name);
        install(&wasm, &dir.join(format!("{}.wasm", plugin.name)))?;
        install(&plugin.manifest, &dir.join("manifest.toml"))?;
    }
    remove_stale(&out, &plugins)?;
    println!("plugins ready in {}", out.display());
    Ok(out)
}

/// Builds the deliberately hostile test components (`tests/hostile/`, their own workspace) for
/// [`WASM_TARGET`] and lays them out for `byoc-runtime`'s tests:
///
/// ```text
/// target/hostile-plugins/
///   hostile/hostile.wasm      loadable plugin directory (with manifest.toml)
///   hostile/manifest.toml
///   hostile-v2.wasm           the same plugin at version 0.2.0 (`v2` feature), for hot reload
///   wrong-world.wasm          a component of another world
///   future-wit.wasm           a component built against byoc:capability@0.3.0 (served: 0.1, 0.2)
///   slow-frames/              a frame plugin sleeping on every frame (with manifest.toml), for
///                             the gateway's frame-drop test
///   audio-gain/               an audio frame plugin scaling the samples (with manifest.toml),
///                             for the tests of audio frames through wasm
/// ```
///
/// Build output goes to `target/hostile-build/`. `byoc-runtime`'s tests run the same build
/// themselves when the directory is incomplete.
pub fn build_hostile(root: &Path) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let manifest = root.join("tests").join("hostile").join("Cargo.toml");
    let target_dir = root.join("target").join("hostile-build");
    let built = target_dir.join(WASM_TARGET).join("release");
    let out = root.join("target").join("hostile-plugins");
    let dir = out.join("hostile");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let build = |extra: &[&str]| {
        run(cargo()
            .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .args(extra))
    };
    build(&[])?;
    install(&built.join("hostile.wasm"), &dir.join("hostile.wasm"))?;
    install(&built.join("wrong_world.wasm"), &out.join("wrong-world.wasm"))?;
    install(&built.join("future_wit.wasm"), &out.join("future-wit.wasm"))?;
    install(&root.join("tests").join("hostile").join("hostile").join("manifest.toml"), &dir.join("manifest.toml"))?;
    for name in ["slow-frames", "audio-gain"] {
        let dir = out.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        install(&built.join(format!("{}.wasm", name.replace('-', "_"))), &dir.join(format!("{name}.wasm")))?;
        install(&root.join("tests").join("hostile").join(name).join("manifest.toml"), &dir.join("manifest.toml"))?;
    }
    build(&["-p", "hostile", "--features", "v2"])?;
    install(&built.join("hostile.wasm"), &out.join("hostile-v2.wasm"))?;
    Ok(out)
}

/// Checks the plugins' workspace: `cargo fmt --check`, `cargo clippy --all-targets` natively
/// and `cargo clippy` for [`WASM_TARGET`] (both with `-D warnings`; the latter also for the
/// SDK, whose wasm-only glue nothing else lints), then `cargo test` natively (the SDK's
/// harness runs the plugins without wasm).
pub fn test(root: &Path) -> Result<()> {
    let plugins_dir = root.join("plugins");
    let manifest = plugins_dir.join("Cargo.toml");
    let target_dir = plugins_dir.join("target");
    ensure_wasm_target()?;

    println!("checking formatting of plugins/");
    // `cargo fmt` cannot take a virtual manifest's path, so run it inside the workspace.
    run(cargo().args(["fmt", "--check"]).current_dir(&plugins_dir))?;

    println!("linting plugins/ (native, all targets)");
    run(cargo()
        .args(["clippy", "--all-targets", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--", "-D", "warnings"]))?;

    println!("linting plugins/ ({WASM_TARGET})");
    run(cargo()
        .args(["clippy", "--target", WASM_TARGET, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--", "-D", "warnings"]))?;

    // The SDK's component glue compiles only for wasm, and as a path dependency of the
    // plugins it is not linted above; lint it here so it cannot rot unnoticed.
    println!("linting the SDK's wasm glue ({WASM_TARGET})");
    run(cargo()
        .args(["clippy", "-p", "byoc-sdk", "--target", WASM_TARGET, "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .args(["--", "-D", "warnings"]))?;

    println!("testing plugins/ (native, through the SDK harness)");
    run(cargo().args(["test", "--manifest-path"]).arg(&manifest).arg("--target-dir").arg(&target_dir))?;
    Ok(())
}

/// The cargo that runs us (so the same toolchain builds the plugins), or `cargo`.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a command to completion, echoing it, and fails on a non-zero exit.
fn run(command: &mut Command) -> Result<()> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command.get_args().map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
    );
    println!("$ {shown}");
    let status = command.status().with_context(|| format!("starting `{shown}`"))?;
    ensure!(status.success(), "`{shown}` failed with {status}");
    Ok(())
}

/// Makes sure rustup has the wasm target, adding it if missing.
fn ensure_wasm_target() -> Result<()> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed` (plugins need rustup to add the wasm32-wasip2 target)")?;
    ensure!(
        output.status.success(),
        "`rustup target list --installed` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    println!("the {WASM_TARGET} target is missing; adding it");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Finds `plugins/*/manifest.toml`, sorted by name, and checks each against its crate.
fn discover(plugins_dir: &Path) -> Result<Vec<Plugin>> {
    let entries = fs::read_dir(plugins_dir).with_context(|| format!("listing {}", plugins_dir.display()))?;
    let mut plugins = Vec::new();
    for entry in entries {
        let dir = entry?.path();
        let manifest = dir.join("manifest.toml");
        if !manifest.is_file() {
            continue;
        }
        let dir_name = dir
            .file_name()
            .and_then(OsStr::to_str)
            .with_context(|| format!("plugin directory {} is not UTF-8", dir.display()))?
            .to_owned();
        // The plugin's name is its describe()'s, which is its directory's here; a manifest of the
        // old form may still name it, and then must agree.
        let manifest_text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
        if let Some(name) = toml_string(&manifest_text, None, "name")
            && name != dir_name
        {
            bail!(
                "{} names the plugin {name:?}, but its directory is {dir_name:?}; they must match",
                manifest.display()
            );
        }
        let name = dir_name;
        let cargo_toml = dir.join("Cargo.toml");
        let cargo_text =
            fs::read_to_string(&cargo_toml).with_context(|| format!("reading {}", cargo_toml.display()))?;
        let lib_name = toml_string(&cargo_text, Some("lib"), "name")
            .or_else(|| toml_string(&cargo_text, Some("package"), "name"))
            .with_context(|| format!("{} has no package name", cargo_toml.display()))?
            .replace('-', "_");
        plugins.push(Plugin { name, lib_name, manifest });
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plugins)
}

/// Copies `from` to `to` through a temporary file and a rename, so readers of `to` see the
/// old or the new file, never a partial one.
fn install(from: &Path, to: &Path) -> Result<()> {
    let mut temporary = to.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs::copy(from, &temporary).with_context(|| format!("copying {} to {}", from.display(), temporary.display()))?;
    fs::rename(&temporary, to).with_context(|| format!("moving {} to {}", temporary.display(), to.display()))?;
    println!("  {} -> {}", from.display(), to.display());
    Ok(())
}

/// Removes plugin directories (those holding a `manifest.toml`) that no longer correspond to
/// a plugin, so a deleted or renamed plugin does not linger in the loadable directory.
fn remove_stale(out: &Path, plugins: &[Plugin]) -> Result<()> {
    for entry in fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let dir = entry?.path();
        let known = dir.file_name().and_then(OsStr::to_str).is_some_and(|name| plugins.iter().any(|p| p.name == name));
        if !known && dir.join("manifest.toml").is_file() {
            println!("  removing stale {}", dir.display());
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    Ok(())
}

/// The value of `key = "value"` in `table` (`None`: before any table header) of a TOML
/// document. Handles the plain form our manifests and Cargo.toml files use (one key per line,
/// basic strings without escapes), which keeps xtask free of a TOML parser.
fn toml_string(text: &str, table: Option<&str>, key: &str) -> Option<String> {
    let mut current: Option<&str> = None;
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            current = Some(header.split(']').next().unwrap_or_default().trim());
            continue;
        }
        if current != table {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let value = v.trim().strip_prefix('"')?;
        return value.split_once('"').map(|(s, _)| s.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_string_reads_top_level_and_table_keys() {
        let text = "name = \"top\" # comment\n[package]\nname = \"pkg-name\"\nversion.workspace = true\n[lib]\nname=\"lib_x\"\n";
        assert_eq!(toml_string(text, None, "name").as_deref(), Some("top"));
        assert_eq!(toml_string(text, Some("package"), "name").as_deref(), Some("pkg-name"));
        assert_eq!(toml_string(text, Some("lib"), "name").as_deref(), Some("lib_x"));
        assert_eq!(toml_string(text, Some("dependencies"), "name"), None);
        assert_eq!(toml_string("[a]\nname = 3", Some("a"), "name"), None);
    }

    #[test]
    fn discover_matches_manifests_to_crates_and_rejects_mismatches() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-plugins-{}", std::process::id()));
        let plugin = dir.join("my-plugin");
        fs::create_dir_all(&plugin)?;
        fs::create_dir_all(dir.join("not-a-plugin"))?;
        fs::write(plugin.join("manifest.toml"), "[limits]\n")?;
        fs::write(plugin.join("Cargo.toml"), "[package]\nname = \"my-plugin\"\n")?;
        let found = discover(&dir)?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "my-plugin");
        assert_eq!(found[0].lib_name, "my_plugin");

        fs::write(plugin.join("manifest.toml"), "name = \"other\"\n")?;
        let mismatch = discover(&dir);
        fs::remove_dir_all(&dir)?;
        assert!(mismatch.is_err());
        Ok(())
    }
}
