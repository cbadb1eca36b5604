//! The monitor: thresholds, alerts into the audit trail, the block list and
//! the HTTP layer that enforces it, bounded memory.

mod support;

#[cfg(feature = "http")]
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(feature = "http")]
use axum::Router;
#[cfg(feature = "http")]
use axum::extract::ConnectInfo;
#[cfg(feature = "http")]
use axum::http::StatusCode;
#[cfg(feature = "http")]
use axum::routing::get;
#[cfg(feature = "audit")]
use rampart::audit::AuditKey;
use rampart::clock::FakeClock;
use rampart::config::Section;
#[cfg(feature = "http")]
use rampart::http::{BlockLayer, RenderErrorsLayer};
use rampart::monitor::{Monitor, MonitorConfig, Scope, Signal};
#[cfg(feature = "http")]
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(json: serde_json::Value) -> MonitorConfig {
    MonitorConfig::from_value(json).expect("valid")
}

#[test]
fn each_signal_has_its_threshold_and_subjects_are_not_blocked() {
    let clock = FakeClock::new();
    let monitor = Monitor::new(config(serde_json::json!({
        "window": "10s", "block_duration": "60s",
        "thresholds": {"auth_failure": 3, "tampered_cookie": 1, "validation_rejected": 0}
    })))
    .clock(clock.clone());
    // One tampered cookie is enough.
    let alerts = monitor.observe(Signal::TamperedCookie, Some("10.0.0.1"), None);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].blocked_for, Some(Duration::from_secs(60)));
    // A threshold of 0 turns the signal off.
    for _ in 0..1000 {
        assert!(monitor.observe(Signal::ValidationRejected, Some("10.0.0.2"), None).is_empty());
    }
    // Failures spread over more than the window never cross.
    for _ in 0..10 {
        assert!(monitor.observe(Signal::AuthFailure, Some("10.0.0.3"), Some("bob")).is_empty());
        clock.advance(Duration::from_secs(6));
    }
    // A subject attacked from many addresses alerts, but only clients are blocked.
    let mut alerts = Vec::new();
    for i in 0..3 {
        alerts.extend(monitor.observe(
            Signal::AuthFailure,
            Some(&format!("192.0.2.{i}")),
            Some("carol"),
        ));
    }
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].scope, alerts[0].key.as_str(), alerts[0].blocked_for),
        (Scope::Subject, "carol", None)
    );
    assert_eq!(monitor.blocked("192.0.2.0"), None);
}

