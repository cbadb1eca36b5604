//! `telemetry::init` sets the process-wide subscriber, so it is tested in a
//! process of its own: in a shared test binary it would capture every other
//! test's events (and collide with their scoped subscribers).

use rampart::telemetry::{self, Settings};

#[test]
fn init_installs_once() {
    telemetry::init(&Settings::default()).expect("the first global subscriber");
    let err = telemetry::init(&Settings::default()).expect_err("a second one");
    assert_eq!(err.config_key(), Some("telemetry"));
}

#[cfg(feature = "metrics")]
#[test]
fn metrics_install_is_idempotent() {
    let first = telemetry::install_metrics().expect("installs");
    let again = telemetry::install_metrics().expect("returns the same recorder");
    metrics::counter!("rampart_test_installs_total").increment(1);
    assert!(first.render().contains("rampart_test_installs_total 1"), "{}", first.render());
    assert!(again.render().contains("rampart_test_installs_total 1"));
}
