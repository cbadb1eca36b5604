//! Where the layers meet, over real sockets: one client address for every
//! layer that keys on the client, the same refusal from each when there is
//! none, and one renderer for every refusal and every handler error.
#![cfg(feature = "http")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use garde::Validate;
use rampart::Error;
use rampart::auth::{AuthConfig, Authenticator, Lockout, NewApiKey, Principal, require};
use rampart::client::{ForwardedHeader, ProxySettings};
use rampart::config::Section;
use rampart::handler::{ErrorFormat, ErrorHandler};
use rampart::http::auth::{AuthLayer, RequireLayer};
use rampart::http::{BlockLayer, ClientIpLayer, RateLimitLayer, RenderErrorsLayer, RequestIdLayer};
use rampart::monitor::{Monitor, MonitorConfig};
use rampart::ratelimit::key::KeyPart;
use rampart::ratelimit::{MemoryLimiter, Quota};
use rampart::validate::Validated;
use serde::Deserialize;
use serde_json::json;
use support::http::{Reply, send, serve};
use tower::ServiceBuilder;

#[derive(Deserialize, Validate)]
struct NewOrder {
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
}

async fn me(principal: Principal) -> String {
    principal.subject().to_owned()
}

async fn order(_: Principal, order: Validated<Json<NewOrder>>) -> String {
    order.quantity.to_string()
}

async fn missing() -> Result<String, Error> {
    Err(Error::not_found("No order 7"))
}

/// Everything in front of a router, in the documented order: the renderer,
/// the client address (127.0.0.0/8 is the trusted proxy, so each test picks
/// its client with X-Forwarded-For), the block list, authentication with
/// lockout, a rate limit of 5 a minute per client.
fn stack(format: ErrorFormat) -> (Router, NewApiKey) {
    let key = NewApiKey::generate().expect("key");
    let config = AuthConfig::from_value(json!({
        "api_keys": [{"id": key.id(), "name": "app", "hash": key.hash().to_string(),
                      "permissions": ["orders:read"]}],
        "lockout": {"max_failures": 3, "window": "1m", "base_lockout": "30s"},
    }))
    .expect("valid");
    let auth = Authenticator::new(&config).expect("auth");
    let lockout = Arc::new(Lockout::memory(config.lockout()).expect("lockout"));
    let thresholds = json!({"thresholds": {"permission_denied": 2}});
    let monitor = Monitor::new(MonitorConfig::from_value(thresholds).expect("monitor"));
    let limiter = MemoryLimiter::new(Quota::new(5, Duration::from_secs(60)).expect("quota"));
    let proxies = ProxySettings::new(
        vec!["127.0.0.0/8".parse().expect("net")],
        ForwardedHeader::XForwardedFor,
    );
    let app = Router::new()
        .route("/me", get(me))
        .route("/orders", post(order).layer(RequireLayer::new(require("orders:write"))))
        .route("/orders/7", get(missing))
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer)
                .layer(RenderErrorsLayer::new(ErrorHandler::new(format)))
                .layer(ClientIpLayer::new(proxies))
                .layer(BlockLayer::new(monitor))
                .layer(AuthLayer::new(auth).lockout(lockout))
                .layer(RateLimitLayer::new(limiter).key(vec![KeyPart::Ip])),
        );
    (app, key)
}

/// The simple form, with the request id the client sent.
fn assert_simple(reply: &Reply, status: u16, code: &str, request_id: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"), "{reply:?}");
    let body = reply.json();
    assert_eq!(body["error"], true, "{body}");
    assert_eq!(body["type"], code, "{body}");
    assert_eq!(body["request_id"], request_id, "{body}");
    assert!(body.get("title").is_none() && body.get("status").is_none(), "problem members: {body}");
}

