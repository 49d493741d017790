//! The route of a batch job: what follows `/process/request/` in the client's URL.
//!
//! It is forwarded (gateway → orchestrator → worker or plugin), so it is never joined into a URL as
//! text: a `..` segment, or an encoded `/`, would let a client climb out of `/process/request/` and
//! have the gateway sign a request to another route of the orchestrator (e.g. `/ai/stream/stop`).
//! The route is a list of segments, each checked once decoded, and written out percent-encoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Most segments a batch route may have.
const MAX_SEGMENTS: usize = 32;
/// Longest raw batch route accepted.
const MAX_LEN: usize = 2048;

/// Bytes written as they are in a segment; everything else is percent-encoded (so `.` survives,
/// but `/`, `\`, `%`, `?` and `#` never appear raw).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A checked batch route: one or more segments, none empty, `.` or `..`, none holding `/` or `\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPath(Vec<String>);

impl BatchPath {
    /// Parses the still percent-encoded route (the request path after `/process/request/`); the
    /// error is the message of the 400 answer.
    pub fn parse(raw: &str) -> Result<BatchPath, &'static str> {
        if raw.len() > MAX_LEN {
            return Err("batch path too long");
        }
        let mut segments = Vec::new();
        for part in raw.split('/') {
            let seg = percent_decode_str(part).decode_utf8().map_err(|_| "batch path is not UTF-8")?;
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err("batch path segments may not be empty, '.' or '..'");
            }
            if seg.contains(['/', '\\']) || part.contains('\\') {
                return Err("batch path segments may not hold '/' or '\\'");
            }
            if seg.chars().any(char::is_control) {
                return Err("batch path segments may not hold control characters");
            }
            segments.push(seg.into_owned());
        }
        if segments.len() > MAX_SEGMENTS {
            return Err("batch path has too many segments");
        }
        Ok(BatchPath(segments))
    }

    /// The route below `/process/request/` of the full request path `path` (still encoded).
    pub fn from_request_path(path: &str) -> Result<BatchPath, &'static str> {
        let raw = path.strip_prefix("/process/request/").ok_or("not a batch path")?;
        BatchPath::parse(raw)
    }

    /// The route, percent-encoded, without a leading `/` (to append to a base URL ending in `/`).
    pub fn encoded(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
        parts.join("/")
    }

    /// The route as a plugin sees it: decoded segments joined by `/`, with a leading `/`.
    pub fn decoded(&self) -> String {
        format!("/{}", self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::BatchPath;

    #[test]
    fn plain_and_nested_routes_pass_and_round_trip() {
        assert_eq!(BatchPath::parse("echo").unwrap().encoded(), "echo");
        let p = BatchPath::parse("v1/text%20to%20image/x.json").unwrap();
        assert_eq!(p.encoded(), "v1/text%20to%20image/x.json");
        assert_eq!(p.decoded(), "/v1/text to image/x.json");
        assert_eq!(BatchPath::parse("a..b/.hidden").unwrap().encoded(), "a..b/.hidden");
    }

    #[test]
    fn climbing_or_hidden_separators_are_refused() {
        for bad in [
            "..",
            ".",
            "../../ai/stream/stop",
            "a/../../ai/stream/stop",
            "..%2f..%2fai%2fstream%2fstop",
            "..%2F..%2Fai",
            "%2e%2e/%2e%2e/ai/stream/stop",
            "%2E%2e/x",
            "a%5c..%5c..%5cai",
            "a\\..\\b",
            "",
            "a//b",
            "a/",
            "/a",
            "%ff%fe",
            "a%00b",
            "a%0d%0aHost:%20x",
        ] {
            assert!(BatchPath::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(BatchPath::parse(&"a/".repeat(40)).is_err());
        assert!(BatchPath::parse(&"a".repeat(4000)).is_err());
    }

    #[test]
    fn encoding_never_yields_a_dot_segment_or_separator() {
        // Whatever was accepted, its encoded form is the same segments, with no raw separator.
        for ok in ["a%2e", "%2e%2e%2e", "x%3fy%23z", "caf%C3%A9", "a%25b"] {
            let p = BatchPath::parse(ok).unwrap();
            let again = BatchPath::parse(&p.encoded()).unwrap();
            assert_eq!(again, p, "{ok}");
            assert!(!p.encoded().contains(['?', '#', '\\']), "{ok}: {}", p.encoded());
        }
    }
}
