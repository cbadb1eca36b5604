//! Retrying a failed call: when to, how long to wait, and when to give up.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::backoff::{Backoff, Jitter, Schedule};
use super::{Event, GiveUpReason, Hook, RetryBudget, SharedHook, TARGET, millis};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Severity, code};

/// Blocks the current thread for a while: how sync retries wait, injectable
/// so tests do not really sleep. With feature `test-util`,
/// [`FakeClock`](crate::clock) is a sleeper that moves itself forward.
pub trait Sleeper: Send + Sync + fmt::Debug + 'static {
    /// Waits `duration`.
    fn sleep(&self, duration: Duration);
}

/// Sleeps with [`std::thread::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(feature = "test-util")]
impl Sleeper for crate::clock::FakeClock {
    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

type Predicate = dyn Fn(&Error) -> bool + Send + Sync;

/// How to retry calls to one dependency: see the [module
/// documentation](super) for an example. Cheap to clone; clones share the
/// settings and the [`RetryBudget`].
///
/// A call is attempted, and while it fails with an error the predicate calls
/// retryable (default [`Error::is_retryable`]), retried after a delay from
/// the backoff schedule, or the error's [`Error::retry_after`] when it has
/// one. The policy stops:
///
/// - at once, returning the error unchanged, when it is not retryable;
/// - with `RETRIES_EXHAUSTED` after `max_retries` retries;
/// - with `RETRY_DEADLINE_EXCEEDED`, without sleeping, when the deadline
///   (`max_elapsed` after the first failure, or the instant given to
///   [`retry_until`](Self::retry_until)) has come or the next wait would
///   end past it; a zero wait (`Retry-After: 0`) is no way around it;
/// - with `RETRY_BUDGET_EXHAUSTED` when the budget allows no more retries.
///
/// Those three are `ExternalService` errors of severity High that carry the
/// attempts made, the last error as their source, its `retry_after` if any,
/// and `is_retryable() == false`, so that a retry layer further out does not
/// multiply the attempts.
#[derive(Clone)]
pub struct RetryPolicy {
    inner: Arc<Inner>,
}

struct Inner {
    dependency: Arc<str>,
    max_retries: u32,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
    honor_retry_after: bool,
    predicate: Option<Box<Predicate>>,
    budget: Option<RetryBudget>,
    hook: SharedHook,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    seed: Option<u64>,
    /// Calls that needed random numbers so far, to vary a fixed seed per call.
    seeded_calls: AtomicU64,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("RetryPolicy")
            .field("dependency", &inner.dependency)
            .field("max_retries", &inner.max_retries)
            .field("backoff", &inner.backoff)
            .field("max_elapsed", &inner.max_elapsed)
            .field("honor_retry_after", &inner.honor_retry_after)
            .field("custom_predicate", &inner.predicate.is_some())
            .field("budget", &inner.budget)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// Starts a policy for calls to `dependency` (the name logs and metrics
    /// carry). Defaults: 3 retries, 100 ms base delay doubling up to 10 s,
    /// full jitter, 30 s max elapsed time (from the first failure),
    /// Retry-After honoured, no budget.
    pub fn builder(dependency: impl Into<Arc<str>>) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            dependency: dependency.into(),
            max_retries: 3,
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(10),
                factor: 2.0,
                jitter: Jitter::Full,
            },
            max_elapsed: Some(Duration::from_secs(30)),
            honor_retry_after: true,
            predicate: None,
            budget: None,
            hook: SharedHook::default(),
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(ThreadSleeper),
            seed: None,
        }
    }

    /// The dependency's name.
    pub fn dependency(&self) -> &str {
        &self.inner.dependency
    }

    /// Runs `op`, retrying it as the policy says; waits by blocking the
    /// thread (through the [`Sleeper`]). Do not call it on an async runtime's
    /// threads: use [`retry_async`](Self::retry_async) there.
    ///
    /// # Errors
    /// A non-retryable error of `op` as it is, or an error saying why the
    /// policy gave up (see the type's documentation).
    pub fn retry<T, F>(&self, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Result<T, Error>,
    {
        self.run_blocking(None, op)
    }

    /// Like [`retry`](Self::retry), never sleeping past `deadline` (nor past
    /// the max elapsed time, whichever comes first).
    ///
    /// # Errors
    /// As [`retry`](Self::retry).
    pub fn retry_until<T, F>(&self, deadline: Instant, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Result<T, Error>,
    {
        self.run_blocking(Some(deadline), op)
    }

    /// Runs the future `op` makes, making a new one for each retry; waits
    /// with `tokio::time::sleep` and measures time with tokio's clock (so
    /// `tokio::time::pause` makes tests exact). Needs a tokio runtime with
    /// time enabled.
    ///
    /// # Errors
    /// As [`retry`](Self::retry).
    pub async fn retry_async<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.run_async(None, op).await
    }

    /// Like [`retry_async`](Self::retry_async), never sleeping past
    /// `deadline` (a [`std::time::Instant`]; under paused tokio time, build
    /// it from `tokio::time::Instant::now().into_std()`).
    ///
    /// # Errors
    /// As [`retry`](Self::retry).
    pub async fn retry_async_until<T, F, Fut>(&self, deadline: Instant, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.run_async(Some(deadline), op).await
    }

    fn run_blocking<T, F>(&self, deadline: Option<Instant>, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Result<T, Error>,
    {
        let inner = &*self.inner;
        let mut attempts = self.start(deadline);
        loop {
            match op() {
                Ok(value) => return Ok(value),
                Err(err) => match attempts.after_failure(err, || inner.clock.now()) {
                    Ok(delay) => inner.sleeper.sleep(delay),
                    Err(err) => return Err(err),
                },
            }
        }
    }

    async fn run_async<T, F, Fut>(&self, deadline: Option<Instant>, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let now = || tokio::time::Instant::now().into_std();
        let mut attempts = self.start(deadline);
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) => match attempts.after_failure(err, now) {
                    Ok(delay) => tokio::time::sleep(delay).await,
                    Err(err) => return Err(err),
                },
            }
        }
    }

    /// Begins one call: counts it in the budget. The clock is not read
    /// until something fails, so a call that succeeds pays little.
    fn start(&self, deadline: Option<Instant>) -> Attempts<'_> {
        let inner = &*self.inner;
        if let Some(budget) = &inner.budget {
            budget.deposit();
        }
        Attempts { policy: inner, deadline, made: 1, schedule: None }
    }
}

