//! The trickle HTTP server in process: a series of requests with any method, path, headers and body
//! (sent in chunks), some left running while later ones go (a subscriber waiting for a segment that a
//! later publish brings), against one store with small limits. Nothing may panic; every answer has a
//! status the protocol names, and no body is larger than a segment may be.
#![no_main]

use std::convert::Infallible;
use std::time::Duration;

use arbitrary::Arbitrary;
use axum::body::Body;
use byoc_trickle::{TrickleConfig, TrickleStore};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

#[derive(Arbitrary, Debug)]
enum Seq {
    Number(u8),
    Current,
    Next,
    Latest,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Target {
    Channel(u8),
    Segment(u8, Seq),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Header {
    ContentType(String),
    ExpectContent(String),
    Reset,
    Other(String, String),
}

#[derive(Arbitrary, Debug)]
struct Call {
    method: u8,
    target: Target,
    headers: Vec<Header>,
    body: Vec<Vec<u8>>,
    /// Left running while the next calls go; its answer is read at the end.
    background: bool,
}

const MAX_SEGMENT: usize = 4096;
const STATUSES: [u16; 9] = [200, 400, 404, 405, 413, 470, 500, 503, 415];

fuzz_target!(|calls: Vec<Call>| {
    byoc_fuzz::paused_runtime().block_on(async {
        let config = TrickleConfig {
            window: 3,
            max_segment_bytes: MAX_SEGMENT,
            max_buffered_bytes: 16 * 1024,
            max_channels: 4,
            idle_timeout: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(1),
            autocreate: true,
        };
        let store = TrickleStore::new(config);
        let sweeper = store.spawn_sweeper();
        let router = byoc_trickle::router(store.clone());
        let mut running = Vec::new();
        for call in calls.into_iter().take(32) {
            let Some(request) = request(call.method, &call.target, call.headers, call.body) else { continue };
            let answer = tokio::spawn(answer(router.clone().oneshot(request)));
            if call.background {
                running.push(answer);
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
            }
        }
        for answer in running {
            let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
        }
        sweeper.abort();
    });
});

fn request(method: u8, target: &Target, headers: Vec<Header>, body: Vec<Vec<u8>>) -> Option<Request<Body>> {
    let method =
        [Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::HEAD][usize::from(method) % 5].clone();
    let channel = |c: &u8| ["a", "b", "_c", "d-1", "..", "e.f"][usize::from(*c) % 6];
    let uri = match target {
        Target::Channel(c) => format!("/{}", channel(c)),
        Target::Segment(c, seq) => {
            let seq = match seq {
                Seq::Number(n) => n.to_string(),
                Seq::Current => "-1".into(),
                Seq::Next => "-2".into(),
                Seq::Latest => "next".into(),
                Seq::Raw(s) => s.clone(),
            };
            format!("/{}/{seq}", channel(c))
        }
        Target::Raw(s) => s.clone(),
    };
    let mut builder = Request::builder().method(method).uri(uri);
    for header in headers.into_iter().take(8) {
        builder = match header {
            Header::ContentType(v) => builder.header("content-type", v),
            Header::ExpectContent(v) => builder.header("expect-content", v),
            Header::Reset => builder.header("lp-trickle-reset", "1"),
            Header::Other(k, v) => builder.header(k, v),
        };
    }
    let chunks = body.into_iter().take(8).map(|c| Ok::<_, Infallible>(Bytes::from(c)));
    builder.body(Body::from_stream(futures_util::stream::iter(chunks))).ok()
}

async fn answer(response: impl Future<Output = Result<axum::response::Response, Infallible>>) {
    let Ok(response) = response.await;
    let status = response.status();
    assert!(STATUSES.contains(&status.as_u16()), "unexpected status {status}");
    let Ok(body) = response.into_body().collect().await else { return };
    if status == StatusCode::OK {
        assert!(body.to_bytes().len() <= MAX_SEGMENT, "a body larger than a segment may be");
    }
}
