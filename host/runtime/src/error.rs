//! The runtime's typed errors: loading a plugin ([`LoadError`]) and calling one
//! ([`CallError`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::types::CapabilityError;

/// Why a plugin (or the runtime) could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The manifest is missing, malformed or invalid.
    #[error("bad manifest {path}: {reason}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A plugin directory holds no `.wasm` file, or more than one.
    #[error("{dir}: expected exactly one .wasm component beside manifest.toml, found {found}")]
    NoComponent {
        /// The plugin directory.
        dir: PathBuf,
        /// How many `.wasm` files were found.
        found: usize,
    },
    /// The file is not a valid component for this engine (e.g. a core module or garbage).
    #[error("{path}: not a loadable WebAssembly component: {reason}")]
    InvalidComponent {
        /// The `.wasm` path.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// The component does not target the `capability-adapter` world: it lacks the
    /// `byoc:capability/adapter` export or one of its functions.
    #[error("{path}: not a byoc capability adapter: {reason}")]
    WrongWorld {
        /// The `.wasm` path.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The component was built against an incompatible version of `byoc:capability`.
    #[error("{path}: built against {found}, incompatible with the host's byoc:capability {expected}")]
    IncompatibleVersion {
        /// The `.wasm` path.
        path: PathBuf,
        /// The interface the component names, e.g. `byoc:capability/adapter@0.2.0`.
        found: String,
        /// The host's package version.
        expected: &'static str,
    },
    /// The component imports something the host does not provide (e.g. a WASI interface
    /// outside 0.2, or an unknown package).
    #[error("{path}: imports {import:?}, which this host does not provide: {reason}")]
    UnsupportedImport {
        /// The `.wasm` path.
        path: PathBuf,
        /// The import's name.
        import: String,
        /// The linker's message.
        reason: String,
    },
    /// `describe()` failed or disagreed with the manifest.
    #[error("{path}: describe(): {reason}")]
    Describe {
        /// The plugin directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The manifest asks for more than the runtime allows (e.g. memory above the pool's
    /// slot size).
    #[error("{name}: {reason}")]
    Limits {
        /// The plugin.
        name: String,
        /// What exceeds the runtime's bounds.
        reason: String,
    },
    /// Two plugins have the same name.
    #[error("two plugins are named {name:?}: {first} and {second}")]
    Duplicate {
        /// The name.
        name: String,
        /// The first plugin's directory.
        first: PathBuf,
        /// The second plugin's directory.
        second: PathBuf,
    },
    /// No plugin of this name is loaded.
    #[error("no plugin named {0:?}")]
    UnknownPlugin(String),
    /// The wasmtime engine could not be created.
    #[error("creating the wasm engine: {0}")]
    Engine(String),
}

impl LoadError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// Why a call into a plugin failed.
///
/// [`CallError::Plugin`] is the plugin's own answer: the instance is healthy and a session
/// goes on. Every other variant is a *failure* ([`CallError::is_failure`]): the instance was
/// discarded, a session is over unless it is restarted (see [`Session::restart`]), and the
/// node reports it as an error event. The host and other sessions are never affected.
///
/// [`Session::restart`]: crate::Session::restart
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error.
    #[error(transparent)]
    Plugin(#[from] CapabilityError),
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds access, …).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline (wasm execution or host calls such as outbound HTTP).
    #[error("plugin call exceeded its {0:?} deadline")]
    Timeout(Duration),
    /// The instance tried to grow its memory past its cap.
    #[error("plugin exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap.
        limit_bytes: u64,
    },
    /// The call produced more output than its per-call cap.
    #[error("plugin exceeded its output limit of {limit_bytes} bytes per call")]
    OutputLimit {
        /// The cap.
        limit_bytes: u64,
    },
    /// A new instance could not be created (pool exhausted beyond the semaphore, a failing
    /// start-up of the guest, …).
    #[error("instantiating the plugin failed: {0}")]
    Instantiate(String),
    /// The session failed earlier and was not restarted; no more calls are accepted.
    #[error("session already failed: {0}")]
    SessionFailed(Box<CallError>),
    /// The session is closed.
    #[error("session is closed")]
    Closed,
    /// A restart was asked for but the failure policy forbids it or the restarts are used up.
    #[error("no restart allowed: {0}")]
    RestartRefused(String),
}

impl CallError {
    /// Whether the instance was lost (everything but a returned [`CapabilityError`]).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Plugin(_))
    }

    /// A short stable name for events and metrics (`trap`, `timeout`, `memory-limit`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Plugin(_) => "plugin-error",
            Self::Trap(_) => "trap",
            Self::Timeout(_) => "timeout",
            Self::MemoryLimit { .. } => "memory-limit",
            Self::OutputLimit { .. } => "output-limit",
            Self::Instantiate(_) => "instantiate",
            Self::SessionFailed(_) => "session-failed",
            Self::Closed => "closed",
            Self::RestartRefused(_) => "restart-refused",
        }
    }
}
