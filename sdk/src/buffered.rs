//! Whole-segment buffering for plugins that do not want chunks.
//!
//! Implement [`SegmentHandler`] and return [`Buffered::new(handler)`](Buffered::new) as your
//! session: chunks are collected up to a size limit and the handler sees each complete
//! segment once.
//!
//! ```
//! use byoc_sdk::buffered::{Buffered, SegmentHandler};
//! use byoc_sdk::{Context, Error};
//!
//! struct Sizes;
//! impl SegmentHandler for Sizes {
//!     fn on_segment(&mut self, ctx: &Context<'_>, seq: u64, bytes: &[u8]) -> Result<(), Error> {
//!         ctx.publish_event(&serde_json::json!({"type": "size", "seq": seq, "bytes": bytes.len()}))
//!     }
//! }
//! let session = Buffered::new(Sizes).with_limit(8 * 1024 * 1024);
//! # let _ = session;
//! ```

use crate::{Context, Error, StreamSession};

/// Default cap on a buffered segment. Live segments are typically 0.1–2 MB; the cap keeps a
/// runaway input from growing the instance's memory without bound (wasm memory never
/// shrinks).
pub const DEFAULT_SEGMENT_LIMIT: usize = 32 * 1024 * 1024;

/// Handles whole input segments; wrap it in [`Buffered`] to make a [`StreamSession`].
pub trait SegmentHandler {
    /// A complete input segment.
    fn on_segment(&mut self, ctx: &Context<'_>, seq: u64, bytes: &[u8]) -> Result<(), Error>;

    /// A control message; the default answers [`Error::Unsupported`].
    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let _ = (ctx, message);
        Err(Error::unsupported("this capability takes no control messages"))
    }

    /// A timer tick asked for with [`Context::set_tick`]; the default does nothing.
    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// The stream is stopping; the default does nothing.
    fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }
}

/// A [`StreamSession`] that buffers each segment and hands it whole to a [`SegmentHandler`].
///
/// A segment larger than the limit is dropped: the chunk that crosses the limit fails with
/// [`Error::LimitExceeded`], later chunks of that segment are ignored, and the handler is
/// not called for it. The buffer's capacity is kept between segments to avoid reallocating.
#[derive(Debug)]
pub struct Buffered<H> {
    handler: H,
    limit: usize,
    buffer: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Collecting { seq: u64 },
    Overflowed,
}

impl<H: SegmentHandler> Buffered<H> {
    /// Buffers segments up to [`DEFAULT_SEGMENT_LIMIT`] bytes.
    ///
    /// ```
    /// # use byoc_sdk::{buffered::*, Context, Error};
    /// # struct H;
    /// # impl SegmentHandler for H {
    /// #     fn on_segment(&mut self, _: &Context<'_>, _: u64, _: &[u8]) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let session = Buffered::new(H);
    /// assert_eq!(session.limit(), DEFAULT_SEGMENT_LIMIT);
    /// ```
    pub fn new(handler: H) -> Self {
        Self { handler, limit: DEFAULT_SEGMENT_LIMIT, buffer: Vec::new(), state: State::Idle }
    }

    /// Sets the segment size limit in bytes.
    ///
    /// ```
    /// # use byoc_sdk::{buffered::*, Context, Error};
    /// # struct H;
    /// # impl SegmentHandler for H {
    /// #     fn on_segment(&mut self, _: &Context<'_>, _: u64, _: &[u8]) -> Result<(), Error> { Ok(()) }
    /// # }
    /// assert_eq!(Buffered::new(H).with_limit(10).limit(), 10);
    /// ```
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The segment size limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The wrapped handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The wrapped handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

impl<H: SegmentHandler> StreamSession for Buffered<H> {
    fn on_segment_start(&mut self, _ctx: &Context<'_>, seq: u64) -> Result<(), Error> {
        self.buffer.clear();
        self.state = State::Collecting { seq };
        Ok(())
    }

    fn on_chunk(&mut self, _ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Collecting { .. } => {}
            State::Overflowed => return Ok(()),
            State::Idle => return Err(Error::internal("chunk outside a segment")),
        }
        if self.buffer.len().saturating_add(bytes.len()) > self.limit {
            self.state = State::Overflowed;
            self.buffer.clear();
            return Err(Error::limit_exceeded(format!("segment larger than {} bytes; dropped", self.limit)));
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Collecting { seq } => {
                let result = self.handler.on_segment(ctx, seq, &self.buffer);
                self.buffer.clear();
                result
            }
            State::Overflowed => Ok(()),
            State::Idle => Err(Error::internal("segment end outside a segment")),
        }
    }

    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        self.handler.on_control(ctx, message)
    }

    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.handler.on_tick(ctx)
    }

    fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.handler.close(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Legs;
    use crate::testing::TestHost;

    struct Record(Vec<(u64, Vec<u8>)>);
    impl SegmentHandler for Record {
        fn on_segment(&mut self, _: &Context<'_>, seq: u64, bytes: &[u8]) -> Result<(), Error> {
            self.0.push((seq, bytes.to_vec()));
            Ok(())
        }
    }

    #[test]
    fn hands_over_whole_segments_and_drops_oversized_ones() {
        let host = TestHost::session(Legs::VIDEO_IN);
        let ctx = Context::new(&host);
        let mut s = Buffered::new(Record(Vec::new())).with_limit(4);

        s.on_segment_start(&ctx, 1).unwrap();
        s.on_chunk(&ctx, b"ab").unwrap();
        s.on_chunk(&ctx, b"cd").unwrap();
        s.on_segment_end(&ctx).unwrap();

        s.on_segment_start(&ctx, 2).unwrap();
        s.on_chunk(&ctx, b"abc").unwrap();
        assert!(matches!(s.on_chunk(&ctx, b"de"), Err(Error::LimitExceeded(_))));
        s.on_chunk(&ctx, b"f").unwrap();
        s.on_segment_end(&ctx).unwrap();

        s.on_segment_start(&ctx, 3).unwrap();
        s.on_segment_end(&ctx).unwrap();

        assert_eq!(s.handler().0, vec![(1, b"abcd".to_vec()), (3, Vec::new())]);
    }

    #[test]
    fn out_of_order_calls_are_errors_not_panics() {
        let host = TestHost::session(Legs::VIDEO_IN);
        let ctx = Context::new(&host);
        let mut s = Buffered::new(Record(Vec::new()));
        assert!(s.on_chunk(&ctx, b"x").is_err());
        assert!(s.on_segment_end(&ctx).is_err());
    }
}
