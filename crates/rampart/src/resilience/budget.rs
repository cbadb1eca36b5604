//! Retry budgets: retries as a share of recent calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;

/// How many buckets the window is cut into: time expires a tenth of it at once.
const SLOTS: usize = 10;
const SLOTS_U32: u32 = 10;

/// Fixed-point unit: one token is a million, so a ratio counts to a
/// millionth of a retry per call.
const TOKEN: u64 = 1_000_000;

/// A retry budget shared by every call to one dependency; clones share it.
/// Built by [`RetryBudget::builder`] and attached with
/// [`RetryPolicyBuilder::budget`](super::RetryPolicyBuilder::budget).
///
/// Every call deposits a fraction of a token, every retry withdraws a whole
/// one; deposits and withdrawals expire after the window. Within any window
/// the retries allowed are `min_retries_per_second * window` plus
/// `retry_ratio` times the calls made, rounded down: a ratio of 0.0005 allows
/// one retry per 2000 calls, never one per 1000 (Finagle's retry budget,
/// tower's `TpsBudget`). When a dependency fails hard, retries stop at that share
/// instead of multiplying the load by `max_retries + 1`.
///
/// ```
/// use rampart::resilience::RetryBudget;
///
/// // Retries may be 10% of calls, with no floor.
/// let budget = RetryBudget::builder().retry_ratio(0.1).min_retries_per_second(0).build()?;
/// for _ in 0..20 {
///     budget.deposit();
/// }
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw()); // 2 retries for 20 calls
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clock: Arc<dyn Clock>,
    start: Instant,
    slot: Duration,
    /// The floor, in fixed-point tokens per window.
    reserve: u64,
    /// Fixed-point tokens one call deposits.
    per_call: u64,
    /// The newest slot number seen; slot `n` lives at index `n % SLOTS`.
    current: AtomicU64,
    deposits: [AtomicU64; SLOTS],
    /// Guarded, so a withdrawal checks and takes in one step.
    withdrawals: Mutex<[u64; SLOTS]>,
}

