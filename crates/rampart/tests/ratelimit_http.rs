//! The rate-limit layer over real sockets: the RateLimit fields, 429 with
//! Retry-After, forwarding headers believed only from trusted proxies,
//! route keys, shadow mode, and a fail-closed backend.
#![cfg(feature = "http")]
// Helpers outside #[test] fns too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rampart::client::ProxySettings;
use rampart::config::Section;
use rampart::http::{ClientIpLayer, RateLimitLayer};
use rampart::ratelimit::key::KeyPart;
use rampart::ratelimit::{MemoryLimiter, Quota};
use support::http::{Reply, send, serve};

async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, "GET", path, headers, "").await
}

fn app(layer: RateLimitLayer<MemoryLimiter>) -> Router {
    Router::new()
        .route("/orders", get(|| async { "ok" }))
        .route("/orders/{id}", get(|| async { "one" }))
        .layer(layer)
}

fn three_per_minute() -> MemoryLimiter {
    MemoryLimiter::new(Quota::new(3, Duration::from_secs(60)).unwrap())
}

#[tokio::test]
async fn responses_carry_the_ratelimit_fields_and_a_denial_is_429_with_retry_after() {
    let addr = serve(app(RateLimitLayer::new(three_per_minute()).name("api").unwrap()), true).await;
    let first = get_with(addr, "/orders", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-policy").unwrap(), "\"api\";q=3;w=60");
    assert_eq!(first.header("ratelimit").unwrap(), "\"api\";r=2;t=20");
    get_with(addr, "/orders", &[]).await;
    let third = get_with(addr, "/orders", &[]).await;
    assert_eq!(third.header("ratelimit").unwrap(), "\"api\";r=0;t=60");
    let denied = get_with(addr, "/orders", &[]).await;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.header("retry-after").unwrap(), "20");
    assert_eq!(denied.header("ratelimit").unwrap(), "\"api\";r=0;t=60");
    assert_eq!(denied.header("content-type").unwrap(), "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["retry_after"], 20.0);
}

#[tokio::test]
async fn attack_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_buy_fresh_buckets() {
    // No trusted proxies: the socket peer (127.0.0.1) is the key whatever
    // the client claims.
    let addr = serve(app(RateLimitLayer::new(three_per_minute())), true).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let spoof = format!("198.51.100.{i}");
        let forwarded = format!("for={spoof}");
        let reply = get_with(
            addr,
            "/orders",
            &[("X-Forwarded-For", &spoof), ("Forwarded", &forwarded), ("X-Real-IP", &spoof)],
        )
        .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket_and_cannot_prepend_its_way_out() {
    let layer = RateLimitLayer::new(three_per_minute());
    let proxies = ProxySettings::new(vec!["127.0.0.0/8".parse().unwrap()], Default::default());
    let addr = serve(app(layer).layer(ClientIpLayer::new(proxies)), true).await;
    for _ in 0..3 {
        assert_eq!(
            get_with(addr, "/orders", &[("X-Forwarded-For", "198.51.100.7")]).await.status,
            200
        );
    }
    // The same client, now prepending invented hops: our proxy appended its
    // real address last, and that is what counts.
    for fake in ["1.1.1.1", "2.2.2.2, 3.3.3.3"] {
        let chain = format!("{fake}, 198.51.100.7");
        let reply = get_with(addr, "/orders", &[("X-Forwarded-For", &chain)]).await;
        assert_eq!(reply.status, 429, "{chain}");
    }
    // Another client behind the same proxy is unaffected.
    assert_eq!(get_with(addr, "/orders", &[("X-Forwarded-For", "198.51.100.8")]).await.status, 200);
}

#[tokio::test]
async fn route_keys_use_the_route_template_not_the_raw_path() {
    let layer = RateLimitLayer::new(three_per_minute()).key(vec![KeyPart::Ip, KeyPart::Route]);
    let addr = serve(app(layer), true).await;
    let mut statuses = Vec::new();
    for id in 1..=4 {
        statuses.push(get_with(addr, &format!("/orders/{id}"), &[]).await.status);
    }
    // Varying the id does not make a new bucket; another route has its own.
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(get_with(addr, "/orders", &[]).await.status, 200);
}

#[test]
fn shadow_mode_lets_everything_through_and_logs_what_it_would_have_refused() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (statuses, logs) = support::capture_json_logs(|| {
        rt.block_on(async {
            let quota = Quota::new(1, Duration::from_secs(60)).unwrap();
            let layer = RateLimitLayer::new(MemoryLimiter::new(quota)).shadow(true);
            let addr = serve(app(layer), true).await;
            let mut statuses = Vec::new();
            for _ in 0..3 {
                let reply = get_with(addr, "/orders", &[]).await;
                assert!(reply.header("ratelimit").is_none(), "no fields in shadow mode");
                statuses.push(reply.status);
            }
            statuses
        })
    });
    assert_eq!(statuses, [200, 200, 200]);
    let shadow_lines = logs
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["target"] == "rampart::ratelimit"
                && l["message"].as_str().unwrap_or("").contains("shadow")
        })
        .count();
    assert_eq!(shadow_lines, 2, "one line per request that would have been refused");
}

