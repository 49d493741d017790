//! The [`Runtime`]: one engine, the loaded plugins by name, loading and hot reload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::component::Linker;

use crate::cache::AotCache;
use crate::engine::{Allocator, EngineHandle, EngineSettings};
use crate::error::LoadError;
use crate::manifest::OperatorConfig;
use crate::plugin::{self, LoadContext, Plugin};
use crate::state::HostState;

/// Where compiled components are cached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheDir {
    /// `$XDG_CACHE_HOME/byoc`, else `$HOME/.cache/byoc`; disabled if neither is set.
    #[default]
    Default,
    /// This directory.
    At(PathBuf),
    /// No disk cache: compile on every load.
    Disabled,
}

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The AOT cache directory.
    pub cache_dir: CacheDir,
    /// Instances alive at once (sessions plus in-flight batch calls); the pool's size. More
    /// wait for a free slot.
    pub max_instances: u32,
    /// Largest memory cap a manifest may ask for, in MiB (the pool's slot size).
    pub max_memory_mib: u32,
    /// Epoch tick: the granularity of deadlines and of cooperative yielding.
    pub epoch_tick: Duration,
    /// Output messages buffered per session before the plugin waits for the reader.
    pub output_buffer: usize,
    /// Use the pooling allocator (falls back to on-demand if it cannot reserve memory).
    pub pooling: bool,
    /// The operator's grants, limits, config values and secrets per plugin.
    pub operator: OperatorConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: CacheDir::Default,
            max_instances: 128,
            max_memory_mib: 1024,
            epoch_tick: Duration::from_millis(10),
            output_buffer: 256,
            pooling: true,
            operator: OperatorConfig::default(),
        }
    }
}

