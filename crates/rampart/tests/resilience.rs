//! rampart::resilience through its public API: retries, budgets, breakers,
//! timeouts and fallbacks, on a fake clock or tokio's paused time.

mod support;

use std::error::Error as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use rampart::clock::{Clock, FakeClock};
use rampart::config::Section;
use rampart::error::{Error, ErrorKind, Severity, code};
use rampart::resilience::{
    CircuitBreaker, CircuitBreakerSettings, CircuitState, Event, GiveUpReason, Jitter, RetryBudget,
    RetryPolicy, RetryPolicyBuilder, RetrySettings, fallback, fallback_with, timeout,
};
use serde_json::json;

const MS: Duration = Duration::from_millis(1);

/// What a hook saw, in a form easy to compare.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Retry { attempt: u32, delay: Duration, code: &'static str },
    GaveUp { attempts: u32, reason: GiveUpReason },
    State(CircuitState, CircuitState),
    Rejected(CircuitState, Option<Duration>),
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn hook(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let log = self.0.clone();
        move |event: &Event<'_>| {
            let seen = match *event {
                Event::Retry { attempt, delay, error, dependency } => {
                    assert_eq!(dependency, "payments");
                    Seen::Retry { attempt, delay, code: error.code().as_str() }
                }
                Event::GaveUp { attempts, reason, .. } => Seen::GaveUp { attempts, reason },
                Event::StateChanged { from, to, .. } => Seen::State(from, to),
                Event::Rejected { state, retry_after, .. } => Seen::Rejected(state, retry_after),
                _ => return,
            };
            log.lock().expect("log").push(seen);
        }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().expect("log"))
    }

    fn delays(&self) -> Vec<Duration> {
        self.take()
            .into_iter()
            .filter_map(|seen| match seen {
                Seen::Retry { delay, .. } => Some(delay),
                _ => None,
            })
            .collect()
    }
}

/// A policy on a fake clock that also serves as the sleeper.
fn policy(clock: &FakeClock, log: &Log) -> rampart::resilience::RetryPolicyBuilder {
    RetryPolicy::builder("payments")
        .base_delay(100 * MS)
        .max_delay(Duration::from_secs(2))
        .jitter(Jitter::None)
        .clock(clock.clone())
        .sleeper(clock.clone())
        .on_event(log.hook())
}

fn failing(err: impl Fn() -> Error) -> impl FnMut() -> Result<u32, Error> {
    move || Err(err())
}

// ---- retry ----

#[test]
fn a_flaky_call_succeeds_after_exponential_delays() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).max_retries(5).build().expect("policy");
    let mut calls = 0;
    let out = retry.retry(|| {
        calls += 1;
        if calls <= 3 { Err(Error::unavailable("restarting")) } else { Ok(calls) }
    });
    assert_eq!(out.expect("succeeds"), 4);
    assert_eq!(
        log.take(),
        [100, 200, 400]
            .iter()
            .zip(1..)
            .map(|(ms, attempt)| Seen::Retry {
                attempt,
                delay: *ms * MS,
                code: "SERVICE_UNAVAILABLE"
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(clock.elapsed(), 700 * MS, "slept exactly the delays, through the sleeper");
}

#[test]
fn each_jitter_mode_gives_its_exact_delays_under_a_seed() {
    let expected_ms: [(Jitter, [u128; 5]); 4] = [
        (Jitter::None, [100, 200, 400, 800, 1600]),
        (Jitter::Full, [77, 44, 287, 384, 186]),
        (Jitter::Equal, [88, 122, 343, 592, 893]),
        (Jitter::Decorrelated, [254, 247, 562, 863, 389]),
    ];
    for (jitter, expected) in expected_ms {
        let (clock, log) = (FakeClock::new(), Log::default());
        let retry = policy(&clock, &log)
            .jitter(jitter)
            .jitter_seed(7)
            .max_retries(5)
            .max_elapsed(None)
            .build()
            .expect("policy");
        let _ = retry.retry(failing(|| Error::timeout("slow")));
        let got: Vec<u128> = log.delays().iter().map(Duration::as_millis).collect();
        assert_eq!(got, expected, "{jitter:?}");
        // The next call through the same policy draws other numbers.
        let _ = retry.retry(failing(|| Error::timeout("slow")));
        if jitter != Jitter::None {
            let again: Vec<u128> = log.delays().iter().map(Duration::as_millis).collect();
            assert_ne!(again, expected, "{jitter:?}: every call would jitter alike");
        }
    }
}

#[test]
fn exhausted_retries_become_one_non_retryable_external_service_error() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).max_retries(2).build().expect("policy");
    let mut calls = 0;
    let err = retry
        .retry(|| -> Result<(), Error> {
            calls += 1;
            Err(Error::timeout(format!("attempt {calls} timed out")))
        })
        .unwrap_err();
    assert_eq!(calls, 3);
    assert_eq!(err.kind(), ErrorKind::ExternalService);
    assert_eq!(err.code(), code::RETRIES_EXHAUSTED);
    assert_eq!(err.severity(), Severity::High);
    assert_eq!(err.attempts(), Some(3));
    assert!(!err.is_retryable());
    let last = err.source().and_then(|s| s.downcast_ref::<Error>()).expect("last error as source");
    assert_eq!(last.message(), "attempt 3 timed out");
    assert!(err.context_notes().any(|note| note.contains("payments")));
    assert_eq!(
        log.take().last(),
        Some(&Seen::GaveUp { attempts: 3, reason: GiveUpReason::Exhausted })
    );

    // An outer retry layer sees a final answer: it does not multiply attempts.
    let outer = policy(&clock, &Log::default()).max_retries(5).build().expect("policy");
    let mut inner_calls = 0;
    let _ = outer.retry(|| {
        retry.retry(|| -> Result<(), Error> {
            inner_calls += 1;
            Err(Error::unavailable("down"))
        })
    });
    assert_eq!(inner_calls, 3);
}

