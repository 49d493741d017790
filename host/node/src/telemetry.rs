//! Prometheus metrics of a node, served at `GET /metrics` by both the orchestrator and the
//! gateway. Metrics are recorded through the `metrics` facade (so the trickle crate can count
//! too) into one process-wide Prometheus recorder.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                // Another recorder was installed by the embedding program: it owns the metrics.
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Installs the recorder (call at start so that early events are counted).
pub fn init() {
    let _ = handle();
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics() -> Response {
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