/// The state of one call through a policy.
struct Attempts<'p> {
    policy: &'p Inner,
    /// The caller's deadline; after the first failure, the earlier of it
    /// and the end of the max elapsed time.
    deadline: Option<Instant>,
    /// Attempts made so far, the failed one included.
    made: u32,
    /// Made at the first retry, so a call that succeeds draws no random numbers.
    schedule: Option<Schedule>,
}

impl Attempts<'_> {
    /// After a failed attempt: how long to wait before the next, or the
    /// error to return.
    fn after_failure(
        &mut self,
        err: Error,
        now: impl FnOnce() -> Instant,
    ) -> Result<Duration, Error> {
        let policy = self.policy;
        let retryable = match &policy.predicate {
            Some(predicate) => predicate(&err),
            None => err.is_retryable(),
        };
        if !retryable {
            return Err(err);
        }
        if self.made > policy.max_retries {
            return Err(self.give_up(GiveUpReason::Exhausted, err));
        }
        let delay = match err.retry_after() {
            Some(hint) if policy.honor_retry_after => hint,
            _ => self.schedule().next_delay(),
        };
        if self.deadline.is_some() || policy.max_elapsed.is_some() {
            let now = now();
            if self.made == 1
                && let Some(end) = policy.max_elapsed.and_then(|max| now.checked_add(max))
            {
                self.deadline = Some(self.deadline.map_or(end, |deadline| deadline.min(end)));
            }
            // A zero wait (say `Retry-After: 0`) must not slip past a
            // deadline that has already come.
            if let Some(deadline) = self.deadline {
                let left = deadline.saturating_duration_since(now);
                if left.is_zero() || delay > left {
                    return Err(self.give_up(GiveUpReason::Deadline, err));
                }
            }
        }
        if let Some(budget) = &policy.budget
            && !budget.try_withdraw()
        {
            return Err(self.give_up(GiveUpReason::Budget, err));
        }
        tracing::info!(
            target: TARGET,
            dependency = &*policy.dependency,
            attempt = self.made,
            delay_ms = millis(delay),
            code = %err.code(),
            "retrying a failed call"
        );
        metrics::counter!("rampart_retries_total", "dependency" => policy.dependency.clone())
            .increment(1);
        policy.hook.emit(&Event::Retry {
            dependency: &policy.dependency,
            attempt: self.made,
            delay,
            error: &err,
        });
        self.made = self.made.saturating_add(1);
        Ok(delay)
    }

    fn schedule(&mut self) -> &mut Schedule {
        let policy = self.policy;
        self.schedule.get_or_insert_with(|| {
            let rng = match policy.seed {
                Some(seed) => {
                    let call = policy.seeded_calls.fetch_add(1, Ordering::Relaxed);
                    fastrand::Rng::with_seed(seed.wrapping_add(call))
                }
                None => fastrand::Rng::new(),
            };
            policy.backoff.schedule(rng)
        })
    }

    fn give_up(&self, reason: GiveUpReason, last: Error) -> Error {
        let policy = self.policy;
        let attempts = self.made;
        let (code, message) = match reason {
            GiveUpReason::Exhausted => (code::RETRIES_EXHAUSTED, "A dependency kept failing"),
            GiveUpReason::Deadline => {
                (code::RETRY_DEADLINE_EXCEEDED, "A dependency failed and no time was left to retry")
            }
            GiveUpReason::Budget => {
                (code::RETRY_BUDGET_EXHAUSTED, "A dependency is failing too often to retry")
            }
        };
        let mut err = Error::external_service(message)
            .with_code(code)
            .with_severity(Severity::High)
            .with_attempts(attempts)
            .with_retryable(false)
            .context(format!("calling {}", policy.dependency));
        if let Some(retry_after) = last.retry_after() {
            err = err.with_retry_after(retry_after);
        }
        tracing::warn!(
            target: TARGET,
            dependency = &*policy.dependency,
            attempts,
            reason = reason.as_str(),
            last_code = %last.code(),
            "gave up retrying"
        );
        metrics::counter!(
            "rampart_retry_give_ups_total",
            "dependency" => policy.dependency.clone(),
            "reason" => reason.as_str()
        )
        .increment(1);
        let err = err.with_source(last);
        policy.hook.emit(&Event::GaveUp {
            dependency: &policy.dependency,
            attempts,
            reason,
            error: &err,
        });
        err
    }
}

