//! Prometheus metrics: every `rampart_*` metric recorded with the `metrics`
//! macros, rendered as the text a `/metrics` endpoint serves, with its
//! content type ([`MetricsHandle::response`]).
//!
//! ```
//! let metrics = rampart::telemetry::install_metrics().unwrap();
//! metrics::counter!("rampart_errors_total", "kind" => "not_found", "code" => "NOT_FOUND").increment(1);
//! let response = metrics.response();
//! assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
//! assert!(response.body().contains("rampart_errors_total{"));
//! ```
//!
//! Every metric is listed in `docs/OPERATIONS.md` (a test keeps the two in
//! step).

use std::sync::{Mutex, OnceLock};

use http::header::{CONTENT_TYPE, HeaderValue};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::Error;

/// Histogram buckets, in seconds, for every `*_seconds` histogram: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The content type of the Prometheus text format that
/// [`MetricsHandle::render`] writes (version 0.0.4; scrapers pick the
/// parser by it).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the metrics of the process-wide recorder; cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    handle: PrometheusHandle,
}

impl MetricsHandle {
    /// The metrics in the Prometheus text format (version 0.0.4), to be
    /// served as [`METRICS_CONTENT_TYPE`]; [`response`](MetricsHandle::response)
    /// does both.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// The whole `/metrics` answer: 200 with `Content-Type`
    /// [`METRICS_CONTENT_TYPE`] and the rendered text. An axum handler can
    /// return it as it is.
    pub fn response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.render());
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
        response
    }
}

/// A recorder not installed anywhere, and the handle that renders it (for
/// `metrics::with_local_recorder` in tests).
pub fn local_recorder() -> (PrometheusRecorder, MetricsHandle) {
    let recorder = builder().build_recorder();
    let handle = MetricsHandle { handle: recorder.handle() };
    (recorder, handle)
}

fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    // Only an empty list is refused: the constant is not empty.
    builder.set_buckets(SECONDS_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new())
}

/// Installs the Prometheus recorder as the process-wide `metrics` recorder
/// (once; later calls return the same handle).
///
/// # Errors
/// A configuration error when another `metrics` recorder is already installed.
pub fn install_metrics() -> Result<MetricsHandle, Error> {
    static INSTALLED: OnceLock<MetricsHandle> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = INSTALLED.get() {
        return Ok(handle.clone());
    }
    let (recorder, handle) = local_recorder();
    metrics::set_global_recorder(recorder).map_err(|_| {
        Error::configuration("telemetry", "another metrics recorder is already installed")
    })?;
    Ok(INSTALLED.get_or_init(|| handle).clone())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A scraper is told the format's version, so it cannot parse the
    /// text as another format.
    #[test]
    fn the_response_carries_the_prometheus_text_content_type() {
        let (recorder, handle) = local_recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("rampart_test_scrapes_total").increment(3);
        });
        let response = handle.response();
        assert_eq!(response.status(), http::StatusCode::OK);
        let content_type = response.headers().get(CONTENT_TYPE).expect("a content type");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(response.body().contains("rampart_test_scrapes_total 3"), "{}", response.body());
    }

    #[test]
    fn histograms_render_with_buckets() {
        let (recorder, handle) = local_recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("rampart_test_duration_seconds").record(0.003);
        });
        let text = handle.render();
        assert!(text.contains("rampart_test_duration_seconds_bucket{le=\"0.005\"} 1"), "{text}");
    }

    /// Every `rampart_*` metric recorded anywhere in the workspace has a row
    /// in docs/OPERATIONS.md.
    #[test]
    fn operations_md_documents_every_metric() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc =
            std::fs::read_to_string(root.join("docs/OPERATIONS.md")).expect("docs/OPERATIONS.md");
        let mut names = Vec::new();
        let mut dirs = vec![root.join("crates")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("readable");
                    names.extend(metric_names(&text));
                }
            }
        }
        assert!(names.iter().any(|n| n == "rampart_errors_total"), "{names:?}");
        for name in names.iter().filter(|n| !n.starts_with("rampart_test_")) {
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "docs/OPERATIONS.md has no row for {name}"
            );
        }
    }

    /// Names in `counter!("rampart_...`, `gauge!(...` and `histogram!(...`.
    fn metric_names(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for mac in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in text.match_indices(mac) {
                let rest = text[at + mac.len()..].trim_start();
                let Some(name) = rest.strip_prefix("\"rampart_") else { continue };
                let name = &name[..name.find('"').unwrap_or(name.len())];
                if name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                    names.push(format!("rampart_{name}"));
                }
            }
        }
        names
    }
}
