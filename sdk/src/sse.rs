//! Server-sent events (`text/event-stream`) encoding and parsing, for plugins that relay an
//! external worker's SSE response or want to inspect what the host will send.

use crate::SseEvent;

/// Encodes events as a `text/event-stream` body, the way the host sends
/// [`Body::Events`](crate::Body::Events).
///
/// Newlines in `event` or `id` would break the framing, so they are replaced by spaces;
/// `data` is split into one `data:` line per line.
///
/// ```
/// use byoc_sdk::{sse, SseEvent};
/// let text = sse::encode(&[SseEvent::data("a\nb").with_event("x")]);
/// assert_eq!(text, "event: x\ndata: a\ndata: b\n\n");
/// ```
pub fn encode(events: &[SseEvent]) -> String {
    let mut out = String::new();
    for ev in events {
        if let Some(event) = &ev.event {
            push_field(&mut out, "event", &single_line(event));
        }
        if let Some(id) = &ev.id {
            push_field(&mut out, "id", &single_line(id));
        }
        for line in ev.data.split('\n') {
            push_field(&mut out, "data", line.strip_suffix('\r').unwrap_or(line));
        }
        out.push('\n');
    }
    out
}

fn single_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

/// Parses a complete `text/event-stream` body into events.
///
/// Follows the HTML event-stream rules (fields `event`, `data`, `id`; comments and unknown
/// fields ignored; `\n`, `\r\n` and `\r` line ends), except that a last event not followed by
/// a blank line is kept rather than dropped, since the whole body is known to be complete.
///
/// ```
/// use byoc_sdk::sse;
/// let events = sse::parse(": hi\nevent: tick\ndata: 1\n\ndata: [DONE]\n\n");
/// assert_eq!(events.len(), 2);
/// assert_eq!(events[0].event.as_deref(), Some("tick"));
/// assert_eq!(events[1].data, "[DONE]");
/// ```
pub fn parse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut pending = Pending::default();
    for line in lines(text) {
        if line.is_empty() {
            pending.dispatch(&mut events);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => pending.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => pending.id = Some(value.to_owned()),
            "data" => {
                if let Some(data) = &mut pending.data {
                    data.push('\n');
                    data.push_str(value);
                } else {
                    pending.data = Some(value.to_owned());
                }
            }
            _ => {}
        }
    }
    pending.dispatch(&mut events);
    events
}

#[derive(Default)]
struct Pending {
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl Pending {
    /// Emits the pending event if it has data; a block without data is not an event.
    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let Pending { event, id, data } = std::mem::take(self);
        if let Some(data) = data {
            events.push(SseEvent { event, id, data });
        }
    }
}

/// Splits on `\r\n`, `\n` or a lone `\r`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                // A trailing fragment without a line end is still a line, but "" is not.
                (!s.is_empty()).then_some(s)
            }
            Some(i) => {
                let line = s.get(..i).unwrap_or("");
                let skip = if s.get(i..i + 2) == Some("\r\n") { 2 } else { 1 };
                rest = s.get(i + skip..);
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_handles_all_line_endings_and_multi_line_data() {
        let events = parse("data: a\r\ndata: b\r\rid: 7\ndata:c\n\n");
        assert_eq!(
            events,
            vec![SseEvent::data("a\nb"), SseEvent { event: None, id: Some("7".into()), data: "c".into() }]
        );
    }

    #[test]
    fn parse_keeps_an_unterminated_last_event_and_skips_empty_blocks() {
        let events = parse("event: x\n\n\ndata: tail");
        assert_eq!(events, vec![SseEvent::data("tail")]);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let events = vec![
            SseEvent::data("one\ntwo").with_event("e").with_id("1"),
            SseEvent::data(""),
            SseEvent::data("{\"x\":1}"),
        ];
        assert_eq!(parse(&encode(&events)), events);
    }
}
