//! The audit trail end to end: file sink, chain, verification, delivery
//! under failing, hanging and full sinks, restarts and rotation.
#![cfg(feature = "audit")]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart::audit::chain::{Checkpoint, SealedRecord};
use rampart::audit::sink::file::FileSink;
use rampart::audit::sink::{Sink, SyncPolicy};
use rampart::audit::verify::{FindingKind, verify_paths};
use rampart::audit::{AuditEvent, AuditKey, Auditor, FailurePolicy};
use rampart::{Error, ErrorKind};

fn key() -> AuditKey {
    AuditKey::new("k1", b"test-key-test-key-test-key-test-key".to_vec()).expect("key")
}

fn file_sink(dir: &Path) -> FileSink {
    FileSink::new(dir).fsync(SyncPolicy::Always)
}

fn start(dir: &Path) -> Auditor {
    Auditor::builder(key()).sink(file_sink(dir)).start().expect("starts")
}

fn stop(auditor: &Auditor) {
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .expect("readable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

fn verify_dir(dir: &Path) -> rampart::audit::verify::Verdict {
    verify_paths(&key(), &[dir.to_path_buf()], Some(&dir.join("audit.checkpoints.jsonl")))
        .expect("verifies")
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("order.update", "update").actor("alice").resource(format!("order/{i}"))
}

#[test]
fn records_are_chained_verified_and_private_to_the_owner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    let auditor = start(&dir);
    for i in 0..10 {
        auditor.record_blocking(event(i)).expect("recorded");
    }
    stop(&auditor);
    let records = lines(&dir.join("audit.jsonl"));
    assert_eq!(records.len(), 11, "the self-test record and ours");
    assert_eq!(records[0]["event_type"], "audit.started");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i + 1);
        assert_eq!(record["key_id"], "k1");
        if i > 0 {
            assert_eq!(record["prev"], records[i - 1]["hash"]);
        }
    }
    assert_eq!(records[10]["resource"], "order/9");
    let verdict = verify_dir(&dir);
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, 11);
    assert!(verdict.checkpoints_matched >= 1);
    let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("audit.jsonl")), 0o600);
    assert_eq!(mode(&dir.join("audit.checkpoints.jsonl")), 0o600);
    assert_eq!(auditor.stats().written, 10);
    assert_eq!(auditor.stats().lost, 0);
    // After shutdown an event is refused at once, and counted.
    let began = Instant::now();
    let err = auditor.record_blocking(event(11)).expect_err("refused");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    assert!(began.elapsed() < Duration::from_millis(500));
    assert_eq!(auditor.stats().lost, 1);
}

#[test]
fn the_chain_continues_across_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for round in 0..3 {
        let auditor = start(tmp.path());
        for i in 0..4 {
            auditor.record_blocking(event(round * 10 + i)).expect("recorded");
        }
        stop(&auditor);
    }
    let records = lines(&tmp.path().join("audit.jsonl"));
    assert_eq!(records.len(), 15);
    assert_eq!(records[5]["event_type"], "audit.started");
    assert_eq!(records[5]["details"]["resumed_after_seq"], 5);
    let verdict = verify_dir(tmp.path());
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, 15);
}

#[test]
fn a_torn_last_line_is_set_aside_and_the_chain_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let auditor = start(tmp.path());
    auditor.record_blocking(event(1)).expect("recorded");
    stop(&auditor);
    let active = tmp.path().join("audit.jsonl");
    let whole = fs::read(&active).expect("read");
    // A crash in the middle of writing the next record.
    let mut torn = whole;
    torn.extend_from_slice(br#"{"seq":3,"prev":"ab"#);
    fs::write(&active, &torn).expect("write");
    let verdict = verify_paths(&key(), std::slice::from_ref(&active), None).expect("runs");
    assert_eq!(verdict.finding.expect("torn").kind, FindingKind::Truncated);

    let auditor = start(tmp.path());
    auditor.record_blocking(event(2)).expect("recorded");
    stop(&auditor);
    let verdict = verify_dir(tmp.path());
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, 4);
    let aside: Vec<PathBuf> = fs::read_dir(tmp.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit.torn-")))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read(&aside[0]).expect("read"), br#"{"seq":3,"prev":"ab"#);
}

#[test]
fn the_chain_continues_across_rotated_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sink = || file_sink(tmp.path()).rotate_bytes(Some(4096));
    let auditor = Auditor::builder(key()).sink(sink()).start().expect("starts");
    for i in 0..60 {
        auditor.record_blocking(event(i)).expect("recorded");
    }
    stop(&auditor);
    // And once more after a restart, which resumes from the newest file.
    let auditor = Auditor::builder(key()).sink(sink()).start().expect("starts");
    for i in 60..80 {
        auditor.record_blocking(event(i)).expect("recorded");
    }
    stop(&auditor);
    let files = rampart::audit::sink::file::files_in(tmp.path()).expect("lists");
    assert!(files.len() >= 4, "{files:?}");
    for file in &files {
        assert!(fs::metadata(file).expect("exists").len() <= 4096 + 512, "{file:?}");
    }
    let verdict = verify_dir(tmp.path());
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, 82);

    // Removing a whole rotated file from the middle is found.
    fs::remove_file(&files[1]).expect("remove");
    let finding = verify_dir(tmp.path()).finding.expect("found");
    assert_eq!(finding.kind, FindingKind::Removed);
    assert_eq!(finding.line, 1);
    assert!(finding.file.ends_with(&*files[2].file_name().expect("name").to_string_lossy()));
}

