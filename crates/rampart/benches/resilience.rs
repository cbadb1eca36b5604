//! What a retry policy and a closed circuit breaker add to a call that
//! succeeds, beside the bare call and backon's retry of the same call; and
//! how many calls per second two threads push through one breaker.
//!
//! `cargo bench -p rampart --bench resilience -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ExponentialBuilder};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart::error::Error;
use rampart::resilience::{CircuitBreaker, RetryBudget, RetryPolicy};

/// The protected call: cheap, so the wrappers' cost is what shows.
#[inline(never)]
fn call(x: u64) -> Result<u64, Error> {
    Ok(black_box(x).wrapping_mul(3))
}

fn overhead(c: &mut Criterion) {
    let retry = RetryPolicy::builder("bench").build().expect("valid policy");
    let budget = RetryBudget::builder().build().expect("valid budget");
    let retry_budget = RetryPolicy::builder("bench").budget(budget).build().expect("valid policy");
    let breaker = CircuitBreaker::builder("bench").build().expect("valid breaker");
    let slow_breaker = CircuitBreaker::builder("bench")
        .slow_call(Duration::from_secs(1), 0.5)
        .build()
        .expect("valid breaker");

    let mut group = c.benchmark_group("overhead");
    group.bench_function("bare call", |b| b.iter(|| call(black_box(7))));
    group.bench_function("retry (defaults), succeeds first time", |b| {
        b.iter(|| retry.retry(|| call(black_box(7))));
    });
    group.bench_function("retry with a budget, succeeds first time", |b| {
        b.iter(|| retry_budget.retry(|| call(black_box(7))));
    });
    group.bench_function("backon retry, succeeds first time (exponential, jitter)", |b| {
        b.iter(|| {
            (|| call(black_box(7))).retry(ExponentialBuilder::default().with_jitter()).call()
        });
    });
    group.bench_function("closed breaker", |b| b.iter(|| breaker.call(|| call(black_box(7)))));
    group.bench_function("closed breaker with slow-call rule", |b| {
        b.iter(|| slow_breaker.call(|| call(black_box(7))));
    });
    group.finish();
}

fn contention(c: &mut Criterion) {
    let breaker = CircuitBreaker::builder("bench").build().expect("valid breaker");
    let mut group = c.benchmark_group("breaker throughput");
    for threads in [1_u64, 2] {
        // Each iteration is one call on each thread.
        group.throughput(Throughput::Elements(threads));
        group.bench_function(format!("{threads} thread(s), one closed breaker"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            for i in 0..iters {
                                let _ = black_box(breaker.call(|| call(i)));
                            }
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, overhead, contention);
criterion_main!(benches);
