//! What `byoc plugin build` needs to know of a plugin crate, from `cargo metadata`: where its
//! component is written and where its manifest is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The compilation target of plugins: wasm with WASI 0.2, which makes components directly.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A plugin crate.
#[derive(Debug)]
pub struct CrateInfo {
    /// Its package name.
    pub package: String,
    /// `<target>/wasm32-wasip2/release/<lib_name>.wasm`, where a release build writes the component.
    pub wasm: PathBuf,
    /// `manifest.toml` beside `Cargo.toml`.
    pub manifest: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

impl CrateInfo {
    /// Reads the crate in `dir` (its `Cargo.toml` may belong to a workspace).
    pub fn read(dir: &Path) -> anyhow::Result<CrateInfo> {
        let cargo_toml = dir.join("Cargo.toml");
        if !cargo_toml.is_file() {
            bail!("{}: no Cargo.toml; `byoc plugin new NAME` writes a plugin crate", dir.display());
        }
        let manifest = dir.join("manifest.toml");
        if !manifest.is_file() {
            bail!(
                "{}: no manifest.toml beside Cargo.toml (the plugin's grants, limits and failure policy)",
                dir.display()
            );
        }
        let output = cargo()
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
            .arg(&cargo_toml)
            .output()
            .context("running `cargo metadata` (is cargo installed?)")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` on {} failed: {}",
                cargo_toml.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let metadata: Metadata = serde_json::from_slice(&output.stdout).context("reading `cargo metadata`'s answer")?;
        let wanted =
            std::fs::canonicalize(&cargo_toml).with_context(|| format!("resolving {}", cargo_toml.display()))?;
        let package = metadata
            .packages
            .into_iter()
            .find(|p| std::fs::canonicalize(&p.manifest_path).is_ok_and(|p| p == wanted))
            .with_context(|| format!("{}: cargo lists no package for it", cargo_toml.display()))?;
        let lib = package.targets.iter().find(|t| t.crate_types.iter().any(|c| c == "cdylib")).with_context(|| {
            format!(
                "{}: the package {} has no cdylib library; a plugin needs `[lib] crate-type = [\"cdylib\", \"rlib\"]`",
                cargo_toml.display(),
                package.name
            )
        })?;
        let wasm = metadata
            .target_directory
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", lib.name.replace('-', "_")));
        Ok(CrateInfo { package: package.name, wasm, manifest })
    }
}

/// The cargo that runs us when cargo does (tests, `cargo run`), so the same toolchain builds
/// the plugin; else `cargo` from the PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
