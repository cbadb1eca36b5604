//! The `[retry]` and `[circuit_breaker]` sections: the defaults of every
//! outbound call's retry policy and circuit breaker.
//!
//! Each section is validated when the configuration loads, by the same
//! rules the builders apply, so a policy or breaker built from it for any
//! dependency is known to be valid before the first call.
//!
//! ```
//! use rampart::config::{Loader, Section};
//! use rampart::resilience::{CircuitBreakerSettings, CircuitState, RetrySettings};
//!
//! let loaded = Loader::new()
//!     .toml_text("app.toml", "[retry]\nmax_retries = 2\nbase_delay = \"50ms\"\njitter = \"decorrelated\"\n\n[circuit_breaker]\nopen_for = \"10s\"\n")
//!     .env_vars(None::<(String, String)>)
//!     .load()?;
//! let config = loaded.config();
//! assert_eq!(config.retry.max_retries, 2);
//! let policy = config.retry.builder("payments")?.build()?;
//! assert_eq!(policy.dependency(), "payments");
//! let breaker = config.circuit_breaker.builder("payments").build()?;
//! assert_eq!(breaker.state(), CircuitState::Closed);
//!
//! let err = RetrySettings::from_value(serde_json::json!({"max_delay": "soon"})).unwrap_err();
//! assert_eq!(err.config_key(), Some("retry.max_delay"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    CircuitBreaker, CircuitBreakerBuilder, Jitter, RetryBudget, RetryPolicy, RetryPolicyBuilder,
};
use crate::error::Error;
use crate::settings::{Section, duration};

/// The default retry policy of outbound calls (`[retry]`); see
/// [`RetryPolicy::builder`] for what each setting does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// The delay before the first retry (default 100ms).
    #[serde(with = "duration")]
    pub base_delay: Duration,
    /// The longest computed delay (default 10s).
    #[serde(with = "duration")]
    pub max_delay: Duration,
    /// Growth of each delay over the previous one (default 2.0).
    pub factor: f64,
    /// How delays are randomized (default `full`).
    pub jitter: Jitter,
    /// The longest retrying may go on (default 30s); `None` for no bound.
    #[serde(with = "duration::option")]
    pub max_elapsed: Option<Duration>,
    /// Whether an error's Retry-After replaces the computed delay (default true).
    pub honor_retry_after: bool,
    /// Retries allowed per call as a share of calls; `None` (the default)
    /// means no budget.
    pub budget_ratio: Option<f64>,
    /// Retries always allowed per second under the budget (default 10).
    pub budget_min_retries_per_second: u32,
    /// How long the budget remembers calls (default 10s).
    #[serde(with = "duration")]
    pub budget_window: Duration,
}

/// `[retry]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRetrySettings {
    max_retries: u32,
    #[serde(with = "duration")]
    base_delay: Duration,
    #[serde(with = "duration")]
    max_delay: Duration,
    factor: f64,
    jitter: Jitter,
    #[serde(with = "duration::option")]
    max_elapsed: Option<Duration>,
    honor_retry_after: bool,
    budget_ratio: Option<f64>,
    budget_min_retries_per_second: u32,
    #[serde(with = "duration")]
    budget_window: Duration,
}

impl Default for RawRetrySettings {
    fn default() -> Self {
        RawRetrySettings {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            factor: 2.0,
            jitter: Jitter::Full,
            max_elapsed: Some(Duration::from_secs(30)),
            honor_retry_after: true,
            budget_ratio: None,
            budget_min_retries_per_second: 10,
            budget_window: Duration::from_secs(10),
        }
    }
}

impl Section for RetrySettings {
    const NAME: &'static str = "retry";
    type Raw = RawRetrySettings;

    /// Checks the settings by building a policy from them: errors name the
    /// key (`retry.<field>`) and never the value.
    fn from_raw(raw: RawRetrySettings) -> Result<RetrySettings, Error> {
        let settings = raw.unchecked();
        settings.builder(Self::NAME)?.build()?;
        Ok(settings)
    }
}

impl Default for RetrySettings {
    fn default() -> RetrySettings {
        RawRetrySettings::default().unchecked()
    }
}

impl RawRetrySettings {
    /// The settings as written, before [`RetrySettings::from_raw`] checks them.
    fn unchecked(self) -> RetrySettings {
        let raw = self;
        RetrySettings {
            max_retries: raw.max_retries,
            base_delay: raw.base_delay,
            max_delay: raw.max_delay,
            factor: raw.factor,
            jitter: raw.jitter,
            max_elapsed: raw.max_elapsed,
            honor_retry_after: raw.honor_retry_after,
            budget_ratio: raw.budget_ratio,
            budget_min_retries_per_second: raw.budget_min_retries_per_second,
            budget_window: raw.budget_window,
        }
    }
}

