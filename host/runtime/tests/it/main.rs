//! byoc-runtime with real wasmtime: loading and caching components, the bundled plugins, and hostile
//! plugins the sandbox must contain.
//!
//! One test binary for the crate; each module is one subject.

mod common;
mod compat;
mod frames;
mod hostile;
mod loading;
mod plugins;
