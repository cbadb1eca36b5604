//! The error handler through the public API: what is logged, what is rendered,
//! and that nothing private ever reaches a client.

mod support;

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use rampart::error::{Error, ErrorKind, FieldViolation, ResultExt, Severity};
use rampart::handler::{ErrorFormat, ErrorHandler, RequestContext};
use support::capture_json_logs;

/// A secret-looking string planted in sources, notes and details.
const CANARY: &str = "sk_live_CANARY_9f8e7d6c5b4a";

#[derive(Debug)]
struct Cause {
    message: String,
    source: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

fn leaky_chain() -> Cause {
    Cause {
        message: "payment call failed".into(),
        source: Some(Box::new(Cause {
            message: format!("POST https://api.example.com/charge?key={CANARY} returned 500"),
            source: None,
        })),
    }
}

fn ctx() -> RequestContext {
    RequestContext::new().request_id("req-1").instance("/pay")
}

#[test]
fn internal_errors_never_leak_their_chain_in_any_format() {
    let failing: Result<(), Cause> = Err(leaky_chain());
    let err = failing
        .context(format!("charging card with token {CANARY}"))
        .unwrap_err()
        .with_detail("token", CANARY);
    assert_eq!(err.kind(), ErrorKind::Internal);
    for format in [ErrorFormat::Problem, ErrorFormat::Simple] {
        let problem = ErrorHandler::new(format).render(&err, &ctx());
        let json = problem.to_json();
        assert!(!json.contains(CANARY), "{format:?} leaked: {json}");
        assert!(!json.contains("payment call failed"), "{format:?} leaked: {json}");
        assert!(json.contains("An unexpected error occurred"), "{json}");
        for (_, value) in problem.headers() {
            assert!(!value.to_str().unwrap_or("").contains(CANARY));
        }
    }
}

#[test]
fn a_public_error_with_a_private_source_shows_only_its_own_message() {
    let err = Error::external_service("The payment provider is unavailable")
        .with_source(leaky_chain())
        .context(CANARY);
    let json = ErrorHandler::default().render(&err, &ctx()).to_json();
    assert!(json.contains("The payment provider is unavailable"));
    assert!(!json.contains(CANARY), "{json}");
    assert!(!json.contains("payment call failed"), "{json}");
}

#[test]
fn the_log_record_carries_kind_code_chain_notes_and_request_id() {
    let err = Error::external_service("The payment provider is unavailable")
        .with_source(leaky_chain())
        .with_attempts(3)
        .context("charging order 7");
    let (_, logs) = capture_json_logs(|| ErrorHandler::default().report(&err, &ctx()));
    let lines = logs.json_lines();
    assert_eq!(lines.len(), 1, "{}", logs.text());
    let line = &lines[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["target"], "rampart::error");
    assert_eq!(line["message"], "The payment provider is unavailable");
    assert_eq!(line["kind"], "external_service");
    assert_eq!(line["code"], "EXTERNAL_SERVICE_ERROR");
    assert_eq!(line["severity"], "high");
    assert_eq!(line["status"], 502);
    assert_eq!(line["request_id"], "req-1");
    assert_eq!(line["attempts"], 3);
    assert_eq!(line["context"], "charging order 7");
    let chain = line["chain"].as_str().expect("chain logged");
    assert!(chain.starts_with("payment call failed: POST https://api.example.com"), "{chain}");
}

#[test]
fn each_error_is_logged_once_however_often_it_is_reported() {
    let err = Error::not_found("No order 7");
    let handler = ErrorHandler::default();
    let (_, logs) = capture_json_logs(|| {
        let first = handler.report(&err, &ctx());
        let second = handler.report(&err, &ctx());
        assert_eq!(first, second, "rendering does not depend on logging");
    });
    assert_eq!(logs.json_lines().len(), 1, "{}", logs.text());
}

#[test]
fn log_level_follows_severity_and_privacy() {
    let cases = [
        (Error::validation("bad"), "WARN"),
        (Error::authentication("no token"), "WARN"),
        (Error::unavailable("db down"), "ERROR"),
        (Error::conflict("x").with_severity(Severity::Critical), "ERROR"),
        (Error::internal("bug").with_severity(Severity::Low), "ERROR"),
        (Error::configuration("tls.cert", "missing"), "ERROR"),
    ];
    for (err, level) in cases {
        let (_, logs) = capture_json_logs(|| ErrorHandler::default().report(&err, &ctx()));
        assert_eq!(logs.json_lines()[0]["level"], level, "{err:?}");
    }
}

#[test]
fn validation_problem_lists_every_violation() {
    let err = Error::validation("The order is invalid").with_violations([
        FieldViolation::new("/items/0/qty", "range", "must be at least 1"),
        FieldViolation::new("/email", "email", "is not an email address"),
    ]);
    let problem = ErrorHandler::default().render(&err, &ctx());
    let errors = problem.body()["errors"].as_array().expect("errors listed");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["pointer"], "/items/0/qty");
    assert_eq!(errors[1]["code"], "email");
}

#[test]
fn rate_limit_problem_sets_retry_after() {
    let problem = rampart::handler::report(&Error::rate_limited(Duration::from_secs(30)), &ctx());
    assert_eq!(problem.status().as_u16(), 429);
    let (name, value) = &problem.headers()[0];
    assert_eq!(name, "retry-after");
    assert_eq!(value, "30");
}

#[cfg(feature = "http")]
mod axum_responses {
    use axum::response::IntoResponse;

    use super::*;

    #[tokio::test]
    async fn an_error_returned_by_a_handler_becomes_a_problem_response() {
        let response = Error::rate_limited(Duration::from_secs(5)).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert_eq!(response.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("a body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["code"], "RATE_LIMITED");
    }

    #[tokio::test]
    async fn an_internal_error_response_leaks_nothing() {
        let response = Error::internal(leaky_chain()).into_response();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("a body");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains(CANARY), "{text}");
    }
}