#[test]
fn a_chain_whose_last_record_was_forged_is_not_extended() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let auditor = start(tmp.path());
    auditor.record_blocking(event(1)).expect("recorded");
    stop(&auditor);
    let active = tmp.path().join("audit.jsonl");
    let text = fs::read_to_string(&active).expect("read").replace("order/1", "order/2");
    fs::write(&active, text).expect("write");
    let err = Auditor::builder(key()).sink(file_sink(tmp.path())).start().expect_err("refuses");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    // With another key the chain is not ours either.
    let other = AuditKey::new("k2", vec![3; 32]).expect("key");
    let fresh = tempfile::tempdir().expect("tempdir");
    stop(&start(fresh.path()));
    assert!(Auditor::builder(other).sink(file_sink(fresh.path())).start().is_err());
}

#[test]
fn sensitive_details_are_stored_as_an_hmac_that_correlates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let auditor = start(tmp.path());
    for _ in 0..2 {
        let event =
            AuditEvent::new("apikey.used", "call").sensitive_detail("api_key", "rk_live_s3cret");
        auditor.record_blocking(event).expect("recorded");
    }
    stop(&auditor);
    let text = fs::read_to_string(tmp.path().join("audit.jsonl")).expect("read");
    assert!(!text.contains("rk_live_s3cret"));
    let digest = auditor.hash_detail("rk_live_s3cret");
    assert!(digest.starts_with("hmac-sha256:"));
    assert_eq!(text.matches(&digest).count(), 2);
}

/// A file sink that can be told to fail or to hang.
struct Flaky {
    inner: FileSink,
    fail: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    slow_ms: Arc<AtomicU64>,
    appends: Arc<AtomicU64>,
}

impl Sink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy::Always
    }
    fn open(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.inner.open()
    }
    fn append(&mut self, records: &[SealedRecord<'_>]) -> Result<(), Error> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        while self.hang.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(Duration::from_millis(self.slow_ms.load(Ordering::SeqCst)));
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::unavailable("the disk is on fire"));
        }
        self.inner.append(records)
    }
    fn sync(&mut self) -> Result<(), Error> {
        self.inner.sync()
    }
    fn last_record(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.inner.last_record()
    }
    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        self.inner.checkpoint(checkpoint)
    }
}

struct Switches {
    fail: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    slow_ms: Arc<AtomicU64>,
    /// Calls to `append` so far, the start-up self-test's included.
    appends: Arc<AtomicU64>,
}

fn flaky(dir: &Path) -> (Flaky, Switches) {
    let fail = Arc::new(AtomicBool::new(false));
    let hang = Arc::new(AtomicBool::new(false));
    let slow_ms = Arc::new(AtomicU64::new(0));
    let appends = Arc::new(AtomicU64::new(0));
    let sink = Flaky {
        inner: file_sink(dir),
        fail: Arc::clone(&fail),
        hang: Arc::clone(&hang),
        slow_ms: Arc::clone(&slow_ms),
        appends: Arc::clone(&appends),
    };
    (sink, Switches { fail, hang, slow_ms, appends })
}

fn start_flaky(dir: &Path, policy: FailurePolicy) -> (Auditor, Switches) {
    let (sink, switches) = flaky(dir);
    let auditor = Auditor::builder(key())
        .sink(sink)
        .failure_policy(policy)
        .timeout(Duration::from_millis(300))
        .start()
        .expect("starts");
    (auditor, switches)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
}

