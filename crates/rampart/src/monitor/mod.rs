//! Watching for suspicious patterns: sliding-window counts of security
//! events per client and per subject, alerts, and a temporary block list.
//!
//! Feed the [`Monitor`] every [`Signal`] (an authentication failure, a
//! permission denial, a rejected input, a rate-limit hit, a tampered
//! cookie) with the client and subject it concerns. When one key's count in
//! the window reaches its threshold, the monitor raises an [`Alert`]: a
//! `security.alert` audit event, an `error` log line and the metric
//! `rampart_monitor_alerts_total`; and, when a block duration is set, the
//! client goes on the block list that [`BlockLayer`](crate::http::BlockLayer)
//! consults (feature `http`). Memory is bounded: at most `max_tracked`
//! keys are counted and at most `max_tracked` clients blocked, each held as
//! a 64-bit keyed digest (a random key per monitor, as
//! [`MemoryLimiter`](crate::ratelimit::MemoryLimiter) does), so an entry
//! costs the same however long the client key or subject. The block list is
//! ordered by end time: a new block on a full list costs O(log n), and the
//! lookup every request makes stays one hash probe.
//!
//! A [`Monitor`] is cheap to clone and its clones are one monitor: they
//! share the counts, the block list, the clock and the auditor, so
//! configuring one ([`Monitor::with_auditor`], [`Monitor::clock`])
//! configures every clone, such as the one already handed to a
//! `BlockLayer`.
//!
//! ```
//! use std::time::Duration;
//! use rampart::clock::FakeClock;
//! use rampart::config::Section;
//! use rampart::monitor::{Monitor, MonitorConfig, Signal};
//!
//! let config = MonitorConfig::from_value(serde_json::json!({
//!     "window": "60s", "block_duration": "15m", "thresholds": {"auth_failure": 3}
//! })).unwrap();
//! let clock = FakeClock::new();
//! let monitor = Monitor::new(config).clock(clock.clone());
//!
//! assert!(monitor.observe(Signal::AuthFailure, Some("203.0.113.9"), Some("alice")).is_empty());
//! monitor.observe(Signal::AuthFailure, Some("203.0.113.9"), Some("alice"));
//! let alerts = monitor.observe(Signal::AuthFailure, Some("203.0.113.9"), Some("alice"));
//! assert_eq!(alerts.len(), 2); // the client and the subject both crossed 3
//! assert_eq!(monitor.blocked("203.0.113.9"), Some(Duration::from_secs(900)));
//!
//! clock.advance(Duration::from_secs(900));
//! assert_eq!(monitor.blocked("203.0.113.9"), None);
//! ```

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[cfg(feature = "audit")]
use crate::audit::{AuditEvent, Auditor, Outcome};
use crate::clock::{Clock, SystemClock};
#[cfg(feature = "audit")]
use crate::error::Severity;

mod block;
mod config;
mod detector;

use block::BlockList;
pub use config::MonitorConfig;
use detector::SlidingWindows;

/// A kind of security event the monitor counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Missing or invalid credentials.
    AuthFailure,
    /// A missing permission.
    PermissionDenied,
    /// Input rejected by validation.
    ValidationRejected,
    /// A rate limit hit.
    RateLimited,
    /// A session cookie that failed its signature or decryption.
    TamperedCookie,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 5] = [
        Signal::AuthFailure,
        Signal::PermissionDenied,
        Signal::ValidationRejected,
        Signal::RateLimited,
        Signal::TamperedCookie,
    ];

    /// The name used in config, logs, metrics and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::AuthFailure => "auth_failure",
            Signal::PermissionDenied => "permission_denied",
            Signal::ValidationRejected => "validation_rejected",
            Signal::RateLimited => "rate_limited",
            Signal::TamperedCookie => "tampered_cookie",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whom a count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A client (an address or another client key).
    Client,
    /// An authenticated or claimed subject.
    Subject,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Subject => "subject",
        }
    }
}

/// A threshold crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What was counted.
    pub signal: Signal,
    /// Client or subject.
    pub scope: Scope,
    /// The client key or subject.
    pub key: String,
    /// Events in the window.
    pub count: usize,
    /// How long the client is blocked for, if it was.
    pub blocked_for: Option<Duration>,
}

/// Counts signals, raises alerts, keeps the block list. Cheap to clone;
/// clones share everything (see the [module documentation](self)).
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    config: MonitorConfig,
    /// Keys the counts and blocks by digest.
    hasher: RandomState,
    state: Mutex<State>,
}

