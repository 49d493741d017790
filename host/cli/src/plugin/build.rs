//! `byoc plugin build [DIR] [--install [PLUGINS]]`: compile a plugin crate for `wasm32-wasip2`,
//! check the component by loading it as a node would, and install it.
//!
//! The check is the runtime's own load: the component must target the `capability-adapter`
//! world of a `byoc:capability` version the runtime serves, its imports must link, its manifest
//! must parse, and `describe()` must answer with a valid name. The plugin's identity is what
//! `describe()` returns; a manifest of the old form that still names a version or description
//! differing from it is refused here, before it reaches a node.
//!
//! Installing lays out `PLUGINS/<name>/{<name>.wasm,manifest.toml}` without a node ever seeing
//! a half-written plugin: the files are written into a hidden directory inside `PLUGINS`
//! (`.<name>.staging-<pid>`; the runtime skips hidden entries), loaded from there, and the
//! directory is then renamed into place, or swapped with the installed one in one step
//! (`renameat2` with `RENAME_EXCHANGE` on Linux; elsewhere the old directory is moved aside
//! first, so for a moment the plugin is absent and a node keeps serving its old code).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use byoc_runtime::{Plugin, Runtime, RuntimeConfig};

use super::crate_info::{CrateInfo, WASM_TARGET, cargo};
use crate::orchestrator::DEFAULT_PLUGINS;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The plugin crate [default: the current directory].
    dir: Option<PathBuf>,
    /// Install into this plugin directory as `<name>/{<name>.wasm,manifest.toml}` (replacing an
    /// installed version atomically); without a value, `target/plugins`, the directory `byoc
    /// dev` serves when started in the same directory.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_PLUGINS)]
    install: Option<PathBuf>,
}

impl BuildArgs {
    pub fn new(dir: PathBuf, install: Option<PathBuf>) -> Self {
        Self { dir: Some(dir), install }
    }
}

pub async fn run(config: RuntimeConfig, args: BuildArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    // cargo runs for a while: off the async threads.
    let info = tokio::task::spawn_blocking(move || -> anyhow::Result<CrateInfo> {
        let info = CrateInfo::read(&dir)?;
        ensure_wasm_target()?;
        let mut command = cargo();
        command.args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"]).arg(dir.join("Cargo.toml"));
        run_command(&mut command)?;
        Ok(info)
    })
    .await
    .context("the build task")??;
    ensure!(
        info.wasm.is_file(),
        "cargo built no {} for {}; is the crate's library a cdylib?",
        info.wasm.display(),
        info.package
    );

    let runtime = Runtime::new(config)?;
    let staging_parent = match &args.install {
        Some(plugins) => {
            std::fs::create_dir_all(plugins).with_context(|| format!("creating {}", plugins.display()))?;
            plugins.clone()
        }
        None => std::env::temp_dir(),
    };
    let staged = Staged::new(&info, &staging_parent)?;
    let plugin = runtime
        .load_plugin(staged.dir())
        .await
        .with_context(|| format!("checking {} with {}", info.wasm.display(), info.manifest.display()))?;
    check_identity(&plugin, &info.manifest)?;
    let size = std::fs::metadata(&info.wasm).map(|m| m.len()).unwrap_or_default();
    eprintln!(
        "built {} {} (byoc:capability {}, world capability-adapter, {} KiB): {}",
        plugin.name(),
        plugin.describe().version,
        plugin.wit_version(),
        size.div_ceil(1024),
        info.wasm.display()
    );
    if let Some(plugins) = &args.install {
        let target = staged.install(plugins, plugin.name())?;
        println!("installed {} {} in {}", plugin.name(), plugin.describe().version, target.display());
    }
    Ok(())
}

/// Refuses a manifest whose legacy identity fields disagree with `describe()` (the runtime
/// ignores `version` and `description`, so a stale one would only mislead its reader).
fn check_identity(plugin: &Plugin, manifest_path: &Path) -> anyhow::Result<()> {
    let manifest = plugin.manifest();
    let info = plugin.describe();
    let fields = [
        ("name", manifest.name.as_deref(), info.name.as_str()),
        ("version", manifest.version.as_deref(), info.version.as_str()),
        ("description", manifest.description.as_deref(), info.description.as_str()),
    ];
    for (field, written, described) in fields {
        match written {
            Some(written) if written != described => bail!(
                "{}: `{field} = {written:?}` differs from describe()'s {described:?}; the plugin's name, \
                 version and description come from describe() only: remove `{field}` from the manifest",
                manifest_path.display()
            ),
            Some(_) => eprintln!(
                "warning: {}: `{field}` is not needed (describe() gives it); it may be removed",
                manifest_path.display()
            ),
            None => {}
        }
    }
    Ok(())
}

/// A plugin directory assembled in a hidden directory: the component and its manifest.
/// Removed when dropped unless installed.
pub struct Staged {
    dir: PathBuf,
    wasm: PathBuf,
}

