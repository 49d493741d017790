//! byoc-runtime: runs BYOC capability plugins, WebAssembly components of the
//! `byoc:capability@0.1.0` world (`wit/`), on wasmtime 48. The only crate that names wasmtime.
//!
//! - [`Runtime`] owns the engine (pooling allocator with an on-demand fallback, epoch ticker),
//!   the on-disk AOT cache and the loaded plugins. It loads a directory of plugins (each a
//!   `.wasm` beside its `manifest.toml`), validating world, WIT version, manifest and
//!   `describe()`, and hot-reloads them ([`Runtime::reload`], [`Runtime::reload_changed`],
//!   [`Runtime::watch`]): new sessions get the new code, running ones keep theirs.
//! - [`Plugin`] is one loaded version: [`Plugin::describe`], batch [`Plugin::process`] (one
//!   fresh instance per call) and [`Plugin::open_session`].
//! - [`Session`] is one stream on its own instance; its [`Output`]s arrive in order on an
//!   [`Outputs`] receiver. [`Session::restart`] applies the `restart-session` policy.
//!
//! Every instance is contained: a memory cap, a deadline per call (epoch-based inside wasm,
//! wall clock around host calls too), an output cap per call, deny-all WASI (only granted
//! read-only directories), outbound HTTP only to granted hosts (the manifest's grants
//! narrowed by the operator's [`OperatorConfig`]), and a semaphore in front of the instance
//! pool. A trap or breach fails only that instance, reported as a typed [`CallError`].

mod bindings;
mod cache;
mod code;
mod compat;
mod engine;
mod error;
mod frames;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod guest;
mod instance;
mod manifest;
mod plugin;
mod runtime;
mod session;
mod state;
mod types;

pub use cache::CacheStatus;
pub use engine::Allocator;
pub use error::{CallError, LoadError};
pub use manifest::{
    Failure, FailurePolicy, Grants, Limits, Manifest, OperatorConfig, PluginOperatorConfig, valid_name,
};
pub use plugin::{Plugin, WIT_VERSION};
pub use runtime::{CacheDir, Runtime, RuntimeConfig, Watcher, plugin_dirs};
pub use session::{Outputs, Session};
pub use types::{
    CapabilityError, CapabilityInfo, Header, Legs, LogLevel, Output, Price, Request, Response, ResponseBody, SseEvent,
};
