//! `text-transform`: a batch and data-only capability on text.
//!
//! Modes: `upper`, `lower`, `reverse` (reverses Unicode scalar values, so combining marks
//! move with their neighbours) and `word-count` (words, lines, characters).
//!
//! - **Batch**: the default route, `POST /process/request/text-transform` (what the Livepeer
//!   SDK's `submit_byoc_job` calls; `/` works too), takes the mode from the JSON body
//!   (default `upper`); `POST /{mode}` or `/text-transform/{mode}` names it in the path. The
//!   body is either `text/plain` or JSON `{"text": "...", "mode": "upper", "stream": false}`.
//!   The answer is JSON; with `"stream": true` or `accept: text/event-stream` it is a series
//!   of server-sent events, one per input line, then `[DONE]`.
//! - **Stream** (data and events legs, no video): a control message is a params update and
//!   may carry text, e.g. `{"mode": "lower", "text": "ABC"}`: the params change first (and an
//!   event `text-transform.params` reports it), then the text is transformed and published
//!   as a data line.

use byoc_sdk::{
    Batch, CapabilityInfo, Context, Describe, Error, Legs, Request, Response, SseEvent, Stream, StreamSession, params,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Largest text accepted in one call; a bound on work and output per call.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// What to do with the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Uppercase.
    #[default]
    Upper,
    /// Lowercase.
    Lower,
    /// Reverse the characters.
    Reverse,
    /// Count words, lines and characters.
    WordCount,
}

/// The capability's name; a batch path that is just this name is the default route.
pub const NAME: &str = "text-transform";

/// The mode names, as the body's `mode` and the routes spell them.
const MODES: &str = "upper, lower, reverse or word-count";

impl Mode {
    /// The mode called `name` (`upper`, `lower`, `reverse`, `word-count`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "upper" => Some(Self::Upper),
            "lower" => Some(Self::Lower),
            "reverse" => Some(Self::Reverse),
            "word-count" => Some(Self::WordCount),
            _ => None,
        }
    }

    /// The mode a batch route below the capability's name names (see [`Request::route_below`]):
    /// `None` for the default route (`/`, from `/text-transform`), the mode of `/{mode}` (from
    /// `/{mode}` or `/text-transform/{mode}`).
    fn from_route(route: &str) -> Result<Option<Self>, Error> {
        match route.trim_matches('/') {
            "" => Ok(None),
            name => Self::from_name(name).map(Some).ok_or_else(|| {
                Error::not_found(format!(
                    "no mode {name:?}; POST to /{NAME} with the mode in the JSON body, or to /{NAME}/{{mode}} \
                     with a mode of {MODES}"
                ))
            }),
        }
    }

    /// Transforms `text`, as a JSON object: `{"mode", "text"}` or `{"mode", "words",
    /// "lines", "chars"}` for `word-count`.
    pub fn apply(self, text: &str) -> Value {
        match self {
            Self::Upper => json!({"mode": self, "text": text.to_uppercase()}),
            Self::Lower => json!({"mode": self, "text": text.to_lowercase()}),
            Self::Reverse => json!({"mode": self, "text": text.chars().rev().collect::<String>()}),
            Self::WordCount => json!({
                "mode": self,
                "words": text.split_whitespace().count(),
                "lines": text.lines().count(),
                "chars": text.chars().count(),
            }),
        }
    }
}

/// Session params; control messages merge into them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// The transform applied to text.
    pub mode: Mode,
}

const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "mode": {"enum": ["upper", "lower", "reverse", "word-count"], "default": "upper"}
  }
}"#;

/// A JSON batch body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    text: String,
    /// Read as text so that an unknown mode gets an answer naming the modes.
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    stream: bool,
}

impl BatchBody {
    fn mode(&self) -> Result<Option<Mode>, Error> {
        let Some(name) = self.mode.as_deref() else { return Ok(None) };
        match Mode::from_name(name) {
            Some(mode) => Ok(Some(mode)),
            None => Err(Error::invalid_input(format!("unknown mode {name:?}; the mode is one of {MODES}"))),
        }
    }
}

/// The capability.
pub struct TextTransform;

impl Describe for TextTransform {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new(NAME, env!("CARGO_PKG_VERSION"), "Transforms text: upper, lower, reverse, word count")
            .capacity(256)
            .legs(Legs::DATA | Legs::EVENTS)
            .params_schema(PARAMS_SCHEMA)
    }
}

fn check_size(text: &str) -> Result<(), Error> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::limit_exceeded(format!("text of {} bytes exceeds {MAX_TEXT_BYTES}", text.len())));
    }
    Ok(())
}

impl Batch for TextTransform {
    fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let route_mode = Mode::from_route(request.route_below(NAME))?;
        let wants_sse = request.header("accept").is_some_and(|a| a.contains("text/event-stream"));
        let is_json = request.content_type.starts_with("application/json");
        let (text, body_mode, stream) = if is_json {
            let body: BatchBody = request.json()?;
            let mode = body.mode()?;
            (body.text, mode, body.stream)
        } else {
            (request.text()?.to_owned(), None, false)
        };
        check_size(&text)?;
        let mode = route_mode.or(body_mode).unwrap_or_default();

