//! Loading a plugin (a `.wasm` component beside its `manifest.toml`), validating it before
//! and after instantiation, and the [`Plugin`] handle the node calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::cache::{AotCache, CacheStatus};
use crate::code::{PluginCode, Stamp};
use crate::error::{CallError, LoadError};
use crate::guest::{Pre, WitVersion};
use crate::instance::{Instance, Template, guarded};
use crate::manifest::{Grants, HostPattern, Limits, Manifest, OperatorConfig, resolve_dir};
use crate::session::{Outputs, Session};
use crate::state::{Grant, HostState};
use crate::types::{CapabilityInfo, Request, Response};

/// The version of `byoc:capability` this host implements. Plugins built against it or against
/// 0.1.x (before frame plugins) load.
pub const WIT_VERSION: &str = "0.2.0";

/// Largest `.wasm` accepted.
const MAX_WASM_BYTES: u64 = 256 * 1024 * 1024;

/// What loading needs from the runtime.
pub(crate) struct LoadContext<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<HostState>,
    pub cache: &'a Arc<AotCache>,
    pub operator: &'a OperatorConfig,
    pub semaphore: &'a Arc<tokio::sync::Semaphore>,
    pub ticker: &'a Arc<crate::engine::Ticker>,
    pub max_memory_bytes: u64,
    pub output_buffer: usize,
}

/// A loaded plugin: one version of its code, ready to serve batch calls and sessions.
///
/// Cheap to clone. A `Plugin` is a snapshot: after [`Runtime::reload`](crate::Runtime::reload)
/// it keeps serving the old code, so take a fresh one from
/// [`Runtime::plugin`](crate::Runtime::plugin) for each new stream or request.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) code: Arc<PluginCode>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.code.info.name).field("sha256", &self.code.sha256).finish()
    }
}

impl Plugin {
    /// The capability's name.
    pub fn name(&self) -> &str {
        &self.code.info.name
    }

    /// What `describe()` returned when the plugin was loaded.
    pub fn describe(&self) -> &CapabilityInfo {
        &self.code.info
    }

    /// The manifest as written.
    pub fn manifest(&self) -> &Manifest {
        &self.code.manifest
    }

    /// The grants in force: the manifest's, narrowed by the operator.
    pub fn grants(&self) -> &Grants {
        &self.code.grants
    }

    /// The limits in force (the manifest's, lowered by the operator).
    pub fn limits(&self) -> &Limits {
        &self.code.limits
    }

    /// The `byoc:capability` WIT version the component was built against (`0.1` or `0.2`; the
    /// world is always `capability-adapter`, checked when it was loaded).
    pub fn wit_version(&self) -> &'static str {
        self.code.template.pre.wit_version()
    }

    /// The plugin's directory.
    pub fn dir(&self) -> &Path {
        &self.code.dir
    }

    /// The component file.
    pub fn wasm_path(&self) -> &Path {
        &self.code.wasm_path
    }

    /// Hex SHA-256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.code.sha256
    }

    /// Whether the plugin's files changed since it was loaded (or a directory plugin now
    /// holds a different `.wasm`).
    pub fn files_changed(&self) -> bool {
        let wasm = locate(&self.code.dir).map(|(_, w)| w).unwrap_or_else(|_| self.code.wasm_path.clone());
        wasm != self.code.wasm_path || Stamp::of(&self.code.dir, &wasm) != self.code.stamp
    }

    /// Whether the compiled code came from the AOT cache.
    pub fn cache_status(&self) -> CacheStatus {
        self.code.cache
    }

    /// Serves one batch request on a fresh instance (discarded afterwards).
    pub async fn process(&self, request: &Request) -> Result<Response, CallError> {
        let mut instance = Instance::new(&self.code.template, None, 0).await?;
        let result = guarded!(&mut instance, |guest, store| guest.process(store, request))?;
        result.map_err(CallError::Plugin)
    }

    /// Opens a stream session with its params (JSON text, `{}` when none) on a new instance.
    /// Outputs arrive on the returned receiver, which must be drained: a full buffer makes the
    /// plugin wait, and a wait past the call deadline fails the session.
    ///
    /// When `max_instances` instances are alive, this waits for one to end (the semaphore in
    /// front of the pool queues rather than fails); a caller that must not wait wraps it in a
    /// timeout.
    ///
    /// For a frame plugin (`describe().frames` is set) this opens its `frame-session` with
    /// nothing known of the stream yet; see [`Plugin::open_frame_session`].
    pub async fn open_session(&self, params: &str) -> Result<(Session, Outputs), CallError> {
        Session::open(self.code.clone(), params, byoc_frames::StreamInfo::default()).await
    }

    /// Opens a stream session as [`Plugin::open_session`], telling a frame plugin what is known
    /// of the stream (a byte-level plugin ignores `info`).
    pub async fn open_frame_session(
        &self,
        params: &str,
        info: byoc_frames::StreamInfo,
    ) -> Result<(Session, Outputs), CallError> {
        Session::open(self.code.clone(), params, info).await
    }
}

