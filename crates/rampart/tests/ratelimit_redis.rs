//! The Redis limiter against real Redis servers: accuracy and exactness with
//! several instances sharing one Redis (the shared test server, own key
//! prefixes), and each failure policy with a private `redis-server` this
//! test starts, kills, restarts, stops and resumes.
#![cfg(feature = "redis")]
// Helpers outside #[test] fns too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rampart::ratelimit::{FailurePolicy, Quota, RedisLimiter};

fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("rampart-test:{test}:{}:{nanos}:", std::process::id())
}

/// A `redis-server` of this test's own, on a free port, without persistence.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// Starts one, or returns `None` (skip) outside CI when `redis-server`
    /// is not installed.
    fn start() -> Option<PrivateRedis> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut redis = PrivateRedis { child: None, port };
        if !redis.spawn() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but redis-server could not be started"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let mut cmd = format!("*{}\r\n", args.len());
        for arg in args {
            cmd.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(cmd.as_bytes()).expect("sent");
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).expect("reply");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server restarted on the same port");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("-CONT");
        }
        self.kill();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Metrics recorded during a test: name, labels, value.
type Recorded = Vec<(String, Vec<(String, String)>, DebugValue)>;

fn record(snapshotter: &Snapshotter) -> Recorded {
    // A snapshot resets the counters: take it once.
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn counter(metrics: &Recorded, name: &str, label: (&str, &str)) -> u64 {
    metrics
        .iter()
        .filter(|(n, labels, _)| {
            n == name && labels.iter().any(|(k, v)| k == label.0 && v == label.1)
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

fn gauge(metrics: &Recorded, name: &str) -> Option<f64> {
    metrics.iter().find_map(|(n, _, value)| match value {
        DebugValue::Gauge(v) if n == name => Some(v.into_inner()),
        _ => None,
    })
}

/// Three limiters sharing one Redis and one key prefix, as three replicas
/// of a service would; they fail closed, so a Redis problem fails the test.
fn replicas(url: &str, quota: Quota, test: &str) -> Vec<Arc<RedisLimiter>> {
    let prefix = unique_prefix(test);
    (0..3)
        .map(|_| {
            let limiter = RedisLimiter::builder(url, quota)
                .key_prefix(&prefix)
                .timeout(Duration::from_secs(2))
                .failure_policy(FailurePolicy::FailClosed)
                .build()
                .unwrap();
            Arc::new(limiter)
        })
        .collect()
}

#[test]
fn several_instances_sharing_redis_admit_the_quota_over_many_windows() {
    let Some(url) = support::redis_url() else { return };
    // 20 per second (one per 50 ms), burst 5, for 2.5 s, from 3 instances.
    let quota = Quota::new(20, Duration::from_secs(1)).unwrap().with_burst(5).unwrap();
    let limiters = replicas(&url, quota, "accuracy");
    let rt = runtime();
    let run_for = Duration::from_millis(2500);
    let (admitted, ended) = rt.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let limiter = limiters[i % 3].clone();
                tokio::spawn(async move {
                    let mut admitted = Vec::new();
                    while started.elapsed() < run_for {
                        let sent = started.elapsed();
                        let decision = limiter.check("k", 1).await.expect("Redis answers");
                        if decision.is_allowed() {
                            admitted.push((sent, started.elapsed()));
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    admitted
                })
            })
            .collect();
        let mut admitted = Vec::new();
        for task in tasks {
            admitted.extend(task.await.unwrap());
        }
        (admitted, started.elapsed())
    });
    assert!(limiters.iter().all(|l| !l.is_degraded()));
    let total = admitted.len();
    let span = ended.as_secs_f64();
    let cells = span / 0.05;
    // Never more than the burst plus what the span refills (one cell of
    // slack for the round trips at either end); never short by more than
    // two cells under this steady overload.
    assert!(total as f64 <= 5.0 + cells + 1.0, "{total} admitted in {span:.3}s");
    assert!(total as f64 >= 5.0 + (span - 0.1) / 0.05 - 2.0, "{total} admitted in {span:.3}s");
    // Redis decided each admission somewhere between when it was sent and
    // when its answer came back. Those sent and answered within one window
    // were certainly decided inside it: never more than N + burst.
    let window = Duration::from_secs(1);
    for (from, _) in &admitted {
        let certain =
            admitted.iter().filter(|(sent, answered)| sent >= from && *answered < *from + window);
        let count = certain.count();
        assert!(count <= 20 + 5, "{count} admitted in one window");
    }
    // Steady state (after the first burst, whole windows): every admission
    // that may have been decided inside a window counts, at least N - 1.
    let mut from = Duration::from_millis(300);
    while from + window <= ended - Duration::from_millis(50) {
        let possible =
            admitted.iter().filter(|(sent, answered)| *answered >= from && *sent < from + window);
        let count = possible.count();
        assert!(count + 1 >= 20, "only {count} admitted in the window from {from:?}");
        from += Duration::from_millis(250);
    }
}

#[test]
fn two_threads_of_many_tasks_across_instances_admit_exactly_the_burst() {
    let Some(url) = support::redis_url() else { return };
    // One per 86.4 s: nothing refills during the race.
    let quota = Quota::new(1000, Duration::from_secs(86_400)).unwrap().with_burst(300).unwrap();
    let limiters = replicas(&url, quota, "exact");
    let admitted = Arc::new(AtomicU32::new(0));
    runtime().block_on(async {
        let tasks: Vec<_> = (0..150)
            .map(|i| {
                let (limiter, admitted) = (limiters[i % 3].clone(), admitted.clone());
                tokio::spawn(async move {
                    for _ in 0..4 {
                        if limiter.check("shared", 1).await.expect("Redis answers").is_allowed() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // The key carries a TTL: it goes by itself once whole again.
        let decision = limiters[0].check("shared", 0).await.unwrap();
        assert!(!decision.is_allowed());
        assert!(decision.reset_after() > Duration::from_secs(300 * 86));
    });
    assert_eq!(admitted.load(Ordering::Relaxed), 300);
}

#[test]
fn keys_expire_when_whole_and_a_flushed_script_is_loaded_again() {
    let Some(redis) = PrivateRedis::start() else { return };
    let quota = Quota::new(10, Duration::from_secs(10)).unwrap();
    let limiter = RedisLimiter::builder(&redis.url(), quota)
        .key_prefix("p:")
        .failure_policy(FailurePolicy::FailClosed)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    runtime().block_on(async {
        assert_eq!(limiter.check("a", 3).await.unwrap().remaining(), 7);
        // The TTL is the time until the key is whole again: 3 s.
        let ttl: i64 =
            redis.command(&["PTTL", "p:a"]).trim_start_matches(':').trim().parse().unwrap();
        assert!((2_900..=3_000).contains(&ttl), "PTTL {ttl}");
        assert!(redis.command(&["SCRIPT", "FLUSH"]).starts_with("+OK"));
        let decision = limiter.check("a", 1).await.expect("NOSCRIPT is handled");
        assert_eq!(decision.remaining(), 6, "the state survived the reload");
        assert!(!limiter.is_degraded());
    });
}

/// Runs `f` with logs and metrics captured, on a current-thread runtime.
fn observed<T>(
    f: impl FnOnce(&tokio::runtime::Runtime) -> T,
) -> (T, support::CapturedLogs, Recorded) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (out, logs) =
        support::capture_json_logs(|| metrics::with_local_recorder(&recorder, || f(&rt)));
    (out, logs, record(&snapshotter))
}

fn switch_logs(logs: &support::CapturedLogs) -> Vec<String> {
    logs.json_lines()
        .into_iter()
        .filter(|line| line["target"] == "rampart::ratelimit")
        .map(|line| line["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn limiter_for(redis: &PrivateRedis, quota: Quota, policy: FailurePolicy) -> RedisLimiter {
    RedisLimiter::builder(&redis.url(), quota)
        .key_prefix("p:")
        .timeout(Duration::from_millis(200))
        .probe_interval(Duration::from_millis(100))
        .failure_policy(policy)
        .build()
        .unwrap()
}

/// Checks until the limiter has probed Redis back (bounded).
async fn until_recovered(limiter: &RedisLimiter) {
    for _ in 0..100 {
        // A peek: it spends nothing, even from a local share.
        let _ = limiter.check("probe", 0).await;
        if !limiter.is_degraded() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the limiter did not go back to Redis");
}

#[test]
fn fail_open_admits_while_redis_is_down_then_recovers() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let quota = Quota::new(2, Duration::from_secs(3600)).unwrap();
    let limiter = limiter_for(&redis, quota, FailurePolicy::FailOpen);
    let (_, logs, metrics) = observed(|rt| {
        rt.block_on(async {
            assert!(limiter.check("a", 2).await.unwrap().is_allowed());
            assert!(!limiter.check("a", 1).await.unwrap().is_allowed(), "Redis denies");
            redis.kill();
            for _ in 0..20 {
                assert!(limiter.check("a", 1).await.unwrap().is_allowed(), "failing open");
            }
            assert!(limiter.is_degraded());
            redis.restart();
            until_recovered(&limiter).await;
            // Redis lost its data in the restart: the key starts whole.
            assert_eq!(limiter.check("a", 1).await.unwrap().remaining(), 1);
        });
    });
    let lines = switch_logs(&logs);
    assert_eq!(lines.len(), 2, "one line per switch: {lines:?}");
    assert!(lines[0].contains("unavailable") && lines[1].contains("answers again"));
    assert_eq!(counter(&metrics, "rampart_ratelimit_redis_switches_total", ("to", "policy")), 1);
    assert_eq!(counter(&metrics, "rampart_ratelimit_redis_switches_total", ("to", "redis")), 1);
    assert!(
        counter(
            &metrics,
            "rampart_ratelimit_redis_fallback_decisions_total",
            ("policy", "fail_open")
        ) >= 20
    );
    assert_eq!(gauge(&metrics, "rampart_ratelimit_redis_degraded"), Some(0.0));
}

#[test]
fn fail_closed_refuses_with_503_while_redis_is_down_then_recovers() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let quota = Quota::new(5, Duration::from_secs(3600)).unwrap();
    let limiter = limiter_for(&redis, quota, FailurePolicy::FailClosed);
    let (_, logs, metrics) = observed(|rt| {
        rt.block_on(async {
            assert!(limiter.check("a", 1).await.unwrap().is_allowed());
            redis.kill();
            for _ in 0..5 {
                let err = limiter.check("a", 1).await.unwrap_err();
                assert_eq!(err.status().as_u16(), 503);
                assert_eq!(err.code().as_str(), "RATE_LIMIT_UNAVAILABLE");
                assert_eq!(err.retry_after(), Some(Duration::from_millis(100)));
            }
            redis.restart();
            until_recovered(&limiter).await;
            assert!(limiter.check("a", 1).await.unwrap().is_allowed());
        });
    });
    assert_eq!(switch_logs(&logs).len(), 2);
    assert!(
        counter(
            &metrics,
            "rampart_ratelimit_redis_fallback_decisions_total",
            ("outcome", "refused")
        ) >= 5
    );
}

#[test]
fn local_enforces_a_share_of_the_limit_while_redis_is_down_then_recovers() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    // 12 per hour over 3 replicas: 4 each while Redis is down.
    let quota = Quota::new(12, Duration::from_secs(3600)).unwrap();
    let limiter = limiter_for(&redis, quota, FailurePolicy::Local { replicas: 3 });
    let (_, logs, metrics) = observed(|rt| {
        rt.block_on(async {
            assert_eq!(limiter.check("a", 1).await.unwrap().remaining(), 11);
            redis.kill();
            let mut admitted = 0;
            for _ in 0..10 {
                let decision = limiter.check("a", 1).await.unwrap();
                assert_eq!(decision.quota().requests(), 4, "the local share");
                admitted += u32::from(decision.is_allowed());
            }
            assert_eq!(admitted, 4);
            redis.restart();
            until_recovered(&limiter).await;
            assert_eq!(
                limiter.check("a", 1).await.unwrap().quota().requests(),
                12,
                "Redis decides again"
            );
        });
    });
    assert_eq!(switch_logs(&logs).len(), 2);
    assert_eq!(
        counter(
            &metrics,
            "rampart_ratelimit_redis_fallback_decisions_total",
            ("outcome", "denied")
        ),
        6
    );
}

#[test]
fn a_hung_redis_times_out_into_the_policy_and_recovers_when_it_wakes() {
    let Some(redis) = PrivateRedis::start() else { return };
    let quota = Quota::new(100, Duration::from_secs(60)).unwrap();
    let limiter = limiter_for(&redis, quota, FailurePolicy::FailOpen);
    runtime().block_on(async {
        assert!(limiter.check("a", 1).await.unwrap().is_allowed());
        redis.signal("-STOP");
        // Each call is bounded by the 200 ms timeout; the outer limit only
        // turns a hang into a failure instead of a stuck test.
        let outer = Duration::from_secs(5);
        let first = tokio::time::timeout(outer, limiter.check("a", 1)).await;
        assert!(first.expect("no hang").unwrap().is_allowed());
        assert!(limiter.is_degraded());
        // While degraded, requests do not wait for the hung server at all.
        let many = tokio::time::timeout(outer, async {
            for _ in 0..50 {
                assert!(limiter.check("a", 1).await.unwrap().is_allowed());
            }
        });
        many.await.expect("no hang");
        redis.signal("-CONT");
        until_recovered(&limiter).await;
    });
}

/// Redis slower than the timeout: it is stopped, so calls queue up in its
/// socket and run when it resumes, after their callers gave up. Probes
/// made meanwhile must not spend the key's quota when Redis gets to them.
#[test]
fn probes_while_redis_is_slower_than_the_timeout_spend_nothing() {
    let Some(redis) = PrivateRedis::start() else { return };
    let clock = rampart::clock::FakeClock::new();
    let quota = Quota::new(5, Duration::from_secs(3600)).unwrap();
    let limiter = RedisLimiter::builder(&redis.url(), quota)
        .key_prefix("p:")
        .timeout(Duration::from_millis(100))
        .probe_interval(Duration::from_secs(1))
        .failure_policy(FailurePolicy::FailClosed)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    runtime().block_on(async {
        assert_eq!(limiter.check("a", 1).await.unwrap().remaining(), 4);
        redis.signal("-STOP");
        // The check in flight when Redis stalls: refused here, and it will
        // spend when Redis runs it (documented).
        let err = limiter.check("a", 1).await.unwrap_err();
        assert_eq!(err.code().as_str(), "RATE_LIMIT_UNAVAILABLE");
        assert!(limiter.is_degraded());
        for _ in 0..8 {
            clock.advance(Duration::from_secs(1)); // each check is a probe
            let err = limiter.check("a", 1).await.unwrap_err();
            assert_eq!(err.status().as_u16(), 503);
        }
        redis.signal("-CONT");
        for _ in 0..100 {
            clock.advance(Duration::from_secs(1));
            if limiter.check("b", 0).await.is_ok() && !limiter.is_degraded() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!limiter.is_degraded(), "Redis decides again");
        let peek = limiter.check("a", 0).await.unwrap();
        assert_eq!(peek.remaining(), 3, "only the check made before the switch spent");
    });
}

/// A key of the wrong type under the prefix makes Redis answer its checks
/// with an error. That is one key's problem, not an outage: the policy
/// (here fail closed) refuses that request, and Redis keeps deciding the
/// others.
#[test]
fn an_error_reply_for_one_key_applies_the_policy_to_that_request_only() {
    let Some(url) = support::redis_url() else { return };
    let prefix = unique_prefix("wrongtype");
    let quota = Quota::new(100, Duration::from_secs(60)).unwrap();
    let limiter = RedisLimiter::builder(&url, quota)
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(2))
        .failure_policy(FailurePolicy::FailClosed)
        // Standing still: the repeated error reply falls in one log interval.
        .clock(Arc::new(rampart::clock::FakeClock::new()))
        .build()
        .unwrap();
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let victim = format!("{prefix}victim");
    let _: i64 = redis::cmd("RPUSH").arg(&victim).arg("not a TAT").query(&mut conn).unwrap();
    let (_, logs, metrics) = observed(|rt| {
        rt.block_on(async {
            let err = limiter.check("victim", 1).await.unwrap_err();
            assert_eq!(err.code().as_str(), "RATE_LIMIT_UNAVAILABLE");
            assert!(!limiter.is_degraded(), "Redis answered: no outage");
            for n in 1..=20 {
                let decision = limiter.check("healthy", 1).await.expect("Redis decides");
                assert_eq!(decision.remaining(), 100 - n);
            }
            assert!(limiter.check("victim", 1).await.is_err());
        });
    });
    let lines = switch_logs(&logs);
    assert_eq!(lines.len(), 1, "one warning per probe interval, no switch: {lines:?}");
    assert!(lines[0].contains("Redis refused a rate-limit check"), "{lines:?}");
    assert_eq!(counter(&metrics, "rampart_ratelimit_redis_switches_total", ("to", "policy")), 0);
    assert_eq!(counter(&metrics, "rampart_ratelimit_redis_errors_total", ("reason", "reply")), 2);
    let _: i64 =
        redis::cmd("DEL").arg(&victim).arg(format!("{prefix}healthy")).query(&mut conn).unwrap();
}