#[test]
fn blocks_expire_and_can_be_lifted() {
    let clock = FakeClock::new();
    let monitor = Monitor::new(config(
        serde_json::json!({"block_duration": "30s", "thresholds": {"permission_denied": 2}}),
    ))
    .clock(clock.clone());
    monitor.observe(Signal::PermissionDenied, Some("c1"), None);
    monitor.observe(Signal::PermissionDenied, Some("c1"), None);
    assert_eq!(monitor.blocked("c1"), Some(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(29));
    assert_eq!(monitor.blocked("c1"), Some(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(monitor.blocked("c1"), None);
    monitor.observe(Signal::PermissionDenied, Some("c2"), None);
    monitor.observe(Signal::PermissionDenied, Some("c2"), None);
    assert!(monitor.unblock("c2"));
    assert_eq!(monitor.blocked("c2"), None);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_addresses() {
    let clock = FakeClock::new();
    let monitor = Monitor::new(config(
        serde_json::json!({"max_tracked": 64, "thresholds": {"rate_limited": 5}}),
    ))
    .clock(clock);
    for i in 0..20_000u32 {
        monitor.observe(
            Signal::RateLimited,
            Some(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)),
            None,
        );
        assert!(monitor.tracked() <= 64);
    }
    // A real offender among the flood is still caught.
    for _ in 0..5 {
        monitor.observe(Signal::RateLimited, Some("203.0.113.7"), None);
    }
    assert!(monitor.blocked("203.0.113.7").is_some());
}

#[cfg(feature = "audit")]
#[test]
fn an_alert_is_an_audit_event_and_an_error_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = AuditKey::new("k1", vec![4; 32]).expect("key");
    let auditor = support::synced_file_auditor(dir.path(), key.clone());
    let monitor = Monitor::new(config(serde_json::json!({"thresholds": {"auth_failure": 2}})))
        .with_auditor(auditor.clone());
    let ((), logs) = support::capture_json_logs(|| {
        monitor.observe(Signal::AuthFailure, Some("198.51.100.4"), Some("dave"));
        monitor.observe(Signal::AuthFailure, Some("198.51.100.4"), Some("dave"));
    });
    let alerts: Vec<_> =
        logs.json_lines().into_iter().filter(|l| l["target"] == "rampart::monitor").collect();
    assert_eq!(alerts.len(), 2, "{}", logs.text());
    assert_eq!(alerts[0]["level"], "ERROR");
    assert_eq!(alerts[0]["signal"], "auth_failure");
    assert!(alerts[0]["message"].as_str().is_some_and(|m| m.contains("security alert")));
    auditor.shutdown(Duration::from_secs(5)).expect("stops");
    let alerts = support::audit_records(dir.path(), "security.alert");
    assert_eq!(alerts.len(), 2, "one for the client, one for the subject");
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["details"]["signal"], "auth_failure");
    assert_eq!(alerts[0]["details"]["scope"], "client");
    assert_eq!(alerts[0]["details"]["key"], "198.51.100.4");
    assert_eq!(alerts[0]["details"]["blocked_seconds"], 900);
    assert_eq!(alerts[0]["outcome"], "denied");
    assert_eq!(alerts[1]["details"]["scope"], "subject");
    assert_eq!(alerts[1]["actor"], "dave");
    let verdict = rampart::audit::verify::verify_paths(&key, &[dir.path().to_path_buf()], None)
        .expect("verifies");
    assert!(verdict.is_intact());
}

/// The order a service is wired in: a clone goes to the block layer first,
/// then the monitor is configured. The clone is the same monitor: it sees
/// the blocks made through the configured one, on its clock, and the alerts
/// it raises itself reach the auditor.
#[cfg(feature = "audit")]
#[test]
fn configuring_a_monitor_after_cloning_it_configures_every_clone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auditor =
        support::synced_file_auditor(dir.path(), AuditKey::new("k1", vec![4; 32]).expect("key"));
    let monitor = Monitor::new(config(serde_json::json!({"thresholds": {"auth_failure": 2}})));
    let for_the_layer = monitor.clone();
    let clock = FakeClock::new();
    let monitor = monitor.clock(clock.clone()).with_auditor(auditor.clone());
    for _ in 0..2 {
        monitor.observe(Signal::AuthFailure, Some("198.51.100.7"), None);
    }
    assert_eq!(for_the_layer.blocked("198.51.100.7"), Some(Duration::from_secs(900)));
    clock.advance(Duration::from_secs(900));
    assert_eq!(for_the_layer.blocked("198.51.100.7"), None, "the same clock");
    for _ in 0..2 {
        for_the_layer.observe(Signal::AuthFailure, Some("198.51.100.8"), None);
    }
    assert!(monitor.blocked("198.51.100.8").is_some());
    auditor.shutdown(Duration::from_secs(5)).expect("stops");
    let keys: Vec<_> = support::audit_records(dir.path(), "security.alert")
        .into_iter()
        .map(|alert| alert["details"]["key"].clone())
        .collect();
    assert_eq!(keys, ["198.51.100.7", "198.51.100.8"]);
}

#[test]
fn bad_settings_name_their_key() {
    for (json, key) in [
        (serde_json::json!({"window": "a while"}), "monitor.window"),
        (serde_json::json!({"window": "10ms"}), "monitor.window"),
        (serde_json::json!({"block_duration": "30d"}), "monitor.block_duration"),
        (serde_json::json!({"max_tracked": 1}), "monitor.max_tracked"),
        (serde_json::json!({"thresholds": {"auth_failure": 1_000_000}}), "monitor.thresholds"),
    ] {
        let err = MonitorConfig::from_value(json.clone()).expect_err("invalid");
        assert_eq!(err.config_key(), Some(key), "{json}");
        assert!(!err.message().contains("a while"));
    }
}

#[cfg(feature = "http")]
#[tokio::test]
async fn the_http_layer_refuses_a_blocked_client_with_429_and_retry_after() {
    let clock = FakeClock::new();
    let monitor = Monitor::new(config(
        serde_json::json!({"block_duration": "120s", "thresholds": {"auth_failure": 3}}),
    ))
    .clock(clock.clone());
    let watcher = monitor.clone();
    let app = Router::new()
        .route(
            "/login",
            get(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
                let watcher = watcher.clone();
                async move {
                    watcher.observe(Signal::AuthFailure, Some(&peer.ip().to_string()), None);
                    StatusCode::UNAUTHORIZED
                }
            }),
        )
        .layer(BlockLayer::new(monitor.clone()))
        .layer(RenderErrorsLayer::default());
    let (addr, server) = serve(app).await;

    for _ in 0..3 {
        assert!(get_with(addr, "/login", "").await.starts_with("HTTP/1.1 401"));
    }
    let refused = get_with(addr, "/login", "").await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 120"), "{refused}");
    assert!(lower.contains("content-type: application/problem+json"), "{refused}");
    assert!(refused.contains("\"code\":\"CLIENT_BLOCKED\""), "{refused}");
    assert!(refused.contains("\"instance\":\"/login\""), "{refused}");

    clock.advance(Duration::from_secs(120));
    assert!(get_with(addr, "/login", "").await.starts_with("HTTP/1.1 401"), "the block expired");
    server.abort();
}

