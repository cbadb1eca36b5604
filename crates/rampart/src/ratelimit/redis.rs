//! The Redis backend ([`RedisLimiter`], feature `redis`).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::gcra::duration_nanos;
use super::memory::DEFAULT_MAX_KEYS;
use super::{
    Decision, FailurePolicy, LOG_TARGET, MemoryLimiter, Quota, RateLimiter, cost_exceeds_burst,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, code};
use crate::settings::Secret;

/// GCRA on Redis's clock, in microseconds; mirrors `gcra.rs`.
///
/// `KEYS[1]`: the key. `ARGV`: interval (µs), burst, cost (0: peek).
/// Returns `{allowed (0 or 1), remaining, reset_after µs, retry_after µs}`.
pub const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * math.max(cost, 1)
local allow_at = new_tat - tolerance
if now < allow_at then
  local remaining = math.floor(math.max(tolerance - (tat - now), 0) / interval)
  return {0, remaining, tat - now, allow_at - now}
end
local stored = tat
if cost > 0 then
  stored = new_tat
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
    math.max(1, math.ceil((new_tat - now) / 1000)))
end
return {1, math.floor((tolerance - (stored - now)) / interval), stored - now, 0}
";

/// A GCRA limiter whose counts live in Redis, shared by every replica (feature `redis`).
///
/// Each check is one Lua script ([`GCRA_SCRIPT`]), atomic on the server, that
/// reads Redis's own clock (`TIME`), so replicas with skewed clocks still
/// agree. The script is loaded once and called with `EVALSHA`; when Redis
/// has forgotten it (`NOSCRIPT`, after a restart or `SCRIPT FLUSH`) it is
/// loaded again and the call retried. Keys expire when they would hold
/// nothing (`PX` = time until the key's quota is whole). Calls share one
/// multiplexed connection that reconnects by itself, each under a time limit.
///
/// When a call times out or its connection fails, the limiter switches to
/// its [`FailurePolicy`] until Redis answers again: `FailOpen` admits,
/// `FailClosed` refuses with 503, `Local` enforces `limit / replicas` in this
/// process. While switched, one request per `probe_interval` tries Redis, with
/// a peek (cost 0) at its key: when the peek answers, Redis decides again,
/// from that request on; the others do not wait for it. Each switch is logged
/// (target `rampart::ratelimit`), counted
/// (`rampart_ratelimit_redis_switches_total`) and shown by the gauge
/// `rampart_ratelimit_redis_degraded` (1 while the policy decides).
///
/// An error *reply* (say a key of the wrong type under the prefix) is no
/// outage: Redis is answering, so the policy decides that one request and
/// every other key is still decided by Redis. Such replies are counted and
/// logged (`warn`, at most once per `probe_interval`).
///
/// A call that timed out may still have spent: Redis runs it when it gets
/// to it, after the caller gave up. That is why probes only peek: while
/// Redis is slower than the timeout, only the checks made before the switch
/// (one per request in flight) can spend quota unseen, not one per probe.
///
/// ```no_run
/// use std::time::Duration;
/// use rampart::ratelimit::{FailurePolicy, Quota, RateLimiter, RedisLimiter};
///
/// # async fn run() -> Result<(), rampart::Error> {
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379", Quota::new(100, Duration::from_secs(60))?)
///     .key_prefix("myapp:rl:")
///     .timeout(Duration::from_millis(50))
///     .failure_policy(FailurePolicy::Local { replicas: 3 })
///     .build()?;
/// let decision = limiter.check("203.0.113.9", 1).await?;
/// # let _ = decision;
/// # Ok(())
/// # }
/// ```
pub struct RedisLimiter {
    quota: Quota,
    interval_us: u64,
    client: Client,
    conn: OnceLock<ConnectionManager>,
    script: Script,
    key_prefix: String,
    timeout: Duration,
    policy: FailurePolicy,
    /// The local share, for `FailurePolicy::Local`.
    local: Option<MemoryLimiter>,
    probe_interval: Duration,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    degraded: AtomicBool,
    /// Nanoseconds since `epoch` when the next probe of Redis is due.
    next_probe: AtomicU64,
    /// Nanoseconds since `epoch` when an error reply may be logged again.
    next_reply_log: AtomicU64,
}

/// Why a call to Redis gave no decision.
enum CallError {
    /// No answer: a timeout or a failed connection. Redis is down for every key.
    Outage(String),
    /// An error reply to this call. Redis is up; the call alone failed.
    Reply(String),
}

/// Configures a [`RedisLimiter`].
#[derive(Debug)]
pub struct RedisLimiterBuilder {
    /// It may hold a password: a secret, masked in `Debug`.
    url: Secret<String>,
    quota: Quota,
    key_prefix: String,
    timeout: Duration,
    policy: FailurePolicy,
    probe_interval: Duration,
    max_keys: usize,
    clock: Arc<dyn Clock>,
}