/// Settings of a [`RetryPolicy`]; see [`RetryPolicy::builder`] for the defaults.
#[must_use = "a builder does nothing until `build`"]
pub struct RetryPolicyBuilder {
    dependency: Arc<str>,
    max_retries: u32,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
    honor_retry_after: bool,
    predicate: Option<Box<Predicate>>,
    budget: Option<RetryBudget>,
    hook: SharedHook,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    seed: Option<u64>,
}

impl fmt::Debug for RetryPolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicyBuilder")
            .field("dependency", &self.dependency)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_elapsed", &self.max_elapsed)
            .finish_non_exhaustive()
    }
}

impl RetryPolicyBuilder {
    /// Retries after the first attempt (0 disables retrying).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The delay before the first retry, before jitter.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.backoff.base = delay;
        self
    }

    /// The longest computed delay (a server's Retry-After may be longer).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.backoff.max = delay;
        self
    }

    /// How much each delay grows over the previous one (at least 1.0).
    pub fn factor(mut self, factor: f64) -> Self {
        self.backoff.factor = factor;
        self
    }

    /// How delays are randomized (see [`Jitter`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// How long retrying may go on, counted from the first failure: no wait
    /// that would end later is started (default 30 s). The first attempt is
    /// not counted, so a call that succeeds never reads the clock; for an
    /// end-to-end bound pass a deadline to [`RetryPolicy::retry_until`].
    /// `None` lifts the bound (then a server's Retry-After is honoured
    /// however long it is).
    pub fn max_elapsed(mut self, max: Option<Duration>) -> Self {
        self.max_elapsed = max;
        self
    }

    /// Whether an error's [`Error::retry_after`] replaces the computed delay
    /// (default true).
    pub fn honor_retry_after(mut self, honor: bool) -> Self {
        self.honor_retry_after = honor;
        self
    }

    /// Decides which errors are retried, instead of [`Error::is_retryable`].
    pub fn retry_if(mut self, predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Box::new(predicate));
        self
    }

    /// Shares a retry budget: every call deposits, every retry withdraws.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Receives every retry and give-up.
    pub fn on_event(mut self, hook: impl Hook) -> Self {
        self.hook = SharedHook::new(hook);
        self
    }

    /// The clock sync retries measure the deadline with (async retries use
    /// tokio's).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How sync retries wait (default [`ThreadSleeper`]).
    pub fn sleeper(mut self, sleeper: impl Sleeper) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// Makes the jitter reproducible: call number `k` through the policy
    /// draws from a generator seeded with `seed + k`. Meant for tests; in
    /// production leave it unset so each process jitters differently.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and makes the policy.
    ///
    /// # Errors
    /// A configuration error naming the setting (`retry.base_delay`,
    /// `retry.factor`, `retry.max_elapsed`) when it is out of range.
    pub fn build(self) -> Result<RetryPolicy, Error> {
        let backoff = self.backoff;
        if backoff.base > backoff.max {
            return Err(Error::configuration(
                "retry.base_delay",
                "must not be longer than retry.max_delay",
            ));
        }
        if !backoff.factor.is_finite() || backoff.factor < 1.0 || backoff.factor > 100.0 {
            return Err(Error::configuration("retry.factor", "must be a number from 1.0 to 100.0"));
        }
        if self.max_elapsed == Some(Duration::ZERO) {
            return Err(Error::configuration("retry.max_elapsed", "must be longer than zero"));
        }
        Ok(RetryPolicy {
            inner: Arc::new(Inner {
                dependency: self.dependency,
                max_retries: self.max_retries,
                backoff,
                max_elapsed: self.max_elapsed,
                honor_retry_after: self.honor_retry_after,
                predicate: self.predicate,
                budget: self.budget,
                hook: self.hook,
                clock: self.clock,
                sleeper: self.sleeper,
                seed: self.seed,
                seeded_calls: AtomicU64::new(0),
            }),
        })
    }
}
