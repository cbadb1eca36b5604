//! The `rate_limit` configuration section: the table as read from the file,
//! validated once into [`RateLimitSettings`], which builds the configured
//! [`Limiter`].
//!
//! ```toml
//! [rate_limit]
//! enabled = true
//! requests = 100            # per window
//! window = "60s"
//! burst = 20                # at once; default: requests
//! name = "default"          # the policy name in the RateLimit fields
//! key = ["ip"]              # ip, api_key, subject, route, or several
//! shadow = false            # decide and log, but admit everything
//! max_keys = 100000         # memory backend (and the local fallback)
//! backend = "redis"         # or "memory" (the default)
//! redis_url = "redis://127.0.0.1:6379"
//! redis_key_prefix = "rampart:rl:"
//! timeout = "50ms"          # per Redis call
//! failure_policy = "local"  # fail_open, fail_closed, or local
//! replicas = 3              # local: each replica enforces limit / replicas
//! probe_interval = "1s"     # while Redis is down, how often to try it
//! ```
//!
//! ```
//! use rampart::config::Section;
//! use rampart::ratelimit::RateLimitSettings;
//!
//! let settings = RateLimitSettings::from_value(serde_json::json!({
//!     "requests": 100, "window": "60s", "burst": 20, "key": ["ip", "route"]
//! }))?;
//! assert_eq!(settings.quota.requests(), 100);
//! assert_eq!(settings.quota.burst(), 20);
//!
//! let err = RateLimitSettings::from_value(serde_json::json!({"window": "0s"})).unwrap_err();
//! assert_eq!(err.config_key(), Some("rate_limit.window"));
//! # Ok::<(), rampart::Error>(())
//! ```

use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::key::KeyPart;
use super::memory::DEFAULT_MAX_KEYS;
use super::{Decision, MemoryLimiter, Quota, RateLimiter};
use crate::error::Error;
use crate::settings::{Secret, Section, duration, format_duration};

/// The `rate_limit` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRateLimit {
    /// Whether requests are limited at all.
    pub enabled: bool,
    /// Requests per window.
    pub requests: u32,
    /// The window, e.g. `"60s"`.
    #[serde(with = "duration")]
    pub window: Duration,
    /// Requests at once (default: `requests`).
    pub burst: Option<u32>,
    /// The policy name shown in the `RateLimit` fields.
    pub name: String,
    /// What requests are counted against.
    pub key: Vec<KeyPart>,
    /// Decide and log, but admit everything.
    pub shadow: bool,
    /// Most keys held in memory.
    pub max_keys: usize,
    /// `memory` or `redis`.
    pub backend: BackendKind,
    /// The Redis URL (may hold a password: never printed).
    pub redis_url: Option<Secret<String>>,
    /// Prefix of every Redis key.
    pub redis_key_prefix: String,
    /// Time limit of one Redis call.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// What to do when Redis does not answer.
    pub failure_policy: FailurePolicyKind,
    /// Replicas sharing the limit (for `local`).
    pub replicas: u32,
    /// While Redis is down, how often one request tries it again.
    #[serde(with = "duration")]
    pub probe_interval: Duration,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit {
            enabled: true,
            requests: 100,
            window: Duration::from_secs(60),
            burst: None,
            name: "default".into(),
            key: vec![KeyPart::Ip],
            shadow: false,
            max_keys: DEFAULT_MAX_KEYS,
            backend: BackendKind::Memory,
            redis_url: None,
            redis_key_prefix: "rampart:rl:".into(),
            timeout: Duration::from_millis(50),
            failure_policy: FailurePolicyKind::Local,
            replicas: 1,
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// The backend named in the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In-process (the default).
    #[default]
    Memory,
    /// Shared through Redis (feature `redis`).
    Redis,
}

/// The failure policy named in the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicyKind {
    /// Admit everything.
    FailOpen,
    /// Refuse everything (503).
    FailClosed,
    /// Enforce a local share of the limit (the default).
    #[default]
    Local,
}

/// What a shared limiter does while its backend does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Admit every request: availability over protection.
    FailOpen,
    /// Refuse every request with 503 `RATE_LIMIT_UNAVAILABLE`.
    FailClosed,
    /// Enforce `limit / replicas` per key in this process, so the replicas
    /// together stay near the limit.
    Local {
        /// How many replicas share the limit (at least 1).
        replicas: u32,
    },
}

impl FailurePolicy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::Local { .. } => "local",
        }
    }
}

/// The validated `rate_limit` section.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RateLimitSettings {
    /// Whether requests are limited at all (when not, the layer
    /// `RateLimitLayer::from_settings` builds lets every request through
    /// untouched).
    pub enabled: bool,
    /// The quota per key.
    pub quota: Quota,
    /// The policy name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// What requests are counted against.
    pub key: Vec<KeyPart>,
    /// Decide and log, but admit everything.
    pub shadow: bool,
    /// Most keys held in memory.
    pub max_keys: usize,
    /// Where the counts live.
    pub backend: Backend,
}

/// Where the counts live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In this process.
    Memory,
    /// In Redis, shared by every replica.
    Redis(RedisSettings),
}

