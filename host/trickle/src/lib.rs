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

mod client;
mod error;
pub mod headers;
mod local;
mod segment;
mod seq;
mod server;
mod store;

pub use client::{
    HttpPublisher, HttpSegmentReader, HttpSegmentWriter, HttpSubscriber, SubscriberOptions,
    client_builder as http_client_builder, default_client as http_client,
};
pub use error::{ClientError, StoreError};
pub use local::{LocalPublisher, LocalSegmentReader, LocalSegmentWriter, LocalSubscriber};
pub use seq::{Seq, SeqRequest};
pub use server::router;
pub use store::{ChannelName, TrickleConfig, TrickleStore};
