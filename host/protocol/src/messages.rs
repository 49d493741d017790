//! Splitting a message channel's segment into messages.
//!
//! A segment of a JSON channel (events, data, control) normally holds one message, but may hold
//! several: pytrickle's publisher can POST two messages to one seq when they race, and the trickle
//! server keeps both bodies, one after the other. Data channels also carry JSON lines. Each
//! message is handed on separately; text that is not JSON is handed on line by line.

/// The messages in one segment's text, trimmed, empty ones skipped.
pub fn messages(text: &str) -> Vec<&str> {
    if let Some(values) = json_values(text) {
        return values;
    }
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match json_values(line) {
            Some(values) => out.extend(values),
            None => out.push(line),
        }
    }
    out
}

/// `text` as a series of JSON values (each as its own text), if it is exactly that.
pub fn json_values(text: &str) -> Option<Vec<&str>> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let (mut start, mut out) = (0, Vec::new());
    while let Some(v) = values.next() {
        v.ok()?;
        let end = values.byte_offset();
        out.push(text.get(start..end)?.trim());
        start = end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::messages;

    #[test]
    fn one_message_per_json_value_or_line() {
        assert_eq!(messages(r#"{"a":1}"#), vec![r#"{"a":1}"#]);
        assert_eq!(messages(r#"{"a":1}{"b":"}{"}"#), vec![r#"{"a":1}"#, r#"{"b":"}{"}"#]);
        assert_eq!(messages("{\"a\":1}\n\n {\"b\":2} {\"c\":3}\n"), vec![r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        assert_eq!(messages("plain text\n{\"a\":"), vec!["plain text", "{\"a\":"]);
        assert_eq!(messages("  \n"), Vec::<&str>::new());
        assert_eq!(messages("{\n  \"pretty\": true\n}"), vec!["{\n  \"pretty\": true\n}"]);
    }
}