/// How to reach Redis and what to do when it does not answer.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The URL (it may hold a password).
    pub url: Secret<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Time limit of one call.
    pub timeout: Duration,
    /// What to do when Redis does not answer.
    pub failure_policy: FailurePolicy,
    /// While Redis is down, how often one request tries it again.
    pub probe_interval: Duration,
}

/// The `[rate_limit]` table of [`Config`](crate::config::Config).
impl Section for RateLimitSettings {
    const NAME: &'static str = "rate_limit";
    type Raw = RawRateLimit;

    /// Checks every setting; errors name the key (`rate_limit.<field>`) and
    /// why, never the value.
    fn from_raw(raw: RawRateLimit) -> Result<RateLimitSettings, Error> {
        let window = positive("window", raw.window)?;
        let mut quota = Quota::new(raw.requests, window)?;
        if let Some(burst) = raw.burst {
            quota = quota.with_burst(burst)?;
        }
        check_name(&raw.name)?;
        if raw.key.is_empty() {
            return Err(Error::configuration("rate_limit.key", "must name at least one part"));
        }
        if (1..raw.key.len()).any(|i| raw.key[..i].contains(&raw.key[i])) {
            return Err(Error::configuration("rate_limit.key", "names a part twice"));
        }
        if raw.max_keys == 0 {
            return Err(Error::configuration("rate_limit.max_keys", "must be at least 1"));
        }
        let backend = match raw.backend {
            BackendKind::Memory => Backend::Memory,
            BackendKind::Redis => Backend::Redis(raw.redis_settings()?),
        };
        Ok(RateLimitSettings {
            enabled: raw.enabled,
            quota,
            name: raw.name,
            key: raw.key,
            shadow: raw.shadow,
            max_keys: raw.max_keys,
            backend,
        })
    }
}

/// Serializes in the shape of the TOML table (what `rampart config show`
/// prints), with the Redis URL masked.
impl Serialize for RateLimitSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = serializer.serialize_struct("rate_limit", 16)?;
        table.serialize_field("enabled", &self.enabled)?;
        table.serialize_field("requests", &self.quota.requests())?;
        table.serialize_field("window", &format_duration(self.quota.window()))?;
        table.serialize_field("burst", &self.quota.burst())?;
        table.serialize_field("name", &self.name)?;
        table.serialize_field("key", &self.key)?;
        table.serialize_field("shadow", &self.shadow)?;
        table.serialize_field("max_keys", &self.max_keys)?;
        match &self.backend {
            Backend::Memory => table.serialize_field("backend", "memory")?,
            Backend::Redis(redis) => {
                table.serialize_field("backend", "redis")?;
                table.serialize_field("redis_url", &redis.url)?;
                table.serialize_field("redis_key_prefix", &redis.key_prefix)?;
                table.serialize_field("timeout", &format_duration(redis.timeout))?;
                table.serialize_field("failure_policy", redis.failure_policy.as_str())?;
                if let FailurePolicy::Local { replicas } = redis.failure_policy {
                    table.serialize_field("replicas", &replicas)?;
                }
                table.serialize_field("probe_interval", &format_duration(redis.probe_interval))?;
            }
        }
        table.end()
    }
}

impl RawRateLimit {
    fn redis_settings(&self) -> Result<RedisSettings, Error> {
        let Some(url) = self.redis_url.clone() else {
            return Err(Error::configuration(
                "rate_limit.redis_url",
                "is required by backend redis",
            ));
        };
        let timeout = positive("timeout", self.timeout)?;
        if timeout > Duration::from_secs(10) {
            return Err(Error::configuration("rate_limit.timeout", "must be at most 10s"));
        }
        let failure_policy = match self.failure_policy {
            FailurePolicyKind::FailOpen => FailurePolicy::FailOpen,
            FailurePolicyKind::FailClosed => FailurePolicy::FailClosed,
            FailurePolicyKind::Local if self.replicas == 0 => {
                return Err(Error::configuration("rate_limit.replicas", "must be at least 1"));
            }
            FailurePolicyKind::Local => FailurePolicy::Local { replicas: self.replicas },
        };
        if self.redis_key_prefix.len() > 128 {
            return Err(Error::configuration(
                "rate_limit.redis_key_prefix",
                "must be at most 128 bytes",
            ));
        }
        let probe_interval = positive("probe_interval", self.probe_interval)?;
        if !cfg!(feature = "redis") {
            return Err(Error::configuration(
                "rate_limit.backend",
                "names the Redis backend, but this build of rampart has no Redis support (its cargo feature is off)",
            ));
        }
        #[cfg(feature = "redis")]
        if redis::IntoConnectionInfo::into_connection_info(url.expose().as_str()).is_err() {
            return Err(Error::configuration("rate_limit.redis_url", "is not a valid Redis URL"));
        }
        Ok(RedisSettings {
            url,
            key_prefix: self.redis_key_prefix.clone(),
            timeout,
            failure_policy,
            probe_interval,
        })
    }
}

/// Checks a policy name, which the `RateLimit` fields carry in a quoted
/// string: 1 to 64 letters, digits, `-`, `_` or `.`.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Error::configuration(
            "rate_limit.name",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

