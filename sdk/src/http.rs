//! Outbound HTTP requests and responses, sent with
//! [`Context::http`](crate::Context::http).
//!
//! In a wasm build they go through `wasi:http/outgoing-handler`, which the host restricts to
//! the hosts granted in the plugin's manifest; in the test harness a closure answers them.

use std::time::Duration;

use crate::types::{Header, find_header};
use crate::{Error, HttpError};

/// Default cap on a response body, so that a misbehaving worker cannot exhaust the plugin's
/// memory; raise it per request with [`HttpRequest::max_response_bytes`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// An HTTP method.
///
/// ```
/// assert_eq!(byoc_sdk::Method::Post.as_str(), "POST");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other method token.
    Other(String),
}

impl Method {
    /// The method as it appears on the wire.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Method::Other("PURGE".into()).as_str(), "PURGE");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Options => "OPTIONS",
            Self::Other(m) => m,
        }
    }
}

/// An outbound HTTP request.
///
/// ```
/// use byoc_sdk::{HttpRequest, Method};
/// use std::time::Duration;
///
/// let req = HttpRequest::new(Method::Post, "http://worker:8000/predict")
///     .header("content-type", "application/json")
///     .body(br#"{"x":1}"#.to_vec())
///     .timeout(Duration::from_secs(5));
/// assert_eq!(req.url, "http://worker:8000/predict");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Request headers.
    pub headers: Vec<Header>,
    /// Request body (may be empty).
    pub body: Vec<u8>,
    /// Connect and first-byte timeout; `None` leaves it to the host.
    pub timeout: Option<Duration>,
    /// Largest response body accepted; larger ones fail with [`HttpError::TooLarge`].
    pub max_response_bytes: usize,
}

impl HttpRequest {
    /// A request with no headers or body.
    ///
    /// ```
    /// let req = byoc_sdk::HttpRequest::new(byoc_sdk::Method::Get, "http://a/b");
    /// assert!(req.body.is_empty());
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Adds a header.
    ///
    /// ```
    /// let req = byoc_sdk::HttpRequest::new(byoc_sdk::Method::Get, "http://a/").header("a", "b");
    /// assert_eq!(req.headers.len(), 1);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// let req = byoc_sdk::HttpRequest::new(byoc_sdk::Method::Put, "http://a/").body(vec![1]);
    /// assert_eq!(req.body, [1]);
    /// ```
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Sets the timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let req = byoc_sdk::HttpRequest::new(byoc_sdk::Method::Get, "http://a/")
    ///     .timeout(Duration::from_millis(250));
    /// assert_eq!(req.timeout, Some(Duration::from_millis(250)));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the response size cap.
    ///
    /// ```
    /// let req = byoc_sdk::HttpRequest::new(byoc_sdk::Method::Get, "http://a/")
    ///     .max_response_bytes(1024);
    /// assert_eq!(req.max_response_bytes, 1024);
    /// ```
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The URL split into scheme, authority and path-with-query, or
    /// [`HttpError::InvalidRequest`].
    ///
    /// ```
    /// use byoc_sdk::{HttpRequest, Method, Scheme};
    /// let request = HttpRequest::new(Method::Get, "https://w:8443/a?b=1");
    /// let parts = request.url_parts().unwrap();
    /// assert_eq!(parts.scheme, Scheme::Https);
    /// assert_eq!(parts.authority, "w:8443");
    /// assert_eq!(parts.path_and_query, "/a?b=1");
    /// ```
    pub fn url_parts(&self) -> Result<UrlParts<'_>, HttpError> {
        UrlParts::parse(&self.url)
    }
}

/// URL scheme of an outbound request; only HTTP(S) is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

/// An absolute HTTP(S) URL split for `wasi:http`, which takes the parts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// Scheme.
    pub scheme: Scheme,
    /// `host[:port]` (userinfo is rejected).
    pub authority: &'a str,
    /// Path and query, starting with `/` (a missing path becomes `/`).
    pub path_and_query: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `url`; the fragment, if any, is dropped (it is never sent).
    ///
    /// ```
    /// use byoc_sdk::UrlParts;
    /// assert_eq!(UrlParts::parse("http://h").unwrap().path_and_query, "/");
    /// assert!(UrlParts::parse("ftp://h/").is_err());
    /// assert!(UrlParts::parse("http://user@h/").is_err());
    /// ```
    pub fn parse(url: &'a str) -> Result<Self, HttpError> {
        let invalid = |why: &str| HttpError::InvalidRequest(format!("{why}: {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("URL has no scheme"))?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(invalid("only http and https URLs are supported"));
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("URL has no host"));
        }
        // Credentials in URLs leak into logs; pass them in an Authorization header instead.
        if authority.contains('@') {
            return Err(invalid("URL must not contain credentials"));
        }
        if authority.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(invalid("URL host contains whitespace"));
        }
        let path_and_query = match path {
            "" => "/",
            p if p.starts_with('?') => return Err(invalid("URL has a query but no path")),
            p => p,
        };
        Ok(Self { scheme, authority, path_and_query })
    }
}

/// A response to an [`HttpRequest`].
///
/// ```
/// let resp = byoc_sdk::HttpResponse::new(200, b"{}".to_vec()).header("content-type", "application/json");
/// assert!(resp.is_success());
/// assert_eq!(resp.content_type(), Some("application/json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<Header>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and a body, no headers.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::HttpResponse::new(204, vec![]).status, 204);
    /// ```
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    /// Adds a header.
    ///
    /// ```
    /// let r = byoc_sdk::HttpResponse::new(200, vec![]).header("x", "1");
    /// assert_eq!(r.header_value("X"), Some("1"));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// The first value of a header, compared case-insensitively.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::HttpResponse::new(200, vec![]).header_value("x"), None);
    /// ```
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The `content-type` header.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::HttpResponse::new(200, vec![]).content_type(), None);
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.header_value("content-type")
    }

    /// Whether the status is 2xx.
    ///
    /// ```
    /// assert!(!byoc_sdk::HttpResponse::new(404, vec![]).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON, or [`Error::Upstream`] (a worker answering garbage is an
    /// upstream failure, not the plugin's).
    ///
    /// ```
    /// let r = byoc_sdk::HttpResponse::new(200, b"[1]".to_vec());
    /// assert_eq!(r.json::<Vec<u8>>().unwrap(), vec![1]);
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::upstream(format!("response is not the expected JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_split_and_reject() {
        let p = UrlParts::parse("HTTP://127.0.0.1:9000?x").err();
        assert!(p.is_some(), "query without path");
        let p = UrlParts::parse("http://127.0.0.1:9000/a/b?c#frag").ok();
        assert_eq!(p, Some(UrlParts { scheme: Scheme::Http, authority: "127.0.0.1:9000", path_and_query: "/a/b?c" }));
        for bad in ["", "http://", "http:///x", "//h/x", "h/x", "http://a b/"] {
            assert!(UrlParts::parse(bad).is_err(), "{bad:?}");
        }
    }
}
