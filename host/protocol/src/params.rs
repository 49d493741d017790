//! A stream's `params`: the keys only its start sets, kept across updates.

use serde_json::Value;

/// The key of a frame plugin's stream params that holds its encoder settings
/// (`{"bitrate_kbps", "preset"}`, read by the node; `byoc_frames::encoder::ENCODER_PARAM`). Set
/// when the stream starts; an update naming it is refused.
pub const ENCODER_PARAM: &str = "encoder";

/// The keys of a stream's params that only its start sets.
pub const START_ONLY: [&str; 1] = [ENCODER_PARAM];

/// A stream's params after an accepted update: the update's (an update replaces the params, as
/// it reaches the plugin whole), with the [`START_ONLY`] keys it does not name kept from
/// `current`, so a restart elsewhere (failover) asks for what the stream started with.
pub fn after_update(current: &Value, mut update: Value) -> Value {
    if let Some(fields) = update.as_object_mut() {
        for key in START_ONLY {
            if let Some(kept) = current.get(key).filter(|_| !fields.contains_key(key)) {
                fields.insert(key.to_owned(), kept.clone());
            }
        }
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_keeps_the_start_only_keys_it_does_not_name() {
        let current = json!({"effect": "grayscale", "encoder": {"bitrate_kbps": 500}, "strength": 1});
        assert_eq!(
            after_update(&current, json!({"effect": "invert"})),
            json!({"effect": "invert", "encoder": {"bitrate_kbps": 500}})
        );
        // An update that names it (a byte-level plugin's own key: a frame plugin's node refuses it).
        assert_eq!(after_update(&current, json!({"encoder": 1})), json!({"encoder": 1}));
        assert_eq!(after_update(&json!({"effect": "none"}), json!({"effect": "blur"})), json!({"effect": "blur"}));
        assert_eq!(after_update(&current, json!("text")), json!("text"));
    }
}
