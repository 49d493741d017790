//! What an orchestrator offers, as `GET /capabilities` lists it and its job token describes the
//! capability asked for: name, description, the stream legs it uses, its params schema, price and
//! capacity. The gateway merges the lists of its orchestrators into its own `GET /capabilities`,
//! and fills in the legs a start does not name from the capability's own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The stream legs a capability uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamLegs {
    /// It takes video in.
    #[serde(default)]
    pub video_in: bool,
    /// It sends video out.
    #[serde(default)]
    pub video_out: bool,
    /// It sends data lines.
    #[serde(default)]
    pub data: bool,
    /// It sends events.
    #[serde(default)]
    pub events: bool,
}

/// A price: `price_per_unit` wei per `pixels_per_unit` seconds of compute (go-livepeer's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedPrice {
    /// Wei per `pixels_per_unit` seconds.
    #[serde(default)]
    pub price_per_unit: u128,
    /// The divisor of `price_per_unit` (at least 1).
    #[serde(default = "one")]
    pub pixels_per_unit: u128,
}

fn one() -> u128 {
    1
}

impl OfferedPrice {
    /// Whether `self` costs less per second than `other` (compared exactly, as fractions).
    pub fn cheaper_than(&self, other: &OfferedPrice) -> bool {
        let (a, b) = (self.pixels_per_unit.max(1), other.pixels_per_unit.max(1));
        self.price_per_unit.saturating_mul(b) < other.price_per_unit.saturating_mul(a)
    }
}

/// One capability an orchestrator offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offered {
    /// Its name, as jobs name it.
    pub name: String,
    /// What it does, for people.
    #[serde(default)]
    pub description: String,
    /// `plugin` (hosted by the orchestrator) or `worker` (an external HTTP worker).
    #[serde(default)]
    pub kind: String,
    /// The plugin's version (none for a worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The legs it uses; `None` when unknown (an external worker does not say).
    #[serde(default)]
    pub legs: Option<StreamLegs>,
    /// JSON Schema of the params it takes, if it publishes one.
    #[serde(default)]
    pub params_schema: Option<Value>,
    /// What a second of it costs.
    pub price: OfferedPrice,
    /// How many streams or batch jobs it runs at once.
    #[serde(default)]
    pub capacity: u32,
    /// How many more it takes now.
    #[serde(default)]
    pub available_capacity: u32,
}

/// `GET /capabilities` of an orchestrator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OfferedList {
    /// Every capability it offers, by name.
    pub capabilities: Vec<Offered>,
}

impl StreamLegs {
    /// Each leg a start can turn on: its job-parameter key, whether the capability has it, and what it is
    /// called in messages.
    fn by_key(&self) -> [(&'static str, bool, &'static str); 3] {
        [
            ("enable_video_ingress", self.video_in, "video in"),
            ("enable_video_egress", self.video_out, "video out"),
            ("enable_data_output", self.data, "data output"),
        ]
    }
}

/// A job's `parameters` (a JSON object as text; empty for none) with every leg it does not name
/// turned on or off as the capability `legs` declare. A leg it turns on that the capability lacks is
/// an error naming it (the 400's message); a leg turned off stays off.
pub fn with_default_legs(parameters: &str, capability: &str, legs: &StreamLegs) -> Result<String, String> {
    let mut object = if parameters.trim().is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str::<Value>(parameters) {
            Ok(Value::Object(o)) => o,
            _ => return Err("invalid job parameters: must be a JSON object".into()),
        }
    };
    for (key, has, what) in legs.by_key() {
        match object.get(key) {
            None => {
                object.insert(key.to_string(), Value::Bool(has));
            }
            Some(Value::Bool(true)) if !has => {
                return Err(format!("capability {capability} has no {what}: {key} cannot be true"));
            }
            _ => {}
        }
    }
    Ok(Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobParameters;

    const DATA_ONLY: StreamLegs = StreamLegs { video_in: false, video_out: false, data: true, events: true };
    const VIDEO: StreamLegs = StreamLegs { video_in: true, video_out: true, data: false, events: true };

    #[test]
    fn legs_a_start_does_not_name_are_the_capabilitys_own() {
        let p = JobParameters::parse(&with_default_legs("", "t", &DATA_ONLY).unwrap()).unwrap();
        assert!(p.enable_data_output && !p.enable_video_ingress && !p.enable_video_egress);
        let p = JobParameters::parse(&with_default_legs("{}", "v", &VIDEO).unwrap()).unwrap();
        assert!(p.enable_video_ingress && p.enable_video_egress && !p.enable_data_output);
        // What the start names stays; the rest of its parameters too.
        let named = r#"{"enable_video_egress": false, "orchestrators": {"exclude": ["http://x"]}}"#;
        let p = JobParameters::parse(&with_default_legs(named, "v", &VIDEO).unwrap()).unwrap();
        assert!(p.enable_video_ingress && !p.enable_video_egress);
        assert_eq!(p.orchestrators.exclude, ["http://x"]);
    }

    #[test]
    fn a_leg_the_capability_lacks_is_refused_by_name() {
        let e = with_default_legs(r#"{"enable_video_ingress": true}"#, "text-transform", &DATA_ONLY).unwrap_err();
        assert_eq!(e, "capability text-transform has no video in: enable_video_ingress cannot be true");
        assert!(with_default_legs(r#"{"enable_data_output": true}"#, "p", &VIDEO).is_err());
        assert!(with_default_legs("[1]", "p", &VIDEO).is_err());
    }

    #[test]
    fn prices_compare_as_fractions() {
        let p = |n, d| OfferedPrice { price_per_unit: n, pixels_per_unit: d };
        assert!(p(1, 3).cheaper_than(&p(1, 2)));
        assert!(!p(2, 4).cheaper_than(&p(1, 2)));
        assert!(p(0, 1).cheaper_than(&p(1, 1000)));
    }
}
