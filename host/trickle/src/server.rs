//! The trickle HTTP server: an axum router over a [`TrickleStore`].
//!
//! Routes (relative to wherever the router is mounted):
//! `POST {ch}` create, `DELETE {ch}` close, `POST {ch}/{seq}` publish, `GET {ch}/{seq}` subscribe,
//! `GET {ch}/next` live edge (and, a byoc extension, the slowest reader: `?wait_reader=SEQ` waits for
//! it to reach SEQ), `DELETE {ch}/{seq}` end one segment. Status codes follow
//! go-livepeer's server, except that every refusal it would panic on is a 4xx here, and the
//! limits it lacks have their own: 400 for a bad channel name or a publish a window or more
//! ahead of the live edge, 413 for an oversized segment, 503 when the store's memory budget
//! cannot take a segment (or the channel limit is reached).

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;

use crate::error::StoreError;
use crate::headers;
use crate::segment::First;
use crate::seq::{Seq, SeqRequest};
use crate::store::{Channel, ChannelName, ReadHandle, ReadOutcome, TrickleStore};

const DEFAULT_MIME: &str = "application/octet-stream";

/// The trickle routes over `store`. Mount it anywhere, e.g.
/// `Router::new().nest("/ai/trickle", byoc_trickle::router(store))`.
pub fn router(store: TrickleStore) -> Router {
    Router::new()
        .route("/{channel}", post(create).delete(delete_channel))
        .route("/{channel}/{seq}", get(subscribe).post(publish).delete(delete_segment))
        .with_state(store)
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn status_470() -> StatusCode {
    StatusCode::from_u16(headers::STATUS_SEQ_NOT_FOUND).unwrap_or(StatusCode::NOT_FOUND)
}

fn set(h: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(name, v);
    }
}

/// The response for a store refusal.
fn refusal(e: StoreError) -> Response {
    let status = match &e {
        StoreError::NoChannel => StatusCode::NOT_FOUND,
        StoreError::BadName
        | StoreError::BadMime
        | StoreError::BadSeq(_)
        | StoreError::CurrentOnPublish
        | StoreError::NoSegment
        | StoreError::TooFarAhead { .. } => StatusCode::BAD_REQUEST,
        StoreError::TooManyChannels(_) | StoreError::OverBudget(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::OutsideWindow { .. } => status_470(),
        StoreError::Closed => StatusCode::OK,
    };
    let mut resp = text(status, e.to_string());
    let h = resp.headers_mut();
    match e {
        StoreError::OutsideWindow { seq, latest } | StoreError::TooFarAhead { seq, latest, .. } => {
            set(h, headers::LATEST, latest);
            set(h, headers::SEQ, seq);
        }
        StoreError::Closed => set(h, headers::CLOSED, headers::CLOSED_VALUE),
        _ => {}
    }
    resp
}

fn mime_from(h: &HeaderMap, name: http::HeaderName) -> String {
    h.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).unwrap_or(DEFAULT_MIME).to_string()
}

/// The channel, created on the fly when the server allows it.
fn lookup(
    store: &TrickleStore,
    name: &str,
    create_mime: Option<String>,
) -> Result<std::sync::Arc<Channel>, StoreError> {
    match (store.channel(name), create_mime) {
        (Err(StoreError::NoChannel), Some(mime)) if store.config().autocreate => {
            store.get_or_create(&ChannelName::new(name)?, &mime)
        }
        (r, _) => r,
    }
}

async fn create(State(store): State<TrickleStore>, Path(name): Path<String>, h: HeaderMap) -> Response {
    match lookup(&store, &name, Some(mime_from(&h, http::HeaderName::from_static("expect-content")))) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => refusal(e),
    }
}

async fn delete_channel(State(store): State<TrickleStore>, Path(name): Path<String>) -> Response {
    match store.delete_channel(&name) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => refusal(e),
    }
}

async fn delete_segment(State(store): State<TrickleStore>, Path((name, seq)): Path<(String, String)>) -> Response {
    let ch = match store.channel(&name) {
        Ok(ch) => ch,
        Err(e) => return refusal(e),
    };
    match seq.parse() {
        Ok(SeqRequest::At(seq)) => match ch.close_segment(seq) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e) => refusal(e),
        },
        _ => text(StatusCode::BAD_REQUEST, "Invalid idx"),
    }
}

async fn publish(
    State(store): State<TrickleStore>,
    Path((name, seq)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> Response {
    let mut resp = publish_inner(&store, &name, &seq, &h, body).await;
    if resp.status() != StatusCode::OK || resp.headers().contains_key(headers::CLOSED) {
        // The request body may be unread: do not reuse this connection.
        resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn publish_inner(store: &TrickleStore, name: &str, seq: &str, h: &HeaderMap, body: Body) -> Response {
    let req: SeqRequest = match seq.parse() {
        Ok(r) => r,
        Err(e) => return refusal(StoreError::BadSeq(e)),
    };
    let ch = match lookup(store, name, Some(mime_from(h, CONTENT_TYPE))) {
        Ok(ch) => ch,
        Err(e) => return refusal(e),
    };
    let mut writer = match ch.open_write(req, h.contains_key(headers::RESET)) {
        Ok(w) => w,
        Err(e) => return refusal(e),
    };
    let seq = writer.seq();
    let seg_end = writer.ended_waiter();
    tokio::pin!(seg_end);
    let mut body = body;
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                None => {
                    writer.finish();
                    return ok_with_seq(&ch, seq);
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    match writer.write(data) {
                        Ok(()) => {}
                        Err(StoreError::NoSegment) => return ok_with_seq(&ch, seq),
                        Err(e) => {
                            tracing::debug!(channel = %ch.name, %seq, error = %e, "trickle publish refused");
                            return with_seq(refusal(e), seq);
                        }
                    }
                }
                Some(Err(e)) => {
                    // The publisher went away mid-body; dropping the writer aborts the segment.
                    tracing::debug!(channel = %ch.name, %seq, error = %e, "trickle publish body failed");
                    drop(writer);
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "Server error");
                }
            },
            () = &mut seg_end => {
                // Ended by a reset, a `DELETE {ch}/{seq}`, eviction, channel close, or another
                // publisher of this seq completing it while this one sent nothing.
                return ok_with_seq(&ch, seq);
            }
        }
    }
}

