//! `GET /metrics`: the session library's metrics in the Prometheus text format.
//!
//! [`install`] puts a `metrics-exporter-prometheus` recorder in place as the process's global
//! `metrics` recorder (once per process, before serving), and [`routes`] renders what it holds.
//! The library reports through the `metrics` facade (see [`redis_sessions::observe`] for the
//! names and labels); the demo adds nothing of its own. Latencies are real Prometheus
//! histograms, with buckets from 100 µs to 2.5 s.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of the latency histograms, in seconds: a local Redis answers in 0.1-1 ms, a
/// locked request may wait up to `lock_wait`.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Installs the Prometheus recorder as the process's `metrics` recorder and returns the handle
/// that renders it.
///
/// # Errors
///
/// [`BuildError`] when a recorder is installed already (there is one per process).
pub fn install() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()
}

/// `GET /metrics` over `handle`, to merge into the app: `basket::app(manager).merge(routes(handle))`.
pub fn routes(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || async move {
            // Without an HTTP listener of its own the exporter does its upkeep (draining
            // histogram samples) when asked; rendering is the moment to ask.
            handle.run_upkeep();
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                handle.render(),
            )
                .into_response()
        }),
    )
}
