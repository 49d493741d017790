//! Typed JSON params: parse the params a session opens with into your own `serde` type, and
//! apply control messages to them as JSON merge patches (RFC 7396).
//!
//! ```
//! use byoc_sdk::params;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
//! #[serde(default, deny_unknown_fields)]
//! struct Params { mode: String, threshold: u32 }
//!
//! let p: Params = params::parse(r#"{"mode":"fast"}"#).unwrap();
//! assert_eq!(p, Params { mode: "fast".into(), threshold: 0 });
//!
//! // A control message changes only what it names.
//! let p = params::merge(&p, r#"{"threshold": 3}"#).unwrap();
//! assert_eq!(p, Params { mode: "fast".into(), threshold: 3 });
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// Parses params JSON text into `T`. Empty or blank text means `{}` (a stream started
/// without params). Failures are [`Error::InvalidParams`] naming the problem.
///
/// ```
/// let p: std::collections::HashMap<String, u8> = byoc_sdk::params::parse("  ").unwrap();
/// assert!(p.is_empty());
/// assert!(byoc_sdk::params::parse::<u8>("\"x\"").is_err());
/// ```
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| Error::invalid_params(e.to_string()))
}

/// Applies `patch` (a JSON object, as text) to `current` as a JSON merge patch (RFC 7396):
/// keys in the patch replace those in `current`, nested objects merge recursively, and a
/// `null` removes a key (so the field falls back to its `serde` default). `current` is
/// unchanged if the result does not deserialize, so a bad control message never leaves a
/// session with half-applied params.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize, Default)]
/// #[serde(default)]
/// struct P { a: u8, b: u8 }
///
/// let p = byoc_sdk::params::merge(&P { a: 1, b: 2 }, r#"{"b": null}"#).unwrap();
/// assert_eq!((p.a, p.b), (1, 0));
/// assert!(byoc_sdk::params::merge(&p, r#"{"a": "x"}"#).is_err());
/// ```
pub fn merge<T: Serialize + DeserializeOwned>(current: &T, patch: &str) -> Result<T, Error> {
    let patch: Value = parse(patch)?;
    if !patch.is_object() {
        return Err(Error::invalid_params("a params update must be a JSON object"));
    }
    let mut merged =
        serde_json::to_value(current).map_err(|e| Error::internal(format!("cannot serialize current params: {e}")))?;
    merge_patch(&mut merged, patch);
    serde_json::from_value(merged).map_err(|e| Error::invalid_params(e.to_string()))
}

/// RFC 7396 `MergePatch(target, patch)`, in place.
///
/// ```
/// use serde_json::json;
/// let mut doc = json!({"a": {"b": 1, "c": 2}, "d": 3});
/// byoc_sdk::params::merge_patch(&mut doc, json!({"a": {"c": null}, "d": [4]}));
/// assert_eq!(doc, json!({"a": {"b": 1}, "d": [4]}));
/// ```
pub fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396_examples() {
        // A selection of the examples in RFC 7396, appendix A.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!(["a", "b"]), json!({"a": "b"}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, patch);
            assert_eq!(target, expected);
        }
    }

    #[test]
    fn merge_rejects_non_objects_as_invalid_params() {
        let current = json!({"a": 1});
        assert!(matches!(merge(&current, "[1]"), Err(Error::InvalidParams(_))));
        assert!(matches!(merge(&current, "{"), Err(Error::InvalidParams(_))));
    }
}
