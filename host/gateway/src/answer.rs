//! Reading an orchestrator's answer with a bound: the body (cut off at [`MAX_ANSWER_BYTES`]) and the
//! text of a refusal.

use axum::body::Bytes;
use futures_util::StreamExt;

/// The most of an orchestrator's answer the gateway reads whole (the answer to an update or a stop,
/// the text of a refusal); the rest is cut off.
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The body of an answer, cut off at [`MAX_ANSWER_BYTES`] (what came before a failure to read it).
pub(crate) async fn answer_body(resp: reqwest::Response) -> Bytes {
    let mut body = Vec::new();
    let mut chunks = resp.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    Bytes::from(body)
}

/// `"{status} {text}"` of a refusal (its text trimmed and bounded).
pub(crate) async fn refusal_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = answer_body(resp).await;
    format!("{status} {}", String::from_utf8_lossy(&text).trim())
}
