//! The monitor's memory is bounded in bytes, not only in keys: an attacker
//! sending huge client keys or subjects does not make each tracked entry
//! huge. Measured as the process's resident memory, so this test has a
//! binary of its own (no other test allocates meanwhile).
#![cfg(target_os = "linux")]

use rampart::config::Section;
use rampart::monitor::{Monitor, MonitorConfig, Signal};

/// This process's resident set, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .expect("a VmRSS line");
    kib * 1024
}

#[test]
fn a_thousand_64_kib_keys_leave_no_more_behind_than_short_ones() {
    let config = MonitorConfig::from_value(serde_json::json!({
        "max_tracked": 1000, "thresholds": {"rate_limited": 1}
    }))
    .expect("valid");
    let monitor = Monitor::new(config);
    let before = resident_bytes();
    let padding = "k".repeat(64 * 1024);
    for n in 0..1000 {
        // Counted and, over the threshold of 1, blocked: two entries per key.
        let key = format!("{n}{padding}");
        assert_eq!(monitor.observe(Signal::RateLimited, Some(&key), None).len(), 1);
        assert!(monitor.blocked(&key).is_some());
    }
    assert_eq!(monitor.tracked(), 1000);
    let grown = resident_bytes().saturating_sub(before);
    // 64 MiB of keys went through (128 MiB if each entry kept its key).
    assert!(grown < 16 * 1024 * 1024, "the process grew by {grown} bytes");
}
