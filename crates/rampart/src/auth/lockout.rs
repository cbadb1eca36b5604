//! Lockout against brute force: failed authentications counted per client
//! and per credential through the rate-limit backend (memory or Redis),
//! with growing lockouts.
//!
//! The public documentation is on [`Lockout`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::config::LockoutConfig;
#[cfg(feature = "audit")]
use crate::audit::{AuditEvent, Auditor, Outcome};
use crate::client::ip_key;
use crate::clock::Clock;
#[cfg(feature = "audit")]
use crate::error::Severity;
use crate::error::{Error, code};
use crate::ratelimit::{Limiter, MemoryLimiter, Quota, RateLimiter};

/// What a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKey<'a> {
    /// The client's address (IPv6 counted by its /64, as [`ip_key`] does).
    Client(IpAddr),
    /// The credential: an API key id or a token's subject.
    Credential(&'a str),
}

impl LockKey<'_> {
    fn key(&self) -> String {
        match self {
            LockKey::Client(ip) => format!("ip:{}", ip_key(*ip)),
            LockKey::Credential(id) => format!("cred:{id}"),
        }
    }

    fn scope(&self) -> &'static str {
        match self {
            LockKey::Client(_) => "client",
            LockKey::Credential(_) => "credential",
        }
    }
}

/// Counts failures and refuses locked clients and credentials.
///
/// Three kinds of GCRA state, each a [`RateLimiter`] of the configured
/// backend, so replicas sharing Redis share lockouts:
///
/// - **failures**: `max_failures` per `window`. Each failed authentication
///   spends one cell; a failure the limiter refuses crossed the threshold
///   and engages a lockout.
/// - **strikes**: how many lockouts the key had lately (one is forgiven per
///   `max_lockout`). The n-th strike locks for `base_lockout * 2^(n-1)`,
///   capped at `max_lockout`. After a lockout the failure budget has
///   regained what the wait gave back (one failure per
///   `window / max_failures`); once that is spent, the next lockout is
///   twice as long.
/// - **locks**: one limiter per lockout length, admitting one request per
///   that length: engaging a lockout spends its only cell, and a peek
///   (cost 0) is refused, with the time left, until the length has passed.
///
/// Failures and strikes are counted against the quota of the limiter that
/// answered ([`Decision::quota`](crate::ratelimit::Decision::quota)), not
/// the configured one: while Redis is down and the failure policy is
/// `local`, each replica counts against its share (`max_failures /
/// replicas` failures per window, at least one; strikes likewise), so a
/// lockout engages after that share and is as long as the strikes this
/// replica counted call for, never the longest at once.
///
/// Checking whether a key is locked costs one backend call for a key that
/// never failed (a peek at its strikes) and two otherwise. Each lockout is
/// a security event: a `warn` log with target `rampart::auth` and
/// `event_type = "security.lockout"`, `rampart_auth_lockouts_total`, and,
/// with [`Lockout::with_auditor`], a `security.lockout` record in the audit
/// trail.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use rampart::auth::{AuthConfig, LockKey, Lockout};
/// use rampart::config::Section;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = AuthConfig::from_value(serde_json::json!({
///     "lockout": {"max_failures": 3, "window": "1m", "base_lockout": "30s"}
/// })).unwrap();
/// let lockout = Lockout::memory(config.lockout()).unwrap();
/// let client = [LockKey::Client(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)))];
/// for _ in 0..4 {
///     assert!(lockout.check(&client).await.is_ok());
///     lockout.record_failure(&client).await;
/// }
/// let locked = lockout.check(&client).await.unwrap_err();
/// assert_eq!(locked.status().as_u16(), 429);
/// assert!(locked.retry_after().is_some_and(|wait| wait <= std::time::Duration::from_secs(30)));
/// # });
/// ```
pub struct Lockout<L = Limiter> {
    /// `auth.lockout.enabled`: when false nothing is counted or refused.
    enabled: bool,
    failures: L,
    strikes: L,
    /// `locks[i]` locks for `base_lockout * 2^i` (the last: `max_lockout`).
    locks: Vec<L>,
    /// Where each lockout is recorded as a `security.lockout` event.
    #[cfg(feature = "audit")]
    auditor: Option<Auditor>,
}

