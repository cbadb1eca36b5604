//! The auth layers and extractors in an axum app, over a real socket.

#![cfg(all(feature = "http", feature = "auth"))]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rampart::auth::{Authenticator, NewApiKey, PermissionSet, Principal, Session, require};
use rampart::config::Section;
use rampart::error::Error;
use rampart::http::auth::{AuthLayer, RequireLayer};
use serde_json::{Value, json};
use support::http::{send, serve};

const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123456789";

struct App {
    addr: SocketAddr,
    key: NewApiKey,
}

async fn me(principal: Principal) -> String {
    principal.subject().to_owned()
}

async fn maybe(principal: Option<Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_owned(), |p| p.subject().to_owned())
}

async fn login(State(auth): State<Authenticator>) -> Result<impl IntoResponse, Error> {
    let sessions = auth.sessions().expect("configured");
    let started = sessions.start("carol", vec![], PermissionSet::parse(["orders:*"])?)?;
    let mut headers = HeaderMap::new();
    headers
        .append(header::SET_COOKIE, HeaderValue::from_str(&started.set_cookie()).expect("header"));
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&started.set_csrf_cookie()).expect("header"),
    );
    Ok((headers, started.session().csrf_token().to_owned()))
}

async fn logout(State(auth): State<Authenticator>, session: Session) -> impl IntoResponse {
    let removal = auth.sessions().expect("configured").end(&session);
    [(header::SET_COOKIE, removal)]
}

