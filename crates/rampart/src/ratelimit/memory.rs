//! The in-process keyed limiter ([`MemoryLimiter`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::gcra::{Gcra, duration_nanos};
use super::{Decision, LOG_TARGET, Quota, RateLimiter, cost_exceeds_burst};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;

/// Keys kept by default.
pub(crate) const DEFAULT_MAX_KEYS: usize = 100_000;
/// A shard sweeps idle keys at most this often when new keys arrive.
const SWEEP_EVERY: u64 = 1_000_000_000;
const MAX_SHARDS: usize = 64;
/// Fewest keys per shard: below this the table uses fewer shards.
const MIN_SHARD_KEYS: usize = 16;

/// A keyed GCRA limiter held in memory, with memory bounded whatever the keys.
///
/// Keys are kept as 64-bit keyed SipHash digests (a random key per limiter),
/// so an entry costs the same few bytes however long the key, and no key is
/// copied. The table is split into shards, each behind its own lock.
///
/// Memory stays bounded two ways:
/// - **Idle keys are forgotten.** A key whose TAT has passed holds nothing a
///   fresh key would not, so dropping it changes no decision. A shard sweeps
///   them out when a new key arrives and a second has passed since its last
///   sweep; [`MemoryLimiter::evict_idle`] sweeps everything at once.
/// - **A hard cap on keys.** When a full shard must take a new key, it first
///   drops idle keys; if it is still over seven eighths full, it drops the
///   keys that owe the least (the smallest TAT) down to seven eighths. New
///   keys are never refused (refusing would let one client with many keys
///   lock every newcomer out) and heavy users are never the ones forgotten:
///   a key near its limit has the largest TAT, so churn through fresh keys
///   evicts other light keys first, and a forgotten key regains at most
///   what it owed, the least in its shard. Such evictions are logged (warn);
///   every eviction is counted (`rampart_ratelimit_memory_evicted_keys_total`,
///   by `reason`: `idle` or `capacity`).
///
/// ```
/// use std::time::Duration;
/// use rampart::ratelimit::{MemoryLimiter, Quota};
///
/// let limiter = MemoryLimiter::new(Quota::new(100, Duration::from_secs(60))?)
///     .max_keys(10_000);
/// let decision = limiter.check_now("203.0.113.9", 1)?;
/// assert!(decision.is_allowed());
/// assert_eq!(decision.remaining(), 99);
/// assert_eq!(limiter.len(), 1);
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Debug)]
pub struct MemoryLimiter {
    quota: Quota,
    gcra: Gcra,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    shard_cap: usize,
}

#[derive(Debug, Default)]
struct Shard {
    /// Key digest → TAT in nanoseconds since `epoch`.
    tats: HashMap<u64, u64, BuildHasherDefault<DigestHasher>>,
    swept_at: u64,
}

impl MemoryLimiter {
    /// A limiter enforcing `quota` per key, on the system clock, keeping at
    /// most 100 000 keys.
    pub fn new(quota: Quota) -> MemoryLimiter {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let epoch = clock.now();
        let mut limiter = MemoryLimiter {
            gcra: Gcra::new(&quota),
            quota,
            clock,
            epoch,
            hasher: RandomState::new(),
            shards: Box::new([]),
            shard_cap: 0,
        };
        limiter.set_max_keys(DEFAULT_MAX_KEYS);
        limiter
    }