impl RetrySettings {
    /// A retry policy builder for calls to `dependency`, set from these
    /// settings, with its own retry budget when `budget_ratio` is set: add a
    /// hook, a clock or a predicate, then [`build`](RetryPolicyBuilder::build).
    ///
    /// # Errors
    /// A budget setting out of range, naming its key (`retry.budget_ratio`,
    /// `retry.budget_window`); loaded settings have none.
    pub fn builder(&self, dependency: &str) -> Result<RetryPolicyBuilder, Error> {
        let mut builder = RetryPolicy::builder(dependency)
            .max_retries(self.max_retries)
            .base_delay(self.base_delay)
            .max_delay(self.max_delay)
            .factor(self.factor)
            .jitter(self.jitter)
            .max_elapsed(self.max_elapsed)
            .honor_retry_after(self.honor_retry_after);
        if let Some(ratio) = self.budget_ratio {
            let budget = RetryBudget::builder()
                .retry_ratio(ratio)
                .min_retries_per_second(self.budget_min_retries_per_second)
                .window(self.budget_window)
                .build()
                .map_err(|err| prefixed(err, "retry.budget_"))?;
            builder = builder.budget(budget);
        }
        Ok(builder)
    }
}

/// The default circuit breaker of outbound calls (`[circuit_breaker]`); see
/// [`CircuitBreaker::builder`] for what each setting does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CircuitBreakerSettings {
    /// How many recent calls the rates are computed over (default 100).
    pub window_size: usize,
    /// Calls recorded before the breaker may open (default 20).
    pub minimum_calls: u32,
    /// The share of failed calls that opens the breaker (default 0.5).
    pub failure_rate: f64,
    /// Calls at least this long are slow; `None` (the default) disables
    /// the rule.
    #[serde(with = "duration::option")]
    pub slow_call_duration: Option<Duration>,
    /// The share of slow calls that opens the breaker (default 1.0).
    pub slow_call_rate: f64,
    /// How long the breaker stays open (default 30s).
    #[serde(with = "duration")]
    pub open_for: Duration,
    /// Calls let through while half-open (default 5).
    pub probe_calls: u32,
    /// How long the probes may take before the breaker opens again
    /// (default 60s).
    #[serde(with = "duration")]
    pub half_open_max_wait: Duration,
}

/// `[circuit_breaker]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCircuitBreakerSettings {
    window_size: usize,
    minimum_calls: u32,
    failure_rate: f64,
    #[serde(with = "duration::option")]
    slow_call_duration: Option<Duration>,
    slow_call_rate: f64,
    #[serde(with = "duration")]
    open_for: Duration,
    probe_calls: u32,
    #[serde(with = "duration")]
    half_open_max_wait: Duration,
}

impl Default for RawCircuitBreakerSettings {
    fn default() -> Self {
        RawCircuitBreakerSettings {
            window_size: 100,
            minimum_calls: 20,
            failure_rate: 0.5,
            slow_call_duration: None,
            slow_call_rate: 1.0,
            open_for: Duration::from_secs(30),
            probe_calls: 5,
            half_open_max_wait: Duration::from_secs(60),
        }
    }
}

impl Section for CircuitBreakerSettings {
    const NAME: &'static str = "circuit_breaker";
    type Raw = RawCircuitBreakerSettings;

    /// Checks the settings by building a breaker from them: errors name the
    /// key (`circuit_breaker.<field>`) and never the value.
    fn from_raw(raw: RawCircuitBreakerSettings) -> Result<CircuitBreakerSettings, Error> {
        let settings = raw.unchecked();
        settings.builder(Self::NAME).build()?;
        Ok(settings)
    }
}

impl Default for CircuitBreakerSettings {
    fn default() -> CircuitBreakerSettings {
        RawCircuitBreakerSettings::default().unchecked()
    }
}

impl RawCircuitBreakerSettings {
    /// The settings as written, before [`CircuitBreakerSettings::from_raw`]
    /// checks them.
    fn unchecked(self) -> CircuitBreakerSettings {
        let raw = self;
        CircuitBreakerSettings {
            window_size: raw.window_size,
            minimum_calls: raw.minimum_calls,
            failure_rate: raw.failure_rate,
            slow_call_duration: raw.slow_call_duration,
            slow_call_rate: raw.slow_call_rate,
            open_for: raw.open_for,
            probe_calls: raw.probe_calls,
            half_open_max_wait: raw.half_open_max_wait,
        }
    }
}

impl CircuitBreakerSettings {
    /// A circuit breaker builder for calls to `dependency`, set from these
    /// settings: add a hook, a clock or a failure predicate, then
    /// [`build`](CircuitBreakerBuilder::build).
    pub fn builder(&self, dependency: &str) -> CircuitBreakerBuilder {
        let mut builder = CircuitBreaker::builder(dependency)
            .window_size(self.window_size)
            .minimum_calls(self.minimum_calls)
            .failure_rate(self.failure_rate)
            .open_for(self.open_for)
            .probe_calls(self.probe_calls)
            .half_open_max_wait(self.half_open_max_wait);
        if let Some(threshold) = self.slow_call_duration {
            builder = builder.slow_call(threshold, self.slow_call_rate);
        }
        builder
    }
}

/// Renames the key of a budget error (`retry_budget.window`) to its setting here.
fn prefixed(err: Error, prefix: &str) -> Error {
    match err.config_key().and_then(|key| key.strip_prefix("retry_budget.")) {
        Some(field) => {
            let field = field.strip_prefix("retry_").unwrap_or(field);
            Error::configuration(format!("{prefix}{field}"), err.message().to_owned())
        }
        None => err,
    }
}
