//! Frame plugins: the host decodes a stream into video (and audio) frames, the plugin changes
//! them, and the host encodes what it returns (`frame-session` in the WIT).
//!
//! - [`FrameProcessor`]: the trait a frame plugin implements (typed params, `on_start`,
//!   `process_video`, `process_audio`, `update_params`, `on_tick`, `on_stop`), exported
//!   with `byoc_sdk::export!(frames MyPlugin)`;
//! - [`VideoFrame`] and [`AudioFrame`]: frames in plugin memory, one copy in from the host
//!   and one copy back of what changed;
//! - [`FrameNeeds`]: what the plugin asks for in
//!   [`CapabilityInfo::frames`](crate::CapabilityInfo::frames) (layout, maximum size and
//!   rate, audio); [`StreamInfo`]: what the host knows of the stream at its start;
//! - helpers, all plain Rust: [`convert`] (I420 ↔ RGB, BT.601 limited range; grayscale,
//!   luma), [`crop`], [`scale`], [`fill_rect`], [`draw_rect`] and [`draw_text`] with a
//!   built-in [`font`];
//! - [`FrameHarness`](crate::testing::FrameHarness) runs a frame plugin natively in
//!   `cargo test`.
//!
//! ```
//! use byoc_sdk::frames::{draw_text, convert, Color, PixelFormat, VideoFrame};
//!
//! let mut frame = VideoFrame::new(64, 16, PixelFormat::I420).unwrap();
//! draw_text(&mut frame, 2, 2, "12:34", 1, Color::WHITE);
//! let rgb = convert::convert(&frame, PixelFormat::Rgb24).unwrap();
//! assert_eq!(rgb.pixel_rgb(0, 0), Some([0, 0, 0]));
//! ```

mod audio;
pub mod convert;
mod draw;
pub mod font;
mod geometry;
mod needs;
mod processor;
mod video;

pub use audio::{AudioFrame, MAX_CHANNELS, MAX_SAMPLES_PER_CHANNEL};
pub use draw::{Color, draw_rect, fill_rect};
pub use font::{draw_text, text_size};
pub use geometry::{Filter, Rect, crop, fit_within, scale};
pub use needs::{AudioNeeds, FrameNeeds, StreamInfo, VideoNeeds};
pub use processor::FrameProcessor;
pub(crate) use processor::FrameSession;
pub use video::{MAX_BYTES, MAX_SIDE, PixelFormat, VideoFrame};
