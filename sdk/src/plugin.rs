//! The traits a plugin implements, one per concern of the `adapter` export: [`Describe`],
//! [`Batch`], [`Stream`] (opening sessions) and [`StreamSession`] (one live stream).
//!
//! [`export!`](crate::export) needs all three of `Describe`, `Batch` and `Stream` because the
//! WIT world exports all of them. A capability without batch support writes
//! `impl Batch for MyPlugin {}`, and one without streams
//! `impl Stream for MyPlugin { type Session = NoSession; }`; the default methods answer
//! [`Error::Unsupported`].

use crate::{CapabilityInfo, Context, Error, Request, Response};

/// Describes the capability (`describe` export).
///
/// ```
/// use byoc_sdk::{CapabilityInfo, Describe, Legs, Price};
///
/// struct Analyzer;
/// impl Describe for Analyzer {
///     fn describe() -> CapabilityInfo {
///         CapabilityInfo::new("analyzer", env!("CARGO_PKG_VERSION"), "Analyzes video")
///             .price(Price::wei_per_second(10))
///             .legs(Legs::VIDEO_IN | Legs::EVENTS)
///     }
/// }
/// assert_eq!(Analyzer::describe().name, "analyzer");
/// ```
pub trait Describe {
    /// What the capability is. Must be pure and cheap; the host may call it at any time.
    fn describe() -> CapabilityInfo;
}

/// Handles batch requests (`process` export).
///
/// ```
/// use byoc_sdk::{Batch, Context, Error, Request, Response};
///
/// struct Upper;
/// impl Batch for Upper {
///     fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
///         Ok(Response::text(request.text()?.to_uppercase()))
///     }
/// }
/// # let _ = Upper;
/// ```
pub trait Batch {
    /// Handles one request. The default answers [`Error::Unsupported`].
    fn process(ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let _ = (ctx, request);
        Err(Error::unsupported("this capability does not take batch requests"))
    }
}

/// Opens live stream sessions (`session.open` export).
///
/// ```
/// use byoc_sdk::{Context, Error, NoSession, Stream};
///
/// struct BatchOnly;
/// impl Stream for BatchOnly {
///     type Session = NoSession;
/// }
/// # let _ = BatchOnly;
/// ```
pub trait Stream {
    /// The per-stream state.
    type Session: StreamSession;

    /// Opens a session with the stream's params (JSON text, `{}` when none were given;
    /// see [`params::parse`](crate::params::parse)). The default answers
    /// [`Error::Unsupported`].
    fn open(ctx: &Context<'_>, params: &str) -> Result<Self::Session, Error> {
        let _ = (ctx, params);
        Err(Error::unsupported("this capability does not take streams"))
    }
}

/// One live stream: input segments arrive chunk by chunk, control messages in between, and
/// a final `close`.
///
/// Output goes through the [`Context`] (segments, data lines, events). A returned error is
/// reported to the client as an event and the session goes on; only a trap (a panic) ends it,
/// so return errors rather than panicking. For whole segments instead of chunks, implement
/// [`SegmentHandler`](crate::buffered::SegmentHandler) and wrap it in
/// [`Buffered`](crate::buffered::Buffered).
///
/// ```
/// use byoc_sdk::{Context, Error, StreamSession};
///
/// /// Counts input bytes and reports them per segment.
/// struct Counter { bytes: u64 }
/// impl StreamSession for Counter {
///     fn on_segment_start(&mut self, _ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
///         self.bytes = 0;
///         Ok(())
///     }
///     fn on_chunk(&mut self, _ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
///         self.bytes += bytes.len() as u64;
///         Ok(())
///     }
///     fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
///         ctx.publish_event(&serde_json::json!({"type": "segment", "bytes": self.bytes}))
///     }
/// }
/// # let _ = Counter { bytes: 0 };
/// ```
pub trait StreamSession {
    /// A new input segment begins; `seq` is its trickle sequence number.
    fn on_segment_start(&mut self, ctx: &Context<'_>, seq: u64) -> Result<(), Error>;

    /// The next bytes of the current segment (boundaries are arbitrary).
    fn on_chunk(&mut self, ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error>;

    /// The current segment is complete.
    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error>;

    /// A control message (JSON text). The default answers [`Error::Unsupported`].
    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let _ = (ctx, message);
        Err(Error::unsupported("this capability takes no control messages"))
    }

    /// A timer tick asked for with [`Context::set_tick`]. The default does nothing.
    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// The stream is stopping; output may still be published. The default does nothing.
    fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }
}

/// The session type of a capability without streams: it can never be created.
///
/// ```
/// use byoc_sdk::{NoSession, Stream};
/// struct P;
/// impl Stream for P { type Session = NoSession; }
/// ```
#[derive(Debug)]
pub enum NoSession {}

impl StreamSession for NoSession {
    fn on_segment_start(&mut self, _ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
        match *self {}
    }

    fn on_chunk(&mut self, _ctx: &Context<'_>, _bytes: &[u8]) -> Result<(), Error> {
        match *self {}
    }

    fn on_segment_end(&mut self, _ctx: &Context<'_>) -> Result<(), Error> {
        match *self {}
    }
}
