//! The circuit breaker: stop calling a dependency that keeps failing; probe it again later.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Event, Hook, SharedHook, TARGET, millis};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, code};

/// Where a [`CircuitBreaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls pass and their outcomes are recorded.
    Closed,
    /// Calls are refused until the open duration has passed.
    Open,
    /// A few probe calls pass; their outcomes decide what comes next.
    HalfOpen,
}

impl CircuitState {
    /// The state in snake case, as logged and used as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The value of the `rampart_circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    const fn gauge(self) -> u64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    const fn from_gauge(value: u64) -> CircuitState {
        match value {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Predicate = dyn Fn(&Error) -> bool + Send + Sync;

/// The state's bits in the status word.
const STATE_MASK: u64 = 0b11;
/// Set while the breaker is closed with a full window of good outcomes: a
/// good outcome then changes nothing and is not recorded at all, so a healthy
/// dependency's calls take no lock and write no shared memory.
const HEALTHY: u64 = 0b100;
const GENERATION_SHIFT: u32 = 3;

/// A circuit breaker for one dependency. Cheap to clone; clones share one state.
///
/// A breaker is **closed** (calls pass) until, over the last `window_size`
/// recorded calls and after at least `minimum_calls`, the share of failures
/// reaches `failure_rate` (or the share of calls slower than the slow-call
/// threshold reaches its rate). It then **opens**: every call is refused at
/// once with a `CIRCUIT_OPEN` [`Unavailable`](crate::ErrorKind::Unavailable)
/// error whose [`retry_after`](Error::retry_after) is the time left open.
/// After `open_for` it turns **half-open** and lets `probe_calls` calls
/// through; when they have all finished, it closes if their failure (and
/// slow) rates are below the thresholds, and opens again otherwise. Probes
/// that have not all finished within `half_open_max_wait` (one hangs, or
/// its permit was leaked) count as a failed round: the next call reopens
/// the breaker, so it never stays half-open for ever.
///
/// A probe's slot belongs to its [`Permit`] from the moment it is taken,
/// before any code of yours (the [`Hook`], the `failure_if` predicate, the
/// clock) runs: if that code panics, the slot is freed as for a dropped
/// permit.
///
/// A closed breaker costs one atomic load to enter; recording a good outcome
/// while the window holds only good ones is one more load, anything else one
/// short critical section. Outcomes of calls let in before a state change are
/// discarded, so a late answer never counts in the wrong state.
///
/// ```
/// use std::time::Duration;
/// use rampart::error::{Error, code};
/// use rampart::resilience::{CircuitBreaker, CircuitState};
///
/// let breaker = CircuitBreaker::builder("inventory")
///     .window_size(10)
///     .minimum_calls(4)
///     .failure_rate(0.5)
///     .open_for(Duration::from_secs(30))
///     .build()?;
/// for _ in 0..4 {
///     let _ = breaker.call(|| -> Result<(), Error> { Err(Error::timeout("no answer")) });
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
///
/// let err = breaker.call(|| Ok(1)).unwrap_err();
/// assert_eq!(err.code(), code::CIRCUIT_OPEN);
/// assert!(err.retry_after().is_some_and(|wait| wait <= Duration::from_secs(30)));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    dependency: Arc<str>,
    settings: Settings,
    clock: Arc<dyn Clock>,
    hook: SharedHook,
    /// `generation << 3 | HEALTHY? | state`, read without the lock on every call.
    status: AtomicU64,
    core: Mutex<Core>,
}

struct Settings {
    window_size: usize,
    minimum_calls: u32,
    failure_rate: f64,
    slow_call: Option<(Duration, f64)>,
    open_for: Duration,
    probe_calls: u32,
    half_open_max_wait: Duration,
    is_failure: Option<Box<Predicate>>,
}

/// The longest `open_for` and `half_open_max_wait` accepted.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Everything that changes together, behind the lock.
struct Core {
    state: CircuitState,
    /// Bumped on every transition, so permits from before it are ignored.
    generation: u64,
    /// Outcomes of the last calls (closed), or of the probes (half-open).
    window: Window,
    /// When the current state began.
    since: Instant,
    probes_let_in: u32,
}

/// A count-based sliding window of outcomes with running totals.
struct Window {
    outcomes: Vec<Outcome>,
    next: usize,
    len: usize,
    failures: u32,
    slow: u32,
}

#[derive(Clone, Copy, Default)]
struct Outcome {
    failed: bool,
    slow: bool,
}

impl Window {
    fn new(size: usize) -> Window {
        Window { outcomes: vec![Outcome::default(); size], next: 0, len: 0, failures: 0, slow: 0 }
    }