#[test]
fn a_non_retryable_error_returns_at_once_unchanged() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).build().expect("policy");
    let mut calls = 0;
    let err = retry
        .retry(|| -> Result<(), Error> {
            calls += 1;
            Err(Error::validation("bad amount").with_detail("field", "amount"))
        })
        .unwrap_err();
    assert_eq!((calls, err.code(), err.message()), (1, code::VALIDATION_ERROR, "bad amount"));
    assert_eq!(err.details()["field"], "amount");
    assert!(log.take().is_empty());
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[test]
fn the_predicate_decides_what_is_retried() {
    let (clock, log) = (FakeClock::new(), Log::default());
    // Retry conflicts (an optimistic lock), nothing else.
    let retry = policy(&clock, &log)
        .retry_if(|err| err.kind() == ErrorKind::Conflict)
        .build()
        .expect("policy");
    let mut calls = 0;
    let _ = retry.retry(|| -> Result<(), Error> {
        calls += 1;
        Err(Error::conflict("version changed"))
    });
    assert_eq!(calls, 4);
    let mut calls = 0;
    let err = retry
        .retry(|| -> Result<(), Error> {
            calls += 1;
            Err(Error::unavailable("down"))
        })
        .unwrap_err();
    assert_eq!((calls, err.code()), (1, code::SERVICE_UNAVAILABLE));
}

#[test]
fn a_retry_after_hint_replaces_the_backoff() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).build().expect("policy");
    let mut calls = 0;
    let out = retry.retry(|| {
        calls += 1;
        if calls == 1 { Err(Error::rate_limited(Duration::from_secs(3))) } else { Ok(()) }
    });
    assert!(out.is_ok());
    assert_eq!(log.delays(), [Duration::from_secs(3)]);
    assert_eq!(clock.elapsed(), Duration::from_secs(3));

    // Unless told not to.
    let retry = policy(&clock, &log).honor_retry_after(false).build().expect("policy");
    let mut calls = 0;
    let _ = retry.retry(|| {
        calls += 1;
        if calls == 1 { Err(Error::rate_limited(Duration::from_secs(3))) } else { Ok(()) }
    });
    assert_eq!(log.delays(), [100 * MS]);
}

#[test]
fn a_retry_after_longer_than_the_time_left_ends_retries_without_sleeping() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry =
        policy(&clock, &log).max_elapsed(Some(Duration::from_secs(5))).build().expect("policy");
    let mut calls = 0;
    let err = retry
        .retry(|| -> Result<(), Error> {
            calls += 1;
            clock.advance(Duration::from_secs(1));
            Err(Error::unavailable("maintenance").with_retry_after(Duration::from_secs(120)))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(clock.elapsed(), Duration::from_secs(1), "did not sleep");
    assert_eq!(err.code(), code::RETRY_DEADLINE_EXCEEDED);
    assert_eq!(err.kind(), ErrorKind::ExternalService);
    assert!(!err.is_retryable());
    // The server's hint travels on, so the client hears when to come back.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(log.take(), [Seen::GaveUp { attempts: 1, reason: GiveUpReason::Deadline }]);
}

#[test]
fn no_sleep_ends_past_an_explicit_deadline() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).max_retries(10).max_elapsed(None).build().expect("policy");
    let deadline = clock.now() + 1_000 * MS;
    let mut calls = 0;
    let err = retry
        .retry_until(deadline, || -> Result<(), Error> {
            calls += 1;
            clock.advance(50 * MS);
            Err(Error::timeout("slow"))
        })
        .unwrap_err();
    // 50 call, 100 sleep, 50, 200, 50, 400 = 850 ms; the next wait (800 ms) does not fit.
    assert_eq!(calls, 4);
    assert_eq!(clock.elapsed(), 900 * MS);
    assert!(clock.now() <= deadline);
    assert_eq!(err.code(), code::RETRY_DEADLINE_EXCEEDED);
    assert_eq!(err.attempts(), Some(4));
}