#[test]
fn fail_closed_refuses_the_operation_when_the_sink_errors_then_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (auditor, switches) = start_flaky(tmp.path(), FailurePolicy::FailClosed);
    auditor.record_blocking(event(1)).expect("recorded");
    switches.fail.store(true, Ordering::SeqCst);
    let err = auditor.record_blocking(event(2)).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    let err = runtime().block_on(auditor.record(event(3))).expect_err("refused");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    assert_eq!(auditor.stats().lost, 2);
    switches.fail.store(false, Ordering::SeqCst);
    auditor.record_blocking(event(4)).expect("recovered");
    stop(&auditor);
    let verdict = verify_dir(tmp.path());
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, 3, "self-test, 1 and 4: the failed ones left no trace");
}

#[test]
fn fail_open_goes_on_and_counts_the_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (auditor, switches) = start_flaky(tmp.path(), FailurePolicy::FailOpen);
    switches.fail.store(true, Ordering::SeqCst);
    let ((), logs) =
        support::capture_json_logs(|| auditor.record_blocking(event(1)).expect("goes on"));
    let logs = logs.text();
    runtime().block_on(auditor.record(event(2))).expect("goes on");
    assert_eq!(auditor.stats().lost, 2);
    assert!(logs.contains("could not be recorded"), "{logs}");
    assert!(logs.contains("fail_open"), "{logs}");
    switches.fail.store(false, Ordering::SeqCst);
    stop(&auditor);
}

#[test]
fn a_hanging_sink_never_hangs_the_caller() {
    for policy in [FailurePolicy::FailClosed, FailurePolicy::FailOpen] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (auditor, switches) = start_flaky(tmp.path(), policy);
        switches.hang.store(true, Ordering::SeqCst);
        let began = Instant::now();
        let sync_result = auditor.record_blocking(event(1));
        let async_result = runtime().block_on(auditor.record(event(2)));
        let waited = began.elapsed();
        assert!(waited < Duration::from_secs(2), "{policy:?} waited {waited:?}");
        match policy {
            FailurePolicy::FailClosed => {
                assert_eq!(sync_result.expect_err("refused").code().as_str(), "AUDIT_UNAVAILABLE");
                assert!(async_result.is_err());
            }
            FailurePolicy::FailOpen => {
                sync_result.expect("goes on");
                async_result.expect("goes on");
            }
        }
        assert_eq!(auditor.stats().unconfirmed, 2, "{policy:?}");
        switches.hang.store(false, Ordering::SeqCst);
        stop(&auditor);
        // Unconfirmed is not lost: once the sink woke up, they were written.
        let verdict = verify_dir(tmp.path());
        assert!(verdict.is_intact());
        assert_eq!(verdict.records, 3, "{policy:?}");
    }
}

#[test]
fn callers_wait_for_room_rather_than_lose_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (sink, switches) = flaky(tmp.path());
    switches.slow_ms.store(5, Ordering::SeqCst);
    let auditor = Auditor::builder(key())
        .sink(sink)
        .queue_capacity(1)
        .timeout(Duration::from_secs(20))
        .start()
        .expect("starts");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let auditor = auditor.clone();
            std::thread::spawn(move || {
                (0..10).map(|i| auditor.record_blocking(event(t * 100 + i))).collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().expect("joins").iter().all(Result::is_ok));
    }
    assert_eq!(auditor.stats().written, 80);
    assert_eq!(auditor.stats().lost, 0);
    stop(&auditor);
    assert_eq!(verify_dir(tmp.path()).records, 81);
}

#[test]
fn nothing_is_dropped_silently_when_the_queue_overflows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (sink, switches) = flaky(tmp.path());
    let auditor = Auditor::builder(key())
        .sink(sink)
        .queue_capacity(4)
        .timeout(Duration::from_millis(300))
        .start()
        .expect("starts");
    switches.hang.store(true, Ordering::SeqCst);
    let began = Instant::now();
    // One event first, to have the sink hang in its write before the others
    // come (the start-up self-test was the first write).
    let spawn = |i: usize| {
        let auditor = auditor.clone();
        std::thread::spawn(move || auditor.record_blocking(event(i)))
    };
    let mut threads = vec![spawn(40)];
    while switches.appends.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    threads.extend((0..40).map(spawn));
    let results: Vec<_> = threads.into_iter().map(|t| t.join().expect("joins")).collect();
    assert!(began.elapsed() < Duration::from_secs(3), "took {:?}", began.elapsed());
    assert!(
        results.iter().all(|r| r.as_ref().is_err_and(|e| e.code().as_str() == "AUDIT_UNAVAILABLE"))
    );
    switches.hang.store(false, Ordering::SeqCst);
    stop(&auditor);
    // Every event is accounted for: written late (its caller had given up) or counted lost.
    let stats = auditor.stats();
    assert_eq!(stats.written + stats.lost, 41, "{stats:?}");
    // At most the hung write's event and a queue's worth wait to be written.
    assert!(stats.lost >= 41 - 1 - 4, "{stats:?}");
    let verdict = verify_dir(tmp.path());
    assert!(verdict.is_intact());
    assert_eq!(verdict.records, stats.written + 1);
}