    fn push(&mut self, outcome: Outcome) {
        if self.len == self.outcomes.len() {
            let old = self.outcomes[self.next];
            self.failures -= u32::from(old.failed);
            self.slow -= u32::from(old.slow);
        } else {
            self.len += 1;
        }
        self.outcomes[self.next] = outcome;
        self.next += 1;
        if self.next == self.outcomes.len() {
            self.next = 0;
        }
        self.failures += u32::from(outcome.failed);
        self.slow += u32::from(outcome.slow);
    }

    fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
        self.failures = 0;
        self.slow = 0;
    }

    /// Whether the rates reach the thresholds (the caller checks the count).
    fn tripped(&self, settings: &Settings) -> bool {
        // The window holds at most 100,000 outcomes: exact in f64.
        let len = f64::from(u32::try_from(self.len).unwrap_or(u32::MAX));
        let failing = f64::from(self.failures) >= settings.failure_rate * len;
        let slow = settings.slow_call.is_some_and(|(_, rate)| f64::from(self.slow) >= rate * len);
        failing || slow
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("dependency", &self.inner.dependency)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Leave to make one call through a breaker. Hand its outcome to
/// [`Permit::record`]; a permit dropped unrecorded (say, a cancelled future)
/// counts as neither success nor failure, and frees its probe slot.
#[must_use = "record the outcome of the call with `Permit::record`"]
pub struct Permit<'a> {
    breaker: &'a Inner,
    generation: u64,
    started: Option<Instant>,
    recorded: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Starts a breaker for `dependency`. Defaults: a window of the last 100
    /// calls, at least 20 calls before judging, opens at a 50% failure rate,
    /// no slow-call rule, open for 30 s, 5 probe calls given at most 60 s
    /// to finish; failures are the errors that are
    /// [retryable](Error::is_retryable) (the dependency's transient
    /// failures, not the caller's mistakes).
    pub fn builder(dependency: impl Into<Arc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            dependency: dependency.into(),
            settings: Settings {
                window_size: 100,
                minimum_calls: 20,
                failure_rate: 0.5,
                slow_call: None,
                open_for: Duration::from_secs(30),
                probe_calls: 5,
                half_open_max_wait: Duration::from_secs(60),
                is_failure: None,
            },
            clock: Arc::new(SystemClock),
            hook: SharedHook::default(),
        }
    }

    /// The dependency's name.
    pub fn dependency(&self) -> &str {
        &self.inner.dependency
    }

    /// The current state. An open breaker whose time is up reports `Open`
    /// until the next call turns it half-open.
    pub fn state(&self) -> CircuitState {
        CircuitState::from_gauge(self.inner.status.load(Ordering::Acquire) & STATE_MASK)
    }

    /// Runs `op` if the breaker lets it, and records its outcome.
    ///
    /// # Errors
    /// `CIRCUIT_OPEN` when refused; otherwise what `op` returned.
    pub fn call<T>(&self, op: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        let permit = self.try_acquire()?;
        let result = op();
        permit.record(&result);
        result
    }

    /// Runs the future `op` makes if the breaker lets it, and records its outcome.
    ///
    /// # Errors
    /// `CIRCUIT_OPEN` when refused; otherwise what the future returned.
    pub async fn call_async<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let permit = self.try_acquire()?;
        let result = op().await;
        permit.record(&result);
        result
    }

    /// Asks leave for one call, for code that cannot hand the call over as a
    /// closure (a tower service, a proxy).
    ///
    /// # Errors
    /// `CIRCUIT_OPEN` (kind `Unavailable`) when the breaker is open, with the
    /// time left open as `retry_after`, or half-open with every probe taken.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Error> {
        let inner = &*self.inner;
        let status = inner.status.load(Ordering::Acquire);
        if status & STATE_MASK == CircuitState::Closed.gauge() {
            return Ok(inner.permit(status >> GENERATION_SHIFT));
        }
        inner.acquire_slow()
    }
}

