//! What a stream may ask of the video encoder, and the operator's bounds on it.
//!
//! A frame plugin's output is encoded by the host (libx264, zero-latency tuning). A stream picks
//! its bitrate and preset in its params under the reserved key [`ENCODER_PARAM`]:
//! `{"encoder": {"bitrate_kbps": 1500, "preset": "superfast"}}` (both optional). The node reads
//! and removes that key before the plugin sees the params, and refuses a stream that asks for
//! more than its [`EncodeLimits`] allow.

/// The key of a stream's params that holds its encoder settings (read by the host).
pub const ENCODER_PARAM: &str = "encoder";

/// x264's presets, fastest first.
pub const PRESETS: [&str; 10] =
    ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

/// The lowest bitrate a stream may ask for, whatever the operator allows.
pub const MIN_BITRATE_KBPS: u32 = 100;

/// How the pipeline encodes what the plugin returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeSettings {
    /// Target video bitrate.
    pub bitrate_kbps: u32,
    /// The x264 preset (`ultrafast` … `placebo`).
    pub preset: String,
    /// A keyframe is forced at least this often (besides at every input segment cut). 0: only at cuts.
    pub max_keyframe_interval_ms: u32,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self { bitrate_kbps: 2000, preset: "veryfast".to_owned(), max_keyframe_interval_ms: 2000 }
    }
}

/// What a stream asks for under [`ENCODER_PARAM`]; what it leaves out is the node's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderRequest {
    /// Target video bitrate, in kbit/s.
    pub bitrate_kbps: Option<u32>,
    /// An x264 preset, one of [`PRESETS`].
    pub preset: Option<String>,
}

/// The operator's bounds on what a stream may ask of the encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeLimits {
    /// The highest bitrate a stream may ask for, in kbit/s.
    pub max_bitrate_kbps: u32,
    /// The slowest (most CPU per frame) preset a stream may ask for, one of [`PRESETS`].
    pub slowest_preset: String,
}

impl Default for EncodeLimits {
    /// At most 6000 kbit/s (1080p30), and no preset slower than the default `veryfast`: a stream
    /// costs no more CPU than one that asks for nothing.
    fn default() -> Self {
        Self { max_bitrate_kbps: 6000, slowest_preset: EncodeSettings::default().preset }
    }
}

/// Where `preset` stands in [`PRESETS`].
fn preset_rank(preset: &str) -> Option<usize> {
    PRESETS.iter().position(|p| *p == preset)
}

impl EncodeLimits {
    /// Checks the operator's own settings (a known preset, a maximum of at least
    /// [`MIN_BITRATE_KBPS`]).
    pub fn check(&self) -> Result<(), String> {
        if preset_rank(&self.slowest_preset).is_none() {
            return Err(format!("unknown x264 preset {:?} (one of {})", self.slowest_preset, PRESETS.join(", ")));
        }
        if self.max_bitrate_kbps < MIN_BITRATE_KBPS {
            return Err(format!("the maximum bitrate must be at least {MIN_BITRATE_KBPS} kbit/s"));
        }
        Ok(())
    }

    /// The settings for a stream that asked for `request`: its bitrate and preset, or the
    /// defaults (brought within these limits) for what it left out. An error says which limit
    /// the request broke.
    pub fn settings(&self, request: &EncoderRequest) -> Result<EncodeSettings, String> {
        let defaults = EncodeSettings::default();
        let slowest = preset_rank(&self.slowest_preset).unwrap_or(0);
        let bitrate_kbps = match request.bitrate_kbps {
            None => defaults.bitrate_kbps.min(self.max_bitrate_kbps),
            Some(b) if b < MIN_BITRATE_KBPS => {
                return Err(format!(
                    "{ENCODER_PARAM}.bitrate_kbps {b} is below the minimum of {MIN_BITRATE_KBPS} kbit/s"
                ));
            }
            Some(b) if b > self.max_bitrate_kbps => {
                return Err(format!(
                    "{ENCODER_PARAM}.bitrate_kbps {b} is above this node's limit of {} kbit/s",
                    self.max_bitrate_kbps
                ));
            }
            Some(b) => b,
        };
        let preset = match &request.preset {
            None => {
                PRESETS.get(preset_rank(&defaults.preset).unwrap_or(0).min(slowest)).copied().unwrap_or("ultrafast")
            }
            Some(p) => match preset_rank(p) {
                None => {
                    return Err(format!("{ENCODER_PARAM}.preset {p:?} is not an x264 preset ({})", PRESETS.join(", ")));
                }
                Some(rank) if rank > slowest => {
                    return Err(format!(
                        "{ENCODER_PARAM}.preset {p:?} is slower than this node allows (its slowest is {:?})",
                        self.slowest_preset
                    ));
                }
                Some(_) => p.as_str(),
            },
        };
        Ok(EncodeSettings { bitrate_kbps, preset: preset.to_owned(), ..defaults })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(bitrate_kbps: Option<u32>, preset: Option<&str>) -> EncoderRequest {
        EncoderRequest { bitrate_kbps, preset: preset.map(str::to_owned) }
    }

    #[test]
    fn a_stream_gets_what_it_asks_within_the_limits_and_the_defaults_otherwise() {
        let limits = EncodeLimits::default();
        assert_eq!(limits.settings(&EncoderRequest::default()).unwrap(), EncodeSettings::default());
        let s = limits.settings(&ask(Some(500), Some("ultrafast"))).unwrap();
        assert_eq!((s.bitrate_kbps, s.preset.as_str()), (500, "ultrafast"));
        let s = limits.settings(&ask(Some(6000), None)).unwrap();
        assert_eq!((s.bitrate_kbps, s.preset.as_str()), (6000, "veryfast"));
        // An operator below the defaults brings them down.
        let tight = EncodeLimits { max_bitrate_kbps: 800, slowest_preset: "ultrafast".into() };
        let s = tight.settings(&EncoderRequest::default()).unwrap();
        assert_eq!((s.bitrate_kbps, s.preset.as_str()), (800, "ultrafast"));
    }

    #[test]
    fn a_request_beyond_a_limit_is_refused_naming_it() {
        let limits = EncodeLimits::default();
        let e = limits.settings(&ask(Some(6001), None)).unwrap_err();
        assert!(e.contains("bitrate_kbps 6001") && e.contains("6000"), "{e}");
        let e = limits.settings(&ask(Some(99), None)).unwrap_err();
        assert!(e.contains("minimum of 100"), "{e}");
        let e = limits.settings(&ask(None, Some("medium"))).unwrap_err();
        assert!(e.contains("slower than this node allows") && e.contains("veryfast"), "{e}");
        let e = limits.settings(&ask(None, Some("quick"))).unwrap_err();
        assert!(e.contains("not an x264 preset"), "{e}");
    }

    #[test]
    fn the_operator_settings_are_checked() {
        assert!(EncodeLimits::default().check().is_ok());
        assert!(EncodeLimits { slowest_preset: "slowish".into(), ..EncodeLimits::default() }.check().is_err());
        assert!(EncodeLimits { max_bitrate_kbps: 50, ..EncodeLimits::default() }.check().is_err());
    }
}
