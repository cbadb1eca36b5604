//! Calls to dependencies that fail well: retries with backoff and jitter,
//! retry budgets, a circuit breaker, timeouts and fallbacks.
//!
//! Every decision reads the [error model](crate::error): a failure is retried
//! when [`Error::is_retryable`] says so, a server's
//! [`Error::retry_after`] replaces the computed backoff, and what these tools
//! return when they give up is again an [`Error`] with a precise code
//! (`RETRIES_EXHAUSTED`, `RETRY_DEADLINE_EXCEEDED`, `RETRY_BUDGET_EXHAUSTED`,
//! `CIRCUIT_OPEN`, `TIMEOUT`) that renders as the right HTTP response.
//!
//! - [`RetryPolicy`]: how often and how long to retry; runs sync closures
//!   ([`RetryPolicy::retry`]) and futures ([`RetryPolicy::retry_async`]), and
//!   never sleeps past the caller's deadline ([`RetryPolicy::retry_until`]).
//! - [`RetryBudget`]: retries as a share of recent calls, shared by every
//!   call to one dependency, so a failing dependency is not hammered.
//! - [`CircuitBreaker`]: stops calling a dependency that keeps failing, and
//!   probes it again after a while.
//! - [`timeout()`] and [`fallback()`] / [`fallback_with()`].
//!
//! Each retry, give-up, breaker transition and rejection is a `tracing` event
//! (target `rampart::resilience`, field `dependency`), a `metrics` counter, and
//! a call of the [`Hook`] you register with `on_event`.
//!
//! ```
//! use std::time::Duration;
//! use rampart::error::{Error, code};
//! use rampart::resilience::{CircuitBreaker, Jitter, RetryPolicy};
//!
//! let retry = RetryPolicy::builder("payments")
//!     .max_retries(3)
//!     .base_delay(Duration::from_millis(1))
//!     .jitter(Jitter::Full)
//!     .build()?;
//! let breaker = CircuitBreaker::builder("payments").build()?;
//!
//! // A flaky dependency: fails twice, then answers.
//! let mut calls = 0;
//! let charged = retry.retry(|| {
//!     breaker.call(|| {
//!         calls += 1;
//!         if calls < 3 { Err(Error::unavailable("payments is restarting")) } else { Ok(42) }
//!     })
//! })?;
//! assert_eq!((charged, calls), (42, 3));
//!
//! // A dependency that never recovers: the error says so, once.
//! let err = retry.retry(|| -> Result<(), Error> { Err(Error::timeout("no answer")) }).unwrap_err();
//! assert_eq!(err.code(), code::RETRIES_EXHAUSTED);
//! assert_eq!(err.attempts(), Some(4));
//! assert!(!err.is_retryable()); // an outer retry layer will not multiply the attempts
//! # Ok::<(), Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::error::Error;

mod backoff;
mod budget;
mod circuit_breaker;
mod fallback;
mod retry;
mod settings;
mod timeout;

pub use backoff::Jitter;
pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use circuit_breaker::{CircuitBreaker, CircuitBreakerBuilder, CircuitState, Permit};
pub use fallback::{fallback, fallback_with};
pub use retry::{RetryPolicy, RetryPolicyBuilder, Sleeper, ThreadSleeper};
pub use settings::{CircuitBreakerSettings, RetrySettings};
pub use timeout::timeout;

/// The `tracing` target of every event this module emits.
pub(crate) const TARGET: &str = "rampart::resilience";

/// Something a retry policy or a circuit breaker did, as handed to a [`Hook`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A call failed and will be tried again after `delay`.
    Retry {
        /// The dependency's name.
        dependency: &'a str,
        /// The attempt that failed (1 is the first call).
        attempt: u32,
        /// How long the policy waits before the next attempt.
        delay: Duration,
        /// The failure.
        error: &'a Error,
    },
    /// A retry policy stopped trying; `error` is what the caller gets.
    GaveUp {
        /// The dependency's name.
        dependency: &'a str,
        /// How many attempts were made.
        attempts: u32,
        /// Why the policy stopped.
        reason: GiveUpReason,
        /// The error returned to the caller.
        error: &'a Error,
    },
    /// A circuit breaker changed state.
    StateChanged {
        /// The dependency's name.
        dependency: &'a str,
        /// The state it left.
        from: CircuitState,
        /// The state it entered.
        to: CircuitState,
    },
    /// A circuit breaker refused a call.
    Rejected {
        /// The dependency's name.
        dependency: &'a str,
        /// The breaker's state (open, or half-open with every probe taken).
        state: CircuitState,
        /// How long until the breaker lets a probe through, when known.
        retry_after: Option<Duration>,
    },
}

/// Why a retry policy stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Every allowed retry was made.
    Exhausted,
    /// The deadline or the max elapsed time has come, or the next wait
    /// would end past it.
    Deadline,
    /// The dependency's retry budget is spent.
    Budget,
}

impl GiveUpReason {
    /// The reason in snake case, as logged and used as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::Exhausted => "exhausted",
            GiveUpReason::Deadline => "deadline",
            GiveUpReason::Budget => "budget",
        }
    }
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives every [`Event`], e.g. to feed your own metrics. `()` ignores
/// them; any `Fn(&Event<'_>) + Send + Sync` closure is a hook.
///
/// A hook runs on the caller's thread, outside any lock: keep it short.
pub trait Hook: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &Event<'_>);
}

impl Hook for () {
    fn on_event(&self, _event: &Event<'_>) {}
}

impl<F> Hook for F
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event);
    }
}

/// A hook behind a pointer, so policies and breakers keep one plain type.
#[derive(Clone)]
pub(crate) struct SharedHook(std::sync::Arc<dyn Hook>);

impl SharedHook {
    pub(crate) fn new(hook: impl Hook) -> SharedHook {
        SharedHook(std::sync::Arc::new(hook))
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        self.0.on_event(event);
    }
}

impl Default for SharedHook {
    fn default() -> Self {
        SharedHook::new(())
    }
}

impl fmt::Debug for SharedHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

/// Milliseconds for logs, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
