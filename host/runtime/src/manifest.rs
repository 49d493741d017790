//! Plugin manifests (`manifest.toml` beside each `.wasm`) and the operator's narrowing of
//! their grants.
//!
//! A plugin's identity (name, version, description) is what its `describe()` returns; the
//! manifest holds only what the operator reviews: grants, limits and failure policy. Manifests
//! written before that may still carry `name`, `version` and `description`: they load, a
//! `name` must equal `describe()`'s (the operator's settings are keyed by it), and `version`
//! and `description` are ignored (`byoc plugin build` refuses any mismatch before install).
//!
//! The manifest *declares* what a plugin may touch; the operator's [`OperatorConfig`]
//! *allows*. A plugin gets only what both allow ([`Grants::narrowed`]). Where the operator
//! says nothing about a grant, the manifest's declaration stands: an operator narrows by
//! listing what it allows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// A plugin's `manifest.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Legacy: the capability's name, which `describe()` gives. When present it must equal
    /// `describe()`'s name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Legacy, ignored: the version is `describe()`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Legacy, ignored: the description is `describe()`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the plugin may touch.
    #[serde(default)]
    pub grants: Grants,
    /// How the host contains it.
    pub limits: Limits,
    /// What happens when an instance traps or breaches a limit.
    #[serde(default)]
    pub failure: Failure,
}

/// Capabilities a plugin is granted (declared in the manifest, narrowed by the operator).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Outbound HTTP authorities: `host:port`, `host:*` (any port) or
    /// `scheme://host:port` (that scheme only).
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Directories preopened read-only. A relative path is resolved against the plugin's
    /// directory; the guest sees the directory under the path as written.
    #[serde(default)]
    pub read_only_dirs: Vec<String>,
    /// Config keys the plugin may read (values come from the operator).
    #[serde(default)]
    pub config_keys: Vec<String>,
    /// Secrets the plugin may read (values come from the operator).
    #[serde(default)]
    pub secrets: Vec<String>,
}

impl Grants {
    /// The grants that both the manifest (`self`) and the operator allow. `None` in the
    /// operator's lists means "whatever the manifest declares".
    pub fn narrowed(&self, operator: &PluginOperatorConfig, global_hosts: Option<&[String]>) -> Grants {
        fn keep(declared: &[String], allowed: Option<&[String]>) -> Vec<String> {
            match allowed {
                None => declared.to_vec(),
                Some(allowed) => declared.iter().filter(|d| allowed.contains(d)).cloned().collect(),
            }
        }
        // Host patterns are intersected at request time (see `HostPattern`), since `*` ports
        // do not intersect as plain strings; here a declared pattern survives when some
        // operator pattern could match an authority it matches.
        let hosts = |declared: &[String], allowed: Option<&[String]>| match allowed {
            None => declared.to_vec(),
            Some(allowed) => declared
                .iter()
                .filter(|d| {
                    let Ok(d) = HostPattern::parse(d) else { return false };
                    allowed.iter().filter_map(|a| HostPattern::parse(a).ok()).any(|a| a.overlaps(&d))
                })
                .cloned()
                .collect(),
        };
        let outbound = hosts(&self.outbound_hosts, operator.outbound_hosts.as_deref());
        Grants {
            outbound_hosts: hosts(&outbound, global_hosts),
            read_only_dirs: keep(&self.read_only_dirs, operator.read_only_dirs.as_deref()),
            config_keys: keep(&self.config_keys, operator.config_keys.as_deref()),
            secrets: keep(&self.secrets, operator.secrets.as_deref()),
        }
    }
}

/// Per-instance limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap of one instance, in MiB.
    pub memory_mib: u32,
    /// Deadline of one call into the plugin, host calls included, in milliseconds.
    pub call_timeout_ms: u64,
    /// Output (segment bytes, data lines, events, logs) one call may produce, in bytes.
    pub max_output_bytes_per_call: u64,
}

/// What the host does when an instance fails (trap, deadline, limit breach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The policy.
    pub policy: FailurePolicy,
    /// Restarts allowed per session (`restart-session` only).
    #[serde(default)]
    pub max_restarts: u32,
    /// Delay before the first restart, doubled for each further one, in milliseconds.
    #[serde(default)]
    pub backoff_ms: u64,
}

