//! The in-memory keyed check beside governor's keyed check, in one run,
//! over the same 100 000 keys (every key already known, every check
//! admitted: the steady state of a busy limiter).
//!
//! The machine is shared and its load swings within seconds, so the two are
//! measured interleaved: each sample alternates chunks of 1 000 checks of
//! one and of the other, and each bench reports only its own side's time.
//! Both sides see the same load, and their ratio holds. At the end the
//! bench prints that ratio over every interleaved check of the run.
//!
//! `cargo bench -p rampart --bench ratelimit`

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::DefaultKeyedRateLimiter;
use rampart::ratelimit::{MemoryLimiter, Quota};

const KEYS: usize = 100_000;
/// Per key: 10 a second, so every key stays live (owes time) for the whole
/// run, with a burst far above what one run spends, so every check admits.
const PER_SECOND: u32 = 10;
const BURST: u32 = 10_000_000;
const CHUNK: u64 = 1_000;

struct Subjects {
    keys: Vec<String>,
    rampart: MemoryLimiter,
    governor: DefaultKeyedRateLimiter<String>,
}

impl Subjects {
    fn new() -> Subjects {
        let keys: Vec<String> =
            (0..KEYS).map(|i| format!("198.51.{}.{}", i / 256, i % 256)).collect();
        let quota = Quota::new(PER_SECOND, Duration::from_secs(1))
            .and_then(|q| q.with_burst(BURST))
            .expect("a valid quota");
        let rampart = MemoryLimiter::new(quota).max_keys(2 * KEYS);
        let (per_second, burst) = (NonZeroU32::new(PER_SECOND), NonZeroU32::new(BURST));
        let quota = governor::Quota::per_second(per_second.expect("non-zero"))
            .allow_burst(burst.expect("non-zero"));
        let governor = governor::RateLimiter::keyed(quota);
        for key in &keys {
            let _ = rampart.check_now(key, 1);
            let _ = governor.check_key(key);
        }
        Subjects { keys, rampart, governor }
    }

    fn rampart(&self, n: u64, next: &mut usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            *next = (*next + 1) % KEYS;
            black_box(self.rampart.check_now(black_box(&self.keys[*next]), 1).is_ok());
        }
        start.elapsed()
    }

    fn governor(&self, n: u64, next: &mut usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            *next = (*next + 1) % KEYS;
            black_box(self.governor.check_key(black_box(&self.keys[*next])).is_ok());
        }
        start.elapsed()
    }

    /// Runs `iters` checks of each, interleaved; returns (rampart, governor).
    fn interleaved(&self, iters: u64, next: &mut usize) -> (Duration, Duration) {
        let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let at = *next;
            ours += self.rampart(n, next);
            *next = at; // the same keys, in the same order
            theirs += self.governor(n, next);
            left -= n;
        }
        (ours, theirs)
    }
}

fn keyed_check(c: &mut Criterion) {
    let subjects = Subjects::new();
    let mut group = c.benchmark_group("keyed_check_100k_keys");
    let mut next = 0;
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let mut both = |iters| {
        let (a, b) = subjects.interleaved(iters, &mut next);
        ours += a;
        theirs += b;
        (a, b)
    };
    group.bench_function("rampart_memory", |b| b.iter_custom(|iters| both(iters).0));
    group.bench_function("governor_keyed", |b| b.iter_custom(|iters| both(iters).1));
    group.finish();
    println!(
        "keyed_check_100k_keys: rampart / governor over the same interleaved checks = {:.2}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

criterion_group!(benches, keyed_check);
criterion_main!(benches);
