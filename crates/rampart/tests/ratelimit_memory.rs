//! The in-memory limiter: accuracy on a scripted clock, exactness under
//! concurrency, and memory that stays bounded under millions of keys.
// Helpers outside #[test] fns too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use rampart::clock::FakeClock;
use rampart::ratelimit::{MemoryLimiter, Quota, RateLimiter};

/// Admission times (ns since start) of a scripted run: one request every
/// `gaps[i]` nanoseconds against one key.
fn run(quota: Quota, gaps: &[u64]) -> (Vec<u64>, u64) {
    let clock = FakeClock::new();
    let limiter = MemoryLimiter::new(quota).clock(clock.clone());
    let mut admitted = Vec::new();
    let mut now = 0u64;
    for gap in gaps {
        clock.advance(Duration::from_nanos(*gap));
        now += gap;
        if limiter.check_now("k", 1).unwrap().is_allowed() {
            admitted.push(now);
        }
    }
    (admitted, now)
}

/// How many of the sorted `times` fall in `[start, start + len)`.
fn in_window(times: &[u64], start: u64, len: u64) -> usize {
    let lo = times.partition_point(|t| *t < start);
    let hi = times.partition_point(|t| *t < start + len);
    hi - lo
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over many windows, no window holds more than N + burst admissions;
    /// under steady overload no window (after the first burst is spent)
    /// falls short of N by more than one cell. (A burst of 1 is strict
    /// spacing: an arrival later than its slot loses the lateness, so the
    /// lower bound is checked from a burst of 2.)
    #[test]
    fn admissions_stay_within_one_cell_of_the_quota(
        requests in 1u32..40,
        window_ms in 10u64..5_000,
        burst_pct in 5u32..200,
        seed in any::<u64>(),
    ) {
        let window = Duration::from_millis(window_ms);
        let burst = (requests * burst_pct / 100).max(1);
        let quota = Quota::new(requests, window).unwrap().with_burst(burst).unwrap();
        let interval = u64::try_from(quota.interval().as_nanos()).unwrap();
        let window_ns = u64::try_from(window.as_nanos()).unwrap();
        // Steady overload: arrivals at most interval/8 apart, for ~12 windows.
        let max_gap = (interval / 8).max(1);
        let mut state = seed | 1;
        let mut gaps = Vec::new();
        let mut total = 0;
        while total < window_ns * 12 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            let gap = 1 + state % max_gap;
            total += gap;
            gaps.push(gap);
        }
        let (admitted, end) = run(quota, &gaps);
        let n = usize::try_from(requests).unwrap();
        let burst = usize::try_from(burst).unwrap();
        for &start in &admitted {
            let count = in_window(&admitted, start, window_ns);
            prop_assert!(count <= n + burst, "{count} admitted in one window");
        }
        // After the burst is spent: windows wholly inside the run.
        let steady_from = admitted[burst - 1];
        let mut start = steady_from;
        while burst >= 2 && start + window_ns <= end {
            let count = in_window(&admitted, start, window_ns);
            prop_assert!(count + 1 >= n, "only {count} of {n} admitted in a window");
            start += window_ns / 3 + 1;
        }
    }
}

#[test]
fn exactly_the_burst_then_the_rate() {
    // 10 per second, burst 4, requests every millisecond for 3 seconds.
    let quota = Quota::new(10, Duration::from_secs(1)).unwrap().with_burst(4).unwrap();
    let (admitted, _) = run(quota, &[1_000_000; 3000]);
    // 4 at once, then one every 100 ms: 4 + 29 (the 30th refill lands at 3.001 s).
    assert_eq!(admitted.len(), 4 + 29);
    assert!(admitted[..4].iter().all(|t| *t <= 4_000_000));
    for pair in admitted[4..].windows(2) {
        assert_eq!(pair[1] - pair[0], 100_000_000);
    }
}

#[test]
fn two_threads_of_many_tasks_on_one_key_admit_exactly_the_quota() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let clock = FakeClock::new(); // frozen: nothing refills during the race
    let quota = Quota::new(1_000, Duration::from_secs(60)).unwrap().with_burst(777).unwrap();
    let limiter = Arc::new(MemoryLimiter::new(quota).clock(clock));
    let admitted = Arc::new(AtomicU32::new(0));
    runtime.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (limiter, admitted) = (limiter.clone(), admitted.clone());
                tokio::spawn(async move {
                    for _ in 0..25 {
                        if limiter.check("shared", 1).await.unwrap().is_allowed() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(admitted.load(Ordering::Relaxed), 777);
}

#[test]
fn memory_stays_bounded_under_millions_of_distinct_keys() {
    let clock = FakeClock::new();
    let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
    let limiter = MemoryLimiter::new(quota).clock(clock.clone()).max_keys(50_000);
    let cap = limiter.capacity();
    assert!(cap <= 50_000);
    let mut peak_bytes = 0;
    let mut bytes_at_half = 0;
    let mut key = String::new();
    for i in 0..2_000_000u32 {
        key.clear();
        key.push_str("client-");
        key.push_str(&i.to_string());
        assert!(limiter.check_now(&key, 1).unwrap().is_allowed(), "a new key is never refused");
        if i % 4096 == 0 {
            clock.advance(Duration::from_millis(1));
            assert!(limiter.len() <= cap);
            peak_bytes = peak_bytes.max(limiter.table_bytes());
        }
        if i == 1_000_000 {
            bytes_at_half = peak_bytes;
        }
    }
    assert!(limiter.len() <= cap);
    // The tables stopped growing long before the end, at a size set by the
    // cap: 17 bytes a slot, under 4 slots a key (a hash table keeps spare
    // room, and tombstones left by evictions may double it once). Two
    // million keys unbounded would take over 34 MB of slots alone.
    assert_eq!(peak_bytes, bytes_at_half, "the tables grew after a million keys");
    assert!(peak_bytes <= cap * 17 * 4, "{peak_bytes} bytes for {cap} keys");
    // Once everyone is idle the keys go, and the tables with them are reusable.
    clock.advance(Duration::from_secs(60));
    limiter.evict_idle();
    assert_eq!(limiter.len(), 0);
}

#[test]
fn idle_keys_go_without_an_explicit_sweep_once_new_keys_arrive() {
    let clock = FakeClock::new();
    let quota = Quota::new(1, Duration::from_millis(100)).unwrap();
    let limiter = MemoryLimiter::new(quota).clock(clock.clone()).max_keys(1_000_000);
    for i in 0..10_000 {
        limiter.check_now(&format!("a{i}"), 1).unwrap();
    }
    assert_eq!(limiter.len(), 10_000);
    clock.advance(Duration::from_secs(2));
    for i in 0..1_000 {
        limiter.check_now(&format!("b{i}"), 1).unwrap();
    }
    // Every shard (64 of them: 1000 keys reach them all) swept its idle "a"
    // keys when its first "b" key arrived.
    assert_eq!(limiter.len(), 1_000);
}