/// Everything that can change, behind one lock, so every clone sees it.
struct State {
    clock: Arc<dyn Clock>,
    #[cfg(feature = "audit")]
    auditor: Option<Auditor>,
    /// Keyed by the digest of (signal, scope, key).
    windows: SlidingWindows<u64>,
    /// Keyed by the digest of the client key.
    blocks: BlockList<Instant>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Monitor {
    /// A monitor on the system clock, with no auditor (alerts are logged and counted).
    pub fn new(config: MonitorConfig) -> Monitor {
        let state = State {
            clock: Arc::new(SystemClock),
            #[cfg(feature = "audit")]
            auditor: None,
            windows: SlidingWindows::new(config.window, config.max_tracked),
            blocks: BlockList::new(config.max_tracked),
        };
        Monitor {
            inner: Arc::new(Inner { config, hasher: RandomState::new(), state: Mutex::new(state) }),
        }
    }

    /// Uses `clock` (for tests, a `FakeClock`), in this monitor and every
    /// clone of it. Set it before the monitor is used: times already
    /// recorded were read from the previous clock.
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Monitor {
        self.state().clock = Arc::new(clock);
        self
    }

    /// Records every alert as a `security.alert` event through `auditor`,
    /// in this monitor and every clone of it.
    #[cfg(feature = "audit")]
    #[must_use]
    pub fn with_auditor(self, auditor: Auditor) -> Monitor {
        self.state().auditor = Some(auditor);
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one `signal` for `client` and `subject` (either may be
    /// unknown) and returns the alerts it raised, already logged, counted,
    /// audited and acted on.
    pub fn observe(
        &self,
        signal: Signal,
        client: Option<&str>,
        subject: Option<&str>,
    ) -> Vec<Alert> {
        let threshold = self.inner.config.thresholds[signal.index()];
        if threshold == 0 {
            return Vec::new();
        }
        let hasher = &self.inner.hasher;
        let mut alerts = Vec::new();
        #[cfg(feature = "audit")]
        let auditor;
        {
            let mut state = self.state();
            let now = state.clock.now();
            for (scope, key) in [(Scope::Client, client), (Scope::Subject, subject)] {
                let Some(key) = key else { continue };
                let digest = hasher.hash_one((signal, scope, key));
                let count = state.windows.observe(&digest, now, threshold as usize);
                if !count.crossed {
                    continue;
                }
                let blocked_for = match (scope, self.inner.config.block_duration) {
                    (Scope::Client, Some(block)) => {
                        state.blocks.block(hasher.hash_one(key), now + block, now);
                        Some(block)
                    }
                    _ => None,
                };
                alerts.push(Alert {
                    signal,
                    scope,
                    key: key.to_owned(),
                    count: count.count,
                    blocked_for,
                });
            }
            metrics::gauge!("rampart_monitor_tracked_keys").set(state.windows.len() as f64);
            metrics::gauge!("rampart_monitor_blocked_clients").set(state.blocks.len() as f64);
            metrics::counter!("rampart_monitor_evictions_total").absolute(state.windows.evicted());
            #[cfg(feature = "audit")]
            {
                auditor = if alerts.is_empty() { None } else { state.auditor.clone() };
            }
        }
        for alert in &alerts {
            self.raise(alert);
            #[cfg(feature = "audit")]
            if let Some(auditor) = &auditor {
                self.audit(alert, subject, auditor);
            }
        }
        alerts
    }

    /// Logs and counts an alert.
    fn raise(&self, alert: &Alert) {
        let window = self.inner.config.window;
        tracing::error!(target: "rampart::monitor", signal = alert.signal.as_str(), scope = alert.scope.as_str(),
            key = %alert.key, count = alert.count, window_seconds = window.as_secs(),
            blocked_seconds = alert.blocked_for.map(|d| d.as_secs()), "security alert: a threshold was crossed");
        metrics::counter!("rampart_monitor_alerts_total", "signal" => alert.signal.as_str(), "scope" => alert.scope.as_str())
            .increment(1);
    }

    /// Records an alert as a `security.alert` audit event.
    #[cfg(feature = "audit")]
    fn audit(&self, alert: &Alert, subject: Option<&str>, auditor: &Auditor) {
        let window = self.inner.config.window;
        let mut event = AuditEvent::new("security.alert", "alert")
            .severity(Severity::High)
            .outcome(if alert.blocked_for.is_some() { Outcome::Denied } else { Outcome::Failure })
            .resource(format!("{}:{}", alert.scope.as_str(), alert.key))
            .detail("signal", alert.signal.as_str())
            .detail("scope", alert.scope.as_str())
            .detail("key", alert.key.as_str())
            .detail("count", alert.count)
            .detail("window_seconds", window.as_secs());
        if let Some(subject) = subject {
            event = event.actor(subject);
        }
        if let Some(block) = alert.blocked_for {
            event = event.detail("blocked_seconds", block.as_secs());
        }
        if let Err(err) = auditor.submit(event) {
            tracing::error!(target: "rampart::monitor", error = ?err, "a security alert could not be audited");
        }
    }

    /// How long `client` stays blocked, if it is.
    pub fn blocked(&self, client: &str) -> Option<Duration> {
        let digest = self.inner.hasher.hash_one(client);
        let mut state = self.state();
        let now = state.clock.now();
        state.blocks.end(digest, now).map(|end| end - now)
    }

    /// Lifts a block; true if there was one.
    pub fn unblock(&self, client: &str) -> bool {
        let digest = self.inner.hasher.hash_one(client);
        self.state().blocks.unblock(digest)
    }

    /// Keys being counted now.
    pub fn tracked(&self) -> usize {
        self.state().windows.len()
    }
}
