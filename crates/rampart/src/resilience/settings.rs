//! Retry and breaker settings as they appear in a configuration file.

use std::time::Duration;

use serde::Deserialize;

use super::{CircuitBreaker, Jitter, RetryBudget, RetryPolicy};
use crate::error::Error;

/// Retry settings as an application's own configuration holds them (they
/// are not a section of rampart's [`Config`](crate::config::Config): a
/// `[retry]` table there is an unknown key): see [`RetryPolicy::builder`]
/// for what each setting does.
///
/// Durations are human strings ("500ms", "30s"). Each struct has one fallible
/// function that checks it and builds the typed object; errors name the key
/// and never echo the value.
///
/// ```
/// use rampart::resilience::{CircuitBreakerSettings, CircuitState, RetrySettings};
///
/// let retry: RetrySettings = serde_json::from_str(
///     r#"{"max_retries": 2, "base_delay": "50ms", "jitter": "decorrelated", "budget_ratio": 0.1}"#,
/// )?;
/// let policy = retry.into_policy("payments")?;
/// assert_eq!(policy.dependency(), "payments");
///
/// let breaker: CircuitBreakerSettings = serde_json::from_str(r#"{"open_for": "10s"}"#)?;
/// assert_eq!(breaker.into_breaker("payments")?.state(), CircuitState::Closed);
///
/// let bad: RetrySettings = serde_json::from_str(r#"{"max_delay": "soon"}"#)?;
/// let err = bad.into_policy("payments").unwrap_err();
/// assert_eq!(err.config_key(), Some("retry.max_delay"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before the first retry, e.g. "100ms".
    pub base_delay: String,
    /// The longest computed delay, e.g. "10s".
    pub max_delay: String,
    /// Growth of each delay over the previous one.
    pub factor: f64,
    /// `none`, `full`, `equal` or `decorrelated`.
    pub jitter: Jitter,
    /// The longest a call may take, retries included, e.g. "30s"; "none" for no bound.
    pub max_elapsed: String,
    /// Whether an error's Retry-After replaces the computed delay.
    pub honor_retry_after: bool,
    /// Retries allowed per call as a share of calls; unset means no budget.
    pub budget_ratio: Option<f64>,
    /// Retries always allowed per second under the budget.
    pub budget_min_retries_per_second: u32,
    /// How long the budget remembers calls, e.g. "10s".
    pub budget_window: String,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 3,
            base_delay: "100ms".into(),
            max_delay: "10s".into(),
            factor: 2.0,
            jitter: Jitter::Full,
            max_elapsed: "30s".into(),
            honor_retry_after: true,
            budget_ratio: None,
            budget_min_retries_per_second: 10,
            budget_window: "10s".into(),
        }
    }
}

impl RetrySettings {
    /// Checks the settings and builds the policy for `dependency`.
    ///
    /// # Errors
    /// A configuration error naming the key (`retry.<field>`).
    pub fn into_policy(self, dependency: &str) -> Result<RetryPolicy, Error> {
        let max_elapsed = match self.max_elapsed.trim() {
            "none" => None,
            text => Some(duration("retry.max_elapsed", text)?),
        };
        let mut builder = RetryPolicy::builder(dependency)
            .max_retries(self.max_retries)
            .base_delay(duration("retry.base_delay", &self.base_delay)?)
            .max_delay(duration("retry.max_delay", &self.max_delay)?)
            .factor(self.factor)
            .jitter(self.jitter)
            .max_elapsed(max_elapsed)
            .honor_retry_after(self.honor_retry_after);
        if let Some(ratio) = self.budget_ratio {
            let budget = RetryBudget::builder()
                .retry_ratio(ratio)
                .min_retries_per_second(self.budget_min_retries_per_second)
                .window(duration("retry.budget_window", &self.budget_window)?)
                .build()
                .map_err(|err| prefixed(err, "retry.budget_"))?;
            builder = builder.budget(budget);
        }
        builder.build()
    }
}

/// Circuit breaker settings as an application's own configuration holds them
/// (not a section of rampart's [`Config`](crate::config::Config) either): see
/// [`CircuitBreaker::builder`] for what each does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerSettings {
    /// How many recent calls the rates are computed over.
    pub window_size: usize,
    /// Calls recorded before the breaker may open.
    pub minimum_calls: u32,
    /// The share of failed calls that opens the breaker.
    pub failure_rate: f64,
    /// Calls at least this long are slow, e.g. "2s" (above zero); unset
    /// disables the rule.
    pub slow_call_duration: Option<String>,
    /// The share of slow calls that opens the breaker.
    pub slow_call_rate: f64,
    /// How long the breaker stays open, e.g. "30s" (at most "24h").
    pub open_for: String,
    /// Calls let through while half-open.
    pub probe_calls: u32,
    /// How long the probes may take before the breaker opens again, e.g.
    /// "60s" (at most "24h").
    pub half_open_max_wait: String,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        CircuitBreakerSettings {
            window_size: 100,
            minimum_calls: 20,
            failure_rate: 0.5,
            slow_call_duration: None,
            slow_call_rate: 1.0,
            open_for: "30s".into(),
            probe_calls: 5,
            half_open_max_wait: "60s".into(),
        }
    }
}

impl CircuitBreakerSettings {
    /// Checks the settings and builds the breaker for `dependency`.
    ///
    /// # Errors
    /// A configuration error naming the key (`circuit_breaker.<field>`).
    pub fn into_breaker(self, dependency: &str) -> Result<CircuitBreaker, Error> {
        let mut builder = CircuitBreaker::builder(dependency)
            .window_size(self.window_size)
            .minimum_calls(self.minimum_calls)
            .failure_rate(self.failure_rate)
            .open_for(duration("circuit_breaker.open_for", &self.open_for)?)
            .probe_calls(self.probe_calls)
            .half_open_max_wait(duration(
                "circuit_breaker.half_open_max_wait",
                &self.half_open_max_wait,
            )?);
        if let Some(slow) = &self.slow_call_duration {
            let threshold = duration("circuit_breaker.slow_call_duration", slow)?;
            builder = builder.slow_call(threshold, self.slow_call_rate);
        }
        builder.build()
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, Error> {
    humantime::parse_duration(text.trim())
        .map_err(|_| Error::configuration(key, "must be a duration such as \"500ms\" or \"30s\""))
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