#[tokio::test]
async fn without_the_peer_address_an_ip_key_is_a_configuration_error_not_a_shared_bucket() {
    use tower::ServiceExt;
    let app = app(RateLimitLayer::new(three_per_minute()));
    let request = http::Request::get("/orders").body(axum::body::Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn fail_closed_answers_503_with_retry_after_when_redis_is_unreachable() {
    use rampart::ratelimit::{FailurePolicy, RedisLimiter};
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let limiter = RedisLimiter::builder(
        &format!("redis://127.0.0.1:{port}"),
        Quota::new(3, Duration::from_secs(60)).unwrap(),
    )
    .timeout(Duration::from_millis(200))
    .probe_interval(Duration::from_secs(2))
    .failure_policy(FailurePolicy::FailClosed)
    .build()
    .unwrap();
    let app =
        Router::new().route("/orders", get(|| async { "ok" })).layer(RateLimitLayer::new(limiter));
    let addr = serve(app, true).await;
    let reply = get_with(addr, "/orders", &[]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after").unwrap(), "2");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["code"], "RATE_LIMIT_UNAVAILABLE");
}

#[test]
fn configuring_a_clone_leaves_the_original_as_it_was() {
    let original = RateLimitLayer::new(three_per_minute());
    let shadowed = original.clone().shadow(true);
    assert!(format!("{original:?}").contains("shadow: false"));
    assert!(format!("{shadowed:?}").contains("shadow: true"));
}

/// Keyed by subject inside the auth layer: each verified caller has its own
/// bucket, even from one address.
#[cfg(feature = "auth")]
#[tokio::test]
async fn inside_the_auth_layer_a_subject_key_counts_each_verified_caller() {
    use rampart::auth::{AuthConfig, Authenticator, NewApiKey};
    use rampart::http::auth::AuthLayer;

    let (a, b) = (NewApiKey::generate().unwrap(), NewApiKey::generate().unwrap());
    let config = AuthConfig::from_value(serde_json::json!({"api_keys": [
        {"id": a.id(), "name": "alice", "hash": a.hash().to_string()},
        {"id": b.id(), "name": "bob", "hash": b.hash().to_string()},
    ]}))
    .unwrap();
    let auth = Authenticator::new(&config).unwrap();
    let limited = RateLimitLayer::new(three_per_minute()).key(vec![KeyPart::Subject]);
    let addr = serve(app(limited).layer(AuthLayer::new(auth)), true).await;

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get_with(addr, "/orders", &[("x-api-key", a.expose())]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429], "alice's own bucket");
    let bob = get_with(addr, "/orders", &[("x-api-key", b.expose())]).await;
    assert_eq!(bob.status, 200, "bob, from the same address, has his");
    assert_eq!(bob.header("ratelimit").unwrap(), "\"default\";r=2;t=20");
}

/// `rate_limit.enabled = false`: the layer built from the section limits
/// nothing and adds no fields.
#[tokio::test]
async fn a_disabled_section_builds_a_layer_that_limits_nothing() {
    let settings = rampart::ratelimit::RateLimitSettings::from_value(serde_json::json!({
        "enabled": false, "requests": 1, "window": "60s"
    }))
    .unwrap();
    let layer = RateLimitLayer::from_settings(&settings).unwrap();
    let addr =
        serve(Router::new().route("/orders", get(|| async { "ok" })).layer(layer), true).await;
    for _ in 0..3 {
        let reply = get_with(addr, "/orders", &[]).await;
        assert_eq!(reply.status, 200, "one request a minute would refuse the second");
        assert!(reply.header("ratelimit").is_none());
        assert!(reply.header("ratelimit-policy").is_none());
    }
}

/// A name the settings refuse is an error from the builder too, never
/// silently replaced by `default`.
#[test]
fn an_invalid_policy_name_is_an_error() {
    let too_long = "x".repeat(65);
    for name in ["", "a\"b", "two words", "caf\u{e9}", too_long.as_str()] {
        let err = RateLimitLayer::new(three_per_minute()).name(name).unwrap_err();
        assert_eq!(err.config_key(), Some("rate_limit.name"), "{name:?}");
    }
    assert!(RateLimitLayer::new(three_per_minute()).name("api-v1.orders_2").is_ok());
}