/// The wasm capability host. Cheap to clone (shared).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: EngineHandle,
    linker: Linker<HostState>,
    cache: Arc<AotCache>,
    config: RuntimeConfig,
    semaphore: Arc<tokio::sync::Semaphore>,
    plugins: RwLock<BTreeMap<String, Plugin>>,
    /// Serialises loads and reloads, so two reloads of one plugin cannot interleave.
    loading: tokio::sync::Mutex<()>,
    /// Directories given to `load`/`load_dir`, rescanned by `reload_changed`.
    dirs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Runtime {
    /// A runtime with no plugin loaded.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let max_memory_bytes = u64::from(config.max_memory_mib.max(1)) * 1024 * 1024;
        let engine = EngineHandle::new(EngineSettings {
            max_instances: config.max_instances,
            max_memory_bytes,
            epoch_tick: config.epoch_tick,
            pooling: config.pooling,
        })?;
        let linker = crate::instance::linker(&engine.engine).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let root = match &config.cache_dir {
            CacheDir::Default => AotCache::default_root(),
            CacheDir::At(dir) => Some(dir.clone()),
            CacheDir::Disabled => None,
        };
        let cache = Arc::new(AotCache::new(root.as_deref(), &engine.compatibility_key()));
        let semaphore = Arc::new(tokio::sync::Semaphore::new(config.max_instances.max(1) as usize));
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                config,
                semaphore,
                plugins: RwLock::new(BTreeMap::new()),
                loading: tokio::sync::Mutex::new(()),
                dirs: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// A runtime with every plugin of `dir` loaded (each subdirectory holding a
    /// `manifest.toml` is a plugin). Fails on the first plugin that does not load.
    pub async fn load(dir: impl AsRef<Path>, config: RuntimeConfig) -> Result<Self, LoadError> {
        let runtime = Self::new(config)?;
        for result in runtime.load_dir(dir.as_ref()).await? {
            result?;
        }
        Ok(runtime)
    }

    /// Loads every plugin directory under `dir`, in name order, returning each one's result
    /// (a bad plugin does not stop the others). Fails only if `dir` cannot be listed.
    pub async fn load_dir(&self, dir: &Path) -> Result<Vec<Result<Plugin, LoadError>>, LoadError> {
        {
            let mut dirs = self.inner.dirs.lock().unwrap_or_else(|p| p.into_inner());
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
        let mut results = Vec::new();
        for path in plugin_dirs(dir)? {
            results.push(self.load_plugin(&path).await);
        }
        Ok(results)
    }

    /// Loads (or replaces) one plugin from its directory or `.wasm` file. New sessions use
    /// it at once; sessions already open keep the code they started with.
    pub async fn load_plugin(&self, path: &Path) -> Result<Plugin, LoadError> {
        let _guard = self.inner.loading.lock().await;
        let plugin = plugin::load(&self.context(), path).await?;
        let mut plugins = self.inner.plugins.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = plugins.get(plugin.name())
            && existing.dir() != plugin.dir()
        {
            return Err(LoadError::Duplicate {
                name: plugin.name().to_owned(),
                first: existing.dir().to_owned(),
                second: plugin.dir().to_owned(),
            });
        }
        let replaced = plugins.insert(plugin.name().to_owned(), plugin.clone()).is_some();
        let (name, version) = (plugin.name(), &plugin.describe().version);
        let (sha256, cache) = (plugin.sha256(), plugin.cache_status());
        if replaced {
            tracing::info!(plugin = %name, %version, %sha256, cache = cache.as_str(), "plugin reloaded");
        } else {
            tracing::info!(plugin = %name, %version, %sha256, cache = cache.as_str(), "plugin loaded");
        }
        Ok(plugin)
    }

    /// Hot reload: re-reads the named plugin from its directory. On failure the old code
    /// stays in service. A plugin not loaded yet is loaded from `<dir>/<name>` in the
    /// directories given to [`Runtime::load`]/[`Runtime::load_dir`], if it is there.
    pub async fn reload(&self, name: &str) -> Result<Plugin, LoadError> {
        if let Some(current) = self.plugin(name) {
            return self.load_plugin(current.dir()).await;
        }
        let dirs = self.inner.dirs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let valid = crate::manifest::valid_name(name).is_ok();
        match dirs.iter().map(|d| d.join(name)).find(|d| valid && d.join("manifest.toml").is_file()) {
            Some(dir) => self.load_plugin(&dir).await,
            None => Err(LoadError::UnknownPlugin(name.to_owned())),
        }
    }

    /// Reloads every loaded plugin and loads the plugin directories that appeared in the
    /// directories given to [`Runtime::load`]/[`Runtime::load_dir`]; returns each one's result
    /// by name (by path for a new directory that failed to load).
    pub async fn reload_all(&self) -> Vec<(String, Result<Plugin, LoadError>)> {
        let mut results = Vec::new();
        for plugin in self.plugins() {
            let name = plugin.name().to_owned();
            results.push((name.clone(), self.reload(&name).await));
        }
        results.extend(self.load_new().await);
        results
    }

    /// Loads the plugin directories not loaded yet in the directories given to
    /// [`Runtime::load`]/[`Runtime::load_dir`].
    async fn load_new(&self) -> Vec<(String, Result<Plugin, LoadError>)> {
        let mut results = Vec::new();
        let dirs = self.inner.dirs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let known: Vec<PathBuf> = self.plugins().iter().map(|p| p.dir().to_owned()).collect();
        for dir in dirs {
            for path in plugin_dirs(&dir).unwrap_or_default() {
                if !known.contains(&path) {
                    let result = self.load_plugin(&path).await;
                    let name = result.as_ref().map_or_else(|_| path.display().to_string(), |p| p.name().to_owned());
                    results.push((name, result));
                }
            }
        }
        results
    }

    /// Hot reload from the file system: reloads every plugin whose `.wasm` or manifest changed
    /// since it was loaded, and loads new plugin directories that appeared in the directories
    /// given to [`Runtime::load`]/[`Runtime::load_dir`]. Returns what it did, by name or path.
    /// A plugin whose new files fail to load keeps serving its old code.
    pub async fn reload_changed(&self) -> Vec<(String, Result<Plugin, LoadError>)> {
        let mut results = Vec::new();
        for plugin in self.plugins() {
            if plugin.files_changed() {
                let name = plugin.name().to_owned();
                results.push((name.clone(), self.reload(&name).await));
            }
        }
        results.extend(self.load_new().await);
        results
    }

    /// Calls [`Runtime::reload_changed`] every `period` until the returned [`Watcher`] is
    /// dropped. Needs a tokio runtime.
    pub fn watch(&self, period: Duration) -> Watcher {
        let runtime = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Successes are logged by `load_plugin` (`plugin loaded` / `plugin reloaded`).
                for (name, result) in runtime.reload_changed().await {
                    if let Err(e) = result {
                        tracing::warn!(plugin = %name, error = %e, "plugin reload failed; old code stays");
                    }
                }
            }
        });
        Watcher { task }
    }

    /// Stops serving a plugin to new sessions (open ones go on).
    pub fn unload(&self, name: &str) -> Option<Plugin> {
        self.inner.plugins.write().unwrap_or_else(|p| p.into_inner()).remove(name)
    }

    /// The current code of a plugin.
    pub fn plugin(&self, name: &str) -> Option<Plugin> {
        self.inner.plugins.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// All loaded plugins, by name.
    pub fn plugins(&self) -> Vec<Plugin> {
        self.inner.plugins.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// How the engine allocates instances.
    pub fn allocator(&self) -> Allocator {
        self.inner.engine.allocator
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    fn context(&self) -> LoadContext<'_> {
        let inner = &self.inner;
        LoadContext {
            engine: &inner.engine.engine,
            linker: &inner.linker,
            cache: &inner.cache,
            operator: &inner.config.operator,
            semaphore: &inner.semaphore,
            ticker: &inner.engine.ticker,
            max_memory_bytes: u64::from(inner.config.max_memory_mib.max(1)) * 1024 * 1024,
            output_buffer: inner.config.output_buffer,
        }
    }
}

/// Polls plugin files for hot reload (see [`Runtime::watch`]); stops when dropped.
#[derive(Debug)]
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The plugin directories under `dir` (those with a `manifest.toml`), sorted. Hidden entries
/// (a name starting with `.`) are skipped: installers assemble a plugin in a hidden directory
/// and rename it into place, so a half-written plugin is never picked up.
pub fn plugin_dirs(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.join("manifest.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}