    /// Reads time from `clock` (tests pass a `FakeClock`). Times are kept
    /// relative to the clock, so every key starts afresh.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> MemoryLimiter {
        self.epoch = clock.now();
        self.clock = Arc::new(clock);
        self.set_max_keys(self.shard_cap * self.shards.len());
        self
    }

    /// Caps the number of keys kept (at least 1); see the module
    /// documentation for what happens at the cap.
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> MemoryLimiter {
        self.set_max_keys(max_keys);
        self
    }

    fn set_max_keys(&mut self, max_keys: usize) {
        let max_keys = max_keys.max(1);
        let wanted = (max_keys / MIN_SHARD_KEYS).clamp(1, MAX_SHARDS);
        // A power of two, so the shard is a few bits of the digest.
        let shards = 1 << wanted.ilog2();
        self.shard_cap = max_keys / shards;
        self.shards = (0..shards).map(|_| Mutex::default()).collect();
    }

    /// Decides synchronously: the same as [`RateLimiter::check`], which
    /// never waits for this backend.
    ///
    /// # Errors
    /// When `cost` exceeds the quota's burst (it could never be admitted).
    pub fn check_now(&self, key: &str, cost: u32) -> Result<Decision, Error> {
        if cost > self.quota.burst() {
            return Err(cost_exceeds_burst(cost, &self.quota));
        }
        let digest = self.hasher.hash_one(key);
        let now = self.now();
        let mut shard = self.shard(digest);
        if let Some(tat) = shard.tats.get_mut(&digest) {
            let step = self.gcra.step(*tat, now, cost);
            if let Some(new_tat) = step.new_tat {
                *tat = new_tat;
            }
            return Ok(step.decision);
        }
        let step = self.gcra.step(0, now, cost);
        if let Some(new_tat) = step.new_tat {
            self.make_room(&mut shard, now);
            shard.tats.insert(digest, new_tat);
        }
        Ok(step.decision)
    }

    /// Forgets every idle key now; returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let now = self.now();
        let dropped = self.shards.iter().map(|shard| sweep_idle(&mut lock(shard), now)).sum();
        count_evictions("idle", dropped);
        dropped
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).tats.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys this limiter holds at once.
    pub fn capacity(&self) -> usize {
        self.shard_cap * self.shards.len()
    }

    /// Bytes the key tables have allocated (their slots, not the limiter's
    /// fixed part): what the key cap bounds.
    pub fn table_bytes(&self) -> usize {
        // hashbrown keeps one control byte per slot beside each (key, TAT) pair.
        let slot = size_of::<(u64, u64)>() + 1;
        self.shards.iter().map(|shard| lock(shard).tats.capacity() * slot).sum()
    }

    fn now(&self) -> u64 {
        duration_nanos(self.clock.now().saturating_duration_since(self.epoch))
    }

    fn shard(&self, digest: u64) -> MutexGuard<'_, Shard> {
        // The top bits pick the shard; the map uses the digest as its own hash.
        let index = usize::try_from(digest >> 58).unwrap_or(0) & (self.shards.len() - 1);
        lock(&self.shards[index])
    }

    /// Keeps the shard under its cap before a new key goes in.
    fn make_room(&self, shard: &mut Shard, now: u64) {
        let full = shard.tats.len() >= self.shard_cap;
        if !full && now.saturating_sub(shard.swept_at) < SWEEP_EVERY {
            return;
        }
        count_evictions("idle", sweep_idle(shard, now));
        if shard.tats.len() < self.shard_cap {
            return;
        }
        // Still full of live keys: forget those that owe the least.
        let keep = (self.shard_cap - self.shard_cap / 8).min(self.shard_cap - 1);
        let before = shard.tats.len();
        let mut tats: Vec<u64> = shard.tats.values().copied().collect();
        let drop = before - keep;
        let (_, threshold, _) = tats.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        let mut to_drop = drop;
        shard.tats.retain(|_, tat| {
            if *tat <= threshold && to_drop > 0 {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
        let dropped = before - shard.tats.len();
        count_evictions("capacity", dropped);
        tracing::warn!(
            target: LOG_TARGET,
            dropped,
            capacity = self.capacity(),
            "rate-limit key table full: forgot the keys that owed the least"
        );
    }
}

impl RateLimiter for MemoryLimiter {
    fn check(&self, key: &str, cost: u32) -> impl Future<Output = Result<Decision, Error>> + Send {
        std::future::ready(self.check_now(key, cost))
    }

    fn quota(&self) -> Quota {
        self.quota
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // The map is valid after any panic (each write is one insert or assign).
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sweep_idle(shard: &mut Shard, now: u64) -> usize {
    let before = shard.tats.len();
    shard.tats.retain(|_, tat| *tat > now);
    shard.swept_at = now;
    before - shard.tats.len()
}

fn count_evictions(reason: &'static str, dropped: usize) {
    if dropped > 0 {
        metrics::counter!("rampart_ratelimit_memory_evicted_keys_total", "reason" => reason)
            .increment(dropped as u64);
    }
}

/// The map's keys are SipHash digests already: use them as their own hash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in so it still works.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::FakeClock;

    fn limiter(requests: u32, window: Duration, max_keys: usize) -> (MemoryLimiter, FakeClock) {
        let clock = FakeClock::new();
        let quota = Quota::new(requests, window).unwrap();
        (MemoryLimiter::new(quota).clock(clock.clone()).max_keys(max_keys), clock)
    }

    #[test]
    fn keys_are_independent() {
        let (limiter, _) = limiter(1, Duration::from_secs(60), 100);
        assert!(limiter.check_now("a", 1).unwrap().is_allowed());
        assert!(!limiter.check_now("a", 1).unwrap().is_allowed());
        assert!(limiter.check_now("b", 1).unwrap().is_allowed());
    }

    #[test]
    fn a_cost_above_the_burst_is_an_error_not_a_denial() {
        let (limiter, _) = limiter(5, Duration::from_secs(60), 100);
        let err = limiter.check_now("a", 6).unwrap_err();
        assert_eq!(err.code(), crate::error::code::RATE_LIMIT_COST_EXCEEDS_BURST);
        assert_eq!(limiter.check_now("a", 5).unwrap().remaining(), 0);
    }

    #[test]
    fn idle_keys_are_forgotten_without_changing_any_decision() {
        let (limiter, clock) = limiter(2, Duration::from_secs(10), 1000);
        for i in 0..100 {
            limiter.check_now(&format!("k{i}"), 1).unwrap();
        }
        limiter.check_now("busy", 2).unwrap();
        assert_eq!(limiter.len(), 101);
        clock.advance(Duration::from_secs(5)); // "k*" are whole again, "busy" is not.
        assert_eq!(limiter.evict_idle(), 100);
        assert_eq!(limiter.len(), 1);
        assert!(!limiter.check_now("busy", 2).unwrap().is_allowed());
        assert_eq!(limiter.check_now("k1", 1).unwrap().remaining(), 1);
    }

    #[test]
    fn at_the_cap_the_keys_owing_least_are_forgotten_and_heavy_users_kept() {
        let (limiter, clock) = limiter(100, Duration::from_secs(100), 64);
        assert_eq!(limiter.capacity(), 64);
        // A heavy user empties its bucket.
        limiter.check_now("heavy", 100).unwrap();
        // An attacker churns through fresh keys, far past the cap.
        for i in 0..10_000 {
            clock.advance(Duration::from_micros(1));
            limiter.check_now(&format!("churn-{i}"), 1).unwrap();
            assert!(limiter.len() <= limiter.capacity());
        }
        let heavy = limiter.check_now("heavy", 1).unwrap();
        assert!(!heavy.is_allowed(), "the heavy user's debt survived the churn");
        // New keys were never refused.
        assert!(limiter.check_now("newcomer", 1).unwrap().is_allowed());
    }
}