impl Lockout<Limiter> {
    /// Lockout state in this process's memory (on the system clock).
    pub fn memory(config: &LockoutConfig) -> Result<Lockout<Limiter>, Error> {
        Lockout::with_backend(config, |quota, _| Ok(Limiter::Memory(MemoryLimiter::new(quota))))
    }

    /// Reads time from `clock` in every limiter kept in memory (tests pass a
    /// `FakeClock`); set it before the first check.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Lockout<Limiter> {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.failures = self.failures.clock(&clock);
        self.strikes = self.strikes.clock(&clock);
        self.locks = self.locks.into_iter().map(|lock| lock.clock(&clock)).collect();
        self
    }
}

impl<L: RateLimiter> Lockout<L> {
    /// Builds the limiters with `make(quota, name)`: `name` ("failures",
    /// "strikes", "lock0", "lock1", ...) tells limiters apart, e.g. as a Redis
    /// key prefix, since they share key names.
    pub fn with_backend(
        config: &LockoutConfig,
        mut make: impl FnMut(Quota, &str) -> Result<L, Error>,
    ) -> Result<Lockout<L>, Error> {
        let lengths = lock_lengths(config);
        let levels = u32::try_from(lengths.len()).unwrap_or(u32::MAX);
        let failures = Quota::new(config.max_failures, config.window)?;
        // One strike forgiven per max_lockout; at most `levels` remembered.
        let strikes = Quota::new(levels, config.max_lockout.saturating_mul(levels))?;
        let mut locks = Vec::with_capacity(lengths.len());
        for (i, length) in lengths.iter().enumerate() {
            locks.push(make(Quota::new(1, *length)?.with_burst(1)?, &format!("lock{i}"))?);
        }
        Ok(Lockout {
            enabled: config.enabled,
            failures: make(failures, "failures")?,
            strikes: make(strikes, "strikes")?,
            locks,
            #[cfg(feature = "audit")]
            auditor: None,
        })
    }

    /// Whether failures are counted (`auth.lockout.enabled`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records every lockout as a `security.lockout` event in the audit trail.
    #[cfg(feature = "audit")]
    #[must_use]
    pub fn with_auditor(mut self, auditor: Auditor) -> Lockout<L> {
        self.auditor = Some(auditor);
        self
    }