        if stream || wants_sse {
            let mut events = text
                .lines()
                .enumerate()
                .map(|(line, content)| {
                    let mut value = mode.apply(content);
                    if let Some(object) = value.as_object_mut() {
                        object.insert("line".to_owned(), json!(line));
                    }
                    SseEvent::json(&value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Livepeer's SSE convention: a final `[DONE]` tells the client the answer is
            // complete.
            events.push(SseEvent::data("[DONE]"));
            Ok(Response::events(events))
        } else {
            Response::json(&mode.apply(&text))
        }
    }
}

impl Stream for TextTransform {
    type Session = TextSession;

    fn open(_ctx: &Context<'_>, params: &str) -> Result<TextSession, Error> {
        Ok(TextSession { params: params::parse(params)?, published: 0 })
    }
}

/// One data-only stream.
pub struct TextSession {
    params: Params,
    published: u64,
}

impl TextSession {
    /// The current params.
    pub fn params(&self) -> Params {
        self.params
    }
}

impl StreamSession for TextSession {
    fn on_segment_start(&mut self, _ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
        Err(Error::unsupported("text-transform takes text in control messages, not video"))
    }

    fn on_chunk(&mut self, _ctx: &Context<'_>, _bytes: &[u8]) -> Result<(), Error> {
        Err(Error::unsupported("text-transform takes text in control messages, not video"))
    }

    fn on_segment_end(&mut self, _ctx: &Context<'_>) -> Result<(), Error> {
        Err(Error::unsupported("text-transform takes text in control messages, not video"))
    }

    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let mut patch: Value = params::parse(message)?;
        let object =
            patch.as_object_mut().ok_or_else(|| Error::invalid_params("a control message must be a JSON object"))?;
        let text = match object.remove("text") {
            None => None,
            Some(Value::String(text)) => Some(text),
            Some(_) => return Err(Error::invalid_params("`text` must be a string")),
        };
        if let Some(text) = &text {
            check_size(text)?;
        }
        if !object.is_empty() {
            let params = params::merge(&self.params, &patch.to_string())?;
            if params != self.params {
                self.params = params;
                ctx.publish_event(&json!({"type": "text-transform.params", "params": params}))?;
            }
        }
        if let Some(text) = text {
            let mut line = self.params.mode.apply(&text);
            if let Some(object) = line.as_object_mut() {
                object.insert("seq".to_owned(), json!(self.published));
            }
            ctx.publish_data_json(&line)?;
            self.published += 1;
        }
        Ok(())
    }
}

byoc_sdk::export!(TextTransform);

#[cfg(test)]
mod tests {
    use byoc_sdk::testing::Harness;
    use byoc_sdk::{Body, sse};

    use super::*;

    type TestResult = Result<(), Error>;