impl Inner {
    /// A permit that holds no probe slot (the breaker is closed).
    fn permit(&self, generation: u64) -> Permit<'_> {
        Permit { breaker: self, generation, started: self.started(), recorded: false }
    }

    /// When a call starts, if slow calls are measured.
    fn started(&self) -> Option<Instant> {
        self.settings.slow_call.map(|_| self.clock.now())
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // Nothing under the lock can panic half-way; a poisoned lock still
        // holds a consistent state.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire_slow(&self) -> Result<Permit<'_>, Error> {
        let settings = &self.settings;
        let mut core = self.lock();
        let mut transition = None;
        if core.state == CircuitState::Open {
            // Elapsed time, not `since + open_for`: no instant arithmetic to overflow.
            let open = self.clock.now().saturating_duration_since(core.since);
            if open < settings.open_for {
                drop(core);
                return Err(self.reject(CircuitState::Open, Some(settings.open_for - open)));
            }
            transition = Some(self.move_to(&mut core, CircuitState::HalfOpen));
        }
        let granted = match core.state {
            CircuitState::HalfOpen if core.probes_let_in >= settings.probe_calls => {
                let waited = self.clock.now().saturating_duration_since(core.since);
                if waited >= settings.half_open_max_wait {
                    // A probe hung or was leaked: the round failed.
                    transition = Some(self.move_to(&mut core, CircuitState::Open));
                }
                None
            }
            CircuitState::HalfOpen => {
                core.probes_let_in += 1;
                Some(core.generation)
            }
            // Closed again since the lock-free check.
            _ => Some(core.generation),
        };
        drop(core);
        // The permit owns its probe slot before the hook or the clock runs:
        // if either panics, dropping the permit gives the slot back.
        let permit = granted.map(|generation| Permit {
            breaker: self,
            generation,
            started: None,
            recorded: false,
        });
        if let Some((from, to)) = transition {
            self.announce(from, to);
        }
        match (permit, transition) {
            (Some(mut permit), _) => {
                permit.started = self.started();
                Ok(permit)
            }
            (None, Some((_, CircuitState::Open))) => {
                Err(self.reject(CircuitState::Open, Some(settings.open_for)))
            }
            (None, _) => Err(self.reject(CircuitState::HalfOpen, None)),
        }
    }

    fn record(&self, generation: u64, outcome: Outcome) {
        let mut core = self.lock();
        if core.generation != generation {
            return;
        }
        core.window.push(outcome);
        let settings = &self.settings;
        let minimum = settings.minimum_calls as usize;
        let next = match core.state {
            // A good outcome only lowers the rates, except the one that
            // brings the window up to the minimum.
            CircuitState::Closed
                if !outcome.failed && !outcome.slow && core.window.len != minimum =>
            {
                None
            }
            CircuitState::Closed => (core.window.len >= minimum && core.window.tripped(settings))
                .then_some(CircuitState::Open),
            CircuitState::HalfOpen if core.window.len >= settings.probe_calls as usize => {
                Some(if core.window.tripped(settings) {
                    CircuitState::Open
                } else {
                    CircuitState::Closed
                })
            }
            _ => None,
        };
        let transition = next.map(|to| self.move_to(&mut core, to));
        if transition.is_none() && core.state == CircuitState::Closed {
            let healthy = core.window.len == core.window.outcomes.len()
                && core.window.failures == 0
                && core.window.slow == 0;
            let status = core.generation << GENERATION_SHIFT
                | if healthy { HEALTHY } else { 0 }
                | CircuitState::Closed.gauge();
            self.status.store(status, Ordering::Release);
        }
        drop(core);
        if let Some((from, to)) = transition {
            self.announce(from, to);
        }
    }

    /// A half-open probe that ended unrecorded gives its slot back.
    fn release(&self, generation: u64) {
        let mut core = self.lock();
        if core.generation == generation && core.state == CircuitState::HalfOpen {
            core.probes_let_in = core.probes_let_in.saturating_sub(1);
        }
    }

    /// Changes state under the lock; the caller announces it after unlocking.
    fn move_to(&self, core: &mut Core, to: CircuitState) -> (CircuitState, CircuitState) {
        let from = core.state;
        core.state = to;
        core.generation += 1;
        core.window.clear();
        core.probes_let_in = 0;
        core.since = self.clock.now();
        self.status.store(core.generation << GENERATION_SHIFT | to.gauge(), Ordering::Release);
        (from, to)
    }

    fn announce(&self, from: CircuitState, to: CircuitState) {
        let dependency = &*self.dependency;
        if to == CircuitState::Open {
            tracing::warn!(target: TARGET, dependency, from = from.as_str(), to = to.as_str(),
                open_for_ms = millis(self.settings.open_for), "circuit breaker opened");
        } else {
            tracing::info!(target: TARGET, dependency, from = from.as_str(), to = to.as_str(),
                "circuit breaker changed state");
        }
        metrics::counter!(
            "rampart_circuit_breaker_transitions_total",
            "dependency" => self.dependency.clone(),
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
        set_state_gauge(&self.dependency, to);
        self.hook.emit(&Event::StateChanged { dependency, from, to });
    }

    fn reject(&self, state: CircuitState, retry_after: Option<Duration>) -> Error {
        let dependency = &*self.dependency;
        tracing::debug!(target: TARGET, dependency, state = state.as_str(),
            retry_after_ms = retry_after.map(millis), "circuit breaker refused a call");
        metrics::counter!(
            "rampart_circuit_breaker_rejections_total",
            "dependency" => self.dependency.clone()
        )
        .increment(1);
        self.hook.emit(&Event::Rejected { dependency, state, retry_after });
        let err = Error::unavailable("A dependency is temporarily unavailable")
            .with_code(code::CIRCUIT_OPEN)
            .context(format!("circuit breaker for {dependency} is {state}"));
        match retry_after {
            Some(wait) => err.with_retry_after(wait),
            None => err,
        }
    }
}

