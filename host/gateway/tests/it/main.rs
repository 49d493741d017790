//! The gateway's integration tests, one binary: each module is a specification of one side of the
//! gateway, its tests named for what they show.
//!
//! - `gateway`: gateway + orchestrator + a toy worker over real HTTP on loopback.
//! - `plugins`: streams and batch jobs on the bundled WebAssembly plugins.
//! - `frames`: a frame plugin: real H.264 decoded, processed in wasm, encoded, decoded again.
//! - `payments`: priced mode end to end.
//! - `media`: RTMP and WebRTC in and out through a plugin.
//! - `browser`: a real browser on both WebRTC legs.
//! - `console`: the gateway console driven in a real browser (`cdp`: Chromium over the DevTools Protocol).
//! - `attack`: attacks on the nodes, each refused.
//! - `common`: what they share.
//!
//! The client API's refusals asked of the router itself (no sockets) are unit tests of the crate
//! (`src/tests.rs`), as they put a stream in the gateway's table directly.

mod attack;
mod browser;
mod cdp;
mod common;
mod console;
mod frames;
mod gateway;
mod media;
mod payments;
mod plugins;
