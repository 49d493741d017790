//! One loaded version of a plugin's code: what both a [`crate::Plugin`] handle and each
//! [`crate::Session`] opened on it hold. Below `plugin` and `session`, which both use it.

use std::path::{Path, PathBuf};

use crate::cache::CacheStatus;
use crate::instance::Template;
use crate::manifest::{Grants, Limits, Manifest};
use crate::types::CapabilityInfo;

/// One loaded version of a plugin.
pub(crate) struct PluginCode {
    pub dir: PathBuf,
    pub wasm_path: PathBuf,
    pub manifest: Manifest,
    pub grants: Grants,
    pub limits: Limits,
    pub info: CapabilityInfo,
    pub cache: CacheStatus,
    pub sha256: String,
    /// The files as they were when loaded, to notice a replacement.
    pub stamp: Stamp,
    pub template: Template,
    pub output_buffer: usize,
}

/// Modification times and sizes of a plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp(Vec<Option<(std::time::SystemTime, u64)>>);

impl Stamp {
    pub(crate) fn of(dir: &Path, wasm: &Path) -> Self {
        let stat = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        Self(vec![stat(wasm), stat(&dir.join("manifest.toml"))])
    }
}
