//! `rampart audit verify`, run as a user would: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::{AuditEvent, AuditKey, Auditor};

const KEY: &str = "verify-key-verify-key-verify-key-0";

struct Trail {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key_file: PathBuf,
}

/// A trail of 1 + `events` records, rotated every `rotate` bytes.
fn trail(events: usize, rotate: Option<u64>) -> Trail {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    let key_file = tmp.path().join("audit.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let key = AuditKey::new("k1", KEY.as_bytes().to_vec()).expect("key");
    let auditor = Auditor::builder(key)
        .sink(FileSink::new(&dir).fsync(SyncPolicy::Never).rotate_bytes(rotate))
        .start()
        .expect("starts");
    for i in 0..events {
        auditor
            .record_blocking(AuditEvent::new("doc.read", "read").resource(format!("doc/{i}")))
            .expect("recorded");
    }
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    Trail { _tmp: tmp, dir, key_file }
}

fn verify(args: &[&Path], key_file: &Path, checkpoints: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(["audit", "verify"]).args(args).arg("--key-file").arg(key_file);
    if let Some(cps) = checkpoints {
        cmd.arg("--checkpoints").arg(cps);
    }
    cmd.output().expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> =
        std::fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect();
    f(&mut lines);
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>())
        .expect("write");
}