/// A hostile upstream: every call takes 1 s and answers `Retry-After: 0`.
fn busy_for_a_second(clock: &FakeClock) -> Result<(), Error> {
    clock.advance(Duration::from_secs(1));
    Err(Error::unavailable("busy").with_retry_after(Duration::ZERO))
}

#[test]
fn a_zero_wait_does_not_run_past_the_deadline_or_max_elapsed() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log).max_retries(1_000).max_elapsed(None).build().expect("policy");
    let deadline = clock.now() + 1_500 * MS;
    let err = retry.retry_until(deadline, || busy_for_a_second(&clock)).unwrap_err();
    // At 1 s, 0.5 s is left: retried at once; at 2 s the deadline has passed.
    assert_eq!((err.code(), err.attempts()), (code::RETRY_DEADLINE_EXCEEDED, Some(2)));
    assert_eq!(clock.elapsed(), Duration::from_secs(2));

    let retry = policy(&clock, &log)
        .max_retries(1_000)
        .max_elapsed(Some(Duration::from_secs(30)))
        .build()
        .expect("policy");
    let start = clock.elapsed();
    let err = retry.retry(|| busy_for_a_second(&clock)).unwrap_err();
    // 30 s from the first failure (at 1 s): the attempt ending at 31 s is the last.
    assert_eq!((err.code(), err.attempts()), (code::RETRY_DEADLINE_EXCEEDED, Some(31)));
    assert_eq!(clock.elapsed() - start, Duration::from_secs(31));
}

#[test]
fn max_elapsed_counts_from_the_first_failure() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let retry = policy(&clock, &log)
        .max_retries(10)
        .max_elapsed(Some(Duration::from_secs(1)))
        .build()
        .expect("policy");
    let mut calls = 0;
    let err = retry
        .retry(|| -> Result<(), Error> {
            calls += 1;
            if calls == 1 {
                clock.advance(Duration::from_secs(10)); // a slow first attempt
            }
            Err(Error::timeout("slow"))
        })
        .unwrap_err();
    // From the first failure: 100 + 200 + 400 ms fit in 1 s, 800 more do not.
    assert_eq!(log.delays(), [100 * MS, 200 * MS, 400 * MS]);
    assert_eq!((calls, err.code()), (4, code::RETRY_DEADLINE_EXCEEDED));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the jitter, every delay is within [0, max_delay] and the
    /// total sleep stays within the max elapsed time.
    #[test]
    fn total_sleep_stays_within_max_elapsed(
        jitter in prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated)],
        seed in any::<u64>(),
        base_ms in 1u32..500,
        max_ms in 500u32..5_000,
        max_elapsed_ms in 1u32..20_000,
        max_retries in 0u32..30,
    ) {
        let (clock, log) = (FakeClock::new(), Log::default());
        let retry = policy(&clock, &log)
            .jitter(jitter)
            .jitter_seed(seed)
            .base_delay(base_ms * MS)
            .max_delay(max_ms * MS)
            .max_retries(max_retries)
            .max_elapsed(Some(max_elapsed_ms * MS))
            .build()
            .expect("policy");
        let _ = retry.retry(failing(|| Error::unavailable("down")));
        let delays = log.delays();
        prop_assert!(delays.iter().all(|delay| *delay <= max_ms * MS));
        prop_assert!(delays.len() <= max_retries as usize);
        prop_assert!(clock.elapsed() <= max_elapsed_ms * MS);
        prop_assert_eq!(clock.elapsed(), delays.iter().sum::<Duration>());
    }
}

// ---- budget ----

#[test]
fn a_budget_stops_a_retry_storm() {
    let clock = FakeClock::new();
    let budget = RetryBudget::builder()
        .retry_ratio(0.1)
        .min_retries_per_second(0)
        .clock(clock.clone())
        .build()
        .expect("budget");
    let log = Log::default();
    let retry = policy(&clock, &log).max_retries(3).budget(budget).build().expect("policy");
    let attempts = AtomicU32::new(0);
    let mut budget_give_ups = 0;
    for _ in 0..1_000 {
        let err = retry
            .retry(|| -> Result<(), Error> {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err(Error::unavailable("down"))
            })
            .unwrap_err();
        if err.code() == code::RETRY_BUDGET_EXHAUSTED {
            assert!(!err.is_retryable());
            budget_give_ups += 1;
        }
    }
    // Without the budget: 4,000 attempts. With it: 1,000 calls plus 10% of them.
    assert_eq!(attempts.load(Ordering::Relaxed), 1_100);
    assert!(budget_give_ups >= 900, "{budget_give_ups}");
}

// ---- circuit breaker ----

fn breaker(clock: &FakeClock, log: &Log) -> rampart::resilience::CircuitBreakerBuilder {
    CircuitBreaker::builder("payments")
        .window_size(10)
        .minimum_calls(4)
        .failure_rate(0.5)
        .open_for(Duration::from_secs(30))
        .probe_calls(2)
        .clock(clock.clone())
        .on_event(log.hook())
}

