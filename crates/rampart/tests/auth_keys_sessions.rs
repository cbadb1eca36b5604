//! API keys, permissions in use, and browser sessions: the attacks performed.
#![cfg(feature = "auth")]

use std::time::Duration;

use http::Method;
use rampart::auth::{
    ApiKeyStore, AuthConfig, NewApiKey, PermissionSet, SessionManager, looks_like_api_key, require,
};
use rampart::clock::FakeClock;
use rampart::config::Section;
use rampart::error::ErrorKind;
use serde_json::{Value, json};

fn config(value: Value) -> AuthConfig {
    AuthConfig::from_value(value).expect("valid")
}

fn store_with(key: &NewApiKey) -> ApiKeyStore {
    ApiKeyStore::new(&config(json!({
        "roles": { "reader": ["orders:read"] },
        "api_keys": [{ "id": key.id(), "name": "billing-job", "hash": key.hash().to_string(),
                       "permissions": ["invoices:*"], "roles": ["reader"] }],
    })))
}

#[track_caller]
fn assert_key_refused(store: &ApiKeyStore, presented: &str) {
    let err = store.verify(presented).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Authentication);
    // One code and one message whatever failed, so the answer tells nothing.
    assert_eq!(err.code().as_str(), "API_KEY_INVALID");
    assert_eq!(err.message(), "The API key is not valid");
    assert!(err.challenge().is_some_and(|c| c.contains("invalid_token")));
}

#[test]
fn a_valid_key_yields_its_principal() {
    let key = NewApiKey::generate().expect("key");
    let store = store_with(&key);
    let p = store.verify(key.expose()).expect("valid");
    assert_eq!(p.subject(), "billing-job");
    assert_eq!(p.credential_id(), Some(key.id()));
    assert!(p.has("invoices:send") && p.has("orders:read") && !p.has("orders:write"));
    assert!(p.authorize(&require("orders:write")).is_err());
}

#[test]
fn wrong_secret_unknown_id_and_bad_checksum_are_refused() {
    let key = NewApiKey::generate().expect("key");
    let store = store_with(&key);
    let other = NewApiKey::generate().expect("key");
    // Unknown id: a real, well-formed key that is not configured.
    assert_key_refused(&store, other.expose());
    // Wrong secret: the configured id with another key's secret, checksum
    // recomputed so it passes the format check and reaches the hash compare.
    let forged = reforge(&format!("rk_{}_{}", key.id(), &other.expose()[16..59]));
    assert!(looks_like_api_key(&forged));
    assert_key_refused(&store, &forged);
    // Bad checksum: the right key with its last character changed.
    let mut bad = key.expose().to_owned();
    let last = bad.pop().expect("non-empty");
    bad.push(if last == 'a' { 'b' } else { 'a' });
    assert!(!looks_like_api_key(&bad));
    assert_key_refused(&store, &bad);
    // 65 bytes with a two-byte character where the checksum starts: no panic.
    let split_char = format!("{}é{}", &key.expose()[..58], &key.expose()[60..]);
    assert_eq!(split_char.len(), 65);
    assert_key_refused(&store, &split_char);
    for garbage in [
        "",
        "rk_",
        "Bearer x",
        &key.expose()[..64],
        &format!("{} ", key.expose()),
        "ü".repeat(40).as_str(),
    ] {
        assert_key_refused(&store, garbage);
    }
    // A hash copied under another id does not make that id accept the key.
    let swapped = ApiKeyStore::new(&config(json!({"api_keys": [
        {"id": other.id(), "name": "x", "hash": key.hash().to_string()}]})));
    assert_key_refused(&swapped, other.expose());
}

/// `body` with a valid checksum appended, computed the documented way.
fn reforge(body: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[usize::try_from(n % 62).expect("small")];
        n /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&sum))
}