impl RetryBudget {
    /// Starts a budget: by default a 10 s window, a floor of 10 retries per
    /// second, and retries up to 20% of calls.
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            window: Duration::from_secs(10),
            min_per_second: 10,
            ratio: 0.2,
            clock: Arc::new(SystemClock),
        }
    }

    /// Records a call (made by a retry policy once per call). Lock-free
    /// unless a slot has to be expired; a deposit racing that may land in
    /// the slot just cleared and be lost, which only makes the budget stricter.
    pub fn deposit(&self) {
        let inner = &*self.inner;
        let now = self.slot_now();
        if now > inner.current.load(Ordering::Acquire) {
            drop(self.lock_advanced(now));
        }
        inner.deposits[slot_index(now)].fetch_add(inner.per_call, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let inner = &*self.inner;
        let now = self.slot_now();
        let mut withdrawals = self.lock_advanced(now);
        let deposited: u64 = inner.deposits.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        let withdrawn: u64 = withdrawals.iter().sum();
        if withdrawn.saturating_add(TOKEN) <= inner.reserve.saturating_add(deposited) {
            withdrawals[slot_index(now)] += TOKEN;
            true
        } else {
            false
        }
    }

    /// The number of the slot the clock is in, counted from `start`.
    fn slot_now(&self) -> u64 {
        let inner = &*self.inner;
        let elapsed = inner.clock.now().saturating_duration_since(inner.start);
        u64::try_from(elapsed.as_nanos() / inner.slot.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Locks the withdrawals after clearing the slots that expired by slot `now`.
    fn lock_advanced(&self, now: u64) -> MutexGuard<'_, [u64; SLOTS]> {
        let inner = &*self.inner;
        let mut withdrawals = inner.withdrawals.lock().unwrap_or_else(PoisonError::into_inner);
        let current = inner.current.load(Ordering::Acquire);
        if now > current {
            for slot in (current + 1)..=now.min(current.saturating_add(SLOTS as u64)) {
                let index = slot_index(slot);
                inner.deposits[index].store(0, Ordering::Relaxed);
                withdrawals[index] = 0;
            }
            inner.current.store(now, Ordering::Release);
        }
        withdrawals
    }
}

fn slot_index(slot: u64) -> usize {
    // The remainder is below SLOTS, so it always fits.
    usize::try_from(slot % SLOTS as u64).unwrap_or(0)
}

/// Settings of a [`RetryBudget`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build`"]
pub struct RetryBudgetBuilder {
    window: Duration,
    min_per_second: u32,
    ratio: f64,
    clock: Arc<dyn Clock>,
}

impl RetryBudgetBuilder {
    /// How long deposits and withdrawals count (at least 1 s; default 10 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries always allowed per second, whatever the calls (default 10).
    pub fn min_retries_per_second(mut self, retries: u32) -> Self {
        self.min_per_second = retries;
        self
    }

    /// Retries allowed per call on top of the floor, 0.0 to 10.0 (default 0.2).
    pub fn retry_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// The clock that expires old calls (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the settings and makes the budget.
    ///
    /// # Errors
    /// A configuration error naming `retry_budget.window` or
    /// `retry_budget.retry_ratio` when out of range.
    pub fn build(self) -> Result<RetryBudget, Error> {
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(3600) {
            return Err(Error::configuration("retry_budget.window", "must be between 1s and 1h"));
        }
        if !(0.0..=10.0).contains(&self.ratio) {
            return Err(Error::configuration(
                "retry_budget.retry_ratio",
                "must be a number from 0.0 to 10.0",
            ));
        }
        let reserve =
            (u128::from(self.min_per_second) * u128::from(TOKEN) * self.window.as_millis()) / 1000;
        // Rounded down, never up, to a millionth: rounding to a billionth
        // first drops the float noise of a decimal ratio (0.0157 is
        // 15699.999... millionths). In range by the check above: at most
        // 10 * 10^9.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let per_call = (self.ratio * 1e9).round() as u64 / (1_000_000_000 / TOKEN);
        let start = self.clock.now();
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                clock: self.clock,
                start,
                slot: self.window / SLOTS_U32,
                reserve: u64::try_from(reserve).unwrap_or(u64::MAX),
                per_call,
                current: AtomicU64::new(0),
                deposits: Default::default(),
                withdrawals: Mutex::new([0; SLOTS]),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn budget(clock: &FakeClock, min_per_second: u32, ratio: f64) -> RetryBudget {
        RetryBudget::builder()
            .window(Duration::from_secs(10))
            .min_retries_per_second(min_per_second)
            .retry_ratio(ratio)
            .clock(clock.clone())
            .build()
            .expect("valid budget")
    }

    fn withdrawals(budget: &RetryBudget) -> usize {
        std::iter::from_fn(|| budget.try_withdraw().then_some(())).take(100_000).count()
    }

    #[test]
    fn the_floor_alone_allows_min_per_second_times_the_window() {
        let clock = FakeClock::new();
        assert_eq!(withdrawals(&budget(&clock, 3, 0.0)), 30);
    }

    #[test]
    fn calls_add_their_ratio() {
        let clock = FakeClock::new();
        let b = budget(&clock, 0, 0.25);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(withdrawals(&b), 25);
    }

    #[test]
    fn a_small_ratio_is_rounded_down_never_up() {
        let clock = FakeClock::new();
        let cases = [(0.0005, 2000, 1), (0.0005, 1999, 0), (0.0157, 1000, 15), (0.3, 10, 3)];
        for (ratio, calls, retries) in cases {
            let b = budget(&clock, 0, ratio);
            for _ in 0..calls {
                b.deposit();
            }
            assert_eq!(withdrawals(&b), retries, "ratio {ratio} over {calls} calls");
        }
    }

    #[test]
    fn deposits_and_withdrawals_expire_with_the_window() {
        let clock = FakeClock::new();
        let b = budget(&clock, 0, 0.5);
        for _ in 0..10 {
            b.deposit();
        }
        clock.advance(Duration::from_secs(5));
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(withdrawals(&b), 10);
        // 5.5 s later the first ten calls have expired but the withdrawals
        // of the second half have not (they were all made in one slot).
        clock.advance(Duration::from_millis(5_500));
        assert_eq!(withdrawals(&b), 0);
        // After a whole window nothing is left, neither calls nor retries.
        clock.advance(Duration::from_secs(10));
        assert_eq!(withdrawals(&b), 0);
        for _ in 0..4 {
            b.deposit();
        }
        assert_eq!(withdrawals(&b), 2);
    }

    #[test]
    fn clones_share_one_budget() {
        let clock = FakeClock::new();
        let a = budget(&clock, 0, 1.0);
        let b = a.clone();
        a.deposit();
        assert!(b.try_withdraw());
        assert!(!a.try_withdraw());
    }

    #[test]
    fn out_of_range_settings_are_configuration_errors() {
        let err = RetryBudget::builder().retry_ratio(-0.1).build().unwrap_err();
        assert_eq!(err.config_key(), Some("retry_budget.retry_ratio"));
        let err = RetryBudget::builder().retry_ratio(f64::NAN).build().unwrap_err();
        assert_eq!(err.config_key(), Some("retry_budget.retry_ratio"));
        let err = RetryBudget::builder().window(Duration::from_millis(10)).build().unwrap_err();
        assert_eq!(err.config_key(), Some("retry_budget.window"));
    }
}