fn fail(breaker: &CircuitBreaker) -> Result<(), Error> {
    breaker.call(|| Err(Error::timeout("no answer")))
}

fn succeed(breaker: &CircuitBreaker) -> Result<(), Error> {
    breaker.call(|| Ok(()))
}

/// Opens a breaker made by `breaker()` (4 failures of 4 calls).
fn trip(breaker: &CircuitBreaker) {
    for _ in 0..4 {
        let _ = fail(breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn a_breaker_opens_rejects_probes_and_closes() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).build().expect("breaker");

    // Three failures are fewer than the minimum: still closed.
    for _ in 0..3 {
        assert_eq!(fail(&breaker).unwrap_err().code(), code::TIMEOUT);
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(fail(&breaker).is_err());
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(log.take(), [Seen::State(CircuitState::Closed, CircuitState::Open)]);

    // Open: refused without calling, with the time left open.
    clock.advance(Duration::from_secs(10));
    let mut called = false;
    let err = breaker
        .call(|| {
            called = true;
            Ok(())
        })
        .unwrap_err();
    assert!(!called);
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.code(), code::CIRCUIT_OPEN);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
    assert!(err.is_retryable());
    assert_eq!(log.take(), [Seen::Rejected(CircuitState::Open, Some(Duration::from_secs(20)))]);

    // Time up: two probes pass, a third is refused while they run.
    clock.advance(Duration::from_secs(20));
    let first = breaker.try_acquire().expect("probe 1");
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let second = breaker.try_acquire().expect("probe 2");
    let err = breaker.try_acquire().unwrap_err();
    assert_eq!((err.code(), err.retry_after()), (code::CIRCUIT_OPEN, None));
    first.record(&Ok::<(), Error>(()));
    assert_eq!(breaker.state(), CircuitState::HalfOpen, "waits for every probe");
    second.record(&Ok::<(), Error>(()));
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(
        log.take(),
        [
            Seen::State(CircuitState::Open, CircuitState::HalfOpen),
            Seen::Rejected(CircuitState::HalfOpen, None),
            Seen::State(CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );

    // Closed again with a fresh window: one failure does not reopen it.
    assert!(fail(&breaker).is_err());
    assert!(succeed(&breaker).is_ok());
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_failed_probe_reopens_the_breaker_for_another_full_period() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).probe_calls(1).build().expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    assert!(fail(&breaker).is_err());
    assert_eq!(breaker.state(), CircuitState::Open);
    clock.advance(Duration::from_secs(29));
    assert_eq!(succeed(&breaker).unwrap_err().retry_after(), Some(Duration::from_secs(1)));
}

#[test]
fn the_window_slides_and_caller_mistakes_are_not_failures() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).window_size(4).minimum_calls(4).build().expect("breaker");
    // Validation and not-found errors are the caller's, not the dependency's.
    for _ in 0..20 {
        let _ = breaker.call(|| -> Result<(), Error> { Err(Error::validation("bad")) });
        let _ = breaker.call(|| -> Result<(), Error> { Err(Error::not_found("none")) });
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    // F S S S, then F S: each window of four holds at most one failure.
    for step in [fail, succeed, succeed, succeed, fail, succeed, succeed, succeed] {
        let _ = step(&breaker);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }
    // S S F F: the last four hold two failures, 50%.
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn good_outcomes_after_a_failure_in_a_healthy_window_still_count() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).window_size(4).minimum_calls(4).build().expect("breaker");
    // A full window of good outcomes: further good ones are not recorded...
    for _ in 0..100 {
        assert!(succeed(&breaker).is_ok());
    }
    // ...until a failure: the three successes after it must push it along.
    for step in [fail, succeed, succeed, succeed, fail] {
        let _ = step(&breaker);
    }
    // The last four: S S S F, 25%. Had the successes been skipped: S S F F.
    assert_eq!(breaker.state(), CircuitState::Closed);
    let _ = fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open, "S S F F is 50%");
}

#[test]
fn slow_calls_open_the_breaker_when_so_configured() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker =
        breaker(&clock, &log).slow_call(Duration::from_secs(2), 0.75).build().expect("breaker");
    let slow = |breaker: &CircuitBreaker| {
        breaker.call(|| {
            clock.advance(Duration::from_secs(3));
            Ok(())
        })
    };
    assert!(slow(&breaker).is_ok());
    assert!(slow(&breaker).is_ok());
    assert!(succeed(&breaker).is_ok());
    assert_eq!(breaker.state(), CircuitState::Closed, "2 of 3, under the minimum");
    assert!(slow(&breaker).is_ok());
    assert_eq!(breaker.state(), CircuitState::Open, "3 slow of 4");
}