    /// `Ok` when none of `keys` is locked; otherwise `AUTH_LOCKED_OUT` (429)
    /// with the longest time left as `Retry-After`. A backend error is
    /// passed on (the backend's failure policy decides what it means).
    pub async fn check(&self, keys: &[LockKey<'_>]) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let mut wait: Option<Duration> = None;
        for key in keys {
            if let Some(left) = self.locked_for(&key.key()).await? {
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        wait.map_or(Ok(()), |left| Err(locked_out(left)))
    }

    /// For a credential that checked out: `Ok` unless it is locked *and*
    /// `client` has failures of its own still counted (or is unknown). The
    /// lock holds back whoever is guessing, not the holder, whom anyone
    /// knowing a key id could otherwise keep locked out.
    pub async fn check_holder(
        &self,
        credential: &LockKey<'_>,
        client: Option<IpAddr>,
    ) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let Some(left) = self.locked_for(&credential.key()).await? else {
            return Ok(());
        };
        let failing = match client {
            Some(ip) => self.has_failures(&LockKey::Client(ip)).await?,
            None => true,
        };
        if failing { Err(locked_out(left)) } else { Ok(()) }
    }

    /// Whether failures of `key` are still being counted (not yet forgiven
    /// by the passing of time). A backend error is passed on.
    pub async fn has_failures(&self, key: &LockKey<'_>) -> Result<bool, Error> {
        if !self.enabled {
            return Ok(false);
        }
        let peek = self.failures.check(&key.key(), 0).await?;
        Ok(peek.remaining() < peek.quota().burst())
    }

    /// Counts one failed authentication against each of `keys`, engaging a
    /// lockout for those past the threshold. Backend errors are logged and
    /// otherwise ignored: the failure itself has been answered already.
    pub async fn record_failure(&self, keys: &[LockKey<'_>]) {
        if !self.enabled {
            return;
        }
        for key in keys {
            if let Err(err) = self.fail(key).await {
                tracing::error!(target: "rampart::auth", error = %err, "lockout backend failed to count a failure");
            }
        }
    }

    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, Error> {
        let strikes = self.strikes.check(key, 0).await?;
        let level = strikes.quota().burst().saturating_sub(strikes.remaining());
        if level == 0 {
            return Ok(None);
        }
        let lock = &self.locks[self.lock_index(level)];
        let peek = lock.check(key, 0).await?;
        Ok(if peek.is_allowed() { None } else { peek.retry_after() })
    }

    async fn fail(&self, key: &LockKey<'_>) -> Result<(), Error> {
        let name = key.key();
        if self.failures.check(&name, 1).await?.is_allowed() {
            return Ok(());
        }
        let strikes = self.strikes.check(&name, 1).await?;
        let burst = strikes.quota().burst();
        let level =
            if strikes.is_allowed() { burst.saturating_sub(strikes.remaining()) } else { burst };
        let index = self.lock_index(level);
        let lock = &self.locks[index];
        if lock.check(&name, 1).await?.is_allowed() {
            let length = lock.quota().window();
            metrics::counter!("rampart_auth_lockouts_total", "scope" => key.scope()).increment(1);
            tracing::warn!(
                target: "rampart::auth",
                event_type = "security.lockout",
                scope = key.scope(),
                key = %name,
                strike = level,
                lockout_secs = length.as_secs(),
                "authentication locked out after repeated failures"
            );
            #[cfg(feature = "audit")]
            self.audit(key, level, length).await;
        }
        Ok(())
    }

    /// The lockout as an audit event. The lock holds whatever the trail
    /// answers: a trail that cannot write is logged, and the failure policy
    /// of the auditor has counted it.
    #[cfg(feature = "audit")]
    async fn audit(&self, key: &LockKey<'_>, strike: u32, length: Duration) {
        let Some(auditor) = &self.auditor else { return };
        let mut event = AuditEvent::new("security.lockout", "lockout")
            .severity(Severity::High)
            .outcome(Outcome::Denied)
            .resource(key.key())
            .detail("scope", key.scope())
            .detail("strike", strike)
            .detail("lockout_seconds", length.as_secs());
        event = match key {
            LockKey::Client(ip) => event.detail("client", ip.to_string()),
            LockKey::Credential(id) => event.actor(*id),
        };
        if let Err(err) = auditor.record(event).await {
            tracing::error!(target: "rampart::auth", error = %err, "a lockout could not be audited");
        }
    }

    fn lock_index(&self, level: u32) -> usize {
        let index = usize::try_from(level.max(1) - 1).unwrap_or(usize::MAX);
        index.min(self.locks.len() - 1)
    }
}

/// The refusal of a locked client or credential, for `left` more.
fn locked_out(left: Duration) -> Error {
    Error::rate_limited(left)
        .with_code(code::AUTH_LOCKED_OUT)
        .with_detail("reason", "too many failed authentications")
}

/// `base, 2·base, 4·base, ...` up to and ending with `max`.
fn lock_lengths(config: &LockoutConfig) -> Vec<Duration> {
    let mut lengths = Vec::new();
    let mut length = config.base_lockout;
    while length < config.max_lockout && lengths.len() < 31 {
        lengths.push(length);
        length = length.saturating_mul(2);
    }
    lengths.push(config.max_lockout);
    lengths
}

impl<L> fmt::Debug for Lockout<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout").field("levels", &self.locks.len()).finish_non_exhaustive()
    }
}
