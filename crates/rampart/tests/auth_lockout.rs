//! Lockout: repeated failures lock a client or a credential out, for a
//! growing time, in memory and through Redis shared by replicas.
#![cfg(feature = "auth")]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};
#[cfg(feature = "audit")]
use rampart::audit::AuditKey;
use rampart::auth::{Authenticator, LockKey, Lockout, NewApiKey};
use rampart::clock::{Clock, FakeClock};
use rampart::config::Section;
use rampart::error::{Error, ErrorKind};
use serde_json::json;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

fn lockout_config(extra: &serde_json::Value) -> rampart::auth::AuthConfig {
    let mut lockout =
        json!({"max_failures": 3, "window": "1m", "base_lockout": "30s", "max_lockout": "2m"});
    for (k, v) in extra.as_object().expect("object") {
        lockout[k] = v.clone();
    }
    rampart::auth::AuthConfig::from_value(json!({"lockout": lockout})).expect("valid")
}

/// A lockout with its state in memory, on `clock`.
fn memory_lockout(config: &rampart::auth::AuthConfig, clock: &FakeClock) -> Lockout {
    Lockout::memory(config.lockout()).expect("lockout").clock(clock.clone())
}

#[track_caller]
fn assert_locked(result: Result<(), Error>, wait: Duration) {
    let err = result.expect_err("locked");
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status().as_u16(), 429);
    assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
    assert_eq!(err.retry_after(), Some(wait));
}

#[tokio::test]
async fn lockout_engages_grows_and_releases() {
    let clock = FakeClock::new();
    let config = lockout_config(&json!({}));
    let lockout = memory_lockout(&config, &clock);
    let me = [LockKey::Client(CLIENT)];
    // Three failures are allowed in the window; the fourth crosses the line.
    for _ in 0..3 {
        lockout.record_failure(&me).await;
        assert!(lockout.check(&me).await.is_ok());
    }
    lockout.record_failure(&me).await;
    assert_locked(lockout.check(&me).await, Duration::from_secs(30));
    // Others are not affected.
    assert!(lockout.check(&[LockKey::Client(OTHER)]).await.is_ok());
    assert!(lockout.check(&[LockKey::Credential("someone")]).await.is_ok());
    // It releases after 30 s...
    clock.advance(Duration::from_secs(29));
    assert_locked(lockout.check(&me).await, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert!(lockout.check(&me).await.is_ok());
    // After a lockout the failure budget has regained what the wait gave
    // back (one failure per window / max_failures); once that is spent the
    // next lockout lasts twice as long, then 4x, capped at max_lockout.
    for expected in [60, 120, 120] {
        let locked = fail_until_locked(&lockout, &me).await;
        assert_eq!(locked, Duration::from_secs(expected));
        clock.advance(locked);
        assert!(lockout.check(&me).await.is_ok());
    }
    // A quiet client is forgiven: strikes and failures decay.
    clock.advance(Duration::from_secs(15 * 60));
    for _ in 0..3 {
        lockout.record_failure(&me).await;
    }
    assert!(lockout.check(&me).await.is_ok());
    lockout.record_failure(&me).await;
    assert_locked(lockout.check(&me).await, Duration::from_secs(30));
}

/// Records failures until `key` is locked (at most 4); returns the wait.
async fn fail_until_locked(lockout: &Lockout, key: &[LockKey<'_>]) -> Duration {
    for _ in 0..4 {
        lockout.record_failure(key).await;
        if let Err(err) = lockout.check(key).await {
            return err.retry_after().expect("a lockout says how long");
        }
    }
    panic!("four failures did not lock {key:?}");
}

#[tokio::test]
async fn a_disabled_lockout_counts_nothing() {
    let config = lockout_config(&json!({"enabled": false}));
    let lockout = memory_lockout(&config, &FakeClock::new());
    let me = [LockKey::Client(CLIENT)];
    for _ in 0..20 {
        lockout.record_failure(&me).await;
    }
    assert!(lockout.check(&me).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_lockout_is_a_security_event() {
    let clock = FakeClock::new();
    let config = lockout_config(&json!({}));
    let lockout = memory_lockout(&config, &clock);
    let runtime = tokio::runtime::Handle::current();
    let ((), logs) = support::capture_json_logs(|| {
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                for _ in 0..4 {
                    lockout.record_failure(&[LockKey::Credential("key123")]).await;
                }
            });
        });
    });
    let events: Vec<_> = logs
        .json_lines()
        .into_iter()
        .filter(|line| line["event_type"] == "security.lockout")
        .collect();
    assert_eq!(events.len(), 1, "{}", logs.text());
    assert_eq!(events[0]["target"], "rampart::auth");
    assert_eq!(events[0]["scope"], "credential");
    assert_eq!(events[0]["lockout_secs"], 30);
}