#[cfg(feature = "http")]
async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    (addr, server)
}

/// An authenticator that knows one API key, named `name`.
#[cfg(all(feature = "http", feature = "auth"))]
fn one_key_authenticator(
    key: &rampart::auth::NewApiKey,
    name: &str,
) -> rampart::auth::Authenticator {
    let config = rampart::auth::AuthConfig::from_value(serde_json::json!({
        "api_keys": [{"id": key.id(), "name": name, "hash": key.hash().to_string()}],
    }))
    .expect("valid");
    rampart::auth::Authenticator::builder(&config).clock(FakeClock::new()).build().expect("auth")
}

#[cfg(feature = "http")]
async fn get_with(addr: SocketAddr, path: &str, header: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{header}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    response
}

/// The attack: one client trying API keys. Nobody calls `observe` by hand:
/// the refusals rendered inside the block layer feed the monitor.
#[cfg(all(feature = "http", feature = "auth"))]
#[tokio::test]
async fn refusals_inside_the_block_layer_feed_the_monitor() {
    use rampart::auth::NewApiKey;
    use rampart::http::auth::AuthLayer;

    let key = NewApiKey::generate().expect("key");
    let auth = one_key_authenticator(&key, "ci");
    let monitor = Monitor::new(config(
        serde_json::json!({"block_duration": "60s", "thresholds": {"auth_failure": 3}}),
    ))
    .clock(FakeClock::new());
    let app = Router::new()
        .route("/me", get(|| async { "hello" }))
        .layer(AuthLayer::new(auth))
        .layer(BlockLayer::new(monitor.clone()));
    let (addr, server) = serve(app).await;

    // Asking without credentials is not an attempt: never blocked for it.
    for _ in 0..5 {
        assert!(get_with(addr, "/me", "").await.starts_with("HTTP/1.1 401"));
    }
    assert_eq!(monitor.blocked("127.0.0.1"), None);
    let good = format!("X-API-Key: {}\r\n", key.expose());
    assert!(get_with(addr, "/me", &good).await.starts_with("HTTP/1.1 200"));

    for n in 0..3 {
        let wrong = format!("X-API-Key: rk_{}_wrong{n}\r\n", key.id());
        assert!(get_with(addr, "/me", &wrong).await.starts_with("HTTP/1.1 401"));
    }
    assert_eq!(monitor.blocked("127.0.0.1"), Some(Duration::from_secs(60)));
    let refused = get_with(addr, "/me", &good).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("\"code\":\"CLIENT_BLOCKED\""), "{refused}");
    server.abort();
}

/// A verified caller probing routes it may not use: its denials count for
/// its subject as well as its address, with no `observe` call by hand.
#[cfg(all(feature = "http", feature = "auth", feature = "audit"))]
#[tokio::test]
async fn denials_after_authentication_count_for_the_subject() {
    use rampart::auth::{NewApiKey, require};
    use rampart::http::auth::{AuthLayer, RequireLayer};

    let key = NewApiKey::generate().expect("key");
    let auth = one_key_authenticator(&key, "svc-reports");
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_key = AuditKey::new("k1", vec![5; 32]).expect("key");
    let auditor = support::synced_file_auditor(dir.path(), audit_key);
    let monitor = Monitor::new(config(serde_json::json!({"thresholds": {"permission_denied": 2}})))
        .clock(FakeClock::new())
        .with_auditor(auditor.clone());
    let app = Router::new()
        .route(
            "/admin",
            get(|| async { "secret" }).layer(RequireLayer::new(require("admin:write"))),
        )
        .layer(AuthLayer::new(auth))
        .layer(BlockLayer::new(monitor.clone()));
    let (addr, server) = serve(app).await;
    let header = format!("X-API-Key: {}\r\n", key.expose());
    for _ in 0..2 {
        assert!(get_with(addr, "/admin", &header).await.starts_with("HTTP/1.1 403"));
    }
    server.abort();
    auditor.shutdown(Duration::from_secs(5)).expect("stops");
    let alerts = support::audit_records(dir.path(), "security.alert");
    let scopes: Vec<&str> = alerts.iter().filter_map(|a| a["details"]["scope"].as_str()).collect();
    assert_eq!(scopes, ["client", "subject"], "{alerts:?}");
    assert_eq!(alerts[1]["actor"], "svc-reports");
    assert_eq!(alerts[1]["details"]["signal"], "permission_denied");
}
