//! Load program for the audit trail: events per second into the file sink
//! (chain + fsync every 10 ms) and into PostgreSQL, the time callers wait
//! (p50/p99), and, for PostgreSQL, a plain `COPY` of the same rows in the
//! same run as the anchor.
//!
//! ```sh
//! cargo run --release --features postgres --example audit_load -- file 400000
//! RAMPART_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release --features postgres --example audit_load -- postgres 200000 1024
//! ```
//!
//! Two producer threads, each a single-threaded tokio runtime running 64
//! tasks (or the third argument) that record events one after another (as two server worker
//! threads handling many requests would), plus a run with one synchronous
//! caller per thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::sink::postgres::PostgresSink;
use rampart::audit::{AuditEvent, AuditKey, Auditor, Outcome};

const THREADS: usize = 2;
/// Concurrent callers per thread, unless the third argument says otherwise.
const TASKS: usize = 64;

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("auth.login", "login")
        .actor(format!("user-{}", i % 1000))
        .resource("session")
        .outcome(if i.is_multiple_of(10) { Outcome::Failure } else { Outcome::Success })
        .detail("method", "password")
        .context("request_id", format!("req-{i}"))
        .context("client_ip", "203.0.113.9")
}

struct Run {
    events: usize,
    elapsed: Duration,
    cpu: Duration,
    waits_us: Vec<u32>,
}

/// CPU time (user + system) this process has used, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 =
        fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

impl Run {
    fn report(&mut self, what: &str) -> f64 {
        self.waits_us.sort_unstable();
        let pct = |p: usize| {
            let last = self.waits_us.len() - 1;
            let idx = (last * p) / 1000;
            f64::from(self.waits_us[idx]) / 1000.0
        };
        let rate = self.events as f64 / self.elapsed.as_secs_f64();
        let per_cpu = self.events as f64 / self.cpu.as_secs_f64().max(0.01);
        println!(
            "{what:<44} {:>9.0} events/s ({:>9.0} per CPU-second)   wait p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms",
            rate,
            per_cpu,
            pct(500),
            pct(990),
            pct(1000)
        );
        rate
    }
}