#[test]
fn api_key_settings_are_validated() {
    let key = NewApiKey::generate().expect("key");
    let hash = key.hash().to_string();
    for (entry, path) in [
        (json!({"id": "SHORT", "name": "x", "hash": hash}), "auth.api_keys[0].id"),
        (json!({"id": key.id(), "name": "", "hash": hash}), "auth.api_keys[0].name"),
        (json!({"id": key.id(), "name": "x", "hash": "plain-text-key"}), "auth.api_keys[0].hash"),
        (
            json!({"id": key.id(), "name": "x", "hash": hash, "permissions": ["a:*:b"]}),
            "auth.api_keys[0].permissions[0]",
        ),
        // A misspelt role would silently grant nothing.
        (
            json!({"id": key.id(), "name": "x", "hash": hash, "roles": ["clerk", "clrek"]}),
            "auth.api_keys[0].roles[1]",
        ),
    ] {
        let err =
            AuthConfig::from_value(json!({"api_keys": [entry], "roles": {"clerk": ["orders:*"]}}))
                .expect_err(path);
        assert_eq!(err.config_key(), Some(path));
        assert!(!format!("{err:?}").contains("plain-text-key"));
    }
}

const SECRET: &str = "a-session-secret-of-at-least-32-bytes!!";

fn sessions(clock: &FakeClock, extra: &Value) -> SessionManager {
    let mut session = json!({"secret": SECRET, "idle_timeout": "10m", "absolute_timeout": "1h",
                             "allowed_origins": ["https://app.example.com"]});
    for (k, v) in extra.as_object().expect("object") {
        session[k] = v.clone();
    }
    let config = config(json!({"session": session, "roles": {"admin": ["*"]}}));
    SessionManager::new(&config).map(|m| m.clock(clock.clone())).expect("manager")
}

fn perms(list: &[&str]) -> PermissionSet {
    PermissionSet::parse(list).expect("valid")
}

#[test]
fn session_cookies_have_the_secure_attributes() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let login = m.start("alice", vec![], perms(&["orders:read"])).expect("login");
    let set = login.set_cookie();
    assert!(set.starts_with("__Host-session="), "{set}");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    // The value is ciphertext: no subject, no session id in clear.
    assert!(!login.cookie_value().contains("alice"));
    let csrf = login.set_csrf_cookie();
    assert!(
        csrf.starts_with("__Host-csrf=") && !csrf.contains("HttpOnly") && csrf.contains("Secure")
    );
    assert!(csrf.contains(login.session().csrf_token()));
    let strict = sessions(&clock, &json!({"same_site": "strict", "cookie_name": "app"}));
    let set = strict.start("a", vec![], PermissionSet::new()).expect("login").set_cookie();
    assert!(set.starts_with("__Host-app=") && set.contains("SameSite=Strict"), "{set}");
}

#[track_caller]
fn assert_session_refused(m: &SessionManager, value: &str, code: &str) {
    let err = m.authenticate(value).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.code().as_str(), code);
}

#[test]
fn tampered_and_foreign_cookies_are_refused() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let login = m.start("alice", vec![], perms(&["orders:read"])).expect("login");
    let value = login.cookie_value();
    assert!(m.authenticate(value).is_ok());
    // Flip each character in turn (base64 text): never accepted.
    for i in 0..value.len() {
        let mut bytes = value.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        if tampered != value {
            assert_session_refused(&m, &tampered, "SESSION_TAMPERED");
        }
    }
    for garbage in ["", "x", "====", &value[..value.len() / 2]] {
        assert_session_refused(&m, garbage, "SESSION_TAMPERED");
    }
    // A cookie sealed by another server (another secret) does not open here.
    let other = SessionManager::new(&config(
        json!({"session": {"secret": "another-secret-another-secret-another!"}}),
    ))
    .expect("manager")
    .clock(clock.clone());
    let foreign = other.start("alice", vec![], perms(&["*"])).expect("login");
    assert_session_refused(&m, foreign.cookie_value(), "SESSION_TAMPERED");
    // The same secret under another cookie name: the name is bound in.
    let renamed = sessions(&clock, &json!({"cookie_name": "other"}));
    let moved = renamed.start("alice", vec![], perms(&["*"])).expect("login");
    assert_session_refused(&m, moved.cookie_value(), "SESSION_TAMPERED");
}