/// Finding: with `error_format = "simple"`, 401/403/400 stayed
/// problem+json while 429 switched. Every refusal, from every layer and
/// from the handler, now answers in the one configured format with the
/// request id.
#[tokio::test]
async fn every_refusal_answers_in_the_configured_format_with_the_request_id() {
    let (app, key) = stack(ErrorFormat::Simple);
    let addr = serve(app, true).await;
    let client = |n: u8| format!("198.51.100.{n}");
    let secret = key.expose().to_owned();
    let wrong = support::guessed_api_key(&key, 0);
    // method, path, body, client, headers, status, code
    type Case<'a> = (&'a str, &'a str, &'a str, u8, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/me", "", 1, vec![], 401, "AUTHENTICATION_REQUIRED"),
        ("GET", "/me", "", 2, vec![("x-api-key", &wrong)], 401, "API_KEY_INVALID"),
        ("POST", "/orders", "{}", 3, vec![("x-api-key", &secret)], 403, "PERMISSION_DENIED"),
        ("GET", "/orders/7", "", 4, vec![("x-api-key", &secret)], 404, "NOT_FOUND"),
    ];
    for (i, (method, path, body, n, mut headers, status, code)) in cases.into_iter().enumerate() {
        let id = format!("case-{i}");
        let ip = client(n);
        headers.extend([("x-request-id", id.as_str()), ("x-forwarded-for", ip.as_str())]);
        let reply = send(addr, method, path, &headers, body).await;
        assert_simple(&reply, status, code, &id);
    }
    // The rate limit's 429 (5 a minute for client 5; the 6th is refused).
    let ip = client(5);
    let headers = [("x-api-key", secret.as_str()), ("x-forwarded-for", ip.as_str())];
    for _ in 0..5 {
        assert_eq!(send(addr, "GET", "/me", &headers, "").await.status, 200);
    }
    let limited = [headers[0], headers[1], ("x-request-id", "limited")];
    let reply = send(addr, "GET", "/me", &limited, "").await;
    assert_simple(&reply, 429, "RATE_LIMITED", "limited");
    assert!(reply.header("retry-after").is_some() && reply.header("ratelimit").is_some());
    // The block list's 429: two permission denials block client 6.
    let ip = client(6);
    let headers = [("x-api-key", secret.as_str()), ("x-forwarded-for", ip.as_str())];
    for _ in 0..2 {
        assert_eq!(send(addr, "POST", "/orders", &headers, "{}").await.status, 403);
    }
    let blocked = [headers[0], headers[1], ("x-request-id", "blocked")];
    let reply = send(addr, "GET", "/me", &blocked, "").await;
    assert_simple(&reply, 429, "CLIENT_BLOCKED", "blocked");
}

/// The problem form carries the request id and the path as `instance`,
/// whichever layer refused; an id the client did not send, or sent
/// malformed, is made fresh, and the response names it too.
#[tokio::test]
async fn the_problem_form_names_the_request_and_its_path() {
    let (app, _key) = stack(ErrorFormat::Problem);
    let addr = serve(app, true).await;
    let reply = send(addr, "GET", "/me?x=1", &[("x-request-id", "r-1")], "").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.header("x-request-id"), Some("r-1"));
    let body = reply.json();
    assert_eq!(
        (body["request_id"].as_str(), body["instance"].as_str()),
        (Some("r-1"), Some("/me"))
    );
    // None sent, or one that could forge a log line or a header: a fresh one.
    let too_long = "r".repeat(129);
    for sent in [None, Some("r 1\""), Some("{\"level\":\"ERROR\"}"), Some(too_long.as_str())] {
        let headers: Vec<(&str, &str)> = sent.map(|id| ("x-request-id", id)).into_iter().collect();
        let reply = send(addr, "GET", "/me", &headers, "").await;
        let id = reply.json()["request_id"].as_str().map(str::to_owned).expect("an id");
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(reply.header("x-request-id"), Some(id.as_str()));
    }
}

