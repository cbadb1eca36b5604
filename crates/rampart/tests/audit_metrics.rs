//! The audit and monitor metrics, by name and label, as a Prometheus
//! exporter would see them. One test in this binary: it installs the
//! process-wide recorder.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::{AuditEvent, AuditKey, Auditor, FailurePolicy};
use rampart::monitor::{Monitor, MonitorConfig, RawMonitorConfig, Signal};

/// Keeps the last value of every series, keyed `name{label=value,...}`.
#[derive(Default, Clone)]
struct Values(Arc<Mutex<BTreeMap<String, f64>>>);

struct Series {
    name: String,
    values: Values,
}

impl Series {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut map = self.values.0.lock().expect("lock");
        let slot = map.entry(self.name.clone()).or_insert(0.0);
        *slot = f(*slot);
    }
}

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        self.update(|v| v + value as f64);
    }
    fn absolute(&self, value: u64) {
        self.update(|_| value as f64);
    }
}

impl GaugeFn for Series {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

impl HistogramFn for Series {
    fn record(&self, _: f64) {
        self.update(|v| v + 1.0); // counts observations
    }
}

impl Recorder for Values {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(self.series(key)))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(self.series(key)))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(self.series(key)))
    }
}

impl Values {
    fn series(&self, key: &Key) -> Series {
        let mut labels: Vec<String> =
            key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        labels.sort();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        Series { name, values: self.clone() }
    }

    fn get(&self, name: &str) -> f64 {
        self.0
            .lock()
            .expect("lock")
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no series {name}: {:?}", self.0))
    }
}

#[test]
fn audit_and_monitor_metrics_are_emitted() {
    let values = Values::default();
    metrics::set_global_recorder(values.clone()).expect("the only recorder in this binary");

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

    assert_eq!(values.get("rampart_audit_events_total"), 3.0);
    assert_eq!(values.get("rampart_audit_lost_total{reason=closed}"), 1.0);
    assert_eq!(values.get("rampart_audit_wait_seconds"), 4.0);
    assert!(values.get("rampart_audit_checkpoints_total{sink=file}") >= 1.0);
    assert_eq!(values.get("rampart_audit_sink_up{sink=file}"), 1.0);
    assert_eq!(values.get("rampart_audit_queue_depth"), 0.0);

    let raw: RawMonitorConfig =
        serde_json::from_value(serde_json::json!({"thresholds": {"tampered_cookie": 1}}))
            .expect("raw");
    let monitor = Monitor::new(MonitorConfig::from_raw(raw).expect("valid"));
    monitor.observe(Signal::TamperedCookie, Some("10.1.1.1"), None);
    assert_eq!(
        values.get("rampart_monitor_alerts_total{scope=client,signal=tampered_cookie}"),
        1.0
    );
    assert_eq!(values.get("rampart_monitor_blocked_clients"), 1.0);
    assert_eq!(values.get("rampart_monitor_tracked_keys"), 1.0);
}
