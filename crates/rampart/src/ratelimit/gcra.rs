//! GCRA, the arithmetic shared by every backend (the Redis script mirrors it).
//!
//! A key's whole state is its TAT, the "theoretical arrival time" of its next
//! request. A request of cost `c` at time `now` moves it to
//! `max(tat, now) + c * interval` and is admitted when that lands no later
//! than `now + burst * interval`. A TAT at or before `now` is the same as no
//! state at all, which is what makes idle keys free to forget.

use std::time::Duration;

use super::{Decision, Quota};

/// A quota in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gcra {
    quota: Quota,
    interval: u64,
    tolerance: u64,
}

/// The outcome of one step: the decision, and the TAT to store when admitted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) decision: Decision,
    pub(crate) new_tat: Option<u64>,
}

impl Gcra {
    pub(crate) fn new(quota: &Quota) -> Gcra {
        let interval = duration_nanos(quota.interval());
        Gcra {
            quota: *quota,
            interval,
            tolerance: interval.saturating_mul(u64::from(quota.burst())),
        }
    }

    /// Decides a request of `cost` (0: peek at one) at `now` for a key whose
    /// TAT is `tat` (0 when the key has no state). Times are nanoseconds from
    /// any fixed epoch. The caller has checked `cost <= burst`.
    pub(crate) fn step(&self, tat: u64, now: u64, cost: u32) -> Step {
        let tat = tat.max(now);
        let spend = u64::from(cost.max(1)) * self.interval;
        let new_tat = tat + spend;
        let allow_at = new_tat.saturating_sub(self.tolerance);
        if now < allow_at {
            let decision = Decision::Denied {
                quota: self.quota,
                remaining: self.cells(self.tolerance.saturating_sub(tat - now)),
                reset_after: nanos(tat - now),
                retry_after: nanos(allow_at - now),
            };
            return Step { decision, new_tat: None };
        }
        let stored = if cost == 0 { tat } else { new_tat };
        let decision = Decision::Allowed {
            quota: self.quota,
            remaining: self.cells(self.tolerance - (stored - now)),
            reset_after: nanos(stored - now),
        };
        Step { decision, new_tat: (cost > 0).then_some(new_tat) }
    }

    fn cells(&self, span: u64) -> u32 {
        u32::try_from(span / self.interval).unwrap_or(u32::MAX)
    }
}

pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(n: u64) -> Duration {
    Duration::from_nanos(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn gcra(requests: u32, window_secs: u64, burst: u32) -> Gcra {
        let quota = Quota::new(requests, Duration::from_secs(window_secs)).unwrap();
        Gcra::new(&quota.with_burst(burst).unwrap())
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let g = gcra(10, 10, 3); // one per second, 3 at once
        let mut tat = 0;
        let now = 100 * SEC;
        for remaining in [2, 1, 0] {
            let step = g.step(tat, now, 1);
            assert!(step.decision.is_allowed());
            assert_eq!(step.decision.remaining(), remaining);
            tat = step.new_tat.unwrap();
        }
        let denied = g.step(tat, now, 1);
        assert!(!denied.decision.is_allowed());
        assert_eq!(denied.new_tat, None);
        assert_eq!(denied.decision.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(denied.decision.reset_after(), Duration::from_secs(3));
        let later = g.step(tat, now + SEC, 1);
        assert!(later.decision.is_allowed());
        assert_eq!(later.decision.remaining(), 0);
    }

    #[test]
    fn cost_spends_several_cells_and_a_peek_spends_none() {
        let g = gcra(10, 10, 5);
        let step = g.step(0, SEC, 4);
        assert_eq!(step.decision.remaining(), 1);
        let tat = step.new_tat.unwrap();
        let peek = g.step(tat, SEC, 0);
        assert!(peek.decision.is_allowed());
        assert_eq!(peek.new_tat, None);
        assert_eq!(peek.decision.remaining(), 1);
        let too_much = g.step(tat, SEC, 2);
        assert!(!too_much.decision.is_allowed());
        assert_eq!(too_much.decision.retry_after(), Some(Duration::from_secs(1)));
    }
}