    fn json_body(response: &Response) -> Value {
        match &response.body {
            Body::Bytes(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            Body::Events(_) => Value::Null,
        }
    }

    #[test]
    fn every_mode_transforms_as_documented() {
        let text = "Hello wörld\nsecond line";
        assert_eq!(Mode::Upper.apply(text)["text"], "HELLO WÖRLD\nSECOND LINE");
        assert_eq!(Mode::Lower.apply(text)["text"], "hello wörld\nsecond line");
        assert_eq!(Mode::Reverse.apply("abç")["text"], "çba");
        let counts = Mode::WordCount.apply(text);
        assert_eq!((&counts["words"], &counts["lines"], &counts["chars"]), (&json!(4), &json!(2), &json!(23)));
    }

    #[test]
    fn batch_takes_mode_from_path_then_body_then_default() -> TestResult {
        let harness = Harness::<TextTransform>::new();
        let plain = harness.process(Request::new("/lower", "text/plain", b"ABC".to_vec()))?;
        assert_eq!(json_body(&plain)["text"], "abc");

        let body = br#"{"text": "abc", "mode": "reverse"}"#.to_vec();
        let from_body = harness.process(Request::new("/", "application/json", body))?;
        assert_eq!(json_body(&from_body)["text"], "cba");

        let default = harness.process(Request::new("", "text/plain", b"abc".to_vec()))?;
        assert_eq!(json_body(&default)["text"], "ABC");
        Ok(())
    }

    /// What the Livepeer SDK's `submit_byoc_job` sends: `POST /process/request/text-transform`
    /// (the plugin sees `/text-transform`) with the JSON payload.
    #[test]
    fn the_capability_name_is_the_default_route_with_the_mode_from_the_body() -> TestResult {
        let harness = Harness::<TextTransform>::new();
        let sdk = |body: &str| harness.process(Request::new("/text-transform", "application/json", body.into()));

        let upper = sdk(r#"{"text": "hello byoc", "mode": "upper"}"#)?;
        assert_eq!(json_body(&upper), json!({"mode": "upper", "text": "HELLO BYOC"}));
        assert_eq!(json_body(&sdk(r#"{"text": "hello byoc"}"#)?)["text"], "HELLO BYOC", "upper by default");
        assert_eq!(json_body(&sdk(r#"{"text": "Hello", "mode": "lower"}"#)?)["text"], "hello");
        assert_eq!(json_body(&sdk(r#"{"text": "abc", "mode": "reverse"}"#)?)["text"], "cba");
        assert_eq!(json_body(&sdk(r#"{"text": "a b c", "mode": "word-count"}"#)?)["words"], 3);

        // The mode may follow the name in the path, and the old routes still work.
        let named = harness.process(Request::new("/text-transform/lower", "text/plain", b"ABC".to_vec()))?;
        assert_eq!(json_body(&named)["text"], "abc");
        let plain = harness.process(Request::new("/reverse", "text/plain", b"abc".to_vec()))?;
        assert_eq!(json_body(&plain)["text"], "cba");

        // An unknown mode is the client's mistake (400), and the answer names the modes.
        match sdk(r#"{"text": "x", "mode": "shout"}"#) {
            Err(e @ Error::InvalidInput(_)) => {
                assert_eq!(e.http_status(), 400);
                assert!(e.to_string().contains(r#""shout""#), "{e}");
                assert!(e.to_string().contains("upper, lower, reverse or word-count"), "{e}");
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
        // Another capability's name is not a mode.
        let other = harness.process(Request::new("/text-transformer", "text/plain", b"x".to_vec()));
        assert!(matches!(other, Err(Error::NotFound(_))), "{other:?}");
        Ok(())
    }

    #[test]
    fn batch_streams_one_event_per_line_then_done() -> TestResult {
        let harness = Harness::<TextTransform>::new();
        let request =
            Request::new("/upper", "text/plain", b"a b\nc".to_vec()).with_header("Accept", "text/event-stream");
        let response = harness.process(request)?;
        let Body::Events(events) = &response.body else {
            return Err(Error::internal("expected events"));
        };
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(
            data,
            [r#"{"line":0,"mode":"upper","text":"A B"}"#, r#"{"line":1,"mode":"upper","text":"C"}"#, "[DONE]"]
        );
        // What the host puts on the wire parses back to the same events.
        assert_eq!(&sse::parse(&sse::encode(events)), events);
        Ok(())
    }

    #[test]
    fn batch_rejects_bad_input_with_typed_errors() {
        let harness = Harness::<TextTransform>::new();
        let cases = [
            (Request::new("/shout", "text/plain", b"x".to_vec()), "not-found"),
            (Request::new("/", "text/plain", vec![0xff, 0xfe]), "invalid-input"),
            (Request::new("/", "application/json", b"{\"txt\":1}".to_vec()), "invalid-input"),
            (Request::new("/", "text/plain", vec![b'a'; MAX_TEXT_BYTES + 1]), "limit-exceeded"),
        ];
        for (request, expected) in cases {
            let kind = match harness.process(request) {
                Err(Error::NotFound(_)) => "not-found",
                Err(Error::InvalidInput(_)) => "invalid-input",
                Err(Error::LimitExceeded(_)) => "limit-exceeded",
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(kind, expected);
        }
    }

    #[test]
    fn control_messages_change_the_mode_live_and_carry_text() -> TestResult {
        let harness = Harness::<TextTransform>::new();
        let mut session = harness.open(r#"{"mode": "upper"}"#)?;
        session.control(r#"{"text": "abc"}"#)?;
        session.control(r#"{"mode": "reverse", "text": "abc"}"#)?;
        session.control(r#"{"mode": "word-count"}"#)?;
        session.control(r#"{"text": "one two three"}"#)?;
        assert!(matches!(session.control(r#"{"mode": "sideways"}"#), Err(Error::InvalidParams(_))));
        assert!(matches!(session.control(r#"{"text": 5}"#), Err(Error::InvalidParams(_))));
        assert_eq!(session.session().params().mode, Mode::WordCount);
        session.close()?;

        let out = session.outputs();
        let lines = out.data_json();
        assert_eq!(lines[0], json!({"seq": 0, "mode": "upper", "text": "ABC"}));
        assert_eq!(lines[1], json!({"seq": 1, "mode": "reverse", "text": "cba"}));
        assert_eq!(lines[2]["words"], 3);
        let changes = out.events_of_type("text-transform.params");
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1]["params"]["mode"], "word-count");
        Ok(())
    }

    #[test]
    fn video_is_refused_and_open_validates_params() {
        let harness = Harness::<TextTransform>::new();
        assert!(matches!(harness.open(r#"{"mode": 3}"#), Err(Error::InvalidParams(_))));
        let Ok(mut session) = harness.open("") else {
            panic!("empty params are the defaults");
        };
        assert!(matches!(session.segment(0, b"x"), Err(Error::Unsupported(_))));
    }
}