#[test]
fn an_intact_trail_exits_0_with_its_count() {
    let t = trail(20, None);
    let out = verify(&[&t.dir], &t.key_file, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("OK: 21 records intact, 1 checkpoints matched"),
        "{}",
        stdout(&out)
    );
    // A single file with an explicit checkpoint file says the same.
    let out = verify(
        &[&t.dir.join("audit.jsonl")],
        &t.key_file,
        Some(&t.dir.join("audit.checkpoints.jsonl")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // And without checkpoints it warns that a cut-off tail would go unseen.
    let out = verify(&[&t.dir.join("audit.jsonl")], &t.key_file, None);
    assert!(stdout(&out).contains("no checkpoint file"), "{}", stdout(&out));
}

#[test]
fn each_kind_of_tampering_exits_1_naming_the_record_and_how() {
    type Tamper = fn(&mut Vec<String>);
    let cases: [(&str, Tamper, &str); 5] = [
        ("altered", |l| l[5] = l[5].replace("doc/4", "doc/9"), "altered at "),
        ("removed", |l| drop(l.remove(5)), "removed at "),
        ("inserted", |l| l.insert(6, l[5].clone()), "inserted at "),
        ("reordered", |l| l.swap(5, 9), "reordered at "),
        ("truncated", |l| l.truncate(15), "truncated at "),
    ];
    for (name, tamper, expected) in cases {
        let t = trail(20, None);
        edit(&t.dir.join("audit.jsonl"), tamper);
        let out = verify(&[&t.dir], &t.key_file, None);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        assert!(text.starts_with(&format!("TAMPERED: {expected}")), "{name}: {text}");
        let line = if name == "truncated" {
            "line 15"
        } else if name == "inserted" {
            "line 7"
        } else {
            "line 6"
        };
        assert!(text.contains(&format!("audit.jsonl {line} ")), "{name}: {text}");
    }
}

#[test]
fn rotated_files_verify_as_one_chain_in_order() {
    let t = trail(120, Some(4096));
    let files = rampart::audit::sink::file::files_in(&t.dir).expect("lists");
    assert!(files.len() >= 4);
    let out = verify(&[&t.dir], &t.key_file, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("OK: 121 records intact"));
    // The same files named one by one, in order, verify too; out of order they do not.
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let cps = t.dir.join("audit.checkpoints.jsonl");
    assert_eq!(verify(&paths, &t.key_file, Some(&cps)).status.code(), Some(0));
    let mut swapped = paths.clone();
    swapped.swap(0, 1);
    let out = verify(&swapped, &t.key_file, Some(&cps));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("TAMPERED: reordered"), "{}", stdout(&out));
}

#[test]
fn the_wrong_key_and_unreadable_inputs_are_told_apart() {
    let t = trail(3, None);
    let wrong = t.dir.parent().expect("parent").join("wrong.key");
    std::fs::write(&wrong, "another-key-another-key-another-key").expect("write");
    let out = verify(&[&t.dir], &wrong, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("altered"), "{}", stdout(&out));

    let out = verify(&[&t.dir], Path::new("/nonexistent/key"), None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key-file") && err.contains("cannot read"), "{err}");

    let out = verify(&[Path::new("/nonexistent/audit.jsonl")], &t.key_file, None);
    assert_eq!(out.status.code(), Some(2));

    let short = t.dir.parent().expect("parent").join("short.key");
    std::fs::write(&short, "short").expect("write");
    let out = verify(&[&t.dir], &short, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("short\n"));
}

/// Runs `cmd`, killing it if it has not finished within `secs`.
fn run_within(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("waits").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `rampart audit verify <args>` in a shell with `limits` applied first.
fn verify_limited(limits: &str, args: &[&std::ffi::OsStr]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("{limits}; exec \"$0\" audit verify \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .args(args);
    run_within(cmd, 30)
}

#[test]
fn many_rotated_files_are_read_one_at_a_time() {
    let t = trail(1200, Some(4096));
    let files = rampart::audit::sink::file::files_in(&t.dir).expect("lists");
    assert!(files.len() > 100, "{}", files.len());
    // Far fewer descriptors than files.
    let out = verify_limited(
        "ulimit -n 32",
        &[t.dir.as_os_str(), "--key-file".as_ref(), t.key_file.as_os_str()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).starts_with("OK: 1201 records intact"), "{}", stdout(&out));
}

#[test]
fn a_fifo_or_a_device_is_refused_not_read() {
    let t = trail(3, None);
    let active = t.dir.join("audit.jsonl");
    std::fs::remove_file(&active).expect("rm");
    assert!(Command::new("mkfifo").arg(&active).status().expect("mkfifo").success());
    let out =
        verify_limited("true", &[t.dir.as_os_str(), "--key-file".as_ref(), t.key_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file"), "{err}");
    // A key file that never ends is refused at once, within a small memory limit.
    let out = verify_limited(
        "ulimit -v 1000000",
        &[t.dir.as_os_str(), "--key-file".as_ref(), "/dev/zero".as_ref()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key-file") && err.contains("not a regular file"), "{err}");
    // So is a key file far larger than any key.
    let big = t.dir.parent().expect("parent").join("big.key");
    std::fs::write(&big, vec![b'k'; 1 << 20]).expect("write");
    let out = verify(&[&t.dir], &big, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than"));
}

#[test]
fn require_checkpoints_refuses_to_call_an_unwitnessed_trail_intact() {
    let t = trail(20, None);
    let cps = t.dir.join("audit.checkpoints.jsonl");
    let require = |paths: &[&Path], cps: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(["audit", "verify", "--require-checkpoints"]).args(paths);
        cmd.arg("--key-file").arg(&t.key_file);
        if let Some(cps) = cps {
            cmd.arg("--checkpoints").arg(cps);
        }
        cmd.output().expect("runs")
    };
    assert_eq!(require(&[&t.dir], None).status.code(), Some(0));
    // The tail cut and the checkpoints removed: without the flag it passes.
    edit(&t.dir.join("audit.jsonl"), |l| l.truncate(15));
    std::fs::remove_file(&cps).expect("rm");
    assert_eq!(verify(&[&t.dir], &t.key_file, None).status.code(), Some(0));
    let out = require(&[&t.dir], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint file"));
    // An emptied checkpoint file vouches for nothing either.
    std::fs::write(&cps, "").expect("empty");
    let out = require(&[&t.dir], Some(&cps));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint vouches"));
    // And the help says when to use it.
    let help = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["audit", "verify", "--help"])
        .output()
        .expect("runs");
    let help = stdout(&help);
    assert!(help.contains("--require-checkpoints") && help.contains("scheduled checks"), "{help}");
}