#[test]
fn a_late_outcome_from_before_a_transition_is_ignored() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).probe_calls(1).build().expect("breaker");
    let stale = breaker.try_acquire().expect("closed");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let probe = breaker.try_acquire().expect("probe");
    // The call let in while closed fails now: it must not count as the probe.
    stale.record(&Err::<(), _>(Error::timeout("late")));
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    probe.record(&Ok::<(), Error>(()));
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_dropped_probe_frees_its_slot() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).probe_calls(1).build().expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    drop(breaker.try_acquire().expect("probe")); // e.g. a cancelled request
    assert!(succeed(&breaker).is_ok(), "the slot was given back");
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_hook_panicking_on_the_half_open_transition_does_not_keep_the_probe_slot() {
    let clock = FakeClock::new();
    let breaker = breaker(&clock, &Log::default())
        .probe_calls(1)
        .on_event(|event: &Event<'_>| {
            if let Event::StateChanged { to: CircuitState::HalfOpen, .. } = event {
                panic!("a buggy hook");
            }
        })
        .build()
        .expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| succeed(&breaker)));
    assert!(panicked.is_err(), "the hook panicked in the call that took the probe slot");
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    // No time has passed: the slot is free because the permit gave it back.
    assert!(succeed(&breaker).is_ok(), "the next call is the probe");
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_panicking_failure_predicate_does_not_keep_the_probe_slot() {
    let clock = FakeClock::new();
    let breaker = breaker(&clock, &Log::default())
        .probe_calls(1)
        .failure_if(|err| {
            assert_ne!(err.code(), code::CONFLICT, "a buggy predicate");
            err.is_retryable()
        })
        .build()
        .expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        breaker.call(|| Err::<(), _>(Error::conflict("taken")))
    }));
    assert!(panicked.is_err(), "the predicate panicked on the probe's outcome");
    assert!(succeed(&breaker).is_ok(), "the slot was given back");
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_forgotten_probe_holds_half_open_no_longer_than_its_max_wait() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log)
        .probe_calls(1)
        .half_open_max_wait(Duration::from_secs(10))
        .build()
        .expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    // A probe that never ends: its permit is neither recorded nor dropped.
    std::mem::forget(breaker.try_acquire().expect("probe"));
    clock.advance(Duration::from_secs(9));
    assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), None, "still waiting on it");
    clock.advance(Duration::from_secs(1));
    let err = breaker.try_acquire().unwrap_err();
    assert_eq!(
        (err.code(), err.retry_after()),
        (code::CIRCUIT_OPEN, Some(Duration::from_secs(30)))
    );
    assert_eq!(breaker.state(), CircuitState::Open, "the round failed");
    clock.advance(Duration::from_secs(30));
    assert!(succeed(&breaker).is_ok(), "a new probe");
    assert_eq!(breaker.state(), CircuitState::Closed);
    let states: Vec<_> =
        log.take().into_iter().filter(|seen| matches!(seen, Seen::State(..))).collect();
    assert_eq!(
        states,
        [
            Seen::State(CircuitState::Closed, CircuitState::Open),
            Seen::State(CircuitState::Open, CircuitState::HalfOpen),
            Seen::State(CircuitState::HalfOpen, CircuitState::Open),
            Seen::State(CircuitState::Open, CircuitState::HalfOpen),
            Seen::State(CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );
}

#[test]
fn an_open_for_too_long_for_an_instant_is_refused_and_the_longest_accepted_works() {
    let err = CircuitBreakerSettings::from_value(json!({"open_for": "400000000000y"})).unwrap_err();
    assert_eq!(err.config_key(), Some("circuit_breaker.open_for"));
    let err = CircuitBreaker::builder("p").open_for(Duration::MAX).build().unwrap_err();
    assert_eq!(err.config_key(), Some("circuit_breaker.open_for"));
    let err = CircuitBreaker::builder("p").half_open_max_wait(Duration::MAX).build().unwrap_err();
    assert_eq!(err.config_key(), Some("circuit_breaker.half_open_max_wait"));

    let (clock, log) = (FakeClock::new(), Log::default());
    let day = Duration::from_secs(24 * 3600);
    let breaker = breaker(&clock, &log).open_for(day).build().expect("24h is accepted");
    trip(&breaker);
    clock.advance(day - Duration::from_secs(1));
    assert_eq!(fail(&breaker).unwrap_err().retry_after(), Some(Duration::from_secs(1)));
}

#[test]
fn a_zero_slow_call_duration_is_refused() {
    let err = CircuitBreakerSettings::from_value(json!({"slow_call_duration": "0s"})).unwrap_err();
    assert_eq!(
        err.config_key(),
        Some("circuit_breaker.slow_call_duration"),
        "every call, however fast, would count as slow"
    );
    let err = CircuitBreaker::builder("p").slow_call(Duration::ZERO, 1.0).build().unwrap_err();
    assert_eq!(err.config_key(), Some("circuit_breaker.slow_call_duration"));
}

#[test]
fn concurrent_callers_in_half_open_get_exactly_the_probe_count() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &log).probe_calls(3).build().expect("breaker");
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    log.take();
    let threads: u32 = 32;
    let barrier = Barrier::new(threads as usize);
    let (granted, asked) = (AtomicU32::new(0), AtomicU32::new(0));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                barrier.wait();
                let permit = breaker.try_acquire();
                asked.fetch_add(1, Ordering::SeqCst);
                if let Ok(permit) = permit {
                    granted.fetch_add(1, Ordering::SeqCst);
                    // Hold the permit until every thread has asked.
                    while asked.load(Ordering::SeqCst) < threads {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    permit.record(&Ok::<(), Error>(()));
                }
            });
        }
    });
    assert_eq!(granted.load(Ordering::SeqCst), 3);
    assert_eq!(breaker.state(), CircuitState::Closed);
    let seen = log.take();
    let transitions: Vec<_> = seen.iter().filter(|s| matches!(s, Seen::State(..))).collect();
    assert_eq!(
        transitions,
        [
            &Seen::State(CircuitState::Open, CircuitState::HalfOpen),
            &Seen::State(CircuitState::HalfOpen, CircuitState::Closed)
        ]
    );
    assert_eq!(seen.len(), 2 + 29, "29 rejections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_failing_at_once_open_the_breaker_once() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = CircuitBreaker::builder("payments")
        .window_size(50)
        .minimum_calls(50)
        .clock(clock.clone())
        .on_event(log.hook())
        .build()
        .expect("breaker");
    let calls = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..2_000)
        .map(|_| {
            let (breaker, calls) = (breaker.clone(), calls.clone());
            tokio::spawn(async move {
                breaker
                    .call_async(|| async {
                        calls.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                        Err::<(), _>(Error::external_service("500 from upstream"))
                    })
                    .await
            })
        })
        .collect();
    let mut rejected = 0;
    for task in tasks {
        let err = task.await.expect("task").unwrap_err();
        if err.code() == code::CIRCUIT_OPEN {
            rejected += 1;
        }
    }
    let calls = calls.load(Ordering::Relaxed);
    assert_eq!(calls + rejected, 2_000);
    assert!(calls >= 50 && rejected > 0, "calls {calls}, rejected {rejected}");
    assert_eq!(breaker.state(), CircuitState::Open);
    let seen = log.take();
    let opened = seen.iter().filter(|s| matches!(s, Seen::State(_, CircuitState::Open))).count();
    assert_eq!(opened, 1);
    assert_eq!(seen.iter().filter(|s| matches!(s, Seen::Rejected(..))).count(), rejected as usize);
}