impl RedisLimiter {
    /// Starts configuring a limiter for `quota` on the Redis at `url`.
    /// Defaults: prefix `rampart:rl:`, 50 ms per call, policy `Local` with
    /// one replica, a probe every second.
    pub fn builder(url: &str, quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            url: Secret::new(url.to_owned()),
            quota,
            key_prefix: "rampart:rl:".into(),
            timeout: Duration::from_millis(50),
            policy: FailurePolicy::Local { replicas: 1 },
            probe_interval: Duration::from_secs(1),
            max_keys: DEFAULT_MAX_KEYS,
            clock: Arc::new(SystemClock),
        }
    }

    /// Whether the failure policy is deciding (Redis did not answer).
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Decides with Redis, or by the failure policy while Redis is down.
    ///
    /// # Errors
    /// When `cost` exceeds the burst, or Redis is down and the policy is
    /// `FailClosed` (503, `RATE_LIMIT_UNAVAILABLE`).
    pub async fn check(&self, key: &str, cost: u32) -> Result<Decision, Error> {
        if cost > self.quota.burst() {
            return Err(cost_exceeds_burst(cost, &self.quota));
        }
        if self.is_degraded() {
            if !claim(&self.next_probe, self.now(), self.probe_interval) {
                return self.by_policy(key, cost);
            }
            // A probe that times out may still run once Redis catches up: a
            // peek spends nothing there.
            match self.call(key, 0).await {
                Ok(peek) if cost == 0 => return self.answered(Ok(peek), key, cost),
                Ok(_) => self.mark_healthy(),
                Err(err) => return self.answered(Err(err), key, cost),
            }
        }
        let result = self.call(key, cost).await;
        self.answered(result, key, cost)
    }

    /// Records what a call says of Redis's health and decides the request.
    fn answered(
        &self,
        result: Result<Decision, CallError>,
        key: &str,
        cost: u32,
    ) -> Result<Decision, Error> {
        match result {
            Ok(decision) => {
                self.mark_healthy();
                return Ok(decision);
            }
            Err(CallError::Outage(why)) => self.mark_degraded(&why),
            Err(CallError::Reply(why)) => {
                self.mark_healthy();
                if claim(&self.next_reply_log, self.now(), self.probe_interval) {
                    tracing::warn!(
                        target: LOG_TARGET,
                        policy = self.policy.as_str(),
                        error = why,
                        "Redis refused a rate-limit check: the failure policy decided that request"
                    );
                }
            }
        }
        self.by_policy(key, cost)
    }

    async fn call(&self, key: &str, cost: u32) -> Result<Decision, CallError> {
        let mut conn = self.connection().map_err(|err| outage("connection", &err))?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}{key}", self.key_prefix))
            .arg(self.interval_us)
            .arg(self.quota.burst())
            .arg(cost);
        let reply = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await;
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(err))
                if err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal() =>
            {
                return Err(outage("connection", &err));
            }
            Ok(Err(err)) => {
                count_error("reply");
                return Err(CallError::Reply(err.to_string()));
            }
            Err(_) => {
                return Err(outage("timeout", &format!("no answer within {:?}", self.timeout)));
            }
        };
        let micros = |n: i64| Duration::from_micros(u64::try_from(n).unwrap_or(0));
        let (quota, remaining) = (self.quota, u32::try_from(remaining).unwrap_or(0));
        let reset_after = micros(reset_us);
        Ok(if allowed == 1 {
            Decision::Allowed { quota, remaining, reset_after }
        } else {
            Decision::Denied { quota, remaining, reset_after, retry_after: micros(retry_us) }
        })
    }

    fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        // Made on first use, inside the caller's runtime; it connects lazily
        // and reconnects by itself.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        Ok(self.conn.get_or_init(|| conn).clone())
    }

    fn by_policy(&self, key: &str, cost: u32) -> Result<Decision, Error> {
        let policy = self.policy.as_str();
        let result = match (&self.policy, &self.local) {
            (FailurePolicy::Local { .. }, Some(local)) => {
                // The share's burst may be below a cost Redis would admit.
                local.check_now(key, cost.min(local.quota().burst()))
            }
            (FailurePolicy::FailClosed, _) => {
                Err(Error::unavailable("Rate limiting is temporarily unavailable")
                    .with_code(code::RATE_LIMIT_UNAVAILABLE)
                    .with_retry_after(self.probe_interval))
            }
            _ => Ok(Decision::Allowed {
                quota: self.quota,
                remaining: self.quota.burst(),
                reset_after: Duration::ZERO,
            }),
        };
        let outcome = match &result {
            Ok(d) if d.is_allowed() => "allowed",
            Ok(_) => "denied",
            Err(_) => "refused",
        };
        metrics::counter!(
            "rampart_ratelimit_redis_fallback_decisions_total",
            "policy" => policy,
            "outcome" => outcome
        )
        .increment(1);
        result
    }

    fn now(&self) -> u64 {
        duration_nanos(self.clock.now().saturating_duration_since(self.epoch))
    }

    fn mark_degraded(&self, why: &str) {
        self.next_probe.store(self.now() + duration_nanos(self.probe_interval), Ordering::Release);
        if self.degraded.swap(true, Ordering::AcqRel) {
            return;
        }
        let policy = self.policy.as_str();
        tracing::warn!(
            target: LOG_TARGET,
            policy,
            error = why,
            "Redis rate limiter unavailable: the failure policy decides until it answers again"
        );
        metrics::counter!("rampart_ratelimit_redis_switches_total", "to" => "policy", "policy" => policy)
            .increment(1);
        metrics::gauge!("rampart_ratelimit_redis_degraded", "policy" => policy).set(1.0);
    }

    fn mark_healthy(&self) {
        if !self.degraded.swap(false, Ordering::AcqRel) {
            return;
        }
        let policy = self.policy.as_str();
        tracing::info!(target: LOG_TARGET, policy, "Redis rate limiter answers again");
        metrics::counter!("rampart_ratelimit_redis_switches_total", "to" => "redis", "policy" => policy)
            .increment(1);
        metrics::gauge!("rampart_ratelimit_redis_degraded", "policy" => policy).set(0.0);
    }
}

