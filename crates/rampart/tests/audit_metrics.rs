//! The audit and monitor metrics, by name and label, as a Prometheus
//! exporter would see them. One test in this binary: it installs the
//! process-wide recorder.
#![cfg(feature = "audit")]

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::{AuditEvent, AuditKey, Auditor, FailurePolicy};
use rampart::config::Section;
use rampart::monitor::{Monitor, MonitorConfig, Signal};

/// Every series recorded so far, keyed `name{label=value,...}`: counters
/// and gauges by value, histograms by how many observations they got.
fn snapshot(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> =
                key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(v) => v.into_inner(),
                DebugValue::Histogram(observations) => observations.len() as f64,
            };
            (name, value)
        })
        .collect()
}

fn get(values: &BTreeMap<String, f64>, name: &str) -> f64 {
    values.get(name).copied().unwrap_or_else(|| panic!("no series {name}: {values:?}"))
}

#[test]
fn audit_and_monitor_metrics_are_emitted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder in this binary");

    let dir = tempfile::tempdir().expect("tempdir");
    let key = AuditKey::new("k1", vec![6; 32]).expect("key");
    let auditor = Auditor::builder(key.clone())
        .sink(FileSink::new(dir.path()).fsync(SyncPolicy::Always))
        .checkpoint_interval(Duration::from_millis(10))
        .start()
        .expect("starts");
    for _ in 0..3 {
        auditor.record_blocking(AuditEvent::new("t", "a")).expect("recorded");
    }
    auditor.shutdown(Duration::from_secs(5)).expect("stops");
    // After shutdown, an event has nowhere to go.
    let open = Auditor::builder(key)
        .sink(FileSink::new(dir.path().join("x")))
        .failure_policy(FailurePolicy::FailOpen)
        .start()
        .expect("starts");
    open.shutdown(Duration::from_secs(5)).expect("stops");
    open.record_blocking(AuditEvent::new("t", "late")).expect("fail-open goes on");

    let values = snapshot(&snapshotter);
    assert_eq!(get(&values, "rampart_audit_events_total"), 3.0);
    assert_eq!(get(&values, "rampart_audit_lost_total{reason=closed}"), 1.0);
    assert_eq!(get(&values, "rampart_audit_wait_seconds"), 4.0);
    assert!(get(&values, "rampart_audit_checkpoints_total{sink=file}") >= 1.0);
    assert_eq!(get(&values, "rampart_audit_sink_up{sink=file}"), 1.0);
    assert_eq!(get(&values, "rampart_audit_queue_depth"), 0.0);

    let config =
        MonitorConfig::from_value(serde_json::json!({"thresholds": {"tampered_cookie": 1}}))
            .expect("valid");
    let monitor = Monitor::new(config);
    monitor.observe(Signal::TamperedCookie, Some("10.1.1.1"), None);
    let values = snapshot(&snapshotter);
    assert_eq!(
        get(&values, "rampart_monitor_alerts_total{scope=client,signal=tampered_cookie}"),
        1.0
    );
    assert_eq!(get(&values, "rampart_monitor_blocked_clients"), 1.0);
    assert_eq!(get(&values, "rampart_monitor_tracked_keys"), 1.0);
}