#[test]
fn with_two_sinks_one_failing_is_enough_to_go_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (sink, switches) = flaky(&tmp.path().join("flaky"));
    let auditor = Auditor::builder(key())
        .sink(sink)
        .sink(file_sink(&tmp.path().join("good")))
        .timeout(Duration::from_millis(500))
        .start()
        .expect("starts");
    switches.fail.store(true, Ordering::SeqCst);
    auditor.record_blocking(event(1)).expect("the good sink has it");
    assert_eq!(auditor.stats().lost, 0);
    // The call returns once the good sink has the event; the flaky sink's
    // failure is counted by its own worker, maybe a moment later.
    let waited = Instant::now();
    while auditor.stats().sink_errors == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(auditor.stats().sink_errors >= 1);
    switches.fail.store(false, Ordering::SeqCst);
    auditor.record_blocking(event(2)).expect("both have it");
    stop(&auditor);
    let good = verify_dir(&tmp.path().join("good"));
    assert_eq!((good.is_intact(), good.records), (true, 3));
    let flaky = verify_dir(&tmp.path().join("flaky"));
    assert_eq!(
        (flaky.is_intact(), flaky.records),
        (true, 2),
        "its own chain, without the event it missed"
    );
}

#[test]
fn an_unusable_directory_is_handled_by_the_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    fs::write(&file, "x").expect("write");
    let dir = file.join("audit");
    let err =
        Auditor::builder(key()).sink(file_sink(&dir)).start().expect_err("fail-closed refuses");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    let auditor = Auditor::builder(key())
        .sink(file_sink(&dir))
        .failure_policy(FailurePolicy::FailOpen)
        .timeout(Duration::from_millis(300))
        .start()
        .expect("fail-open starts");
    auditor.record_blocking(event(1)).expect("goes on");
    assert_eq!(auditor.stats().lost, 1);
    assert!(auditor.stats().sink_errors >= 2);
}

// --- A full disk, by RLIMIT_FSIZE on a child process --------------------------------

const DISK_FULL_DIR: &str = "RAMPART_TEST_DISK_FULL_DIR";

/// Not a test: the body the disk-full tests run in a child process whose
/// file size limit is small. Prints one JSON line of what happened.
#[test]
#[ignore = "helper: run by the disk_full tests in a child process"]
fn disk_full_child() {
    let Ok(dir) = std::env::var(DISK_FULL_DIR) else { return };
    let policy = match std::env::var("RAMPART_TEST_POLICY").as_deref() {
        Ok("fail_open") => FailurePolicy::FailOpen,
        _ => FailurePolicy::FailClosed,
    };
    let auditor = Auditor::builder(key())
        .sink(file_sink(Path::new(&dir)))
        .failure_policy(policy)
        .timeout(Duration::from_secs(1))
        .start()
        .expect("starts while there is room");
    let (mut ok, mut refused, mut codes) = (0, 0, Vec::new());
    for i in 0..400 {
        match auditor.record_blocking(event(i).detail("padding", "x".repeat(200))) {
            Ok(()) => ok += 1,
            Err(err) => {
                refused += 1;
                let code = err.code().as_str().to_owned();
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
        }
    }
    let stats = auditor.stats();
    let _ = auditor.shutdown(Duration::from_secs(5));
    println!(
        "RESULT {}",
        serde_json::json!({"ok": ok, "refused": refused, "codes": codes, "lost": stats.lost, "written": stats.written})
    );
}

fn run_disk_full_child(dir: &Path, policy: &str) -> serde_json::Value {
    let exe = std::env::current_exe().expect("test binary");
    // An ignored SIGXFSZ is inherited, so writes past the limit fail with EFBIG
    // instead of killing the process; `ulimit -f 16` is 16 KiB.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" --exact disk_full_child --include-ignored --nocapture --test-threads 1")
        .arg(&exe)
        .env(DISK_FULL_DIR, dir)
        .env("RAMPART_TEST_POLICY", policy)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .expect("a result line");
    serde_json::from_str(line).expect("JSON")
}

#[test]
fn disk_full_fail_closed_refuses_and_the_chain_stays_intact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let result = run_disk_full_child(tmp.path(), "fail_closed");
    let ok = result["ok"].as_u64().expect("ok");
    assert!(ok > 10 && ok < 400, "{result}");
    assert_eq!(result["refused"].as_u64(), Some(400 - ok), "{result}");
    assert_eq!(result["codes"], serde_json::json!(["AUDIT_UNAVAILABLE"]), "{result}");
    assert!(fs::metadata(tmp.path().join("audit.jsonl")).expect("exists").len() <= 16 * 1024);
    // No partial record was left behind, and the chain is usable once there is room again.
    let verdict = verify_paths(&key(), &[tmp.path().to_path_buf()], None).expect("verifies");
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, ok + 1);
    let auditor = start(tmp.path());
    auditor.record_blocking(event(1)).expect("recorded");
    stop(&auditor);
    assert!(verify_paths(&key(), &[tmp.path().to_path_buf()], None).expect("verifies").is_intact());
}

