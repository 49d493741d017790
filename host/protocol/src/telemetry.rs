//! Prometheus metrics of a node, served at `GET /metrics` by both the orchestrator and the
//! gateway. Metrics are recorded through the `metrics` facade (so the trickle, HTTP and chain crates
//! can count too) into one process-wide Prometheus recorder.
//!
//! Every family the code records is listed once, in [`FAMILIES`]: its kind, which node shows it and
//! its `# HELP` text. A test keeps that list, the code and the observability docs in step. Each
//! node's `/metrics` shows its own families ([`metrics`]): in `byoc dev`, where one process runs both
//! nodes, the gateway's page has no orchestrator families and the other way round, and the HTTP
//! server families (recorded by both) are told apart by their `node` label.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

mod families;

pub use families::FAMILIES;

/// Histogram buckets of every `*_seconds` metric: from 50 µs (a passthrough chunk) to 10 s.
const SECONDS_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What a family measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// A level.
    Gauge,
    /// A distribution (`*_seconds`).
    Histogram,
}

/// Which node's `/metrics` shows a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The gateway's.
    Gateway,
    /// The orchestrator's (which hosts the trickle channels and the plugins).
    Orchestrator,
    /// The remote signer's (`byoc signer`).
    Signer,
    /// Both: recorded by code both run (the HTTP servers, the chain watcher). A sample with a `node`
    /// label shows only on that node's page.
    Both,
}

/// A node serving `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The gateway.
    Gateway,
    /// The orchestrator.
    Orchestrator,
    /// The remote signer.
    Signer,
}

impl Node {
    /// The value of the `node` label on the families both nodes record.
    pub fn label(self) -> &'static str {
        match self {
            Node::Gateway => "gateway",
            Node::Orchestrator => "orchestrator",
            Node::Signer => "signer",
        }
    }

    fn shows(self, owner: Owner) -> bool {
        matches!(
            (self, owner),
            (_, Owner::Both)
                | (Node::Gateway, Owner::Gateway)
                | (Node::Orchestrator, Owner::Orchestrator)
                | (Node::Signer, Owner::Signer)
        )
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Its name, `byoc_…`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Which node shows it.
    pub owner: Owner,
    /// It counts errors: every place that records it also logs why (a test checks the code).
    pub error: bool,
    /// Its `# HELP` text.
    pub help: &'static str,
}

/// Records how long one plugin call (`call`: segment_start, chunk, segment_end, control,
/// process) took, as the `byoc_plugin_call_seconds{call}` histogram.
pub fn plugin_call(call: &'static str, began: std::time::Instant) {
    metrics::histogram!("byoc_plugin_call_seconds", "call" => call).record(began.elapsed().as_secs_f64());
}

/// Most distinct capability names one process labels metrics with; later ones are counted as
/// `other`. Capabilities come and go with plugin reloads and worker registrations: without a bound, a
/// long-running node's label set would only grow.
pub const MAX_CAPABILITY_LABELS: usize = 256;

/// The `capability` label value for `name`: the name itself for the first
/// [`MAX_CAPABILITY_LABELS`] names this process labelled, `other` after that.
pub fn capability_label(name: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(name) {
        return name.to_string();
    }
    if seen.len() < MAX_CAPABILITY_LABELS {
        seen.insert(name.to_string());
        return name.to_string();
    }
    "other".to_string()
}

/// The process-wide recorder, once [`init`] has installed it.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder and describes every family of [`FAMILIES`] (once; later calls do nothing).
/// The `byoc` binary calls it at start, so that early events are counted; the node libraries never
/// do, so a program embedding them may install a recorder of its own (`/metrics` is then empty).
pub fn init() {
    HANDLE.get_or_init(|| {
        match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.install_recorder())
        {
            Ok(h) => {
                for f in FAMILIES {
                    match f.kind {
                        Kind::Counter => metrics::describe_counter!(f.name, f.help),
                        Kind::Gauge => metrics::describe_gauge!(f.name, f.help),
                        Kind::Histogram => metrics::describe_histogram!(f.name, f.help),
                    }
                }
                Some(h)
            }
            Err(e) => {
                // Another recorder was installed by the embedding program: it owns the metrics.
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// `GET /metrics` of `node`, in the Prometheus text format: the families it shows.
pub async fn metrics(node: Node) -> Response {
    let all = HANDLE.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default();
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], of_node(&all, node)).into_response()
}

/// The lines of a rendered page that belong on `node`'s: families it shows (a family not in
/// [`FAMILIES`] shows on both), and of a family both show, the samples with no `node` label or its own.
fn of_node(page: &str, node: Node) -> String {
    let mut out = String::with_capacity(page.len());
    let mut keep = true;
    for line in page.lines() {
        let comment = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE "));
        if let Some(rest) = comment {
            let name = rest.split(' ').next().unwrap_or_default();
            keep = FAMILIES.iter().find(|f| f.name == name).is_none_or(|f| node.shows(f.owner));
        }
        if !keep {
            continue;
        }
        if comment.is_none() && !line.starts_with('#') && !sample_of(line, node) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether a sample line belongs to `node`: it has no `node` label, or `node`'s own.
fn sample_of(line: &str, node: Node) -> bool {
    let Some(labels) = line.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(l, _)| l) else {
        return true;
    };
    match labels.split(',').find_map(|l| l.strip_prefix("node=\"")) {
        Some(value) => value.strip_suffix('"') == Some(node.label()),
        None => true,
    }
}

#[cfg(test)]
mod tests;