#[test]
fn replay_after_logout_and_after_rotation_is_refused() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let login = m.start("alice", vec![], perms(&["orders:read"])).expect("login");
    let session = m.authenticate(login.cookie_value()).expect("valid");
    let removal = m.end(&session);
    assert!(removal.starts_with("__Host-session=;") && removal.contains("Max-Age=0"), "{removal}");
    assert_session_refused(&m, login.cookie_value(), "SESSION_INVALID");

    // Privilege change: the old cookie dies, the new one has the new rights.
    let login = m.start("bob", vec![], perms(&["orders:read"])).expect("login");
    let before = m.authenticate(login.cookie_value()).expect("valid");
    assert!(!before.principal().has("billing:refund"));
    let elevated = m.rotate(&before, vec!["admin".into()], PermissionSet::new()).expect("rotated");
    assert_ne!(elevated.cookie_value(), login.cookie_value());
    assert_ne!(elevated.session().csrf_token(), before.csrf_token());
    assert_session_refused(&m, login.cookie_value(), "SESSION_INVALID");
    let after = m.authenticate(elevated.cookie_value()).expect("valid");
    assert!(after.principal().has("billing:refund"));
    assert_eq!(after.principal().subject(), "bob");
    // A rotated-away session cannot be rotated again.
    assert!(m.rotate(&before, vec![], PermissionSet::new()).is_err());
}

#[test]
fn idle_and_absolute_expiry_end_sessions() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let idle = m.start("alice", vec![], PermissionSet::new()).expect("login");
    let busy = m.start("bob", vec![], PermissionSet::new()).expect("login");
    // bob uses his session every 9 minutes; alice does not.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(9 * 60));
        assert!(m.authenticate(busy.cookie_value()).is_ok());
    }
    assert_session_refused(&m, idle.cookie_value(), "SESSION_EXPIRED");
    // 54 minutes in: bob is still in; at one hour the absolute limit ends it
    // whatever the activity.
    clock.advance(Duration::from_secs(6 * 60));
    assert_session_refused(&m, busy.cookie_value(), "SESSION_EXPIRED");
    // An expired session is forgotten: the replay is now an unknown session.
    assert_session_refused(&m, busy.cookie_value(), "SESSION_INVALID");
    assert_eq!(m.purge_expired(), 0);
}

#[test]
fn rotation_keeps_the_absolute_deadline() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let login = m.start("alice", vec![], PermissionSet::new()).expect("login");
    let mut current = m.authenticate(login.cookie_value()).expect("valid");
    let mut value = String::new();
    for _ in 0..6 {
        clock.advance(Duration::from_secs(9 * 60));
        let rotated = m.rotate(&current, vec![], PermissionSet::new()).expect("rotated");
        value = rotated.cookie_value().to_owned();
        current = m.authenticate(&value).expect("valid");
    }
    // 54 minutes after sign-in, six rotations later: the hour still counts
    // from the sign-in, and an expired session cannot be rotated back to life.
    clock.advance(Duration::from_secs(6 * 60));
    assert!(m.rotate(&current, vec![], PermissionSet::new()).is_err());
    assert_session_refused(&m, &value, "SESSION_INVALID");
}

