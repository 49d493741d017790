//! `byoc plugin`: write, build, install, inspect and run capability plugins, from any directory.
//!
//! - `new NAME` writes a ready plugin crate (see [`new`]); `build [DIR] [--install [PLUGINS]]`
//!   compiles it for `wasm32-wasip2`, checks the component by loading it, and installs it as
//!   `PLUGINS/<name>/{<name>.wasm,manifest.toml}` atomically (see [`build`]); `watch DIR` does
//!   that again whenever the crate's sources change.
//! - `inspect [PATH]` prints `describe()` and the manifest as JSON: one object for a plugin (its
//!   directory, its `.wasm`, or a plugin crate that was built), a list for a directory of
//!   plugins. Without a path: the default plugin directory.
//! - `run NAME|PATH --input SEG.ts... --output DIR` runs one stream session locally (see
//!   [`run`]); a bare name is looked up in the plugin directory (`--plugins`, by default the one
//!   `byoc dev` serves).
//! - `reload [NAME]` asks a running node to load a plugin's files again; without `--node` it
//!   finds `byoc dev`'s orchestrator through the state file `byoc dev` writes.

mod build;
mod crate_info;
mod new;
mod run;
mod watch;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use byoc_runtime::{CacheDir, Plugin, Runtime, RuntimeConfig};
use serde_json::{Value, json};

use crate::orchestrator::DEFAULT_PLUGINS;

#[derive(clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
    /// Directory of the compiled-component cache (default: $XDG_CACHE_HOME/byoc).
    #[arg(long, global = true, env = "BYOC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum PluginCommand {
    /// Write a new plugin crate: Cargo.toml, src/lib.rs, manifest.toml, a native test, a README.
    New(new::NewArgs),
    /// Build a plugin crate for wasm32-wasip2, check the component, and optionally install it.
    Build(build::BuildArgs),
    /// Build and install a plugin crate again whenever its sources change (Ctrl-C stops).
    Watch(watch::WatchArgs),
    /// Print describe() and the manifest of a plugin, or of every plugin in a directory, as JSON.
    Inspect {
        /// A plugin directory, a `.wasm` with `manifest.toml` beside it, a plugin crate that was
        /// built (`byoc plugin build`), or a directory of plugins [default: target/plugins].
        path: Option<PathBuf>,
    },
    /// Run one stream session locally over segment files.
    Run {
        /// The plugin: a name installed in the plugin directory, or a path (its directory or its
        /// `.wasm`).
        plugin: String,
        /// Where bare plugin names are looked up (the directory `byoc dev` serves by default).
        #[arg(long, default_value = DEFAULT_PLUGINS)]
        plugins: PathBuf,
        /// Input segments, in order (one file = one segment).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long)]
        output: PathBuf,
        /// Session params (JSON object).
        #[arg(long, default_value = "{}")]
        params: String,
        /// Control messages (JSON) sent after the segments, in order.
        #[arg(long)]
        control: Vec<String>,
        /// Bytes per `on-chunk` call.
        #[arg(long, default_value_t = 64 * 1024)]
        chunk_size: usize,
        /// Feed each segment when its media time comes (by its MPEG-TS timestamps) and drive the
        /// plugin's timer meanwhile, as live; without it input goes as fast as the plugin takes it.
        #[arg(long)]
        realtime: bool,
    },
    /// Ask a running node to load a plugin's files again (all plugins, and new ones, when no
    /// name is given): new streams get the new code, running ones finish on the old.
    Reload {
        /// Plugin name.
        name: Option<String>,
        /// The node's (orchestrator's) URL [default: `byoc dev`'s orchestrator, from its state
        /// file].
        #[arg(long)]
        node: Option<String>,
        /// The node's secret (as for worker registration; `byoc dev` needs none).
        #[arg(long, env = "BYOC_ORCH_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// `byoc dev`'s state file [default: $XDG_RUNTIME_DIR/byoc/dev.json, else in the cache
        /// directory].
        #[arg(long, env = "BYOC_DEV_STATE")]
        state_file: Option<PathBuf>,
    },
}

pub async fn run(args: PluginArgs) -> anyhow::Result<()> {
    let config = RuntimeConfig {
        cache_dir: args.cache_dir.map_or(CacheDir::Default, CacheDir::At),
        max_instances: 16,
        ..RuntimeConfig::default()
    };
    match args.command {
        PluginCommand::New(new) => new::run(new),
        PluginCommand::Build(build) => build::run(config, build).await,
        PluginCommand::Watch(watch) => watch::run(config, watch).await,
        PluginCommand::Inspect { path } => inspect(config, path.as_deref().unwrap_or(Path::new(DEFAULT_PLUGINS))).await,
        PluginCommand::Run { plugin, plugins, input, output, params, control, chunk_size, realtime } => {
            let path = resolve(&plugin, &plugins)?;
            let runtime = Runtime::new(config)?;
            let loaded = runtime.load_plugin(&path).await.with_context(|| format!("loading {}", path.display()))?;
            let options = run::RunOptions {
                inputs: &input,
                out_dir: &output,
                params: &params,
                controls: &control,
                chunk_size: chunk_size.max(1),
                realtime,
            };
            run::run_session(&loaded, options).await
        }
        PluginCommand::Reload { name, node, secret, state_file } => {
            let node = match node {
                Some(node) => node,
                None => crate::dev::DevState::read(state_file.as_deref())?.orchestrator,
            };
            reload(&node, name.as_deref(), secret.as_deref()).await
        }
    }
}

