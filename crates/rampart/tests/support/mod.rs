//! Helpers shared by the integration tests.
//!
//! Tests that need Redis or PostgreSQL find them through
//! `RAMPART_TEST_REDIS_URL` and `RAMPART_TEST_DATABASE_URL`. When a variable
//! is unset or its service does not answer, the test prints a `skipped: ...`
//! line and passes, except under `CI=true`, where it fails: CI must never
//! pass by skipping.
#![allow(dead_code, unreachable_pub)]

use std::io::{self, Write};
#[cfg(feature = "audit")]
use std::path::Path;
use std::sync::{Arc, Mutex};

#[cfg(feature = "audit")]
use rampart::audit::sink::{SyncPolicy, file::FileSink};
#[cfg(feature = "audit")]
use rampart::audit::{AuditKey, Auditor};
#[cfg(feature = "auth")]
use rampart::auth::NewApiKey;

pub mod http;

/// The Redis URL to test against, or `None` (after printing why) when the
/// test should be skipped.
pub fn redis_url() -> Option<String> {
    service_url("RAMPART_TEST_REDIS_URL", "Redis")
}

/// The PostgreSQL URL to test against, or `None` (after printing why).
pub fn database_url() -> Option<String> {
    service_url("RAMPART_TEST_DATABASE_URL", "PostgreSQL")
}

fn service_url(var: &str, service: &str) -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let url = match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ if in_ci => panic!("CI=true but {var} is not set: {service} tests must run in CI"),
        _ => {
            skipped(&format!("{var} is not set, so the {service} tests do not run"));
            return None;
        }
    };
    match tcp_address(&url).and_then(|addr| std::net::TcpStream::connect(addr).ok()) {
        Some(_) => Some(url),
        None if in_ci => panic!("CI=true but {service} at {var}={url} does not answer"),
        None => {
            skipped(&format!("{service} at {var}={url} does not answer"));
            None
        }
    }
}

/// Says a test is skipped, on stderr directly: the test harness captures
/// `println!` and would hide the line from a passing run.
fn skipped(why: &str) {
    let _ = writeln!(io::stderr(), "skipped: {why}");
}

/// `host:port` out of `scheme://[user[:pass]@]host[:port][/...]`.
pub fn tcp_address(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let default_port = if url.starts_with("redis") { 6379 } else { 5432 };
    Some(if host_port.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    })
}

/// A `tracing` writer that keeps everything written to it, for asserting on logs.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// Each line parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `f` with a JSON subscriber that records into the returned logs.
pub fn capture_json_logs<T>(f: impl FnOnce() -> T) -> (T, CapturedLogs) {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    (with_subscriber(subscriber, f), logs)
}

/// Runs `f` with `subscriber` as this thread's default. Use this, never
/// `tracing::subscriber::with_default` directly, in tests that assert on logs.
///
/// Why: while only one dispatcher is registered, tracing-core computes a
/// callsite's interest from the default of whichever thread hits it first and
/// caches it for the whole process. A test running beside this one, with no
/// subscriber, would cache "never" and this test would miss events. A global
/// default installed first makes tracing-core consult every live dispatcher.
pub fn with_subscriber<S, T>(subscriber: S, f: impl FnOnce() -> T) -> T
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::new());
    });
    tracing::subscriber::with_default(subscriber, f)
}

#[test]
fn tcp_address_understands_the_url_forms_we_use() {
    assert_eq!(tcp_address("redis://127.0.0.1:6379/0").as_deref(), Some("127.0.0.1:6379"));
    assert_eq!(tcp_address("redis://localhost").as_deref(), Some("localhost:6379"));
    assert_eq!(
        tcp_address("postgres://postgres@127.0.0.1:5432/test").as_deref(),
        Some("127.0.0.1:5432")
    );
    assert_eq!(tcp_address("postgres://u:p@db/test?x=1").as_deref(), Some("db:5432"));
    assert_eq!(tcp_address("not a url"), None);
}

/// An auditor writing to a file sink in `dir`, every record synced.
#[cfg(feature = "audit")]
pub fn synced_file_auditor(dir: &Path, key: AuditKey) -> Auditor {
    Auditor::builder(key)
        .sink(FileSink::new(dir).fsync(SyncPolicy::Always))
        .start()
        .expect("the auditor starts")
}

/// The records of `event_type` a file sink wrote in `dir`.
#[cfg(feature = "audit")]
pub fn audit_records(dir: &Path, event_type: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(rampart::audit::sink::file::ACTIVE_NAME))
        .expect("read")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .filter(|record| record["event_type"] == event_type)
        .collect()
}

/// `key` with its secret replaced (checksum recomputed), so it reaches the
/// hash comparison and fails there: guess `n` at the secret of a known id.
#[cfg(feature = "auth")]
pub fn guessed_api_key(key: &NewApiKey, n: usize) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = format!("rk_{}_{:0>43}", key.id(), n);
    let mut crc = u64::from(crc32fast::hash(body.as_bytes()));
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[usize::try_from(crc % 62).expect("small")];
        crc /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&sum))
}
