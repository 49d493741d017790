//! Prometheus metrics of a node, served at `GET /metrics` by both the orchestrator and the
//! gateway. Metrics are recorded through the `metrics` facade (so the trickle crate can count
//! too) into one process-wide Prometheus recorder.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of every `*_seconds` metric: from 50 µs (a passthrough chunk) to 10 s.
const SECONDS_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Records how long one plugin call (`call`: segment_start, chunk, segment_end, control,
/// process) took, as the `byoc_plugin_call_seconds{call}` histogram.
pub fn plugin_call(call: &'static str, began: std::time::Instant) {
    metrics::histogram!("byoc_plugin_call_seconds", "call" => call).record(began.elapsed().as_secs_f64());
}

/// The process-wide recorder, once [`init`] has installed it.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once; later calls do nothing). The `byoc` binary calls it at start, so
/// that early events are counted; the node libraries never do, so a program embedding them may
/// install a recorder of its own (`/metrics` is then empty).
pub fn init() {
    HANDLE.get_or_init(|| {
        match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.install_recorder())
        {
            Ok(h) => Some(h),
            Err(e) => {
                // Another recorder was installed by the embedding program: it owns the metrics.
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics() -> Response {
    let body = HANDLE.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default();
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
