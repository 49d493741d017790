//! Trickle: the HTTP segment pub/sub protocol that carries every byte of a BYOC stream.
//!
//! A *channel* is an ordered series of *segments* (`seq` 0, 1, 2, …). A publisher streams each
//! segment as one HTTP `POST {channel}/{seq}`; subscribers `GET {channel}/{seq}` and receive the
//! segment from byte 0, then live bytes as they are published. The server keeps a small window
//! of recent segments per channel. The wire format is compatible with go-livepeer's trickle
//! server and clients and with pytrickle.
//!
//! - [`TrickleStore`] holds channels and implements the sequence rules; [`router`] serves it
//!   over HTTP (mount it under any base path, e.g. `/ai/trickle`).
//! - [`LocalPublisher`] / [`LocalSubscriber`] attach to a store in-process with the same
//!   semantics and no HTTP.
//! - [`HttpPublisher`] / [`HttpSubscriber`] are the network clients.
//!
//! Limits (fields of [`TrickleConfig`]), and what a client that hits one gets:
//! - channel names are 1–255 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..` (400), and
//!   a channel's mime type at most 255 printable ASCII characters (400);
//! - seqs run from 0 to 2^53; `-1` and `-2` are the only negative forms (400); a publish may
//!   run ahead of the live edge by less than one `window` (400), and a read of a seq that left
//!   the window gets 470 with `Lp-Trickle-Latest`;
//! - `max_segment_bytes` per segment (413, the segment aborted);
//! - `max_buffered_bytes` for all channels together: over it, the oldest segments that have
//!   ended are dropped across all channels (counted by
//!   [`TrickleStore::segments_dropped_for_memory`]; a later read of one gets 470), and a publish
//!   that cannot fit even then gets 503 (its segment aborted);
//! - `max_channels` (503), and `idle_timeout` after which a quiet channel is closed.

mod client;
mod error;
pub mod headers;
mod local;
mod memory;
mod segment;
mod seq;
mod server;
mod store;

pub use client::{
    HttpPublisher, HttpSegmentReader, HttpSegmentWriter, HttpSubscriber, SubscriberOptions, SubscriberStep,
    client_builder as http_client_builder, default_client as http_client,
};
pub use error::{ClientError, StoreError};
pub use local::{LocalPublisher, LocalSegmentReader, LocalSegmentWriter, LocalSubscriber};
pub use seq::{Seq, SeqRequest};
pub use server::router;
pub use store::{ChannelName, TrickleConfig, TrickleStore};
