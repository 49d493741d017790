//! Error types of the store and of the clients.

use crate::seq::{Seq, SeqParseError};

/// Why a channel operation was refused. Each maps to one HTTP status (see `server.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The channel does not exist (404, `Stream not found`).
    #[error("Stream not found")]
    NoChannel,
    /// The channel name is empty, too long, `.` or `..`, or has a character outside
    /// `A-Z a-z 0-9 . _ -` (400).
    #[error("invalid channel name: 1 to 255 characters of A-Z a-z 0-9 . _ -, and not . or ..")]
    BadName,
    /// The mime type of a channel being created is over 255 bytes or not printable ASCII (400).
    #[error("invalid content type: at most 255 printable ASCII characters")]
    BadMime,
    /// The seq in the path is not acceptable for this request (400).
    #[error(transparent)]
    BadSeq(#[from] SeqParseError),
    /// `-2` was used where only `-1` or an explicit seq makes sense (400).
    #[error("invalid seq: -2 (current) cannot be published to")]
    CurrentOnPublish,
    /// The channel has been closed (end of stream: `Lp-Trickle-Closed`).
    #[error("channel closed")]
    Closed,
    /// The seq is older than the window the server keeps (470 with `Lp-Trickle-Latest`).
    #[error("seq {seq} is outside the window (latest {latest})")]
    OutsideWindow {
        /// The seq asked for.
        seq: Seq,
        /// The newest seq the channel holds.
        latest: Seq,
    },
    /// A publish more than a window ahead of the live edge (400): its slot would be the live
    /// edge's. With `-1`, every slot ahead is being written by another publisher.
    #[error("seq {seq} is too far ahead of the live edge (latest {latest}, at most {max})")]
    TooFarAhead {
        /// The seq asked for.
        seq: Seq,
        /// The newest seq the channel holds.
        latest: Seq,
        /// The highest seq a publish may name now.
        max: Seq,
    },
    /// `DELETE {ch}/{seq}` for a seq the server does not hold (400).
    #[error("Nonexistent segment")]
    NoSegment,
    /// The server's channel limit is reached (503).
    #[error("too many channels (limit {0})")]
    TooManyChannels(usize),
    /// The store's memory budget could not make room for the segment, even after dropping
    /// every ended segment it could; the segment was aborted (503).
    #[error("trickle memory budget of {0} bytes exhausted: segment refused")]
    OverBudget(usize),
    /// The segment exceeded the server's size cap and was aborted (413).
    #[error("segment larger than the {0}-byte cap")]
    TooLarge(usize),
}

/// Errors of the HTTP clients and of the local publisher/subscriber.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The channel does not exist (404): terminal.
    #[error("trickle channel not found")]
    NotFound,
    /// The channel was closed (end of stream).
    #[error("trickle channel closed")]
    Closed,
    /// The server refused the request.
    #[error("trickle server answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body of the answer, as text.
        message: String,
    },
    /// The publisher fell out of the server's window.
    #[error("seq {seq} is outside the window (latest {latest})")]
    OutsideWindow {
        /// The seq asked for.
        seq: Seq,
        /// The newest seq the channel holds.
        latest: Seq,
    },
    /// The segment being read was aborted by its publisher (or the connection broke mid-body).
    #[error("segment {0} was cut off before its end")]
    Aborted(Seq),
    /// A write on a segment whose upload already ended or failed.
    #[error("segment upload already ended")]
    WriteAfterEnd,
    /// Transport error (connection refused, reset, timeout…).
    #[error("trickle transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// A response lacked a header the protocol requires, or it was malformed.
    #[error("malformed trickle response: {0}")]
    Protocol(String),
    /// A store-level refusal (local clients).
    #[error(transparent)]
    Store(#[from] StoreError),
}
