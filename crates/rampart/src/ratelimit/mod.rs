//! Rate limiting: a [`RateLimiter`] answers "may key K spend `cost` now?"
//! with a [`Decision`].
//!
//! Every backend runs the same algorithm, GCRA (the generic cell rate
//! algorithm, a token bucket kept as one timestamp per key): a [`Quota`] of
//! `requests` per `window` admits one request every `window / requests` on
//! average and up to `burst` at once. Backends:
//!
//! - [`MemoryLimiter`]: in-process, keyed, with bounded memory (the default);
//! - `RedisLimiter` (feature `redis`): one Lua script on Redis's own clock,
//!   shared by every replica, with a configured [`FailurePolicy`] for when
//!   Redis does not answer.
//!
//! [`key`] turns a request into a key (client IP honouring only trusted
//! proxies, API key id, subject, route); [`RateLimitSettings`] is the
//! `rate_limit` configuration section. The HTTP layer lives in `rampart::http` (feature
//! `http`) and adds the `RateLimit-Policy` / `RateLimit` response fields.
//!
//! ```
//! use std::time::Duration;
//! use rampart::ratelimit::{MemoryLimiter, Quota, RateLimiter};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let quota = Quota::new(2, Duration::from_secs(60))?; // burst defaults to 2
//! let limiter = MemoryLimiter::new(quota);
//! assert!(limiter.check("client-a", 1).await?.is_allowed());
//! assert!(limiter.check("client-a", 1).await?.is_allowed());
//! let third = limiter.check("client-a", 1).await?;
//! assert!(!third.is_allowed());
//! // One request every 30 s: the next is due in (just under) 30 s.
//! assert!(third.retry_after() <= Some(Duration::from_secs(30)));
//! assert!(third.retry_after() > Some(Duration::from_secs(29)));
//! // A denial is a RateLimited error (429 with Retry-After) for the handler.
//! let err = third.into_result().unwrap_err();
//! assert_eq!(err.status().as_u16(), 429);
//! # Ok::<(), rampart::Error>(())
//! # }).unwrap();
//! ```

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

mod gcra;
pub mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod settings;

#[cfg(feature = "redis")]
pub use self::redis::{GCRA_SCRIPT, RedisLimiter, RedisLimiterBuilder};
pub(crate) use memory::DigestHasher;
pub use memory::MemoryLimiter;
pub use settings::{Backend, FailurePolicy, Limiter, RateLimitSettings, RedisSettings};

/// The `tracing` target of every rate-limit event.
pub(crate) const LOG_TARGET: &str = "rampart::ratelimit";

/// Decides whether a key may spend some of its quota now.
///
/// `check(key, cost)` spends `cost` units of `key`'s quota if they are
/// available and says so; a denied check spends nothing. A `cost` of 0 is a
/// peek: it spends nothing and reports whether one unit would be admitted,
/// which suits lockouts ("count a failure with cost 1; before the next
/// attempt, peek").
///
/// `Err` means the limiter could not decide (a shared backend is down and the
/// policy is to fail closed) or the cost can never be admitted (it exceeds
/// the burst); a denial is `Ok` with `allowed == false`.
pub trait RateLimiter: Send + Sync {
    /// Spends `cost` units of `key`'s quota if available.
    fn check(&self, key: &str, cost: u32) -> impl Future<Output = Result<Decision, Error>> + Send;

    /// The quota this limiter enforces per key.
    fn quota(&self) -> Quota;
}

/// "`requests` per `window`, with up to `burst` at once".
///
/// One request is admitted every `window / requests` on average; a key that
/// has been quiet may spend up to `burst` at once. In any span of one window,
/// a key gets at most `requests + burst - 1` admissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    requests: u32,
    window: Duration,
    burst: u32,
}

/// The longest span a quota may describe (interval × burst): Redis computes
/// in double-precision microseconds, exact up to 2^53 µs.
const MAX_SPAN: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Quota {
    /// `requests` per `window`, with a burst of `requests`.
    ///
    /// # Errors
    /// A configuration error when `requests` is 0, or when `window /
    /// requests` is under one microsecond (the resolution of Redis's clock).
    pub fn new(requests: u32, window: Duration) -> Result<Quota, Error> {
        if requests == 0 {
            return Err(Error::configuration("rate_limit.requests", "must be at least 1"));
        }
        if window / requests < Duration::from_micros(1) {
            return Err(Error::configuration(
                "rate_limit.window",
                "is too short for the number of requests (at most one request per microsecond)",
            ));
        }
        if window > MAX_SPAN {
            return Err(Error::configuration("rate_limit.window", "must be at most 100 years"));
        }
        Ok(Quota { requests, window, burst: requests })
    }

    /// Sets how many requests a quiet key may make at once. A burst of 1 is
    /// strict spacing: a request arriving after its slot does not bank the
    /// lateness, so a client sending at exactly the rate with some jitter
    /// gets less than the rate; a burst of 2 or more absorbs that jitter.
    ///
    /// # Errors
    /// A configuration error when `burst` is 0 or the burst spans more than
    /// 100 years.
    pub fn with_burst(self, burst: u32) -> Result<Quota, Error> {
        if burst == 0 {
            return Err(Error::configuration("rate_limit.burst", "must be at least 1"));
        }
        let quota = Quota { burst, ..self };
        if quota.interval().checked_mul(burst).is_none_or(|span| span > MAX_SPAN) {
            return Err(Error::configuration("rate_limit.burst", "spans more than 100 years"));
        }
        Ok(quota)
    }

    /// Requests admitted per window.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Requests a quiet key may make at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one request "costs": `window / requests`, rounded up to the
    /// microsecond so rounding never admits more than the quota.
    pub fn interval(&self) -> Duration {
        let micros = self.window.as_micros().div_ceil(u128::from(self.requests));
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// This quota's share on one of `replicas` instances: requests and burst
    /// divided (rounded down, at least 1), same window.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn share(self, replicas: u32) -> Quota {
        let replicas = replicas.max(1);
        let requests = (self.requests / replicas).max(1);
        let burst = (self.burst / replicas).max(1);
        // The share's interval is longer than the whole's, so it stays valid.
        Quota { requests, window: self.window, burst }
    }
}