impl Default for Failure {
    fn default() -> Self {
        Self { policy: FailurePolicy::FailStream, max_restarts: 0, backoff_ms: 0 }
    }
}

/// The failure policy of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The stream fails with the error.
    FailStream,
    /// The session is re-opened on a fresh instance, with backoff, up to `max_restarts`.
    RestartSession,
}

/// Largest manifest accepted, a bound on what a malformed file can make us parse.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

impl Manifest {
    /// Reads and validates `path`.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let bad = |reason: String| LoadError::Manifest { path: path.to_owned(), reason };
        let size = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?.len();
        if size > MAX_MANIFEST_BYTES {
            return Err(bad(format!("{size} bytes, more than the {MAX_MANIFEST_BYTES} allowed")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
        Manifest::parse(&text).map_err(bad)
    }

    /// Parses and validates a manifest's text; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            valid_name(name)?;
        }
        if self.limits.memory_mib == 0 {
            return Err("limits.memory_mib must be at least 1".into());
        }
        if self.limits.call_timeout_ms == 0 {
            return Err("limits.call_timeout_ms must be at least 1".into());
        }
        for host in &self.grants.outbound_hosts {
            HostPattern::parse(host).map_err(|e| format!("grants.outbound_hosts: {e}"))?;
        }
        Ok(())
    }
}

/// Checks a capability name: 1–64 lowercase ASCII letters, digits or `-` (it names a directory,
/// a route and the operator's settings).
pub fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(format!("name {name:?} must be 1–64 lowercase ASCII letters, digits or `-`")) }
}

/// The operator's configuration of plugins: a global outbound allowlist and per-plugin
/// narrowing, config values and secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Outbound authorities any plugin may reach (same syntax as the manifest's); `None`
    /// leaves each plugin's grants as they are.
    #[serde(default)]
    pub outbound_hosts: Option<Vec<String>>,
    /// Per plugin, by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginOperatorConfig>,
}

/// The operator's settings for one plugin. `None` lists keep the manifest's declaration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginOperatorConfig {
    /// Allowed outbound authorities.
    #[serde(default)]
    pub outbound_hosts: Option<Vec<String>>,
    /// Allowed read-only directories.
    #[serde(default)]
    pub read_only_dirs: Option<Vec<String>>,
    /// Allowed config keys.
    #[serde(default)]
    pub config_keys: Option<Vec<String>>,
    /// Allowed secrets.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Config values by key.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret values by key.
    #[serde(default)]
    pub secret_values: BTreeMap<String, String>,
    /// A lower memory cap than the manifest's, in MiB.
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// A shorter call deadline than the manifest's, in milliseconds.
    #[serde(default)]
    pub call_timeout_ms: Option<u64>,
}

impl PluginOperatorConfig {
    /// The manifest's limits, lowered where the operator set a lower value.
    pub fn narrow_limits(&self, limits: Limits) -> Limits {
        Limits {
            memory_mib: self.memory_mib.map_or(limits.memory_mib, |m| m.clamp(1, limits.memory_mib)),
            call_timeout_ms: self
                .call_timeout_ms
                .map_or(limits.call_timeout_ms, |t| t.clamp(1, limits.call_timeout_ms)),
            max_output_bytes_per_call: limits.max_output_bytes_per_call,
        }
    }
}

/// An outbound authority pattern: `[scheme://]host:port` or `[scheme://]host:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    scheme: Option<String>,
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl HostPattern {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(format!("{text:?}: scheme must be http or https"));
                }
                (Some(scheme), rest)
            }
            None => (None, text),
        };
        let (host, port) =
            rest.rsplit_once(':').ok_or_else(|| format!("{text:?} must be host:port or host:* (port required)"))?;
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!("{text:?}: invalid host"));
        }
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| format!("{text:?}: invalid port {p:?}"))?),
        };
        Ok(Self { scheme, host: host.to_ascii_lowercase(), port })
    }

    /// Whether a request to `scheme://host:port` matches.
    pub(crate) fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(scheme))
            && self.host.eq_ignore_ascii_case(host)
            && self.port.is_none_or(|p| p == port)
    }

    /// Whether some authority matches both patterns.
    fn overlaps(&self, other: &Self) -> bool {
        let scheme = match (&self.scheme, &other.scheme) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let port = match (self.port, other.port) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        scheme && port && self.host == other.host
    }
}

