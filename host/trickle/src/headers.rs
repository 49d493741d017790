//! Header names of the trickle protocol (exactly as on the wire).

/// The seq a GET response is for, or the seq a POST actually wrote.
pub const SEQ: &str = "Lp-Trickle-Seq";
/// The server's next write position (its live edge).
pub const LATEST: &str = "Lp-Trickle-Latest";
/// Present (value `terminated`) when the channel has been closed: end of stream.
pub const CLOSED: &str = "Lp-Trickle-Closed";
/// The value sent with [`CLOSED`].
pub const CLOSED_VALUE: &str = "terminated";
/// On `GET {ch}/next` (a byoc extension; other servers do not send it): the lowest seq a reader of
/// the channel is reading or about to ask for. Absent when the channel has no reader.
pub const SLOWEST_READER: &str = "Lp-Trickle-Slowest-Reader";
/// Publisher request header: close every segment older than this one first.
pub const RESET: &str = "Lp-Trickle-Reset";
/// Mime type of a channel created over HTTP.
pub const EXPECT_CONTENT: &str = "Expect-Content";
/// Status code meaning "the channel exists but that segment does not".
pub const STATUS_SEQ_NOT_FOUND: u16 = 470;
