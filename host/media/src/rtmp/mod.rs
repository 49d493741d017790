//! RTMP ingest (server) and egress (push to a destination).

mod push;
mod server;

pub use push::{PushAudio, PushConfig, PushStats, RtmpPush};
pub use server::{PublishRequest, RtmpAuthorizer, RtmpConfig, RtmpServer};