#[test]
fn disk_full_fail_open_goes_on_and_counts_every_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let result = run_disk_full_child(tmp.path(), "fail_open");
    assert_eq!(result["ok"].as_u64(), Some(400), "{result}");
    let written = result["written"].as_u64().expect("written");
    let lost = result["lost"].as_u64().expect("lost");
    assert!(lost > 0, "{result}");
    assert_eq!(written + lost, 400, "{result}");
    let verdict = verify_paths(&key(), &[tmp.path().to_path_buf()], None).expect("verifies");
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, written + 1);
}

// --- Storage that goes away under a running sink ------------------------------------

/// Records `n` events; how many were confirmed.
fn confirmed(auditor: &Auditor, n: usize) -> usize {
    (0..n).filter(|&i| auditor.record_blocking(event(i)).is_ok()).count()
}

/// The record lines in `dir`, all files in chain order (none if it is gone).
fn records_in(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(files) = rampart::audit::sink::file::files_in(dir) else { return Vec::new() };
    files.iter().flat_map(|file| lines(file)).collect()
}

#[test]
fn fail_closed_confirms_nothing_once_the_directory_is_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    // Small files, so a rotation comes soon after the removal too.
    let auditor = Auditor::builder(key())
        .sink(file_sink(&dir).rotate_bytes(Some(4096)))
        .timeout(Duration::from_millis(500))
        .start()
        .expect("starts");
    assert_eq!(confirmed(&auditor, 5), 5);
    fs::remove_dir_all(&dir).expect("rm -rf");
    assert_eq!(confirmed(&auditor, 50), 0, "confirmed records that exist nowhere");
    stop(&auditor);
    // The sink may re-create the directory, but it starts no new chain there.
    assert_eq!(records_in(&dir).len(), 0, "{:?}", records_in(&dir));
    assert_eq!(auditor.stats().written, 5);
    assert_eq!(auditor.stats().lost, 50);
}

#[test]
fn fail_closed_confirms_nothing_once_the_active_file_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let active = tmp.path().join("audit.jsonl");
    let auditor = Auditor::builder(key())
        .sink(file_sink(tmp.path()))
        .timeout(Duration::from_millis(500))
        .start()
        .expect("starts");
    assert_eq!(confirmed(&auditor, 5), 5);
    fs::remove_file(&active).expect("rm");
    fs::create_dir(&active).expect("a directory in its place");
    assert_eq!(confirmed(&auditor, 20), 0, "confirmed into a file that is gone");
    // With the way clear again, the sink still does not restart the chain
    // in an empty file: the six records it confirmed are not there.
    fs::remove_dir(&active).expect("rmdir");
    assert_eq!(confirmed(&auditor, 5), 0, "a new chain over the lost one");
    stop(&auditor);
    assert_eq!(records_in(tmp.path()).len(), 0);
}

