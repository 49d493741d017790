use std::io;

/// Errors of the media legs.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A socket or pipe failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The `ffmpeg` child process could not be started or failed.
    #[error("ffmpeg: {0}")]
    Ffmpeg(String),
    /// The peer spoke the protocol wrongly (RTMP handshake, chunking, SDP, ...).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The publish was refused (unknown key, already publishing, ...).
    #[error("rejected: {0}")]
    Rejected(String),
    /// A configured cap on sessions or connections is reached; the message names the cap.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The consumer of the media went away.
    #[error("consumer closed")]
    Closed,
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