#[test]
fn csrf_token_and_origin_are_required_for_unsafe_methods() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({}));
    let login = m.start("alice", vec![], PermissionSet::new()).expect("login");
    let s = m.authenticate(login.cookie_value()).expect("valid");
    let token = s.csrf_token().to_owned();
    let origin = Some("https://app.example.com");
    for safe in [Method::GET, Method::HEAD, Method::OPTIONS] {
        assert!(m.check_csrf(&s, &safe, Some("https://evil.example"), None).is_ok());
    }
    for unsafe_method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert!(m.check_csrf(&s, &unsafe_method, origin, Some(&token)).is_ok());
        assert!(m.check_csrf(&s, &unsafe_method, None, Some(&token)).is_ok());
        for (origin, token) in [
            (origin, None),
            (origin, Some("")),
            (origin, Some(&token[..63])),
            (origin, Some("0000000000000000000000000000000000000000000000000000000000000000")),
            (Some("https://evil.example"), Some(token.as_str())),
            (Some("null"), Some(token.as_str())),
            (Some("https://app.example.com.evil.example"), Some(token.as_str())),
        ] {
            let err = m.check_csrf(&s, &unsafe_method, origin, token).expect_err("refused");
            assert_eq!(err.status().as_u16(), 403);
            assert_eq!(err.code().as_str(), "CSRF_REJECTED");
        }
    }
    // Another session's token does not pass.
    let other = m.start("mallory", vec![], PermissionSet::new()).expect("login");
    assert!(m.check_csrf(&s, &Method::POST, origin, Some(other.session().csrf_token())).is_err());
}

#[test]
fn session_settings_are_validated() {
    for (session, path) in [
        (json!({"secret": "short"}), "auth.session.secret"),
        (json!({"secret": SECRET, "same_site": "none"}), "auth.session.same_site"),
        (
            json!({"secret": SECRET, "idle_timeout": "2h", "absolute_timeout": "1h"}),
            "auth.session.idle_timeout",
        ),
        (json!({"secret": SECRET, "cookie_name": "a;b"}), "auth.session.cookie_name"),
        (
            json!({"secret": SECRET, "allowed_origins": ["https://x.example/"]}),
            "auth.session.allowed_origins[0]",
        ),
        (
            json!({"secret": SECRET, "max_sessions": 4, "max_sessions_per_subject": 5}),
            "auth.session.max_sessions_per_subject",
        ),
        (
            json!({"secret": SECRET, "max_sessions_per_subject": 0}),
            "auth.session.max_sessions_per_subject",
        ),
    ] {
        let err = AuthConfig::from_value(json!({"session": session})).expect_err(path);
        assert_eq!(err.config_key(), Some(path));
        assert!(!format!("{err:?}").contains(SECRET));
    }
    let no_sessions = config(json!({}));
    assert!(SessionManager::new(&no_sessions).is_err());
}

#[test]
fn the_session_store_is_bounded() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({"max_sessions": 3}));
    for i in 0..3 {
        m.start(&format!("u{i}"), vec![], PermissionSet::new()).expect("login");
    }
    let err = m.start("u3", vec![], PermissionSet::new()).expect_err("full");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // Once they expire, room is made again.
    clock.advance(Duration::from_secs(11 * 60));
    assert!(m.start("u3", vec![], PermissionSet::new()).is_ok());
}

/// The attack: one account signing in over and over to fill the store, so
/// nobody else can sign in. Each subject keeps its newest sessions only.
#[test]
fn one_subject_cannot_fill_the_session_store() {
    let clock = FakeClock::new();
    let m = sessions(&clock, &json!({"max_sessions": 5, "max_sessions_per_subject": 2}));
    let logins: Vec<_> =
        (0..50).map(|_| m.start("mallory", vec![], PermissionSet::new()).expect("login")).collect();
    assert_eq!(m.purge_expired(), 2, "only mallory's two newest sessions are kept");
    for old in &logins[..48] {
        assert_session_refused(&m, old.cookie_value(), "SESSION_INVALID");
    }
    for newest in &logins[48..] {
        assert!(m.authenticate(newest.cookie_value()).is_ok());
    }
    // Everyone else still signs in, and ending sessions keeps the count right.
    let alice = m.start("alice", vec![], PermissionSet::new()).expect("alice signs in");
    let session = m.authenticate(alice.cookie_value()).expect("alice");
    m.end(&session);
    assert_eq!(m.purge_expired(), 2);
}