/// The plugin `arg` names: a bare name (no path separator, no `.wasm`) installed in `plugins`,
/// else a path. A bare name that is not installed but exists as a path is taken as that path.
fn resolve(arg: &str, plugins: &Path) -> anyhow::Result<PathBuf> {
    let is_name = byoc_runtime::valid_name(arg).is_ok();
    if is_name {
        let installed = plugins.join(arg);
        if installed.join("manifest.toml").is_file() {
            return Ok(installed);
        }
    }
    let path = PathBuf::from(arg);
    if path.exists() {
        return Ok(path);
    }
    if !is_name {
        bail!("{arg}: no such plugin file or directory");
    }
    let installed = installed_names(plugins);
    let listing = if installed.is_empty() { "none".to_owned() } else { installed.join(", ") };
    bail!(
        "no plugin {arg:?} in {} (installed: {listing}); pass a path, another --plugins directory, \
         or install it with `byoc plugin build --install {}`",
        plugins.display(),
        plugins.display()
    )
}

/// The plugins installed in `dir`, by directory name.
fn installed_names(dir: &Path) -> Vec<String> {
    byoc_runtime::plugin_dirs(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

/// Whether `path` is a directory of plugins rather than one plugin (or a plugin crate).
fn is_plugin_collection(path: &Path) -> bool {
    path.is_dir() && !path.join("manifest.toml").is_file()
}

async fn inspect(config: RuntimeConfig, path: &Path) -> anyhow::Result<()> {
    let runtime = Runtime::new(config)?;
    if path.join("Cargo.toml").is_file() && path.join("manifest.toml").is_file() {
        // A plugin crate: its built component with its manifest, staged as a plugin directory.
        let info = crate_info::CrateInfo::read(path)?;
        let staged = build::Staged::new(&info, &std::env::temp_dir())?;
        let plugin = runtime
            .load_plugin(staged.dir())
            .await
            .with_context(|| format!("loading {} (built from {})", info.wasm.display(), path.display()))?;
        let mut described = describe(&plugin);
        described["path"] = json!(path);
        described["wasm"] = json!(info.wasm);
        println!("{}", serde_json::to_string_pretty(&described)?);
        return Ok(());
    }
    if !is_plugin_collection(path) {
        let plugin = runtime.load_plugin(path).await.with_context(|| format!("loading {}", path.display()))?;
        println!("{}", serde_json::to_string_pretty(&describe(&plugin))?);
        return Ok(());
    }
    let mut list = Vec::new();
    let mut failed = 0;
    for dir in byoc_runtime::plugin_dirs(path).with_context(|| format!("listing {}", path.display()))? {
        match runtime.load_plugin(&dir).await {
            Ok(plugin) => list.push(describe(&plugin)),
            Err(e) => {
                failed += 1;
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                list.push(json!({"name": name, "path": dir, "error": e.to_string()}));
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&list)?);
    if failed > 0 {
        bail!("{failed} plugin(s) failed to load");
    }
    Ok(())
}

fn describe(plugin: &Plugin) -> Value {
    json!({
        "name": plugin.name(),
        "version": plugin.describe().version,
        "wit": plugin.wit_version(),
        "path": plugin.dir(),
        "wasm": plugin.wasm_path(),
        "sha256": plugin.sha256(),
        "cache": plugin.cache_status(),
        "describe": plugin.describe(),
        "manifest": plugin.manifest(),
        "grants_in_force": plugin.grants(),
    })
}

async fn reload(node: &str, name: Option<&str>, secret: Option<&str>) -> anyhow::Result<()> {
    let client = byoc_trickle::http_client()?;
    let mut req = client
        .post(format!("{}/plugins/reload", node.trim_end_matches('/')))
        .body(name.unwrap_or_default().to_string());
    if let Some(s) = secret {
        req = req.header("Authorization", s);
    }
    let resp = req.send().await.with_context(|| format!("reaching {node}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("{}", text.trim());
    if !status.is_success() {
        bail!("the node {node} answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_dir(root: &Path, name: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.toml"), "[limits]\n").unwrap();
        dir
    }

    #[test]
    fn bare_names_are_looked_up_in_the_plugin_directory() {
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        let installed = plugin_dir(&plugins, "keyframes");
        plugin_dir(&plugins, "passthrough");
        std::fs::create_dir_all(plugins.join(".keyframes.staging-1")).unwrap();
        assert_eq!(resolve("keyframes", &plugins).unwrap(), installed);

        // A path is a path, installed or not.
        let elsewhere = plugin_dir(root.path(), "elsewhere");
        let arg = elsewhere.to_str().unwrap();
        assert_eq!(resolve(arg, &plugins).unwrap(), elsewhere);

        // A missing name says where it looked and what is there (hidden staging dirs are not).
        let error = resolve("missing", &plugins).unwrap_err().to_string();
        assert!(error.contains("no plugin \"missing\""), "{error}");
        assert!(error.contains(plugins.to_str().unwrap()), "{error}");
        assert!(error.contains("installed: keyframes, passthrough)"), "{error}");
        let error = resolve("./missing.wasm", &plugins).unwrap_err().to_string();
        assert!(error.contains("./missing.wasm: no such plugin file"), "{error}");
        assert!(resolve("x", &root.path().join("nowhere")).unwrap_err().to_string().contains("installed: none"));
    }
}