/// The answer to one [`RateLimiter::check`]: admitted, or refused with the
/// wait until the same request would be admitted. Both carry the quota that
/// decided (the limiter's own or, while a shared backend is down and its
/// policy is `Local`, this replica's share of it) and what the key has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted, and its cost spent.
    Allowed {
        /// The quota that decided.
        quota: Quota,
        /// Requests the key could still make right now.
        remaining: u32,
        /// Time until the key's quota is whole again.
        reset_after: Duration,
    },
    /// Refused; nothing was spent.
    Denied {
        /// The quota that decided.
        quota: Quota,
        /// Requests the key could still make right now (fewer than this
        /// request cost).
        remaining: u32,
        /// Time until the key's quota is whole again.
        reset_after: Duration,
        /// Time until the same request would be admitted.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the request was admitted (and its cost spent).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// The quota that decided. What the key has used is
    /// `quota().burst() - remaining()`.
    pub fn quota(&self) -> Quota {
        match *self {
            Decision::Allowed { quota, .. } | Decision::Denied { quota, .. } => quota,
        }
    }

    /// Requests the key could still make right now.
    pub fn remaining(&self) -> u32 {
        match *self {
            Decision::Allowed { remaining, .. } | Decision::Denied { remaining, .. } => remaining,
        }
    }

    /// Time until the key's quota is whole again.
    pub fn reset_after(&self) -> Duration {
        match *self {
            Decision::Allowed { reset_after, .. } | Decision::Denied { reset_after, .. } => {
                reset_after
            }
        }
    }

    /// When denied, the time until the same request would be admitted.
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            Decision::Allowed { .. } => None,
            Decision::Denied { retry_after, .. } => Some(retry_after),
        }
    }

    /// `Ok(self)` when allowed, else a RateLimited error carrying the wait
    /// (rendered as 429 with `Retry-After`).
    ///
    /// # Errors
    /// `Error::rate_limited(retry_after)` when the request was denied.
    pub fn into_result(self) -> Result<Decision, Error> {
        match self {
            Decision::Allowed { .. } => Ok(self),
            Decision::Denied { retry_after, .. } => Err(Error::rate_limited(retry_after)),
        }
    }
}

/// The error for a cost the quota can never admit.
pub(crate) fn cost_exceeds_burst(cost: u32, quota: &Quota) -> Error {
    Error::business_rule("The request costs more than the rate limit ever admits at once")
        .with_code(crate::error::code::RATE_LIMIT_COST_EXCEEDS_BURST)
        .with_detail("cost", cost)
        .with_detail("burst", quota.burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_rejects_nonsense_without_echoing_values() {
        let err = Quota::new(0, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.config_key(), Some("rate_limit.requests"));
        let err = Quota::new(2_000_000, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.config_key(), Some("rate_limit.window"));
        assert!(!err.message().contains("2000000"));
        let quota = Quota::new(10, Duration::from_secs(1)).unwrap();
        assert_eq!(quota.with_burst(0).unwrap_err().config_key(), Some("rate_limit.burst"));
        let slow = Quota::new(1, Duration::from_secs(3600)).unwrap();
        assert!(slow.with_burst(1_000_000).is_err(), "a burst spanning 114 years");
        assert_eq!(quota.with_burst(3).unwrap().burst(), 3);
    }

    #[test]
    fn interval_rounds_up_so_a_window_never_holds_more_than_the_quota() {
        let quota = Quota::new(3, Duration::from_secs(1)).unwrap();
        assert_eq!(quota.interval(), Duration::from_micros(333_334));
        assert!(quota.interval() * 3 >= quota.window());
    }

    #[test]
    fn a_share_divides_requests_and_burst() {
        let quota = Quota::new(100, Duration::from_secs(60)).unwrap().with_burst(10).unwrap();
        let share = quota.share(3);
        assert_eq!((share.requests(), share.burst(), share.window()), (33, 3, quota.window()));
        assert_eq!(quota.share(1000).requests(), 1);
    }

    #[test]
    fn a_denied_decision_becomes_a_rate_limited_error() {
        let quota = Quota::new(1, Duration::from_secs(9)).unwrap();
        let reset_after = Duration::from_secs(9);
        let denied = Decision::Denied {
            quota,
            remaining: 0,
            reset_after,
            retry_after: Duration::from_millis(1500),
        };
        let err = denied.into_result().unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        let allowed = Decision::Allowed { quota, remaining: 0, reset_after };
        assert_eq!(allowed.into_result().unwrap(), allowed);
    }
}