fn set_state_gauge(dependency: &Arc<str>, state: CircuitState) {
    // Small integers: exact in f64.
    #[allow(clippy::cast_precision_loss)]
    let value = state.gauge() as f64;
    metrics::gauge!("rampart_circuit_breaker_state", "dependency" => dependency.clone()).set(value);
}

impl Permit<'_> {
    /// Records the outcome of the call. An error counts as a failure when
    /// the breaker's predicate says so (default: it is retryable); a call
    /// slower than the slow-call threshold counts as slow whatever its result.
    pub fn record<T>(mut self, result: &Result<T, Error>) {
        let breaker = self.breaker;
        let failed = match result {
            Ok(_) => false,
            Err(err) => match &breaker.settings.is_failure {
                Some(predicate) => predicate(err),
                None => err.is_retryable(),
            },
        };
        let slow = match (self.started, breaker.settings.slow_call) {
            (Some(started), Some((threshold, _))) => {
                breaker.clock.now().saturating_duration_since(started) >= threshold
            }
            _ => false,
        };
        // Only now: had the predicate or the clock panicked, dropping the
        // unrecorded permit would have freed its probe slot.
        self.recorded = true;
        let healthy = self.generation << GENERATION_SHIFT | HEALTHY | CircuitState::Closed.gauge();
        if !failed && !slow && breaker.status.load(Ordering::Acquire) == healthy {
            // Rotating a good outcome into a window of good outcomes is a no-op.
            return;
        }
        breaker.record(self.generation, Outcome { failed, slow });
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.release(self.generation);
        }
    }
}

/// Settings of a [`CircuitBreaker`]; see [`CircuitBreaker::builder`] for the defaults.
#[must_use = "a builder does nothing until `build`"]
pub struct CircuitBreakerBuilder {
    dependency: Arc<str>,
    settings: Settings,
    clock: Arc<dyn Clock>,
    hook: SharedHook,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("CircuitBreakerBuilder")
            .field("dependency", &self.dependency)
            .field("window_size", &s.window_size)
            .field("minimum_calls", &s.minimum_calls)
            .field("failure_rate", &s.failure_rate)
            .field("slow_call", &s.slow_call)
            .field("open_for", &s.open_for)
            .field("probe_calls", &s.probe_calls)
            .field("half_open_max_wait", &s.half_open_max_wait)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    /// How many recent calls the failure rate is computed over (1 to 100,000).
    pub fn window_size(mut self, calls: usize) -> Self {
        self.settings.window_size = calls;
        self
    }