async fn start() -> App {
    let key = NewApiKey::generate().expect("key");
    let config = rampart::auth::AuthConfig::from_value(json!({
        "jwt": {"keys": [{"kid": "hs", "algorithm": "HS256", "secret": HS_SECRET}]},
        "api_keys": [{"id": key.id(), "name": "ci", "hash": key.hash().to_string(), "permissions": ["reports:read"]}],
        "session": {"secret": "a-session-secret-of-at-least-32-bytes!!", "allowed_origins": ["https://app.example.com"]},
    })).expect("valid");
    let auth = Authenticator::new(&config).expect("auth");
    let protected = Router::new()
        .route("/me", get(me))
        .route("/orders", post(me).layer(RequireLayer::new(require("orders:write"))))
        .route("/logout", post(logout))
        .layer(AuthLayer::new(auth.clone()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/maybe", get(maybe).layer(AuthLayer::optional(auth.clone())))
        .merge(protected)
        .with_state(auth);
    let addr = serve(app, false).await;
    App { addr, key }
}

fn jwt(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(HS_SECRET.as_bytes()))
        .expect("signs")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs()
}

#[tokio::test]
async fn missing_and_invalid_credentials_get_401_with_a_challenge() {
    let app = start().await;
    let r = send(app.addr, "GET", "/me", &[], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"rampart\""));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "AUTHENTICATION_REQUIRED");

    let expired = jwt(&json!({"sub": "a", "exp": now() - 3600}));
    for auth in
        [format!("Bearer {expired}"), "Bearer not-a-jwt".to_owned(), "Bearer rk_nope".to_owned()]
    {
        let r = send(app.addr, "GET", "/me", &[("authorization", &auth)], "").await;
        assert_eq!(r.status, 401, "{auth}");
        let challenge = r.header("www-authenticate").expect("challenge");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    let r =
        send(app.addr, "GET", "/me", &[("authorization", &format!("Bearer {expired}"))], "").await;
    assert_eq!(r.json()["code"], "TOKEN_EXPIRED");
    // Basic and other schemes are not ours: treated as no credentials.
    let r = send(app.addr, "GET", "/me", &[("authorization", "Basic YTpi")], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn jwt_and_api_keys_reach_the_handler_and_permissions_are_enforced() {
    let app = start().await;
    let token = jwt(&json!({"sub": "alice", "exp": now() + 600, "permissions": ["orders:write"]}));
    let bearer = format!("Bearer {token}");
    let r = send(app.addr, "GET", "/me", &[("authorization", &bearer)], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    let r = send(app.addr, "POST", "/orders", &[("authorization", &bearer)], "").await;
    assert_eq!(r.status, 200);

    let key = app.key.expose();
    let r = send(app.addr, "GET", "/me", &[("x-api-key", key)], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ci"));
    let r = send(app.addr, "GET", "/me", &[("authorization", &format!("Bearer {key}"))], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ci"));
    // The key lacks orders:write: 403 naming it.
    let r = send(app.addr, "POST", "/orders", &[("x-api-key", key)], "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["required_permissions"], json!(["orders:write"]));
    assert_eq!(r.json()["code"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn optional_authentication_lets_anonymous_through_but_not_bad_credentials() {
    let app = start().await;
    let r = send(app.addr, "GET", "/maybe", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "anonymous"));
    let r = send(app.addr, "GET", "/maybe", &[("x-api-key", app.key.expose())], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ci"));
    let r = send(app.addr, "GET", "/maybe", &[("x-api-key", "rk_wrong")], "").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn sessions_need_csrf_for_writes_and_die_at_logout() {
    let app = start().await;
    let r = send(app.addr, "POST", "/login", &[], "").await;
    assert_eq!(r.status, 200);
    let csrf = r.body.clone();
    let set_cookie = r
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("__Host-session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();

    let r = send(app.addr, "GET", "/me", &[("cookie", &cookie)], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "carol"));
    // A write without the token, with a wrong one, or from a foreign origin: 403.
    for headers in [
        vec![("cookie", cookie.as_str())],
        vec![("cookie", cookie.as_str()), ("x-csrf-token", "0000")],
        vec![
            ("cookie", cookie.as_str()),
            ("x-csrf-token", csrf.as_str()),
            ("origin", "https://evil.example"),
        ],
    ] {
        let r = send(app.addr, "POST", "/orders", &headers, "").await;
        assert_eq!(r.status, 403, "{headers:?}");
        assert_eq!(r.json()["code"], "CSRF_REJECTED");
    }
    let good = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        ("origin", "https://app.example.com"),
    ];
    let r = send(app.addr, "POST", "/orders", &good, "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "carol"));

    let r = send(app.addr, "POST", "/logout", &good, "").await;
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    // Replaying the cookie after logout.
    let r = send(app.addr, "GET", "/me", &[("cookie", &cookie)], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "SESSION_INVALID");
}

#[tokio::test]
async fn repeated_failures_from_one_client_get_429_with_retry_after() {
    let config = rampart::auth::AuthConfig::from_value(json!({
        "jwt": {"keys": [{"kid": "hs", "algorithm": "HS256", "secret": HS_SECRET}]},
        "lockout": {"max_failures": 3, "window": "1m", "base_lockout": "30s"},
    }))
    .expect("valid");
    let auth = Authenticator::new(&config).expect("auth");
    let lockout = Arc::new(rampart::auth::Lockout::memory(config.lockout()).expect("lockout"));
    let app = Router::new().route("/me", get(me)).layer(AuthLayer::new(auth).lockout(lockout));
    let addr = serve(app, true).await;
    for _ in 0..4 {
        let r = send(addr, "GET", "/me", &[("authorization", "Bearer not.a.jwt")], "").await;
        assert_eq!(r.status, 401);
    }
    // Now even a valid token from this client waits.
    let good = format!("Bearer {}", jwt(&json!({"sub": "alice", "exp": now() + 600})));
    let r = send(addr, "GET", "/me", &[("authorization", &good)], "").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(r.json()["code"], "AUTH_LOCKED_OUT");
    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let r = send(
        addr,
        "GET",
        "/me",
        &[("authorization", &good), ("x-forwarded-for", "198.51.100.7")],
        "",
    )
    .await;
    assert_eq!(r.status, 429);
}

/// Finding: served with plain `axum::serve(listener, app)` there is no
/// `ConnectInfo`, so no failure can be charged to a client. Guessing the
/// secret of a real key id must not lock the key's holder out, and the
/// misconfiguration must be loud: 500 for every request, and an error log
/// naming the fix.
#[test]
fn lockout_without_a_client_address_refuses_loudly_and_locks_no_holder() {
    let key = NewApiKey::generate().expect("key");
    let config = rampart::auth::AuthConfig::from_value(json!({
        "api_keys": [{"id": key.id(), "name": "ci", "hash": key.hash().to_string()}],
        "lockout": {"max_failures": 3, "window": "1m", "base_lockout": "30s"},
    }))
    .expect("valid");
    let auth = Authenticator::new(&config).expect("auth");
    let lockout = Arc::new(rampart::auth::Lockout::memory(config.lockout()).expect("lockout"));
    let app = Router::new()
        .route("/me", get(me))
        .layer(AuthLayer::new(auth).lockout(Arc::clone(&lockout)));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let ((), logs) = support::capture_json_logs(|| {
        runtime.block_on(async {
            let addr = serve(app, false).await;
            // The attack: five wrong secrets for the real key id.
            for n in 0..5 {
                let guess = support::guessed_api_key(&key, n);
                let r = send(addr, "GET", "/me", &[("x-api-key", &guess)], "").await;
                assert_eq!(r.status, 500, "guess {n}: {}", r.body);
                assert_eq!(r.json()["code"], "CONFIGURATION_ERROR");
            }
            // The holder is refused the same way, not as locked out...
            let r = send(addr, "GET", "/me", &[("x-api-key", key.expose())], "").await;
            assert_eq!(r.status, 500, "{}", r.body);
            // ...and the guesses were charged to nobody: the key is not locked.
            let credential = rampart::auth::LockKey::Credential(key.id());
            assert!(lockout.check(&[credential]).await.is_ok());
            assert!(!lockout.has_failures(&credential).await.expect("peek"));
        });
    });
    let fix = logs.json_lines().into_iter().find(|line| {
        line["level"] == "ERROR"
            && line["message"]
                .as_str()
                .is_some_and(|m| m.contains("into_make_service_with_connect_info"))
    });
    assert!(fix.is_some_and(|line| line["config_key"] == "proxy"), "{}", logs.text());
}

/// Finding: after a restart (or logout race, eviction, purge) a browser's
/// old but genuine cookie was answered as tampering, and after three
/// requests its whole address was blocked. Now it is an ordinary "sign in
/// again" that clears the cookie, however often it comes back; only a
/// cookie that does not open is tampering.
#[tokio::test]
async fn an_old_genuine_cookie_never_gets_its_client_blocked() {
    let config = || {
        rampart::auth::AuthConfig::from_value(json!({
            "session": {"secret": "a-session-secret-of-at-least-32-bytes!!"},
            "lockout": {"max_failures": 3, "window": "1m", "base_lockout": "30s"},
        }))
        .expect("valid")
    };
    // One process signs carol in...
    let before = Authenticator::new(&config()).expect("auth");
    let login = before
        .sessions()
        .expect("configured")
        .start("carol", vec![], PermissionSet::new())
        .expect("login");
    let cookie = format!("__Host-session={}", login.cookie_value());
    // ...and its restart, with the same secret, has forgotten her session.
    let config = config();
    let auth = Authenticator::new(&config).expect("auth");
    let lockout = Arc::new(rampart::auth::Lockout::memory(config.lockout()).expect("lockout"));
    let monitor = rampart::monitor::Monitor::new(rampart::monitor::MonitorConfig::default());
    let app = Router::new()
        .route("/me", get(me))
        .layer(AuthLayer::new(auth).lockout(lockout))
        .layer(rampart::http::BlockLayer::new(monitor));
    let addr = serve(app, true).await;
    for attempt in 0..30 {
        let r = send(addr, "GET", "/me", &[("cookie", &cookie)], "").await;
        assert_eq!(r.status, 401, "attempt {attempt}: {}", r.body);
        assert_eq!(r.json()["code"], "SESSION_INVALID");
        let cleared = r.header("set-cookie").expect("the cookie is cleared");
        assert!(cleared.starts_with("__Host-session=;") && cleared.contains("Max-Age=0"));
    }
    // A cookie that does not open is tampering: three of them block the client.
    let forged = format!("{cookie}x");
    for _ in 0..3 {
        let r = send(addr, "GET", "/me", &[("cookie", &forged)], "").await;
        assert_eq!(r.json()["code"], "SESSION_TAMPERED");
        assert!(r.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    }
    let r = send(addr, "GET", "/me", &[("cookie", &cookie)], "").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (429, Some("CLIENT_BLOCKED")));
}
