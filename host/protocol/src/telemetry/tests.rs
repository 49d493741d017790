use std::path::{Path, PathBuf};

use super::*;

/// Every Rust file under `host/*/src`.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(host).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            walk(&src, &mut files);
        }
    }
    files
}

/// Every `counter!`/`gauge!`/`histogram!` under `host/*/src`: (file, line, kind, name).
fn recorded() -> Vec<(PathBuf, usize, Kind, String)> {
    let files = sources();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (macro_name, kind) in
            [("counter!(", Kind::Counter), ("gauge!(", Kind::Gauge), ("histogram!(", Kind::Histogram)]
        {
            for (at, _) in text.match_indices(macro_name) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // describe_counter!( and the like
                }
                let rest = text[at + macro_name.len()..].trim_start();
                let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                    continue; // not a metric name: this file's own patterns
                }
                let line = text[..at].lines().count();
                found.push((file.clone(), line, kind, name.to_string()));
            }
        }
    }
    assert!(found.len() > 40, "the scan found only {} metric records", found.len());
    found
}

#[test]
fn every_recorded_family_is_listed_once_with_its_kind_and_every_listed_one_is_recorded() {
    let found = recorded();
    for (file, line, kind, name) in &found {
        let listed: Vec<&Family> = FAMILIES.iter().filter(|f| f.name == name).collect();
        assert_eq!(listed.len(), 1, "{name} ({}:{line}) must be listed once in FAMILIES", file.display());
        assert_eq!(listed[0].kind, *kind, "{name} is recorded as {kind:?} at {}:{line}", file.display());
        assert!(!listed[0].help.is_empty() && listed[0].help.ends_with('.'), "{name}: help text");
    }
    for f in FAMILIES {
        assert!(found.iter().any(|(_, _, _, n)| n == f.name), "{} is listed but never recorded", f.name);
    }
}

#[test]
fn every_place_that_counts_an_error_logs_why() {
    for (file, line, _, name) in recorded() {
        if !FAMILIES.iter().any(|f| f.name == name && f.error) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let around = &lines[line.saturating_sub(8)..(line + 8).min(lines.len())];
        assert!(
            around.iter().any(|l| l.contains("tracing::")),
            "{}:{line} counts {name} with no log line near it",
            file.display()
        );
    }
}

#[test]
fn the_observability_docs_name_every_family() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/observability.md");
    let docs = std::fs::read_to_string(docs).unwrap();
    for f in FAMILIES {
        assert!(docs.contains(&format!("`{}`", f.name)), "docs/src/observability.md does not name {}", f.name);
    }
}

const PAGE: &str = "\
# HELP byoc_gateway_streams_active Streams running at the gateway.
# TYPE byoc_gateway_streams_active gauge
byoc_gateway_streams_active 2
# HELP byoc_http_connections Open HTTP connections.
# TYPE byoc_http_connections gauge
byoc_http_connections{node=\"gateway\"} 3
byoc_http_connections{node=\"orchestrator\"} 5
# TYPE byoc_plugin_call_seconds histogram
byoc_plugin_call_seconds_bucket{call=\"chunk\",le=\"0.001\"} 1
byoc_plugin_call_seconds_sum{call=\"chunk\"} 0.0004
byoc_plugin_call_seconds_count{call=\"chunk\"} 1
# TYPE some_unlisted_family counter
some_unlisted_family 1
";

#[test]
fn each_node_shows_its_own_families_and_its_own_http_samples() {
    let gw = of_node(PAGE, Node::Gateway);
    assert!(gw.contains("byoc_gateway_streams_active 2\n"), "{gw}");
    assert!(gw.contains("byoc_http_connections{node=\"gateway\"} 3"), "{gw}");
    assert!(!gw.contains("node=\"orchestrator\""), "{gw}");
    assert!(!gw.contains("byoc_plugin_call_seconds"), "{gw}");
    assert!(gw.contains("some_unlisted_family 1"), "an unlisted family shows everywhere: {gw}");

    let orch = of_node(PAGE, Node::Orchestrator);
    assert!(!orch.contains("byoc_gateway_"), "{orch}");
    assert!(orch.contains("byoc_http_connections{node=\"orchestrator\"} 5"), "{orch}");
    assert!(!orch.contains("node=\"gateway\""), "{orch}");
    assert!(orch.contains("byoc_plugin_call_seconds_count{call=\"chunk\"} 1"), "{orch}");
    assert!(orch.contains("# HELP byoc_http_connections Open HTTP connections."), "{orch}");
}

#[test]
fn capability_labels_are_bounded() {
    assert_eq!(capability_label("text-transform"), "text-transform");
    for i in 0..MAX_CAPABILITY_LABELS + 10 {
        let _ = capability_label(&format!("cap-{i}"));
    }
    assert_eq!(capability_label("text-transform"), "text-transform", "a name seen before keeps its label");
    assert_eq!(capability_label("one-too-many"), "other");
}

/// Log fields print as values (`sender=0x…`), not as Rust's debug form (`Some(Address(0x…))`): no
/// `tracing` call formats a field with `?`.
#[test]
fn no_log_field_is_printed_in_debug_form() {
    let mut found = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        for level in ["trace!(", "debug!(", "info!(", "warn!(", "error!("] {
            for (at, _) in text.match_indices(&format!("tracing::{level}")) {
                let call = &text[at..];
                let call = &call[..call.find(';').unwrap_or(call.len())];
                let bytes = call.as_bytes();
                let debug = (1..bytes.len()).any(|i| {
                    bytes[i] == b'?'
                        && matches!(bytes[i - 1], b' ' | b'(' | b',')
                        && bytes.get(i + 1).is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
                });
                if debug {
                    found.push(format!("{}:{}", file.display(), text[..at].lines().count() + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "log fields in debug form (use % or a plain value): {found:?}");
}