fn with_seq(mut resp: Response, seq: Seq) -> Response {
    set(resp.headers_mut(), headers::SEQ, seq);
    resp
}

fn ok_with_seq(ch: &Channel, seq: Seq) -> Response {
    let mut resp = with_seq(StatusCode::OK.into_response(), seq);
    if ch.is_closed() {
        set(resp.headers_mut(), headers::CLOSED, headers::CLOSED_VALUE);
    }
    resp
}

async fn subscribe(
    State(store): State<TrickleStore>,
    Path((name, seq)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let ch = match store.channel(&name) {
        Ok(ch) => ch,
        Err(e) => return refusal(e),
    };
    if seq == "next" {
        return live_edge(&ch, query.as_deref()).await;
    }
    let req: SeqRequest = match seq.parse() {
        Ok(r) => r,
        Err(e) => return refusal(StoreError::BadSeq(e)),
    };
    match ch.open_read(req) {
        ReadOutcome::Closed { seq, latest } => {
            let mut resp = text(StatusCode::OK, "Entry not found");
            let h = resp.headers_mut();
            set(h, headers::LATEST, latest);
            set(h, headers::SEQ, seq);
            set(h, headers::CLOSED, headers::CLOSED_VALUE);
            resp
        }
        ReadOutcome::NotFound { seq, latest } => {
            let mut resp = text(status_470(), "Entry not found");
            let h = resp.headers_mut();
            set(h, headers::LATEST, latest);
            set(h, headers::SEQ, seq);
            resp
        }
        ReadOutcome::Segment { seg, latest } => serve_segment(&ch, ReadHandle::tracked(seg, &ch), latest).await,
    }
}

/// Longest a `GET {ch}/next?wait_reader=SEQ` waits before answering with the slowest reader as it
/// is; the client asks again.
const WAIT_READER_LIMIT: Duration = Duration::from_secs(5);

/// `GET {ch}/next`: the live edge, and where the slowest reader is. With `?wait_reader=SEQ` it first
/// waits (at most [`WAIT_READER_LIMIT`]) until no reader is behind SEQ, which is how a publisher
/// keeps within reach of its readers (`byoc trickle publish --max-ahead N`).
async fn live_edge(ch: &Channel, query: Option<&str>) -> Response {
    let wait_for = query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("wait_reader="));
    let slowest = match wait_for.map(str::parse::<u64>) {
        None => ch.readers.slowest(),
        Some(Ok(seq)) => ch.readers.wait_until_past(Seq(seq), WAIT_READER_LIMIT).await,
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "wait_reader must be a seq (a non-negative integer)"),
    };
    let latest = ch.latest();
    let mut resp = latest.to_string().into_response();
    set(resp.headers_mut(), headers::LATEST, latest);
    if let Some(slowest) = slowest {
        set(resp.headers_mut(), headers::SLOWEST_READER, slowest);
    }
    resp
}

/// Streams one segment. Nothing, not even the status line, is sent before the first byte (or
/// the segment's end), as go-livepeer does; the body starts at byte 0 of the segment.
async fn serve_segment(ch: &Channel, mut rh: ReadHandle, latest: Seq) -> Response {
    let seq = rh.seg.seq();
    let first = rh.cursor.first().await;
    let mut resp = match first {
        First::Data | First::Aborted => {
            let stream = futures_util::stream::unfold(Some(rh), |rh| async move {
                let mut rh = rh?;
                match rh.cursor.next().await {
                    Some(Ok(bytes)) => Some((Ok::<Bytes, io::Error>(bytes), Some(rh))),
                    // Cut the response short: the client sees a broken body, never a whole one.
                    Some(Err(e)) => Some((Err(io::Error::other(e)), None)),
                    None => {
                        rh.completed();
                        None
                    }
                }
            })
            .boxed();
            let mut resp = Response::new(Body::from_stream(stream));
            if latest != seq {
                set(resp.headers_mut(), headers::LATEST, latest);
            }
            if let Ok(v) = HeaderValue::from_str(&ch.mime) {
                resp.headers_mut().insert(CONTENT_TYPE, v);
            }
            resp
        }
        First::Empty => {
            rh.completed();
            let mut resp = StatusCode::OK.into_response();
            set(resp.headers_mut(), headers::LATEST, ch.latest());
            if ch.is_closed() {
                set(resp.headers_mut(), headers::CLOSED, headers::CLOSED_VALUE);
            }
            resp
        }
    };
    set(resp.headers_mut(), headers::SEQ, seq);
    resp
}