/// The error log line of a request carries its id, whichever layer or
/// handler logged it.
#[test]
fn the_error_log_line_carries_the_request_id() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let ((), logs) = support::capture_json_logs(|| {
        runtime.block_on(async {
            let (app, key) = stack(ErrorFormat::Problem);
            let addr = serve(app, true).await;
            let headers = [("x-request-id", "find-me"), ("x-api-key", key.expose())];
            assert_eq!(send(addr, "GET", "/orders/7", &headers, "").await.status, 404);
        });
    });
    let line = logs.json_lines().into_iter().find(|line| line["code"] == "NOT_FOUND");
    let line = line.unwrap_or_else(|| panic!("no log line: {}", logs.text()));
    assert_eq!(line["span"]["request_id"], "find-me", "{line}");
}

/// One client address behind a trusted proxy, read by every layer: the
/// guesser's forwarded address is locked out, rate limited and blocked,
/// and the next client behind the same proxy is not.
#[tokio::test]
async fn every_layer_keys_on_the_one_resolved_client() {
    let (app, key) = stack(ErrorFormat::Problem);
    let addr = serve(app, true).await;
    let secret = key.expose().to_owned();
    let guesser = [("x-forwarded-for", "203.0.113.9")];
    let mut refused = Vec::new();
    for n in 0..5 {
        let guess = support::guessed_api_key(&key, n);
        let headers = [guesser[0], ("x-api-key", guess.as_str())];
        refused.push(send(addr, "GET", "/me", &headers, "").await.status);
    }
    assert_eq!(refused, [401, 401, 401, 401, 429], "failing past max_failures locks the guesser");
    // The guesser is locked out, even with the right key...
    let headers = [guesser[0], ("x-api-key", secret.as_str())];
    let reply = send(addr, "GET", "/me", &headers, "").await;
    assert_eq!((reply.status, reply.json()["code"].as_str()), (429, Some("AUTH_LOCKED_OUT")));
    // ...while the holder, behind the same proxy, is not.
    let holder = [("x-forwarded-for", "203.0.113.10"), ("x-api-key", secret.as_str())];
    assert_eq!(send(addr, "GET", "/me", &holder, "").await.status, 200);
}

/// Finding: without `ConnectInfo`, rate limiting answered 500 while lockout
/// and the block list silently did nothing. Each layer that keys on the
/// client now refuses the same way, and the log says how to fix it.
#[test]
fn without_a_client_address_each_client_keyed_layer_refuses_the_same_way() {
    let limiter = || MemoryLimiter::new(Quota::new(5, Duration::from_secs(60)).expect("quota"));
    let monitor = Monitor::new(MonitorConfig::default());
    let (with_auth, key) = stack(ErrorFormat::Problem);
    let apps = [
        (
            "rate limit",
            Router::new().route("/", get(|| async { "ok" })).layer(RateLimitLayer::new(limiter())),
        ),
        (
            "block list",
            Router::new().route("/", get(|| async { "ok" })).layer(BlockLayer::new(monitor)),
        ),
        ("lockout", with_auth),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    for (layer, app) in apps {
        let (reply, logs) = support::capture_json_logs(|| {
            runtime.block_on(async {
                let addr = serve(app, false).await;
                let path = if layer == "lockout" { "/me" } else { "/" };
                send(addr, "GET", path, &[("x-api-key", key.expose())], "").await
            })
        });
        assert_eq!(reply.status, 500, "{layer}: {}", reply.body);
        assert_eq!(reply.json()["code"], "CONFIGURATION_ERROR", "{layer}");
        assert!(
            !reply.body.contains("connect_info"),
            "{layer}: the fix is for the log, not the client"
        );
        let fix = logs.json_lines().into_iter().any(|line| {
            line["level"] == "ERROR"
                && line["config_key"] == "proxy"
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("into_make_service_with_connect_info"))
        });
        assert!(fix, "{layer}: {}", logs.text());
    }
}
