//! Typed errors, mirroring the `capability-error`, `publish-error` and `access-error`
//! variants of the WIT contract, plus [`HttpError`] for outbound HTTP.

/// Why a plugin call failed; what a plugin returns from its trait methods.
///
/// Each kind maps to an HTTP status for batch calls (noted per variant) and to an error event
/// for sessions. Build one with the helper constructors:
///
/// ```
/// use byoc_sdk::Error;
///
/// let e = Error::invalid_params("mode must be `upper` or `lower`");
/// assert_eq!(e.to_string(), "invalid params: mode must be `upper` or `lower`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Params or a control message are malformed or invalid (400).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// A request body or segment bytes cannot be processed (400).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The batch path names nothing this capability serves (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The capability does not offer this operation (501).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A needed grant (config key, secret, outbound host) is missing (403).
    #[error("denied: {0}")]
    Denied(String),
    /// An external service the capability relies on failed (502).
    #[error("upstream failure: {0}")]
    Upstream(String),
    /// A size limit of the capability was exceeded (413).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Any other failure inside the plugin (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidParams`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::invalid_params("x"), byoc_sdk::Error::InvalidParams(_)));
    /// ```
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::InvalidParams(message.into())
    }

    /// An [`Error::InvalidInput`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::invalid_input("x"), byoc_sdk::Error::InvalidInput(_)));
    /// ```
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// An [`Error::NotFound`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::not_found("/x"), byoc_sdk::Error::NotFound(_)));
    /// ```
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// An [`Error::Unsupported`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::unsupported("x"), byoc_sdk::Error::Unsupported(_)));
    /// ```
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// An [`Error::Denied`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::denied("x"), byoc_sdk::Error::Denied(_)));
    /// ```
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// An [`Error::Upstream`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::upstream("x"), byoc_sdk::Error::Upstream(_)));
    /// ```
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::Upstream(message.into())
    }

    /// An [`Error::LimitExceeded`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::limit_exceeded("x"), byoc_sdk::Error::LimitExceeded(_)));
    /// ```
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::LimitExceeded(message.into())
    }

    /// An [`Error::Internal`].
    ///
    /// ```
    /// assert!(matches!(byoc_sdk::Error::internal("x"), byoc_sdk::Error::Internal(_)));
    /// ```
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The HTTP status the host answers a failed batch call with.
    ///
    /// ```
    /// assert_eq!(byoc_sdk::Error::not_found("/x").http_status(), 404);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidParams(_) | Self::InvalidInput(_) => 400,
            Self::Denied(_) => 403,
            Self::NotFound(_) => 404,
            Self::LimitExceeded(_) => 413,
            Self::Internal(_) => 500,
            Self::Unsupported(_) => 501,
            Self::Upstream(_) => 502,
        }
    }
}

/// Why publishing output failed (`publish-error` in the WIT).
///
/// Converts into [`Error`] so plugin code can use `?`:
///
/// ```
/// use byoc_sdk::{Error, PublishError};
///
/// fn publish() -> Result<(), PublishError> { Err(PublishError::LegNotDeclared) }
/// fn on_chunk() -> Result<(), Error> { publish()?; Ok(()) }
/// assert!(matches!(on_chunk(), Err(Error::Internal(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Called outside a session (from `process` or `describe`).
    #[error("output is only available inside a session")]
    NotInSession,
    /// The leg was not declared in [`CapabilityInfo::legs`](crate::CapabilityInfo::legs).
    #[error("the output leg was not declared in describe()")]
    LegNotDeclared,
    /// Segment calls out of order (chunk/end without start, or start while open).
    #[error("output segment calls out of order")]
    OutOfOrder,
    /// Malformed payload (an event that is not a JSON object, a data line with a newline).
    #[error("invalid output: {0}")]
    Invalid(String),
    /// An output cap was hit.
    #[error("output limit exceeded: {0}")]
    LimitExceeded(String),
    /// The host closed the leg; further output is discarded.
    #[error("output leg closed")]
    Closed,
    /// Not available to this kind of session: a frame session cannot publish video
    /// segments (the host encodes the frames it returns).
    #[error("this output is not available to a frame session")]
    Unsupported,
}

impl From<PublishError> for Error {
    /// A plugin that publishes wrongly has a bug (`Internal`), except when it produced too
    /// much output (`LimitExceeded`).
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::LimitExceeded(m) => Self::LimitExceeded(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Why reading config or a secret failed (`access-error` in the WIT).
///
/// ```
/// use byoc_sdk::{AccessError, Error};
/// let e: Error = AccessError::NotGranted.into();
/// assert!(matches!(e, Error::Denied(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The key is not granted to this plugin (manifest or operator).
    #[error("key not granted to this plugin")]
    NotGranted,
}

impl From<AccessError> for Error {
    fn from(e: AccessError) -> Self {
        Self::Denied(e.to_string())
    }
}

/// Why an outbound HTTP request failed.
///
/// ```
/// use byoc_sdk::{Error, HttpError};
/// let e: Error = HttpError::Timeout.into();
/// assert!(matches!(e, Error::Upstream(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The destination is not granted to this plugin.
    #[error("request denied: {0}")]
    Denied(String),
    /// The request cannot be sent as given (bad URL, header, method).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The connection could not be made (DNS, refused, TLS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The peer did not answer in time.
    #[error("request timed out")]
    Timeout,
    /// The response body exceeded the request's limit.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// Any other protocol or transport failure.
    #[error("http failure: {0}")]
    Protocol(String),
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(m) => Self::Denied(format!("outbound http: {m}")),
            HttpError::InvalidRequest(m) => Self::Internal(format!("outbound http: {m}")),
            other => Self::Upstream(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_distinct_client_or_server_status() {
        let all = [
            Error::invalid_params(""),
            Error::invalid_input(""),
            Error::not_found(""),
            Error::unsupported(""),
            Error::denied(""),
            Error::upstream(""),
            Error::limit_exceeded(""),
            Error::internal(""),
        ];
        for e in &all {
            assert!((400..600).contains(&e.http_status()), "{e:?}");
        }
    }

    #[test]
    fn publish_limit_keeps_its_kind_other_publish_errors_are_bugs() {
        assert_eq!(Error::from(PublishError::LimitExceeded("cap".into())), Error::LimitExceeded("cap".into()));
        assert!(matches!(Error::from(PublishError::Closed), Error::Internal(_)));
    }
}
