//! HTTP clients: a publisher and a subscriber that speak trickle to any compatible server
//! (ours, go-livepeer's).

mod publisher;
mod subscriber;

pub use publisher::{HttpPublisher, HttpSegmentWriter};
pub use subscriber::{HttpSegmentReader, HttpSubscriber, SubscriberOptions, SubscriberStep};

use std::sync::OnceLock;
use std::time::Duration;

use crate::error::ClientError;
use crate::headers;
use crate::seq::{MAX_SEQ, Seq};

/// The shared default HTTP client (HTTP/1.1 with streamed bodies, rustls for `https`), as the
/// clients use when none is given.
pub fn default_client() -> Result<reqwest::Client, ClientError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            client_builder()
                .connect_timeout(Duration::from_secs(5))
                .pool_idle_timeout(Duration::from_secs(60))
                .http1_only()
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ClientError::Protocol)
}

/// A `reqwest` client builder with the project's TLS provider (rustls with ring) installed.
/// Every HTTP client of the project is built from this: reqwest refuses to build one without a
/// provider.
pub fn client_builder() -> reqwest::ClientBuilder {
    // Several callers may race to install the provider; whichever wins is the same one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A seq header of a response. A value beyond [`MAX_SEQ`] is treated as missing (malformed): no
/// server of ours sends one, and `seq + 1` on it could overflow.
pub(crate) fn header_seq(resp: &reqwest::Response, name: &str) -> Option<Seq> {
    let v: u64 = resp.headers().get(name)?.to_str().ok()?.trim().parse().ok()?;
    (v <= MAX_SEQ).then_some(Seq(v))
}

pub(crate) fn is_closed(resp: &reqwest::Response) -> bool {
    resp.headers().contains_key(headers::CLOSED)
}

/// `url` without trailing slashes, so `{url}/{seq}` is well formed.
pub(crate) fn trim_url(url: impl Into<String>) -> String {
    let mut url = url.into();
    while url.ends_with('/') {
        url.pop();
    }
    url
}
