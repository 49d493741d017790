//! A plugin's `manifest.toml` and the operator's plugin settings (the `[operator]` table of a node's
//! config file): TOML parsing, validation, and the narrowing of a manifest's grants and limits by the
//! operator. What is narrowed is never more than the manifest declared, and a valid manifest written
//! back as TOML reads back the same.
#![no_main]

use byoc_runtime::{Manifest, OperatorConfig};
use libfuzzer_sys::fuzz_target;

// A manifest, then (after a NUL) the operator's settings.
fuzz_target!(|input: &str| {
    let (manifest, operator) = input.split_once('\0').unwrap_or((input, ""));
    let Ok(manifest) = Manifest::parse(manifest) else { return };
    let written = toml::to_string(&manifest).expect("a manifest writes as TOML");
    assert_eq!(Manifest::parse(&written).as_ref(), Ok(&manifest), "manifest round trip");
    let Ok(operator) = toml::from_str::<OperatorConfig>(operator) else { return };
    for plugin in operator.plugins.values() {
        let grants = manifest.grants.narrowed(plugin, operator.outbound_hosts.as_deref());
        let within = |narrowed: &[String], declared: &[String]| narrowed.iter().all(|g| declared.contains(g));
        assert!(within(&grants.outbound_hosts, &manifest.grants.outbound_hosts), "outbound hosts widened");
        assert!(within(&grants.read_only_dirs, &manifest.grants.read_only_dirs), "directories widened");
        assert!(within(&grants.config_keys, &manifest.grants.config_keys), "config keys widened");
        assert!(within(&grants.secrets, &manifest.grants.secrets), "secrets widened");
        let limits = plugin.narrow_limits(manifest.limits);
        assert!(limits.memory_mib <= manifest.limits.memory_mib && limits.memory_mib >= 1);
        assert!(limits.call_timeout_ms <= manifest.limits.call_timeout_ms && limits.call_timeout_ms >= 1);
    }
});
