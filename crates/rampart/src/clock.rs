//! Time as a dependency, so limits, breakers and audit chains test deterministically.
//!
//! Code that measures time takes a [`Clock`]; production uses
//! [`SystemClock`], tests pass a `FakeClock` (feature `test-util`) and move it
//! by hand. There is one way to give a type its clock: a method named
//! `clock` that takes `impl Clock`, on the type itself or on its builder
//! (`MemoryLimiter::new(quota).clock(c)`, `Authenticator::builder(&config)
//! .clock(c).build()`, `RetryPolicy::builder().clock(c)`); without it, the
//! system clock. Set it before the value is first used.
//!
//! ```
//! use std::time::Duration;
//! use rampart::clock::{Clock, SystemClock};
//!
//! let clock = SystemClock;
//! let start = clock.now();
//! assert!(clock.now().duration_since(start) < Duration::from_secs(60));
//! ```
#![cfg_attr(
    feature = "test-util",
    doc = r#"
With the fake clock:

```
use std::time::Duration;
use rampart::clock::{Clock, FakeClock};

let clock = FakeClock::new();
let start = clock.now();
clock.advance(Duration::from_secs(5));
assert_eq!(clock.now() - start, Duration::from_secs(5));
```
"#
)]

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic time, for measuring intervals.
    fn now(&self) -> Instant;

    /// Wall-clock time, for timestamps.
    fn system_time(&self) -> SystemTime;
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn system_time(&self) -> SystemTime {
        (**self).system_time()
    }
}

#[cfg(feature = "test-util")]
pub use fake::FakeClock;

#[cfg(feature = "test-util")]
mod fake {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant, SystemTime};

    use super::Clock;

    /// A clock that only moves when told to. Clones share the same time.
    #[derive(Debug, Clone)]
    pub struct FakeClock {
        inner: Arc<Inner>,
    }

    #[derive(Debug)]
    struct Inner {
        start: Instant,
        wall_start: SystemTime,
        elapsed_nanos: AtomicU64,
    }

    impl FakeClock {
        /// A clock standing at the moment it is made (wall time: 2025-01-01T00:00:00Z).
        pub fn new() -> FakeClock {
            FakeClock {
                inner: Arc::new(Inner {
                    start: Instant::now(),
                    wall_start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600),
                    elapsed_nanos: AtomicU64::new(0),
                }),
            }
        }

        /// Moves both clocks forward by `by`.
        pub fn advance(&self, by: Duration) {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            self.inner.elapsed_nanos.fetch_add(nanos, Ordering::SeqCst);
        }

        /// How far the clock has been moved since it was made.
        pub fn elapsed(&self) -> Duration {
            Duration::from_nanos(self.inner.elapsed_nanos.load(Ordering::SeqCst))
        }
    }

    impl Default for FakeClock {
        fn default() -> Self {
            FakeClock::new()
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.inner.start + self.elapsed()
        }

        fn system_time(&self) -> SystemTime {
            self.inner.wall_start + self.elapsed()
        }
    }
}

/// `d` in whole seconds, rounded up (saturating): what `Retry-After` and the
/// rate-limit fields announce, so a client told to wait never comes back early.
pub(crate) fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}