/// The host path of a granted read-only directory: relative paths are relative to the
/// plugin's directory.
pub(crate) fn resolve_dir(plugin_dir: &Path, dir: &str) -> PathBuf {
    let path = Path::new(dir);
    if path.is_absolute() { path.to_owned() } else { plugin_dir.join(path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
name = "http-adapter"
version = "0.1.0"
description = "x"
[grants]
outbound_hosts = ["127.0.0.1:9000", "localhost:*"]
config_keys = ["worker_url", "timeout_ms"]
secrets = ["worker_token"]
[limits]
memory_mib = 128
call_timeout_ms = 30000
max_output_bytes_per_call = 1000
[failure]
policy = "restart-session"
max_restarts = 3
backoff_ms = 1000
"#;

    #[test]
    fn parses_the_manifest_schema() {
        let m: Manifest = toml::from_str(SAMPLE).unwrap();
        assert_eq!(m.name.as_deref(), Some("http-adapter"), "legacy identity fields still parse");
        assert_eq!(m.failure.policy, FailurePolicy::RestartSession);
        assert_eq!(m.limits.memory_mib, 128);
        assert!(m.validate().is_ok());
    }

    #[test]
    fn unknown_fields_and_bad_names_are_rejected() {
        assert!(toml::from_str::<Manifest>(&format!("{SAMPLE}\nextra = 1")).is_err());
        let mut m: Manifest = toml::from_str(SAMPLE).unwrap();
        m.name = Some("Bad Name".into());
        assert!(m.validate().is_err());
    }

    #[test]
    fn a_manifest_without_identity_fields_is_complete() {
        let text = SAMPLE
            .lines()
            .filter(|l| !l.starts_with("name") && !l.starts_with("version") && !l.starts_with("description"));
        let m: Manifest = toml::from_str(&text.collect::<Vec<_>>().join("\n")).unwrap();
        assert_eq!((&m.name, &m.version, &m.description), (&None, &None, &None));
        assert!(m.validate().is_ok());
        assert!(!serde_json::to_string(&m).unwrap().contains("name"), "absent fields are not written back");
    }

    #[test]
    fn operator_narrows_to_the_intersection() {
        let m: Manifest = toml::from_str(SAMPLE).unwrap();
        let op = PluginOperatorConfig {
            outbound_hosts: Some(vec!["localhost:8080".into(), "example.com:80".into()]),
            config_keys: Some(vec!["worker_url".into(), "other".into()]),
            ..Default::default()
        };
        let g = m.grants.narrowed(&op, None);
        assert_eq!(g.outbound_hosts, ["localhost:*"]);
        assert_eq!(g.config_keys, ["worker_url"]);
        assert_eq!(g.secrets, ["worker_token"], "no operator list: the manifest stands");
        let g = m.grants.narrowed(&PluginOperatorConfig::default(), Some(&["127.0.0.1:9000".to_owned()]));
        assert_eq!(g.outbound_hosts, ["127.0.0.1:9000"]);
    }

    #[test]
    fn host_patterns_match_scheme_host_and_port() {
        let p = HostPattern::parse("127.0.0.1:9000").unwrap();
        assert!(p.matches("http", "127.0.0.1", 9000));
        assert!(!p.matches("http", "127.0.0.1", 9001));
        assert!(!p.matches("http", "127.0.0.2", 9000));
        let p = HostPattern::parse("https://Example.com:*").unwrap();
        assert!(p.matches("https", "example.com", 1));
        assert!(!p.matches("http", "example.com", 1));
        assert!(HostPattern::parse("example.com").is_err());
        assert!(HostPattern::parse("ftp://example.com:1").is_err());
        assert!(HostPattern::parse("a/b:1").is_err());
    }

    #[test]
    fn operator_limits_only_lower() {
        let limits = Limits { memory_mib: 16, call_timeout_ms: 1000, max_output_bytes_per_call: 10 };
        let op = PluginOperatorConfig { memory_mib: Some(64), call_timeout_ms: Some(10), ..Default::default() };
        let l = op.narrow_limits(limits);
        assert_eq!((l.memory_mib, l.call_timeout_ms), (16, 10));
    }
}
