//! On-disk cache of compiled components (AOT artefacts).
//!
//! Compiling a component with Cranelift costs tens of milliseconds in a release host (and
//! ten times that in a debug one); deserializing the cached artefact costs a fraction of a
//! millisecond. Artefacts live under
//! `<dir>/wasmtime-<version>/<engine key>/<sha256 of the wasm>.cwasm`, so a different wasmtime,
//! different compiler settings or different bytes never meet an old artefact.
//!
//! Trust: deserializing runs native code from the file, so the directory must be writable
//! only by the host's user. The runtime only loads files it wrote itself into it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// What the cache did for one load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// No cache directory is configured: compiled in memory.
    Disabled,
    /// A cached artefact was loaded.
    Hit,
    /// Compiled, and the artefact stored (or storing it failed, which is only logged).
    Miss,
}

impl CacheStatus {
    /// Its name, as it is serialised and logged (`disabled`, `hit`, `miss`).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Disabled => "disabled",
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
        }
    }
}

/// The wasmtime version the artefacts are built by (part of the cache path).
const WASMTIME_VERSION: &str = "48.0.8";

pub(crate) struct AotCache {
    /// `<dir>/wasmtime-<version>/<engine key>`, or `None` when disabled.
    dir: Option<PathBuf>,
}

impl AotCache {
    pub(crate) fn new(root: Option<&Path>, engine_key: &str) -> Self {
        Self { dir: root.map(|r| r.join(format!("wasmtime-{WASMTIME_VERSION}")).join(engine_key)) }
    }

    /// The default cache root: `$XDG_CACHE_HOME/byoc`, else `$HOME/.cache/byoc`.
    pub(crate) fn default_root() -> Option<PathBuf> {
        let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = || std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache"));
        xdg.or_else(home).map(|d| d.join("byoc"))
    }

    /// The component for `wasm`, from the cache or compiled (and then cached). Blocking:
    /// call it off the async executor.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, CacheStatus)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, CacheStatus::Disabled));
        };
        let digest = Sha256::digest(wasm);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("{hex}.cwasm"));
        if path.is_file() {
            // SAFETY: the file is an artefact this runtime serialized into its own cache
            // directory (see the module docs on trust); wasmtime checks that it was built by
            // the same version with compatible settings and fails cleanly otherwise.
            #[allow(unsafe_code)]
            let cached = unsafe { Component::deserialize_file(engine, &path) };
            match cached {
                Ok(component) => return Ok((component, CacheStatus::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unusable cached artefact; recompiling"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = store(dir, &path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled-component cache");
        }
        Ok((component, CacheStatus::Miss))
    }
}

/// Writes the artefact through a temporary file and a rename, so that a concurrent reader
/// sees a complete file or none.
fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