/// Loads the plugin at `path`: a plugin directory, or a `.wasm` file with `manifest.toml`
/// beside it.
pub(crate) async fn load(ctx: &LoadContext<'_>, path: &Path) -> Result<Plugin, LoadError> {
    let (dir, wasm_path) = locate(path)?;
    let stamp = Stamp::of(&dir, &wasm_path);
    let manifest = Manifest::read(&dir.join("manifest.toml"))?;

    let size = std::fs::metadata(&wasm_path).map_err(|e| LoadError::io(&wasm_path, e))?.len();
    if size > MAX_WASM_BYTES {
        return Err(LoadError::InvalidComponent {
            path: wasm_path,
            reason: format!("{size} bytes, more than the {MAX_WASM_BYTES} allowed"),
        });
    }
    let wasm = std::fs::read(&wasm_path).map_err(|e| LoadError::io(&wasm_path, e))?;
    let sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };

    // Compiling is CPU-bound for tens of milliseconds or more: keep it off the executor.
    let (engine, cache) = (ctx.engine.clone(), ctx.cache.clone());
    let compiled = tokio::task::spawn_blocking(move || cache.load(&engine, &wasm))
        .await
        .map_err(|e| LoadError::InvalidComponent { path: wasm_path.clone(), reason: e.to_string() })?;
    let (component, cache) =
        compiled.map_err(|e| LoadError::InvalidComponent { path: wasm_path.clone(), reason: format!("{e:#}") })?;

    let version = check_world(ctx.engine, &component, &wasm_path)?;
    let pre = ctx.linker.instantiate_pre(&component).map_err(|e| link_error(&wasm_path, &e))?;
    let pre = Pre::new(pre, version)
        .map_err(|e| LoadError::WrongWorld { path: wasm_path.clone(), reason: format!("{e:#}") })?;

    // The plugin's name is what describe() says, so describe() runs first, on an instance
    // granted nothing (no legs, config, secrets, hosts or directories) and capped at the
    // manifest's memory; the operator's settings for that name then make the real grant.
    let describe_memory = (u64::from(manifest.limits.memory_mib) * 1024 * 1024).min(ctx.max_memory_bytes);
    let mut template = Template {
        pre,
        grant: Arc::new(Grant {
            name: manifest.name.clone().unwrap_or_default(),
            legs: Default::default(),
            config: Default::default(),
            secrets: Default::default(),
            outbound: Arc::new(Vec::new()),
            memory_bytes: usize::try_from(describe_memory).unwrap_or(usize::MAX),
            max_output_bytes: manifest.limits.max_output_bytes_per_call,
        }),
        preopens: Vec::new(),
        call_timeout: Duration::from_millis(manifest.limits.call_timeout_ms),
        semaphore: ctx.semaphore.clone(),
        ticker: ctx.ticker.clone(),
    };
    let info = describe(&template, &dir).await?;
    crate::manifest::valid_name(&info.name).map_err(|reason| LoadError::Describe { path: dir.clone(), reason })?;
    if let Some(name) = manifest.name.as_deref().filter(|n| *n != info.name) {
        return Err(LoadError::Describe {
            path: dir,
            reason: format!(
                "the plugin calls itself {:?} but its manifest says {name:?} (the name comes from describe(); \
                 remove `name` from the manifest)",
                info.name
            ),
        });
    }

    let operator = ctx.operator.plugins.get(&info.name).cloned().unwrap_or_default();
    let limits = operator.narrow_limits(manifest.limits);
    let memory_bytes = u64::from(limits.memory_mib) * 1024 * 1024;
    if memory_bytes > ctx.max_memory_bytes {
        return Err(LoadError::Limits {
            name: info.name.clone(),
            reason: format!(
                "memory_mib = {} exceeds the runtime's per-instance maximum of {} MiB",
                limits.memory_mib,
                ctx.max_memory_bytes / (1024 * 1024)
            ),
        });
    }
    let grants = manifest.grants.narrowed(&operator, ctx.operator.outbound_hosts.as_deref());
    let outbound = grants.outbound_hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).collect();
    let preopens = grants
        .read_only_dirs
        .iter()
        .map(|d| {
            let host = resolve_dir(&dir, d);
            if host.is_dir() {
                Ok((host, d.clone()))
            } else {
                Err(LoadError::io(&host, std::io::ErrorKind::NotFound.into()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    template.grant = Arc::new(Grant {
        name: info.name.clone(),
        legs: info.legs,
        config: grants.config_keys.iter().map(|k| (k.clone(), operator.config.get(k).cloned())).collect(),
        secrets: grants.secrets.iter().map(|k| (k.clone(), operator.secret_values.get(k).cloned())).collect(),
        outbound: Arc::new(outbound),
        memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
        max_output_bytes: limits.max_output_bytes_per_call,
    });
    template.preopens = preopens;
    template.call_timeout = Duration::from_millis(limits.call_timeout_ms);
    let code = PluginCode {
        dir,
        wasm_path,
        manifest,
        grants,
        limits,
        info,
        cache,
        sha256,
        stamp,
        template,
        output_buffer: ctx.output_buffer,
    };
    Ok(Plugin { code: Arc::new(code) })
}

/// `(plugin directory, component file)` for a directory or a `.wasm` path.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf), LoadError> {
    if path.is_file() {
        let dir = path.parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."));
        return Ok((dir, path.to_owned()));
    }
    let entries = std::fs::read_dir(path).map_err(|e| LoadError::io(path, e))?;
    let mut wasm: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    match wasm.pop() {
        Some(file) if wasm.is_empty() => Ok((path.to_owned(), file)),
        other => Err(LoadError::NoComponent { dir: path.to_owned(), found: wasm.len() + usize::from(other.is_some()) }),
    }
}

/// Checks, before linking, that the component exports a `byoc:capability/adapter` of a
/// version this host serves and imports `byoc:capability` interfaces of that same version
/// only, so that a plugin built for another world or WIT version gets a precise error rather
/// than the linker's "wrong type". Returns the version.
fn check_world(engine: &Engine, component: &Component, path: &Path) -> Result<WitVersion, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let Some(adapter) = exports.iter().find(|n| n.starts_with("byoc:capability/adapter")) else {
        return Err(LoadError::WrongWorld {
            path: path.to_owned(),
            reason: format!("it exports no byoc:capability/adapter interface (exports: {})", exports.join(", ")),
        });
    };
    let incompatible = |found: &str| LoadError::IncompatibleVersion {
        path: path.to_owned(),
        found: found.to_owned(),
        expected: SERVED_VERSIONS,
    };
    let version = version_of(adapter).ok_or_else(|| incompatible(adapter))?;
    let mut ours = ty.imports(engine).map(|(name, _)| name.to_owned()).filter(|n| n.starts_with("byoc:capability/"));
    if let Some(other) = ours.find(|name| version_of(name) != Some(version)) {
        return Err(incompatible(&other));
    }
    Ok(version)
}

/// The versions this host serves, as the load error names them.
const SERVED_VERSIONS: &str = "0.2.x (or 0.1.x)";

/// The version of `byoc:capability/<iface>@<version>` this host serves it as: for a 0.x
/// package, the same minor version (patches are compatible); pre-releases are not served.
fn version_of(name: &str) -> Option<WitVersion> {
    let (_, version) = name.split_once('@')?;
    if version.contains('-') {
        return None;
    }
    let mut parts = version.split(['.', '+']);
    match (parts.next(), parts.next()) {
        (Some("0"), Some("1")) => Some(WitVersion::V1),
        (Some("0"), Some("2")) => Some(WitVersion::V2),
        _ => None,
    }
}

/// Maps a linker failure to the import it names.
fn link_error(path: &Path, e: &wasmtime::Error) -> LoadError {
    let reason = format!("{e:#}");
    let import = reason.split('`').nth(1).unwrap_or("?").to_owned();
    if import.starts_with("byoc:capability/") && version_of(&import).is_none() {
        return LoadError::IncompatibleVersion { path: path.to_owned(), found: import, expected: SERVED_VERSIONS };
    }
    LoadError::UnsupportedImport { path: path.to_owned(), import, reason }
}

/// Calls `describe()` on a throw-away instance.
async fn describe(template: &Template, dir: &Path) -> Result<CapabilityInfo, LoadError> {
    let fail = |reason: String| LoadError::Describe { path: dir.to_owned(), reason };
    let mut instance = Instance::new(template, None, 0).await.map_err(|e| fail(e.to_string()))?;
    let info = guarded!(&mut instance, |guest, store| guest.describe(store)).map_err(|e| fail(e.to_string()))?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::{WitVersion, version_of};

    #[test]
    fn wit_versions_are_served_within_a_minor() {
        assert_eq!(version_of("byoc:capability/adapter@0.1.0"), Some(WitVersion::V1));
        assert_eq!(version_of("byoc:capability/host@0.1.7"), Some(WitVersion::V1));
        assert_eq!(version_of("byoc:capability/adapter@0.2.0"), Some(WitVersion::V2));
        assert_eq!(version_of("byoc:capability/frames@0.2.3"), Some(WitVersion::V2));
        assert_eq!(version_of("byoc:capability/adapter@0.3.0"), None);
        assert_eq!(version_of("byoc:capability/adapter@1.1.0"), None);
        assert_eq!(version_of("byoc:capability/adapter@0.2.0-rc1"), None);
        assert_eq!(version_of("byoc:capability/adapter"), None);
    }
}
