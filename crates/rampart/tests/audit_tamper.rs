//! Every kind of tampering with a stored chain is detected and located.
#![cfg(feature = "audit")]

use std::io::{Cursor, Read};
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use rampart::audit::chain::Checkpoint;
use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::verify::{FindingKind, Verdict, read_checkpoints, verify_lines};
use rampart::audit::{AuditEvent, AuditKey, Auditor};

const RECORDS: usize = 12;

fn key() -> AuditKey {
    AuditKey::new("k1", b"tamper-key-tamper-key-tamper-key".to_vec()).expect("key")
}

struct Log {
    lines: Vec<Vec<u8>>,
    checkpoints: Vec<Checkpoint>,
}

/// A real log written by the file sink: the start-up record and 11 events.
fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| write_log("user"))
}

/// A log written the same way by `actor`s: with another actor, another
/// chain sealed with the same key (as a second replica, or an older log, is).
fn write_log(actor: &str) -> Log {
    let dir = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::builder(key())
        .sink(FileSink::new(dir.path()).fsync(SyncPolicy::Never))
        .start()
        .expect("starts");
    for i in 1..RECORDS {
        let event =
            AuditEvent::new("doc.read", "read").actor(format!("{actor}-{i}")).detail("i", i);
        auditor.record_blocking(event).expect("recorded");
    }
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    let text = std::fs::read(dir.path().join("audit.jsonl")).expect("read");
    let lines: Vec<Vec<u8>> =
        text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    assert_eq!(lines.len(), RECORDS);
    let checkpoints = read_checkpoints(&key(), &dir.path().join("audit.checkpoints.jsonl"))
        .expect("readable")
        .expect("authentic");
    assert_eq!(checkpoints.last().expect("one at shutdown").seq(), RECORDS as u64);
    Log { lines, checkpoints }
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn verify(bytes: Vec<u8>, checkpoints: &[Checkpoint]) -> Verdict {
    verify_lines(&key(), "audit.jsonl", Cursor::new(bytes), checkpoints).expect("runs")
}

#[test]
fn the_untouched_log_is_intact() {
    let verdict = verify(join(&log().lines), &log().checkpoints);
    assert!(verdict.is_intact(), "{verdict:?}");
    assert_eq!(verdict.records, RECORDS as u64);
    assert_eq!(verdict.checkpoints_matched, log().checkpoints.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_is_found_on_its_line(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = join(&log().lines);
        let at = pos.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let finding = verify(bytes, &log().checkpoints).finding.expect("found");
        prop_assert_eq!(finding.line, line, "{}", finding);
    }

    #[test]
    fn any_removed_record_is_found(i in 0..RECORDS) {
        let mut lines = log().lines.clone();
        lines.remove(i);
        let finding = verify(join(&lines), &log().checkpoints).finding.expect("found");
        if i == RECORDS - 1 {
            prop_assert_eq!(finding.kind, FindingKind::Truncated);
            prop_assert_eq!(finding.line, i as u64);
        } else {
            prop_assert_eq!(finding.kind, FindingKind::Removed);
            prop_assert_eq!(finding.line, i as u64 + 1);
            prop_assert_eq!(finding.expected_seq, i as u64 + 1);
        }
    }

    #[test]
    fn any_duplicated_record_is_found(i in 0..RECORDS, to in 0..=RECORDS) {
        let mut lines = log().lines.clone();
        let copy = lines[i].clone();
        lines.insert(to, copy);
        let finding = verify(join(&lines), &log().checkpoints).finding.expect("found");
        // A copy after the original is an insertion where it stands; right
        // before it, the original becomes the second copy; further before,
        // the copy is a record out of order.
        let (line, kind) = match to {
            to if to > i => (to + 1, FindingKind::Inserted),
            to if to == i => (i + 2, FindingKind::Inserted),
            to => (to + 1, FindingKind::Reordered),
        };
        prop_assert_eq!(finding.line, line as u64, "{}", finding);
        prop_assert_eq!(finding.kind, kind);
    }

    #[test]
    fn any_swap_is_found(i in 0..RECORDS, j in 0..RECORDS) {
        prop_assume!(i < j);
        let mut lines = log().lines.clone();
        lines.swap(i, j);
        let finding = verify(join(&lines), &log().checkpoints).finding.expect("found");
        prop_assert_eq!(finding.kind, FindingKind::Reordered);
        prop_assert_eq!(finding.line, i as u64 + 1);
    }

    #[test]
    fn any_truncation_is_found_with_checkpoints(keep in 0..RECORDS, cut_inside in any::<bool>()) {
        let mut bytes = join(&log().lines[..keep]);
        if cut_inside {
            // Half of the next record, as a cut in the middle of a line leaves it.
            let next = &log().lines[keep];
            bytes.extend_from_slice(&next[..next.len() / 2]);
        }
        let finding = verify(bytes.clone(), &log().checkpoints).finding.expect("found");
        prop_assert_eq!(finding.kind, FindingKind::Truncated);
        // Without checkpoints, only a cut inside a line shows.
        prop_assert_eq!(verify(bytes, &[]).is_intact(), !cut_inside);
    }

    #[test]
    fn an_inserted_forged_line_is_found(at in 0..=RECORDS, junk in "[ -~]{0,200}") {
        let mut lines = log().lines.clone();
        lines.insert(at, junk.into_bytes());
        let finding = verify(join(&lines), &log().checkpoints).finding.expect("found");
        prop_assert_eq!(finding.line, at as u64 + 1);
        if at < RECORDS {
            prop_assert_eq!(finding.kind, FindingKind::Inserted);
        }
    }
}

#[test]
fn a_record_from_another_chain_with_the_same_key_is_not_accepted() {
    let other = write_log("replica");
    for at in [3, 7, RECORDS - 1] {
        // Authentic records at the very seq they claim, from another chain:
        // one in place of ours, or all of ours from there on.
        let mut one = log().lines.clone();
        one[at] = other.lines[at].clone();
        let mut tail = log().lines[..at].to_vec();
        tail.extend_from_slice(&other.lines[at..]);
        for (name, lines) in [("one", one), ("tail", tail)] {
            let finding = verify(join(&lines), &[]).finding.expect(name);
            assert_eq!(
                (finding.kind, finding.line),
                (FindingKind::Altered, at as u64 + 1),
                "{name} at {at}"
            );
            assert!(finding.detail.contains("prev differs"), "{name} at {at}: {finding}");
        }
    }
}

#[test]
fn a_record_from_another_key_is_not_accepted() {
    let other = AuditKey::new("k1", b"another-key-another-key-another!!".to_vec()).expect("key");
    let verdict = verify_lines(&other, "x", Cursor::new(join(&log().lines)), &[]).expect("runs");
    let finding = verdict.finding.expect("found");
    assert_eq!((finding.kind, finding.line), (FindingKind::Altered, 1));
}

#[test]
fn a_forged_checkpoint_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cps.jsonl");
    let mut text = String::new();
    for cp in &log().checkpoints {
        text.push_str(&String::from_utf8_lossy(cp.line()));
        text.push('\n');
    }
    // Claim more records existed than did, without the key.
    let forged = text.replace(&format!("\"seq\":{RECORDS},"), &format!("\"seq\":{},", RECORDS + 5));
    std::fs::write(&path, forged).expect("write");
    let finding = read_checkpoints(&key(), &path).expect("readable").expect_err("forged");
    assert_eq!(finding.kind, FindingKind::Altered);
}

#[test]
fn an_endless_line_is_reported_without_being_loaded_whole() {
    // 80 MiB with no newline, streamed: longer than any record rampart writes.
    let endless = std::io::repeat(b'x').take(80 << 20);
    let verdict = verify_lines(&key(), "big.jsonl", endless, &[]).expect("runs");
    let finding = verdict.finding.expect("found");
    assert_eq!((finding.kind, finding.line), (FindingKind::Altered, 1));
}
