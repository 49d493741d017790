//! Write BYOC capability plugins in Rust.
//!
//! A plugin is a WebAssembly component for the `byoc:capability@0.2.0` world
//! (`capability-adapter`, see `wit/` at the repository root) that an orchestrator loads to
//! serve one capability, for batch jobs and live video streams. This crate hides the
//! component plumbing. A plugin is one of two kinds:
//!
//! - **byte level**: it sees the stream's MPEG-TS bytes. One trait per concern:
//!   [`Describe`], [`Batch`], [`Stream`] and [`StreamSession`]; [`export!`]`(MyPlugin)`
//!   turns a type implementing them into the component's exports;
//! - **frame level**: the host decodes the stream into frames and encodes what the plugin
//!   returns. Implement [`Describe`] (declaring [`CapabilityInfo::frames`]) and
//!   [`frames::FrameProcessor`], and export with [`export!`]`(frames MyPlugin)`; the
//!   [`frames`] module has the frame types and drawing, scaling and conversion helpers.
//!
//! Then:
//!
//! - every method gets a [`Context`] for output, logs, config, secrets, time, timers
//!   ([`Context::set_tick`]) and HTTP;
//! - helpers: typed JSON [`params`], whole-segment [`buffered`] sessions, MPEG-TS
//!   walking in [`ts`], server-sent events in [`sse`];
//! - [`testing`] runs a plugin natively in `cargo test`, recording its output
//!   ([`testing::Harness`] for byte-level plugins, [`testing::FrameHarness`] for frame
//!   plugins).
//!
//! Build plugins with `cargo build --release --target wasm32-wasip2`; the result is a
//! component. See `plugins/README.md` for a tutorial.
//!
//! ```
//! use byoc_sdk::{
//!     export, Batch, CapabilityInfo, Context, Describe, Error, Legs, Request, Response,
//!     Stream, StreamSession,
//! };
//!
//! pub struct Shout;
//!
//! impl Describe for Shout {
//!     fn describe() -> CapabilityInfo {
//!         CapabilityInfo::new("shout", "0.1.0", "Uppercases text").legs(Legs::DATA)
//!     }
//! }
//!
//! impl Batch for Shout {
//!     fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
//!         Ok(Response::text(request.text()?.to_uppercase()))
//!     }
//! }
//!
//! impl Stream for Shout {
//!     type Session = byoc_sdk::NoSession;
//! }
//!
//! export!(Shout);
//!
//! let harness = byoc_sdk::testing::Harness::<Shout>::new();
//! let response = harness.process(Request::new("/", "text/plain", b"hi".to_vec())).unwrap();
//! assert_eq!(response.body, byoc_sdk::Body::Bytes(b"HI".to_vec()));
//! ```

// Lets generated code name this crate as `byoc_sdk` from inside it, as it must from
// plugin crates.
extern crate self as byoc_sdk;

pub mod buffered;
mod context;
mod error;
pub mod frames;
pub mod http;
pub mod params;
mod plugin;
pub mod sse;
pub mod testing;
pub mod ts;
mod types;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use context::{Context, Host};
pub use error::{AccessError, Error, HttpError, PublishError};
pub use http::{HttpRequest, HttpResponse, Method, Scheme, UrlParts};
pub use plugin::{Batch, Describe, NoSession, Stream, StreamSession};
pub use types::{Body, CapabilityInfo, Header, Legs, LogLevel, Price, Request, Response, SseEvent};

/// Exports a plugin type as the component's `adapter` interface.
///
/// Invoke it once, at the root of the plugin crate, in one of two forms:
///
/// - `export!(MyPlugin)`: a byte-level plugin. The type implements [`Describe`], [`Batch`]
///   and [`Stream`] (and is `'static`). Its `frame-session` export refuses every stream
///   with `unsupported` (the host never calls it, as `frames` is not declared).
/// - `export!(frames MyPlugin)`: a frame plugin. The type implements [`Describe`] (with
///   [`CapabilityInfo::frames`] set) and [`frames::FrameProcessor`]. Its byte-level
///   `session` export and batch `process` answer `unsupported`.
///
/// It expands to nothing outside wasm builds, so the same crate also builds natively for
/// tests.
///
/// ```
/// # use byoc_sdk::*;
/// pub struct MyPlugin;
/// # impl Describe for MyPlugin { fn describe() -> CapabilityInfo { CapabilityInfo::new("p", "0.1.0", "") } }
/// # impl Batch for MyPlugin {}
/// # impl Stream for MyPlugin { type Session = NoSession; }
/// byoc_sdk::export!(MyPlugin);
/// ```
///
/// A frame plugin (see [`frames::FrameProcessor`] for a whole one):
///
/// ```ignore
/// byoc_sdk::export!(frames MyFramePlugin);
/// ```
#[macro_export]
macro_rules! export {
    (frames $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __ByocAdapter = $crate::__private::FrameAdapter<$plugin>;
            $crate::__private::bindings::__export_capability_adapter!(
                __ByocAdapter with_types_in $crate::__private::bindings
            );
        };
    };
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The generated export macro accepts only an identifier, hence the alias.
            type __ByocAdapter = $crate::__private::Adapter<$plugin>;
            $crate::__private::bindings::__export_capability_adapter!(
                __ByocAdapter with_types_in $crate::__private::bindings
            );
        };
    };
}

/// Implementation details used by [`export!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{Adapter, FrameAdapter, bindings};
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
}