/// `d` at `rate_limit.<field>`, refused when zero.
fn positive(field: &str, d: Duration) -> Result<Duration, Error> {
    if d.is_zero() {
        return Err(Error::configuration(
            format!("rate_limit.{field}"),
            "must be longer than zero",
        ));
    }
    Ok(d)
}

impl RateLimitSettings {
    /// Builds the configured limiter. A Redis limiter connects lazily, on
    /// its first check, so this needs no running Redis (nor a runtime).
    ///
    /// # Errors
    /// When the Redis client cannot be made from the URL.
    pub fn limiter(&self) -> Result<Limiter, Error> {
        match &self.backend {
            Backend::Memory => {
                Ok(Limiter::Memory(MemoryLimiter::new(self.quota).max_keys(self.max_keys)))
            }
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => Ok(Limiter::Redis(Box::new(
                super::RedisLimiter::builder(redis.url.expose(), self.quota)
                    .key_prefix(&redis.key_prefix)
                    .timeout(redis.timeout)
                    .failure_policy(redis.failure_policy)
                    .probe_interval(redis.probe_interval)
                    .max_keys(self.max_keys)
                    .build()?,
            ))),
            #[cfg(not(feature = "redis"))]
            Backend::Redis(_) => Err(Error::configuration(
                "rate_limit.backend",
                "names the Redis backend, but this build of rampart has no Redis support (its cargo feature is off)",
            )),
        }
    }
}

/// The limiter a configuration asks for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Limiter {
    /// In this process.
    Memory(MemoryLimiter),
    /// In Redis.
    #[cfg(feature = "redis")]
    Redis(Box<super::RedisLimiter>),
}

impl Limiter {
    /// Reads time from `clock` where this process keeps the counts (the
    /// memory backend; Redis keeps time on its own clock).
    #[cfg(feature = "auth")]
    pub(crate) fn clock(self, clock: &std::sync::Arc<dyn crate::clock::Clock>) -> Limiter {
        match self {
            Limiter::Memory(memory) => Limiter::Memory(memory.clock(std::sync::Arc::clone(clock))),
            #[cfg(feature = "redis")]
            redis @ Limiter::Redis(_) => redis,
        }
    }
}

impl RateLimiter for Limiter {
    async fn check(&self, key: &str, cost: u32) -> Result<Decision, Error> {
        match self {
            Limiter::Memory(limiter) => limiter.check_now(key, cost),
            #[cfg(feature = "redis")]
            Limiter::Redis(limiter) => limiter.check(key, cost).await,
        }
    }

    fn quota(&self) -> Quota {
        match self {
            Limiter::Memory(limiter) => limiter.quota(),
            #[cfg(feature = "redis")]
            Limiter::Redis(limiter) => limiter.quota(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawRateLimit {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_are_100_per_minute_in_memory_by_ip() {
        let s = RateLimitSettings::from_raw(RawRateLimit::default()).unwrap();
        assert!(s.enabled);
        assert_eq!((s.quota.requests(), s.quota.window()), (100, Duration::from_secs(60)));
        assert_eq!(s.key, [KeyPart::Ip]);
        assert!(matches!(s.backend, Backend::Memory));
    }

    #[test]
    fn each_bad_setting_names_its_key_and_never_its_value() {
        let cases = [
            (serde_json::json!({"requests": 0}), "rate_limit.requests"),
            (serde_json::json!({"window": "0s"}), "rate_limit.window"),
            (serde_json::json!({"burst": 0}), "rate_limit.burst"),
            (serde_json::json!({"name": "a\"b"}), "rate_limit.name"),
            (serde_json::json!({"key": []}), "rate_limit.key"),
            (serde_json::json!({"key": ["ip", "ip"]}), "rate_limit.key"),
            (serde_json::json!({"max_keys": 0}), "rate_limit.max_keys"),
            (serde_json::json!({"backend": "redis"}), "rate_limit.redis_url"),
            (
                serde_json::json!({"backend": "redis", "redis_url": "redis://h", "timeout": "1h"}),
                "rate_limit.timeout",
            ),
            (
                serde_json::json!({"backend": "redis", "redis_url": "redis://h", "replicas": 0}),
                "rate_limit.replicas",
            ),
        ];
        for (json, key) in cases {
            let text = json.to_string();
            let err = RateLimitSettings::from_raw(raw(json)).unwrap_err();
            assert_eq!(err.config_key(), Some(key), "{text}");
        }
    }

    #[test]
    fn an_invalid_redis_url_is_refused_without_printing_it() {
        let settings = raw(serde_json::json!({
            "backend": "redis", "redis_url": "tcp://user:hunter2@host"
        }));
        assert!(!format!("{settings:?}").contains("hunter2"));
        let err = RateLimitSettings::from_raw(settings).unwrap_err();
        let key =
            if cfg!(feature = "redis") { "rate_limit.redis_url" } else { "rate_limit.backend" };
        assert_eq!(err.config_key(), Some(key));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let parsed: Result<RawRateLimit, _> =
            serde_json::from_value(serde_json::json!({"request": 5}));
        assert!(parsed.is_err());
    }
}