/// Whether the caller, at `now`, is the one that may act on `slot` (a time
/// in nanoseconds since the epoch), which moves it `interval` on: one probe
/// of Redis, or one log line, per interval among concurrent callers.
fn claim(slot: &AtomicU64, now: u64, interval: Duration) -> bool {
    let due = slot.load(Ordering::Acquire);
    now >= due
        && slot
            .compare_exchange(
                due,
                now + duration_nanos(interval),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
}

/// A call that got no answer, counted under `reason`.
fn outage(reason: &'static str, why: &dyn fmt::Display) -> CallError {
    count_error(reason);
    CallError::Outage(why.to_string())
}

fn count_error(reason: &'static str) {
    metrics::counter!("rampart_ratelimit_redis_errors_total", "reason" => reason).increment(1);
}

impl RateLimiter for RedisLimiter {
    fn check(&self, key: &str, cost: u32) -> impl Future<Output = Result<Decision, Error>> + Send {
        RedisLimiter::check(self, key, cost)
    }

    fn quota(&self) -> Quota {
        self.quota
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client holds the URL and so perhaps a password: left out.
        f.debug_struct("RedisLimiter")
            .field("quota", &self.quota)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

impl RedisLimiterBuilder {
    /// Prefix of every key (give each application its own).
    #[must_use]
    pub fn key_prefix(mut self, prefix: &str) -> RedisLimiterBuilder {
        prefix.clone_into(&mut self.key_prefix);
        self
    }

    /// Time limit of one call, reconnection included.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> RedisLimiterBuilder {
        self.timeout = timeout;
        self
    }

    /// What to do while Redis does not answer.
    #[must_use]
    pub fn failure_policy(mut self, policy: FailurePolicy) -> RedisLimiterBuilder {
        self.policy = policy;
        self
    }

    /// While degraded, how often one request tries Redis again.
    #[must_use]
    pub fn probe_interval(mut self, interval: Duration) -> RedisLimiterBuilder {
        self.probe_interval = interval;
        self
    }

    /// Keys held by the local fallback.
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> RedisLimiterBuilder {
        self.max_keys = max_keys;
        self
    }

    /// The clock timing probes and the local fallback.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> RedisLimiterBuilder {
        self.clock = Arc::new(clock);
        self
    }

    /// Makes the limiter; it connects on its first check.
    ///
    /// # Errors
    /// A configuration error (`rate_limit.redis_url`) when the URL is not a
    /// Redis URL; the message never holds the URL.
    pub fn build(self) -> Result<RedisLimiter, Error> {
        let client = Client::open(self.url.expose().as_str()).map_err(|_| {
            Error::configuration("rate_limit.redis_url", "is not a valid Redis URL")
        })?;
        let local = match self.policy {
            FailurePolicy::Local { replicas } => Some(
                MemoryLimiter::new(self.quota.share(replicas))
                    .clock(Arc::clone(&self.clock))
                    .max_keys(self.max_keys),
            ),
            _ => None,
        };
        let epoch = self.clock.now();
        metrics::gauge!("rampart_ratelimit_redis_degraded", "policy" => self.policy.as_str())
            .set(0.0);
        Ok(RedisLimiter {
            interval_us: u64::try_from(self.quota.interval().as_micros()).unwrap_or(u64::MAX),
            quota: self.quota,
            client,
            conn: OnceLock::new(),
            script: Script::new(GCRA_SCRIPT),
            key_prefix: self.key_prefix,
            timeout: self.timeout,
            policy: self.policy,
            local,
            probe_interval: self.probe_interval,
            clock: self.clock,
            epoch,
            degraded: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
            next_reply_log: AtomicU64::new(0),
        })
    }
}