#[test]
fn fail_open_goes_on_after_the_directory_is_removed_and_records_the_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    let auditor = Auditor::builder(key())
        .sink(file_sink(&dir))
        .failure_policy(FailurePolicy::FailOpen)
        .timeout(Duration::from_millis(500))
        .start()
        .expect("starts");
    assert_eq!(confirmed(&auditor, 5), 5);
    fs::remove_dir_all(&dir).expect("rm -rf");
    assert_eq!(confirmed(&auditor, 10), 10, "fail-open goes on");
    stop(&auditor);
    let stats = auditor.stats();
    assert!(stats.lost >= 1, "the write into the removed file is a loss: {stats:?}");
    assert_eq!(stats.written + stats.lost, 15, "{stats:?}");
    // The new file opens with the gap, chained on from the last confirmed record.
    let records = records_in(&dir);
    assert_eq!(records[0]["event_type"], "audit.gap", "{records:?}");
    assert_eq!(records[0]["seq"], 7);
    assert_eq!(records[0]["details"]["found_seq"], 0);
    assert_eq!(records[0]["details"]["confirmed_seq"], 6);
    assert_eq!(records.len() as u64, 1 + stats.written - 5);
    let finding = verify_dir(&dir).finding.expect("the loss is reported");
    assert_eq!((finding.kind, finding.line), (FindingKind::Lost, 1), "{finding}");
    assert!(finding.detail.contains("confirmed seq 6"), "{finding}");
}

#[test]
fn planted_links_and_special_files_are_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let victim = tmp.path().join("victim.txt");
    let content = "keep me\nand my last line, which has no newline";
    for name in ["audit.checkpoints.jsonl", "audit.jsonl"] {
        let dir = tmp.path().join(format!("shared-{name}"));
        fs::create_dir(&dir).expect("dir");
        fs::write(&victim, content).expect("victim");
        std::os::unix::fs::symlink(&victim, dir.join(name)).expect("planted link");
        let err = Auditor::builder(key()).sink(file_sink(&dir)).start().expect_err(name);
        assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
        assert_eq!(fs::read_to_string(&victim).expect("read"), content, "{name} followed");
    }
    // A FIFO where the log belongs is refused at once, not waited on.
    let dir = tmp.path().join("fifo");
    fs::create_dir(&dir).expect("dir");
    let made = std::process::Command::new("mkfifo").arg(dir.join("audit.jsonl")).status();
    assert!(made.expect("mkfifo runs").success());
    let err = Auditor::builder(key()).sink(file_sink(&dir)).start().expect_err("a FIFO");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
}

#[test]
fn a_torn_checkpoint_line_is_set_aside_not_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    stop(&start(tmp.path()));
    let cps = tmp.path().join("audit.checkpoints.jsonl");
    let mut text = fs::read(&cps).expect("read");
    text.extend_from_slice(br#"{"seq":9,"hash":"ab"#);
    fs::write(&cps, &text).expect("write");
    let auditor = start(tmp.path());
    auditor.record_blocking(event(1)).expect("recorded");
    stop(&auditor);
    assert!(verify_dir(tmp.path()).is_intact());
    let aside: Vec<PathBuf> = fs::read_dir(tmp.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("audit.checkpoints.torn-"))
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).expect("read"), br#"{"seq":9,"hash":"ab"#);
}

#[test]
fn only_events_really_dropped_count_as_lost() {
    // Callers give up waiting for room in the queue just as the sink,
    // stalled until then, takes their events: what the sink took is
    // written, so it is not lost; what it did not take is.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (sink, switches) = flaky(tmp.path());
    let timeout = Duration::from_millis(50);
    let auditor = Auditor::builder(key())
        .sink(sink)
        .queue_capacity(4)
        .timeout(timeout)
        .start()
        .expect("starts");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    let mut sent = 0;
    // The stall ends from 6 ms before the callers' deadline to 6 ms after,
    // in steps of 250 µs: somewhere the sink takes events from callers
    // whose wait is ending.
    for step in 0..=48 {
        let offset = timeout - Duration::from_millis(6) + Duration::from_micros(step * 250);
        switches.hang.store(true, Ordering::SeqCst);
        rt.block_on(async {
            let tasks: Vec<_> = (0..300)
                .map(|i| {
                    let auditor = auditor.clone();
                    tokio::spawn(async move { auditor.record(event(i)).await })
                })
                .collect();
            tokio::time::sleep(offset).await;
            switches.hang.store(false, Ordering::SeqCst);
            for task in tasks {
                let _ = task.await.expect("joins");
            }
        });
        sent += 300;
    }
    stop(&auditor);
    let stats = auditor.stats();
    assert!(stats.lost > 0 && stats.unconfirmed > 0, "the queue overflowed: {stats:?}");
    assert_eq!(stats.written + stats.lost, sent, "{stats:?}");
    assert_eq!(verify_dir(tmp.path()).records, stats.written + 1);
}
