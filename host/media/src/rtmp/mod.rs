//! RTMP ingest (server), play (viewers pull from the server) and egress (push to a destination).

mod config;
mod connection;
mod fanout;
mod play;
mod publish;
mod push;
pub(crate) mod remux;
mod server;

pub use config::RtmpConfig;
pub use play::{PlayRequest, RtmpPlayAuthorizer};
pub use publish::{PublishRequest, RtmpAuthorizer};
pub use push::{PushAudio, PushConfig, PushStats, RtmpPush};
pub use server::RtmpServer;
pub(crate) use server::serve_one;
