//! `{{name}}`: a batch plugin. `POST /process/request/{{name}}` with a JSON body
//! `{"text": "…"}` answers `{"text": "…", "words": n}` with the text in upper case.

use byoc_sdk::{Batch, CapabilityInfo, Context, Describe, Error, NoSession, Request, Response, Stream};
use serde::Deserialize;

/// Largest text accepted in one call: a bound on work and output per call.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: String,
}

/// The capability.
pub struct {{type}};

impl Describe for {{type}} {
    fn describe() -> CapabilityInfo {
        // The name, version and description come from Cargo.toml. No stream legs: batch only.
        CapabilityInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_DESCRIPTION"))
    }
}

impl Batch for {{type}} {
    fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let body: Body = request.json()?;
        if body.text.len() > MAX_TEXT_BYTES {
            return Err(Error::invalid_input(format!("text must be at most {MAX_TEXT_BYTES} bytes")));
        }
        Response::json(&serde_json::json!({
            "text": body.text.to_uppercase(),
            "words": body.text.split_whitespace().count(),
        }))
    }
}

// No streams: opening one answers `unsupported`.
impl Stream for {{type}} {
    type Session = NoSession;
}

byoc_sdk::export!({{type}});