#[cfg(feature = "audit")]
#[tokio::test]
async fn each_lockout_is_recorded_in_the_audit_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = AuditKey::new("k1", vec![7; 32]).expect("key");
    let auditor = support::synced_file_auditor(dir.path(), key.clone());
    let clock = FakeClock::new();
    let config = lockout_config(&json!({}));
    let lockout = memory_lockout(&config, &clock).with_auditor(auditor.clone());
    let keys = [LockKey::Client(CLIENT), LockKey::Credential("key123")];
    for _ in 0..4 {
        lockout.record_failure(&keys).await;
    }
    auditor.shutdown(Duration::from_secs(5)).expect("stops");

    let records = support::audit_records(dir.path(), "security.lockout");
    assert_eq!(records.len(), 2, "one for the client, one for the key: {records:?}");
    assert_eq!(records[0]["resource"], "ip:203.0.113.7");
    assert_eq!(records[0]["details"]["client"], "203.0.113.7");
    assert_eq!(records[0]["details"]["lockout_seconds"], 30);
    assert_eq!(records[1]["actor"], "key123");
    assert_eq!(records[1]["details"]["scope"], "credential");
    assert_eq!(
        (records[1]["severity"].as_str(), records[1]["outcome"].as_str()),
        (Some("high"), Some("denied"))
    );
    let verdict = rampart::audit::verify::verify_paths(&key, &[dir.path().to_path_buf()], None)
        .expect("verifies");
    assert!(verdict.is_intact());
}

fn key_config(key: &NewApiKey) -> rampart::auth::AuthConfig {
    rampart::auth::AuthConfig::from_value(json!({
        "api_keys": [{"id": key.id(), "name": "ci", "hash": key.hash().to_string()}],
        "lockout": {"max_failures": 2, "window": "1m", "base_lockout": "30s", "max_lockout": "2m"},
    }))
    .expect("valid")
}

fn api_key_headers(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_str(key).expect("ascii"));
    headers
}

#[tokio::test]
async fn guessing_a_key_locks_the_client_and_the_key() {
    let clock = FakeClock::new();
    let key = NewApiKey::generate().expect("key");
    let config = key_config(&key);
    let auth = Authenticator::builder(&config).clock(clock.clone()).build().expect("auth");
    let lockout = memory_lockout(&config, &clock);
    let get = Method::GET;
    let attempt = |headers: HeaderMap, client: IpAddr| {
        let (auth, lockout, get) = (&auth, &lockout, &get);
        async move { auth.authenticate_guarded(get, &headers, client, lockout).await }
    };
    for n in 0..3 {
        let err = attempt(api_key_headers(&support::guessed_api_key(&key, n)), CLIENT)
            .await
            .expect_err("wrong secret");
        assert_eq!(err.code().as_str(), "API_KEY_INVALID");
    }
    // The client is locked out before its credential is even looked at.
    let err = attempt(api_key_headers(key.expose()), CLIENT).await.expect_err("locked");
    assert_eq!((err.status().as_u16(), err.code().as_str()), (429, "AUTH_LOCKED_OUT"));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    // The key is locked too: a further guess from elsewhere is refused as
    // locked (and counted against that client)...
    let err = attempt(api_key_headers(&support::guessed_api_key(&key, 9)), OTHER)
        .await
        .expect_err("key locked");
    assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
    // ...and so is the right key from a client that has been failing.
    let err = attempt(api_key_headers(key.expose()), OTHER).await.expect_err("failing client");
    assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
    // But the owner, from a client that never failed, is not locked out by
    // someone else's guesses at its key.
    let owner = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    let found = attempt(api_key_headers(key.expose()), owner).await.expect("owner passes");
    assert_eq!(found.principal().subject(), "ci");
    // Guesses at ids nobody holds count against the client only.
    let stranger = NewApiKey::generate().expect("key");
    let prowler = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88));
    for n in 0..2 {
        let err = attempt(api_key_headers(&support::guessed_api_key(&stranger, n)), prowler)
            .await
            .expect_err("unknown");
        assert_eq!(err.code().as_str(), "API_KEY_INVALID");
    }
    assert!(lockout.check(&[LockKey::Credential(stranger.id())]).await.is_ok());
    assert!(!lockout.has_failures(&LockKey::Credential(stranger.id())).await.expect("peek"));
    // Requests without credentials are not attempts and count nothing.
    let third = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
    for _ in 0..5 {
        let err = attempt(HeaderMap::new(), third).await.expect_err("no credentials");
        assert_eq!(err.code().as_str(), "AUTHENTICATION_REQUIRED");
    }
    // The guess made while the key was locked was its second strike: 60 s.
    let err = lockout.check(&[LockKey::Credential(key.id())]).await.expect_err("still locked");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    clock.advance(Duration::from_secs(60));
    let found = attempt(api_key_headers(key.expose()), CLIENT).await.expect("released");
    assert_eq!(found.principal().subject(), "ci");
}