    /// Calls recorded before the breaker may open (1 to the window size).
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.settings.minimum_calls = calls;
        self
    }

    /// The share of failed calls that opens the breaker, in (0, 1].
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.settings.failure_rate = rate;
        self
    }

    /// Also opens when the share of calls taking at least `threshold`
    /// (longer than zero) reaches `rate`, in (0, 1].
    pub fn slow_call(mut self, threshold: Duration, rate: f64) -> Self {
        self.settings.slow_call = Some((threshold, rate));
        self
    }

    /// How long the breaker stays open before probing (longer than zero,
    /// at most 24 hours).
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.settings.open_for = duration;
        self
    }

    /// Calls let through while half-open (1 to the window size).
    pub fn probe_calls(mut self, calls: u32) -> Self {
        self.settings.probe_calls = calls;
        self
    }

    /// How long the probes of a half-open breaker may take, all together,
    /// before the round counts as failed and the breaker opens again (longer
    /// than zero, at most 24 hours; default 60 s). Bounds how long a hung
    /// or leaked probe keeps every other call out.
    pub fn half_open_max_wait(mut self, wait: Duration) -> Self {
        self.settings.half_open_max_wait = wait;
        self
    }

    /// Decides which errors count as failures, instead of [`Error::is_retryable`].
    pub fn failure_if(
        mut self,
        predicate: impl Fn(&Error) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.settings.is_failure = Some(Box::new(predicate));
        self
    }

    /// The clock for the open duration and slow calls (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Receives every transition and rejection.
    pub fn on_event(mut self, hook: impl Hook) -> Self {
        self.hook = SharedHook::new(hook);
        self
    }

    /// Checks the settings and makes the breaker.
    ///
    /// # Errors
    /// A configuration error naming the setting (`circuit_breaker.window_size`,
    /// `.minimum_calls`, `.failure_rate`, `.slow_call_duration`,
    /// `.slow_call_rate`, `.open_for`, `.probe_calls`, `.half_open_max_wait`)
    /// when it is out of range.
    pub fn build(self) -> Result<CircuitBreaker, Error> {
        let s = &self.settings;
        let invalid = |key: &str, why: &'static str| {
            Err(Error::configuration(format!("circuit_breaker.{key}"), why))
        };
        let rate_ok = |rate: f64| rate > 0.0 && rate <= 1.0;
        if !(1..=100_000).contains(&s.window_size) {
            return invalid("window_size", "must be from 1 to 100000");
        }
        if s.minimum_calls == 0 || s.minimum_calls as usize > s.window_size {
            return invalid("minimum_calls", "must be from 1 to circuit_breaker.window_size");
        }
        if !rate_ok(s.failure_rate) {
            return invalid("failure_rate", "must be above 0.0 and at most 1.0");
        }
        let wait_ok = |wait: Duration| !wait.is_zero() && wait <= MAX_WAIT;
        if s.slow_call.is_some_and(|(threshold, _)| threshold.is_zero()) {
            // Every call would be slow: the breaker would open on successes.
            return invalid("slow_call_duration", "must be longer than zero");
        }
        if s.slow_call.is_some_and(|(_, rate)| !rate_ok(rate)) {
            return invalid("slow_call_rate", "must be above 0.0 and at most 1.0");
        }
        if !wait_ok(s.open_for) {
            return invalid("open_for", "must be longer than zero and at most 24h");
        }
        if s.probe_calls == 0 || s.probe_calls as usize > s.window_size {
            return invalid("probe_calls", "must be from 1 to circuit_breaker.window_size");
        }
        if !wait_ok(s.half_open_max_wait) {
            return invalid("half_open_max_wait", "must be longer than zero and at most 24h");
        }
        set_state_gauge(&self.dependency, CircuitState::Closed);
        let now = self.clock.now();
        Ok(CircuitBreaker {
            inner: Arc::new(Inner {
                core: Mutex::new(Core {
                    state: CircuitState::Closed,
                    generation: 0,
                    window: Window::new(self.settings.window_size),
                    since: now,
                    probes_let_in: 0,
                }),
                dependency: self.dependency,
                settings: self.settings,
                clock: self.clock,
                hook: self.hook,
                status: AtomicU64::new(CircuitState::Closed.gauge()),
            }),
        })
    }
}