/// Runs `producer` on THREADS threads (given the thread's index and an
/// auditor; it returns each caller's wait in µs) and measures the whole.
fn on_threads(auditor: &Auditor, producer: impl Fn(usize, Auditor) -> Vec<u32> + Sync) -> Run {
    let started = Instant::now();
    let cpu = cpu_time();
    let waits: Vec<Vec<u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (auditor, producer) = (auditor.clone(), &producer);
                s.spawn(move || producer(t, auditor))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let elapsed = started.elapsed();
    let waits_us: Vec<u32> = waits.into_iter().flatten().collect();
    Run { events: waits_us.len(), elapsed, cpu: cpu_time() - cpu, waits_us }
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// `total` events from THREADS threads, each running `tasks` concurrent tasks.
fn load(auditor: &Auditor, total: usize, tasks: usize) -> Run {
    let per_task = total / (THREADS * tasks);
    on_threads(auditor, |t, auditor| {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(async move {
            let mut joins = Vec::new();
            for task in 0..tasks {
                let auditor = auditor.clone();
                joins.push(tokio::spawn(async move {
                    let mut waits = Vec::with_capacity(per_task);
                    for i in 0..per_task {
                        let began = Instant::now();
                        auditor
                            .record(event((t * tasks + task) * per_task + i))
                            .await
                            .expect("recorded");
                        waits.push(micros(began));
                    }
                    waits
                }));
            }
            let mut all = Vec::new();
            for join in joins {
                all.extend(join.await.expect("task"));
            }
            all
        })
    })
}

/// One synchronous caller per thread.
fn load_blocking(auditor: &Auditor, total: usize) -> Run {
    let per_thread = total / THREADS;
    on_threads(auditor, |t, auditor| {
        (0..per_thread)
            .map(|i| {
                let began = Instant::now();
                auditor.record_blocking(event(t * per_thread + i)).expect("recorded");
                micros(began)
            })
            .collect()
    })
}

fn key() -> AuditKey {
    AuditKey::new("load", b"load-key-load-key-load-key-load-key".to_vec()).expect("key")
}

fn file(total: usize, tasks: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::builder(key())
        .sink(
            FileSink::new(dir.path())
                .fsync(SyncPolicy::Every(Duration::from_millis(10)))
                .rotate_bytes(Some(256 << 20)),
        )
        .queue_capacity(8192)
        .timeout(Duration::from_secs(30))
        .start()
        .expect("starts");
    load(&auditor, total / 10, tasks); // warm-up
    load(&auditor, total, tasks)
        .report(&format!("file, fsync 10ms, {THREADS} threads x {tasks} tasks"));
    load_blocking(&auditor, total / 4)
        .report(&format!("file, fsync 10ms, {THREADS} blocking callers"));
    auditor.shutdown(Duration::from_secs(30)).expect("stops");
    let started = Instant::now();
    let verdict = rampart::audit::verify::verify_paths(&key(), &[dir.path().to_path_buf()], None)
        .expect("verifies");
    assert!(verdict.is_intact());
    println!(
        "verify: {} records in {:.2} s ({:.0} records/s)",
        verdict.records,
        started.elapsed().as_secs_f64(),
        verdict.records as f64 / started.elapsed().as_secs_f64()
    );
}

fn postgres(total: usize, tasks: usize) {
    let url = std::env::var("RAMPART_TEST_DATABASE_URL").expect("RAMPART_TEST_DATABASE_URL");
    let schema = format!("rampart_load_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = rt.block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connects");
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE SCHEMA \"{schema}\"")).await.expect("schema");
        client
    });
    let client = Arc::new(client);
    let auditor = Auditor::builder(key())
        .sink(PostgresSink::new(url, &format!("{schema}.events")).expect("sink").batch_size(5000))
        .queue_capacity(16384)
        .timeout(Duration::from_secs(30))
        .start()
        .expect("starts");
    let mut run = load(&auditor, total, tasks);
    let rate = run.report(&format!("postgres, {THREADS} threads x {tasks} tasks"));
    auditor.shutdown(Duration::from_secs(30)).expect("stops");

    // The anchor: the same rows, already sealed, in one plain COPY.
    let anchor = rt.block_on(async {
        use futures_util::SinkExt;
        let rows = client
            .query(&format!("SELECT seq, time::text, event_type, hash, record FROM \"{schema}\".events ORDER BY seq"), &[])
            .await
            .expect("rows");
        let mut data = Vec::new();
        for row in &rows {
            let seq: i64 = row.get(0);
            let (time, event_type, hash, record): (String, String, String, String) =
                (row.get(1), row.get(2), row.get(3), row.get(4));
            data.extend_from_slice(
                format!("{seq}\t{time}\t{event_type}\t{hash}\t{}\n", record.replace('\\', "\\\\")).as_bytes(),
            );
        }
        client
            .batch_execute(&format!(
                "CREATE TABLE \"{schema}\".plain (seq bigint PRIMARY KEY, time timestamptz NOT NULL, event_type text NOT NULL, hash text NOT NULL, record text NOT NULL)"
            ))
            .await
            .expect("table");
        let started = Instant::now();
        let sink = client
            .copy_in::<_, bytes::Bytes>(&format!("COPY \"{schema}\".plain FROM STDIN"))
            .await
            .expect("copy");
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.expect("send");
        let n = sink.finish().await.expect("finish");
        n as f64 / started.elapsed().as_secs_f64()
    });
    println!(
        "{:<44} {:>9.0} rows/s   (rampart / plain COPY = {:.2})",
        "plain COPY of the same rows, one stream",
        anchor,
        rate / anchor
    );
    rt.block_on(async {
        client.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.expect("drop");
    });
}

fn main() {
    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let tasks: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(TASKS);
    match args.get(1).map(String::as_str) {
        Some("postgres") => postgres(total, tasks),
        _ => file(total, tasks),
    }
}