#[tokio::test]
async fn a_forged_token_cannot_lock_out_the_subject_it_names() {
    let clock = FakeClock::new();
    let secret = "an-hs256-secret-that-is-long-enough-0123";
    let config = rampart::auth::AuthConfig::from_value(json!({
        "jwt": {"keys": [{"kid": "k", "algorithm": "HS256", "secret": secret}]},
        "lockout": {"max_failures": 2, "window": "1m", "base_lockout": "30s", "max_lockout": "2m"},
    }))
    .expect("valid");
    let auth = Authenticator::builder(&config).clock(clock.clone()).build().expect("auth");
    let lockout = memory_lockout(&config, &clock);
    let now = clock.system_time().duration_since(UNIX_EPOCH).expect("after epoch").as_secs();
    let token = |key: &[u8], exp: u64| {
        let header =
            jsonwebtoken::Header { kid: Some("k".into()), ..jsonwebtoken::Header::default() };
        let claims = json!({"sub": "alice", "exp": exp});
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key))
            .expect("signs")
    };
    let bearer = |token: &str| {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii");
        headers.insert("authorization", value);
        headers
    };
    let attempt = |headers: HeaderMap, client: u8| {
        let (auth, lockout) = (&auth, &lockout);
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, client));
        async move { auth.authenticate_guarded(&Method::GET, &headers, client, lockout).await }
    };

    // The attack: tokens signed with a made-up key, naming alice, from many
    // clients. Each client fails once; alice is not locked.
    let forged = bearer(&token(b"not-the-servers-secret", now + 3600));
    for client in 0..5 {
        let err = attempt(forged.clone(), client).await.expect_err("forged");
        assert_eq!(err.code().as_str(), "TOKEN_INVALID");
    }
    assert!(lockout.check(&[LockKey::Credential("alice")]).await.is_ok());
    assert!(!lockout.has_failures(&LockKey::Credential("alice")).await.expect("peek"));
    let good = bearer(&token(secret.as_bytes(), now + 3600));
    assert!(attempt(good.clone(), 100).await.is_ok());

    // Authentic but refused tokens (expired) do count against alice: past
    // the threshold her subject is locked, and further attempts say so.
    let expired = bearer(&token(secret.as_bytes(), now - 3600));
    for client in 20..23 {
        let err = attempt(expired.clone(), client).await.expect_err("expired");
        assert_eq!(err.code().as_str(), "TOKEN_EXPIRED");
    }
    assert_locked(lockout.check(&[LockKey::Credential("alice")]).await, Duration::from_secs(30));
    let err = attempt(expired.clone(), 23).await.expect_err("locked");
    assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
    // Her good token passes from a client that is not failing, and not from one that is.
    assert!(attempt(good.clone(), 101).await.is_ok());
    let err = attempt(good, 23).await.expect_err("failing client");
    assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn replicas_share_lockouts_through_redis() {
    let Some(url) = support::redis_url() else { return };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let prefix = format!("rampart-test:lockout:{}:{nanos}:", std::process::id());
    let config = lockout_config(&json!({"base_lockout": "1s", "max_lockout": "4s"}));
    let replica = || {
        Lockout::with_backend(config.lockout(), |quota, name| {
            rampart::ratelimit::RedisLimiter::builder(&url, quota)
                .key_prefix(&format!("{prefix}{name}:"))
                .build()
                .map(|l| rampart::ratelimit::Limiter::Redis(Box::new(l)))
        })
        .expect("lockout")
    };
    let (a, b) = (replica(), replica());
    let me = [LockKey::Client(CLIENT)];
    // Failures seen by two replicas add up.
    a.record_failure(&me).await;
    b.record_failure(&me).await;
    a.record_failure(&me).await;
    assert!(b.check(&me).await.is_ok());
    b.record_failure(&me).await;
    for replica in [&a, &b] {
        let err = replica.check(&me).await.expect_err("locked everywhere");
        assert_eq!(err.code().as_str(), "AUTH_LOCKED_OUT");
        assert!(err.retry_after().is_some_and(|w| w <= Duration::from_secs(1)));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(a.check(&me).await.is_ok());
    // The next failure doubles the lockout, on both replicas.
    b.record_failure(&me).await;
    let err = a.check(&me).await.expect_err("locked again");
    assert!(
        err.retry_after()
            .is_some_and(|w| w > Duration::from_secs(1) && w <= Duration::from_secs(2)),
        "{err:?}"
    );
    cleanup(&url, &prefix);
}

/// The Redis fallback: with Redis dead and the failure policy `local` for 6
/// replicas, this replica's share (10 / 6 = 1 failure per window, 1 strike)
/// decides. Its strikes are read against that share: the lockout is the
/// first length, not `max_lockout` after two failures, and a client with no
/// failures of its own still passes a locked credential.
#[cfg(feature = "redis")]
#[tokio::test]
async fn under_the_local_fallback_strikes_and_failures_are_read_against_the_share() {
    use rampart::ratelimit::{FailurePolicy, Limiter, RedisLimiter};
    // Nothing listens on this port: every call to "Redis" fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let clock = FakeClock::new();
    let config = lockout_config(&json!({
        "max_failures": 10, "window": "5m", "base_lockout": "30s", "max_lockout": "15m"
    }));
    let lockout = Lockout::with_backend(config.lockout(), |quota, name| {
        RedisLimiter::builder(&url, quota)
            .key_prefix(&format!("rampart-test:lockout-local:{name}:"))
            .failure_policy(FailurePolicy::Local { replicas: 6 })
            .clock(Arc::new(clock.clone()))
            .build()
            .map(|limiter| Limiter::Redis(Box::new(limiter)))
    })
    .expect("lockout");
    let me = [LockKey::Client(CLIENT)];
    lockout.record_failure(&me).await;
    assert!(lockout.check(&me).await.is_ok(), "one failure is this replica's share");
    lockout.record_failure(&me).await;
    assert_locked(lockout.check(&me).await, Duration::from_secs(30));

    let key = LockKey::Credential("key-1");
    for _ in 0..2 {
        lockout.record_failure(&[key]).await;
    }
    assert_locked(lockout.check(&[key]).await, Duration::from_secs(30));
    assert!(
        lockout.check_holder(&key, Some(OTHER)).await.is_ok(),
        "the holder, from a client with no failures, is not held back"
    );
    assert!(lockout.check_holder(&key, Some(CLIENT)).await.is_err(), "the guesser is");
}

/// Deletes this test's keys (they would expire on their own within seconds).
#[cfg(feature = "redis")]
fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut conn) = client.get_connection() else { return };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn).unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
}

/// The attack: a client with an IPv6 /64 (what one host usually holds)
/// changing the low bits of its address for every guess.
#[tokio::test]
async fn rotating_ipv6_addresses_within_a_64_does_not_escape_the_lockout() {
    let clock = FakeClock::new();
    let config = lockout_config(&json!({}));
    let lockout = memory_lockout(&config, &clock);
    let max_failures = 3; // lockout_config's
    for n in 0..=max_failures {
        let ip: IpAddr = format!("2001:db8:1:2::{:x}", n + 1).parse().expect("ipv6");
        lockout.record_failure(&[LockKey::Client(ip)]).await;
    }
    let fresh: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ipv6");
    assert_locked(lockout.check(&[LockKey::Client(fresh)]).await, Duration::from_secs(30));
    let other_network: IpAddr = "2001:db8:1:3::1".parse().expect("ipv6");
    assert!(lockout.check(&[LockKey::Client(other_network)]).await.is_ok());
}
