//! `byoc plugin watch [DIR] [--install PLUGINS]`: `byoc plugin build --install` now, and again
//! whenever the crate's sources change (polled: modification times and sizes of `src/`,
//! `Cargo.toml`, `manifest.toml` and `build.rs`). A failed build is reported and the installed
//! version stays; a node serving `PLUGINS` hot-reloads every successful install.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use byoc_runtime::RuntimeConfig;

use super::build::{self, BuildArgs};
use crate::orchestrator::DEFAULT_PLUGINS;

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The plugin crate [default: the current directory].
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The plugin directory to install into.
    #[arg(long, default_value = DEFAULT_PLUGINS)]
    install: PathBuf,
    /// How often the sources are checked, in milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
}

pub async fn run(config: RuntimeConfig, args: WatchArgs) -> anyhow::Result<()> {
    let period = Duration::from_millis(args.interval_ms.max(50));
    let mut built: Option<Vec<Stamp>> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let now = sources(&args.dir);
        if built.as_ref() != Some(&now) {
            built = Some(now);
            let build = BuildArgs::new(args.dir.clone(), Some(args.install.clone()));
            match build::run(config.clone(), build).await {
                Ok(_) => eprintln!("watching {} for changes (Ctrl-C stops)", args.dir.display()),
                Err(e) => eprintln!("build failed: {e:#}\nwatching {} for changes (Ctrl-C stops)", args.dir.display()),
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(period) => {}
        }
    }
}

/// One source file's path, modification time and size.
type Stamp = (PathBuf, Option<SystemTime>, u64);

/// The crate's sources as they are now, sorted by path.
fn sources(dir: &Path) -> Vec<Stamp> {
    let mut files = Vec::new();
    for name in ["Cargo.toml", "manifest.toml", "build.rs"] {
        files.push(dir.join(name));
    }
    collect(&dir.join("src"), &mut files, 0);
    let mut stamps: Vec<Stamp> = files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, meta.modified().ok(), meta.len()))
        })
        .collect();
    stamps.sort();
    stamps
}

/// The files under `dir`, a bounded number of levels deep.
fn collect(dir: &Path, files: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if depth < 16 {
                collect(&path, files, depth + 1);
            }
        } else {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_the_sources_changes_the_stamps_and_target_does_not() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::create_dir_all(dir.join("src/effects")).unwrap();
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.join("src/lib.rs"), "// one").unwrap();
        std::fs::write(dir.join("src/effects/blur.rs"), "// blur").unwrap();
        let before = sources(dir);
        assert_eq!(before.len(), 3);
        std::fs::write(dir.join("target/out.wasm"), "built").unwrap();
        assert_eq!(sources(dir), before, "build output is not a source");
        std::fs::write(dir.join("src/effects/blur.rs"), "// blur, longer").unwrap();
        assert_ne!(sources(dir), before);
    }
}
