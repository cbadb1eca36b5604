//! Load program for the Redis rate limiter: decisions per second and
//! latency from one process with many concurrent tasks, beside raw
//! `EVALSHA` of the same script driven by `redis-benchmark` in the same run.
//!
//! ```sh
//! cargo run --release --features redis --example ratelimit_load -- \
//!     [--url redis://127.0.0.1:6379] [--tasks 64] [--seconds 5] [--keys 10000]
//! ```
//!
//! It runs rampart, then `redis-benchmark`, then rampart again (so a change
//! in the machine's load shows), and prints the ratio of rampart's mean
//! rate to the raw rate. Keys live under `rampart-load:<pid>:` and expire
//! within a second.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::ratelimit::{FailurePolicy, GCRA_SCRIPT, Quota, RedisLimiter};

struct Options {
    url: String,
    tasks: usize,
    seconds: u64,
    keys: u64,
}

fn options() -> Result<Options, String> {
    let mut options =
        Options { url: "redis://127.0.0.1:6379".into(), tasks: 64, seconds: 5, keys: 10_000 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("{flag} needs a number"));
        match flag.as_str() {
            "--url" => options.url.clone_from(&value),
            "--tasks" => options.tasks = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--seconds" => options.seconds = number()?,
            "--keys" => options.keys = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

async fn run_rampart(limiter: Arc<RedisLimiter>, options: &Options) -> Run {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..options.tasks)
        .map(|task| {
            let limiter = limiter.clone();
            let keys = options.keys;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (task as u64 + 1);
                while Instant::now() < deadline {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let key = (state % keys).to_string();
                    let sent = Instant::now();
                    if limiter.check(&key, 1).await.is_err() {
                        errors += 1;
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mine, my_errors) = task.await.expect("a load task finished");
        latencies.extend(mine);
        errors += my_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    // The latency below which `per_mille` of the calls answered.
    let at =
        |per_mille: usize| latencies[(latencies.len() * per_mille / 1000).min(latencies.len() - 1)];
    Run { rate: latencies.len() as f64 / elapsed, p50: at(500), p99: at(990), errors }
}

/// `redis-benchmark` running `EVALSHA` of the same script, same argument
/// shapes, same concurrency; returns (requests/s, p50 ms, p99 ms).
fn run_raw(options: &Options, prefix: &str, requests: u64) -> Result<(f64, f64, f64), String> {
    let authority = options.url.trim_start_matches("redis://").split('/').next().unwrap_or("");
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "6379"));
    let load = Command::new("redis-cli")
        .args(["-h", host, "-p", port, "SCRIPT", "LOAD", GCRA_SCRIPT])
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    let sha = String::from_utf8_lossy(&load.stdout).trim().to_owned();
    let quota = quota();
    let interval = quota.interval().as_micros().to_string();
    let burst = quota.burst().to_string();
    let key = format!("{prefix}raw:__rand_int__");
    let out = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "--csv"])
        .args(["-c", &options.tasks.to_string(), "-n", &requests.to_string()])
        .args(["-r", &options.keys.to_string()])
        .args(["EVALSHA", &sha, "1", &key, &interval, &burst, "1"])
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let row = text.lines().last().ok_or("no output from redis-benchmark")?;
    let fields: Vec<f64> =
        row.split(',').skip(1).filter_map(|f| f.trim_matches('"').parse().ok()).collect();
    match fields.as_slice() {
        [rps, _avg, _min, p50, _p95, p99, ..] => Ok((*rps, *p50, *p99)),
        _ => Err(format!("unexpected redis-benchmark output: {text}")),
    }
}

fn quota() -> Quota {
    // 100 a second per key with a burst of 100: with 10 000 keys nearly every
    // check admits (the path that also writes), and keys expire within 1 s.
    Quota::new(100, Duration::from_secs(1)).expect("a valid quota")
}

fn main() -> Result<(), String> {
    let options = options()?;
    let prefix = format!("rampart-load:{}:", std::process::id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let limiter = RedisLimiter::builder(&options.url, quota())
        .key_prefix(&prefix)
        .timeout(Duration::from_secs(1))
        .failure_policy(FailurePolicy::FailClosed)
        .build()
        .map_err(|e| e.to_string())?;
    let limiter = Arc::new(limiter);
    println!(
        "{} tasks, {} keys, {} s a run, against {}",
        options.tasks, options.keys, options.seconds, options.url
    );
    let first = runtime.block_on(run_rampart(limiter.clone(), &options));
    // About as many requests as rampart answered in one run.
    let requests = format!("{:.0}", first.rate * options.seconds as f64).parse().unwrap_or(0u64);
    let (raw_rate, raw_p50, raw_p99) = run_raw(&options, &prefix, requests.max(10_000))?;
    let second = runtime.block_on(run_rampart(limiter, &options));
    for (name, run) in [("rampart (1st)", &first), ("rampart (2nd)", &second)] {
        println!(
            "{name:14} {:>9.0} decisions/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            run.rate,
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
            run.errors
        );
    }
    println!(
        "raw EVALSHA    {raw_rate:>9.0} requests/s   p50 {raw_p50:>6.2} ms  p99 {raw_p99:>6.2} ms"
    );
    let mean = (first.rate + second.rate) / 2.0;
    println!("ratio rampart / raw = {:.2}", mean / raw_rate);
    Ok(())
}