#[test]
fn many_threads_hammering_a_breaker_keep_its_counts_consistent() {
    let clock = FakeClock::new();
    // Never opens (a failure rate of 100% is needed), so every call is recorded.
    let breaker = CircuitBreaker::builder("payments")
        .window_size(1_000)
        .minimum_calls(1_000)
        .failure_rate(1.0)
        .clock(clock)
        .build()
        .expect("breaker");
    let ok = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (breaker, ok) = (&breaker, &ok);
            scope.spawn(move || {
                for i in 0..5_000u32 {
                    let out = breaker.call(|| {
                        if (i + t) % 2 == 0 { Ok(()) } else { Err(Error::timeout("slow")) }
                    });
                    if out.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(ok.load(Ordering::Relaxed), 20_000);
    assert_eq!(breaker.state(), CircuitState::Closed);
    // Now 1,000 failures in a row: the window is full of them and it opens.
    for _ in 0..1_000 {
        let _ = fail(&breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn retry_waits_for_an_open_breaker_only_if_the_deadline_allows() {
    let (clock, log) = (FakeClock::new(), Log::default());
    let breaker = breaker(&clock, &Log::default()).probe_calls(1).build().expect("breaker");
    trip(&breaker);
    // 30 s left open, 5 s of patience: give up at once, without calling.
    let impatient =
        policy(&clock, &log).max_elapsed(Some(Duration::from_secs(5))).build().expect("policy");
    let mut calls = 0;
    let err = impatient
        .retry(|| {
            breaker.call(|| {
                calls += 1;
                Ok(())
            })
        })
        .unwrap_err();
    assert_eq!((calls, err.code()), (0, code::RETRY_DEADLINE_EXCEEDED));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(clock.elapsed(), Duration::ZERO);

    // A minute of patience: sleep until half-open, then the probe succeeds.
    let patient =
        policy(&clock, &log).max_elapsed(Some(Duration::from_secs(60))).build().expect("policy");
    let out = patient.retry(|| {
        breaker.call(|| {
            calls += 1;
            Ok(calls)
        })
    });
    assert_eq!(out.expect("probe succeeds"), 1);
    assert_eq!(clock.elapsed(), Duration::from_secs(30));
    assert_eq!(breaker.state(), CircuitState::Closed);
}

// ---- async, on tokio's paused clock ----

#[tokio::test(start_paused = true)]
async fn async_retries_sleep_on_tokio_time() {
    let log = Log::default();
    let retry = RetryPolicy::builder("payments")
        .base_delay(Duration::from_secs(1))
        .jitter(Jitter::None)
        .on_event(log.hook())
        .build()
        .expect("policy");
    let start = tokio::time::Instant::now();
    let mut calls = 0;
    let out = retry
        .retry_async(|| {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(Error::timeout("slow")) } else { Ok(n) } }
        })
        .await;
    assert_eq!(out.expect("succeeds"), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(log.delays(), [Duration::from_secs(1), Duration::from_secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn async_retries_respect_the_deadline_and_retry_after() {
    let retry = RetryPolicy::builder("payments")
        .base_delay(Duration::from_secs(1))
        .jitter(Jitter::None)
        .max_retries(10)
        .build()
        .expect("policy");
    let start = tokio::time::Instant::now();
    let deadline = start.into_std() + Duration::from_secs(10);
    let err = retry
        .retry_async_until(deadline, || async { Err::<(), _>(Error::unavailable("down")) })
        .await
        .unwrap_err();
    // 1 + 2 + 4 = 7 s; the 8 s wait would end past the deadline.
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!((err.code(), err.attempts()), (code::RETRY_DEADLINE_EXCEEDED, Some(4)));

    let start = tokio::time::Instant::now();
    let err = retry
        .retry_async(|| async { Err::<(), _>(Error::rate_limited(Duration::from_secs(45))) })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "45 s is more than the 30 s max elapsed");
    assert_eq!(err.code(), code::RETRY_DEADLINE_EXCEEDED);
}

#[tokio::test(start_paused = true)]
async fn async_zero_waits_do_not_run_past_the_deadline_or_max_elapsed() {
    let retry = RetryPolicy::builder("payments").max_retries(1_000).build().expect("policy");
    let busy = || async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err::<(), _>(Error::unavailable("busy").with_retry_after(Duration::ZERO))
    };
    let start = tokio::time::Instant::now();
    let err = retry.retry_async(busy).await.unwrap_err();
    // The default 30 s max elapsed, from the first failure at 1 s.
    assert_eq!((err.code(), err.attempts()), (code::RETRY_DEADLINE_EXCEEDED, Some(31)));
    assert_eq!(start.elapsed(), Duration::from_secs(31));

    let start = tokio::time::Instant::now();
    let deadline = start.into_std() + 1_500 * MS;
    let err = retry.retry_async_until(deadline, busy).await.unwrap_err();
    assert_eq!((err.code(), err.attempts()), (code::RETRY_DEADLINE_EXCEEDED, Some(2)));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn timeout_turns_a_slow_future_into_a_timeout_error() {
    let start = tokio::time::Instant::now();
    let err = timeout(Duration::from_secs(2), async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, Error>(())
    })
    .await
    .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!((err.kind(), err.code()), (ErrorKind::Timeout, code::TIMEOUT));
    assert!(err.is_retryable());
    assert_eq!(err.details()["timeout_ms"], 2000);

    let fast = timeout(Duration::from_secs(2), async { Ok::<_, Error>(5) }).await;
    assert_eq!(fast.expect("in time"), 5);
    let failed = timeout(Duration::from_secs(2), async { Err::<(), _>(Error::not_found("x")) });
    assert_eq!(failed.await.unwrap_err().code(), code::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn retry_around_timeout_around_breaker_composes() {
    let clock = FakeClock::new();
    // One recorded failure would open it.
    let breaker = breaker(&clock, &Log::default()).minimum_calls(1).build().expect("breaker");
    let retry = RetryPolicy::builder("payments")
        .jitter(Jitter::None)
        .max_retries(2)
        .build()
        .expect("policy");
    let calls = AtomicU32::new(0);
    let err = retry
        .retry_async(|| {
            timeout(Duration::from_secs(1), async {
                breaker
                    .call_async(|| async {
                        calls.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok(())
                    })
                    .await
            })
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(err.code(), code::RETRIES_EXHAUSTED);
    let last = err.source().and_then(|s| s.downcast_ref::<Error>()).expect("source");
    assert_eq!(last.code(), code::TIMEOUT);
    // The timed-out calls were cancelled: their permits were released, not
    // counted, so the breaker saw no outcome at all.
    assert_eq!(breaker.state(), CircuitState::Closed);
}

// ---- fallback ----

#[test]
fn fallback_replaces_only_the_chosen_kinds() {
    let down: Result<u32, Error> = Err(Error::unavailable("down"));
    assert_eq!(fallback(down, &[ErrorKind::Unavailable], 0).expect("fallback"), 0);
    let ok: Result<u32, Error> = Ok(7);
    assert_eq!(fallback(ok, &[ErrorKind::Unavailable], 0).expect("ok"), 7);
    let conflict: Result<u32, Error> = Err(Error::conflict("taken"));
    assert_eq!(
        fallback(conflict, &[ErrorKind::Unavailable], 0).unwrap_err().code(),
        code::CONFLICT
    );

    let mut seen = None;
    let out = fallback_with(
        Err::<u32, _>(Error::timeout("slow")),
        &[ErrorKind::Timeout, ErrorKind::Unavailable],
        |err| {
            seen = Some(err.code());
            Err(Error::not_found("no cached copy either"))
        },
    );
    assert_eq!(seen, Some(code::TIMEOUT));
    assert_eq!(out.unwrap_err().code(), code::NOT_FOUND);
}

// ---- settings ----

#[test]
fn settings_default_to_the_builder_defaults_and_refuse_bad_values_without_echoing_them() {
    let retry = RetrySettings::from_value(json!({})).expect("empty section");
    assert_eq!(retry, RetrySettings::default());
    assert!(retry.builder("payments").and_then(RetryPolicyBuilder::build).is_ok());

    let err = RetrySettings::from_value(json!({"base_delay": "hunter2-secret"})).unwrap_err();
    assert_eq!(
        (err.kind(), err.config_key()),
        (ErrorKind::Configuration, Some("retry.base_delay"))
    );
    assert!(!format!("{err:?}").contains("hunter2"));

    let key = |json| RetrySettings::from_value(json).unwrap_err().config_key().map(str::to_owned);
    assert_eq!(key(json!({"budget_ratio": 50.0})).as_deref(), Some("retry.budget_ratio"));
    assert_eq!(
        key(json!({"base_delay": "20s", "max_delay": "1s"})).as_deref(),
        Some("retry.base_delay")
    );
    assert_eq!(key(json!({"max_retry": 3})).as_deref(), Some("retry.max_retry"), "typo refused");

    let key = |json| {
        CircuitBreakerSettings::from_value(json).unwrap_err().config_key().map(str::to_owned)
    };
    assert_eq!(
        key(json!({"window_size": 10, "minimum_calls": 20, "open_for": "5s"})).as_deref(),
        Some("circuit_breaker.minimum_calls")
    );
    assert_eq!(
        key(json!({"slow_call_duration": "2s", "slow_call_rate": 0})).as_deref(),
        Some("circuit_breaker.slow_call_rate")
    );
}

// ---- logs and metrics ----

mod observability {
    use super::*;
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    /// Records every metric update as `name{label=value,...} op value`.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Handle(String, Capture);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.1.0.lock().expect("capture").push(format!("{} += {value}", self.0));
        }
        fn absolute(&self, value: u64) {
            self.1.0.lock().expect("capture").push(format!("{} = {value}", self.0));
        }
    }

    impl GaugeFn for Handle {
        fn increment(&self, value: f64) {
            self.1.0.lock().expect("capture").push(format!("{} += {value}", self.0));
        }
        fn decrement(&self, value: f64) {
            self.1.0.lock().expect("capture").push(format!("{} -= {value}", self.0));
        }
        fn set(&self, value: f64) {
            self.1.0.lock().expect("capture").push(format!("{} = {value}", self.0));
        }
    }

    impl Capture {
        fn handle(&self, key: &Key) -> Arc<Handle> {
            let labels: Vec<String> =
                key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            Arc::new(Handle(format!("{}{{{}}}", key.name(), labels.join(",")), self.clone()))
        }
    }

    impl Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.handle(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.handle(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// A `tracing` writer into memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn retries_give_ups_transitions_and_rejections_are_logged_and_counted() {
        let capture = Capture::default();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        support::with_subscriber(subscriber, || {
            metrics::with_local_recorder(&capture, || {
                let (clock, log) = (FakeClock::new(), Log::default());
                let retry = policy(&clock, &log).max_retries(1).build().expect("policy");
                let breaker = super::breaker(&clock, &log).build().expect("breaker");
                let _ = retry.retry(|| fail(&breaker));
                for _ in 0..3 {
                    let _ = fail(&breaker);
                }
                let _ = succeed(&breaker);
            });
        });
        let metrics = capture.0.lock().expect("capture").clone();
        for expected in [
            "rampart_circuit_breaker_state{dependency=payments} = 0",
            "rampart_retries_total{dependency=payments} += 1",
            "rampart_retry_give_ups_total{dependency=payments,reason=exhausted} += 1",
            "rampart_circuit_breaker_transitions_total{dependency=payments,from=closed,to=open} += 1",
            "rampart_circuit_breaker_state{dependency=payments} = 1",
            "rampart_circuit_breaker_rejections_total{dependency=payments} += 1",
        ] {
            assert!(metrics.iter().any(|m| m == expected), "missing {expected} in {metrics:#?}");
        }

        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        let events: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).expect("json")).collect();
        let find = |message: &str| {
            events
                .iter()
                .find(|e| e["fields"]["message"] == message)
                .unwrap_or_else(|| panic!("no event {message:?} in {text}"))
        };
        for message in [
            "retrying a failed call",
            "gave up retrying",
            "circuit breaker opened",
            "circuit breaker refused a call",
        ] {
            let event = find(message);
            assert_eq!(event["target"], "rampart::resilience");
            assert_eq!(event["fields"]["dependency"], "payments");
        }
        assert_eq!(find("gave up retrying")["fields"]["reason"], "exhausted");
        assert_eq!(find("gave up retrying")["level"], "WARN");
        assert_eq!(find("circuit breaker opened")["fields"]["to"], "open");
    }
}
