//! The cost of the chain per record: serializing an event, sealing it
//! (HMAC-SHA256 over prev || record) and verifying it, beside the anchor of
//! one bare HMAC-SHA256 over the same bytes.
//!
//! `cargo bench -p rampart --bench audit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use aws_lc_rs::hmac;
use criterion::{Criterion, criterion_group, criterion_main};
use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::verify::verify_lines;
use rampart::audit::{AuditEvent, AuditKey, Auditor};

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("auth.login", "login")
        .actor("user-42")
        .resource("session")
        .detail("method", "password")
        .context("request_id", format!("req-{i}"))
}

fn benches(c: &mut Criterion) {
    let secret = b"bench-key-bench-key-bench-key-bench".to_vec();
    let key = AuditKey::new("b", secret.clone()).expect("key");
    // A real log of 1000 records to verify.
    let dir = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::builder(key.clone())
        .sink(FileSink::new(dir.path()).fsync(SyncPolicy::Never))
        .start()
        .expect("starts");
    for i in 0..999 {
        auditor.record_blocking(event(i)).expect("recorded");
    }
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    let log = std::fs::read(dir.path().join("audit.jsonl")).expect("read");
    let line_len = log.len() / 1000;

    let mut group = c.benchmark_group("audit");
    group.bench_function("anchor: bare HMAC-SHA256 of one record's bytes", |b| {
        let mac = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let bytes = &log[..line_len];
        b.iter(|| black_box(hmac::sign(&mac, black_box(bytes))));
    });
    group.bench_function("verify 1000 records (per record = time / 1000)", |b| {
        b.iter(|| {
            let verdict = verify_lines(&key, "x", Cursor::new(log.clone()), &[]).expect("runs");
            assert!(verdict.is_intact());
        });
    });
    group.finish();
}

criterion_group!(audit, benches);
criterion_main!(audit);