impl Staged {
    /// Copies the crate's built component and manifest into `.<package>.staging-<pid>` in
    /// `parent` (hidden: a node watching `parent` ignores it).
    pub fn new(info: &CrateInfo, parent: &Path) -> anyhow::Result<Staged> {
        ensure!(
            info.wasm.is_file(),
            "{} does not exist; build the plugin first (`byoc plugin build`)",
            info.wasm.display()
        );
        let dir = parent.join(format!(".{}.staging-{}", info.package, std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let staged = Staged { wasm: dir.join(format!("{}.wasm", info.package)), dir };
        copy(&info.wasm, &staged.wasm)?;
        copy(&info.manifest, &staged.dir.join("manifest.toml"))?;
        Ok(staged)
    }

    /// The staged plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the staged plugin to `plugins/<name>/` in one step (see the module's doc) and
    /// returns that directory. `plugins` must be the directory the plugin was staged in.
    pub fn install(self, plugins: &Path, name: &str) -> anyhow::Result<PathBuf> {
        byoc_runtime::valid_name(name).map_err(anyhow::Error::msg)?;
        let wasm = self.dir.join(format!("{name}.wasm"));
        if wasm != self.wasm {
            std::fs::rename(&self.wasm, &wasm).with_context(|| format!("renaming {}", self.wasm.display()))?;
        }
        let target = plugins.join(name);
        if target.exists() {
            replace_dir(&self.dir, &target)?;
            // `self.dir` now holds the old version (or nothing): dropping removes it.
        } else {
            std::fs::rename(&self.dir, &target)
                .with_context(|| format!("moving {} to {}", self.dir.display(), target.display()))?;
        }
        Ok(target)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Puts the directory `new` at `target`, where another directory is; `new` then holds the old
/// one (or is gone).
fn replace_dir(new: &Path, target: &Path) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, new, CWD, target, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            // Not every file system can exchange: fall back to moving the old one aside.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("swapping {} with {}", new.display(), target.display()));
            }
        }
    }
    let mut aside = new.as_os_str().to_owned();
    aside.push(".old");
    let aside = PathBuf::from(aside);
    std::fs::rename(target, &aside).with_context(|| format!("moving {} aside", target.display()))?;
    std::fs::rename(new, target).with_context(|| format!("moving {} to {}", new.display(), target.display()))?;
    std::fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Runs a command to completion, its output going to ours, and fails on a non-zero exit.
fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    eprintln!("$ {shown}");
    // Our stdout says what was installed; the tools' output goes to stderr.
    let status = command.stdout(std::io::stderr()).status().with_context(|| format!("starting `{shown}`"))?;
    ensure!(status.success(), "`{shown}` failed with {status}");
    Ok(())
}

/// Makes sure rustup has the wasm target, adding it if missing. Without rustup (a toolchain
/// from elsewhere) nothing is checked: cargo says what is missing.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let Ok(output) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(());
    };
    if !output.status.success() {
        return Ok(());
    }
    if String::from_utf8_lossy(&output.stdout).lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("the {WASM_TARGET} target is missing; adding it");
    run_command(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_with(dir: &Path, wasm: &[u8], manifest: &str) -> CrateInfo {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("built.wasm"), wasm).unwrap();
        std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
        CrateInfo { package: "my-plugin".into(), wasm: dir.join("built.wasm"), manifest: dir.join("manifest.toml") }
    }

    #[test]
    fn staging_is_hidden_and_install_replaces_the_whole_directory() {
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();

        let v1 = crate_with(&root.path().join("v1"), b"one", "[limits]\n# v1\n");
        let staged = Staged::new(&v1, &plugins).unwrap();
        assert!(staged.dir().file_name().unwrap().to_string_lossy().starts_with('.'));
        assert!(byoc_runtime::plugin_dirs(&plugins).unwrap().is_empty(), "a node does not see a staged plugin");
        let target = staged.install(&plugins, "my-plugin").unwrap();
        assert_eq!(target, plugins.join("my-plugin"));
        assert_eq!(std::fs::read(target.join("my-plugin.wasm")).unwrap(), b"one");

        // An installed file a node has open keeps its content: the directory is swapped, not
        // rewritten in place.
        let old_wasm = std::fs::File::open(target.join("my-plugin.wasm")).unwrap();
        let v2 = crate_with(&root.path().join("v2"), b"two", "[limits]\n# v2\n");
        Staged::new(&v2, &plugins).unwrap().install(&plugins, "my-plugin").unwrap();
        assert_eq!(std::fs::read(target.join("my-plugin.wasm")).unwrap(), b"two");
        assert!(std::fs::read_to_string(target.join("manifest.toml")).unwrap().contains("v2"));
        let mut before = String::new();
        std::io::Read::read_to_string(&mut &old_wasm, &mut before).unwrap();
        assert_eq!(before, "one");

        // Nothing is left behind: only the installed plugin.
        let names: Vec<String> = std::fs::read_dir(&plugins)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["my-plugin"]);
        let files: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
    }

    #[test]
    fn a_staged_plugin_not_installed_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let info = crate_with(&root.path().join("c"), b"x", "[limits]\n");
        let staged = Staged::new(&info, root.path()).unwrap();
        let dir = staged.dir().to_owned();
        assert!(dir.join("my-plugin.wasm").is_file() && dir.join("manifest.toml").is_file());
        drop(staged);
        assert!(!dir.exists());
        assert!(Staged::new(&info, root.path()).unwrap().install(root.path(), "Bad Name").is_err());
    }
}
