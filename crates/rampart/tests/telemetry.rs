//! The log formatter through the public API: the shape of each line, span
//! and event fields, redaction, escaping, the filter; and the error metric.

mod support;

use std::sync::Arc;

use rampart::clock::FakeClock;
use rampart::config::{Loader, Section};
use rampart::telemetry::{self, LogFormat, RedactingFormat, Redactor, Settings};
use serde_json::{Value, json};
use support::CapturedLogs;
use tracing_subscriber::layer::SubscriberExt;

fn settings(toml: &str) -> Settings {
    let loaded = Loader::new().toml_text("t.toml", toml).env_vars(None::<(String, String)>);
    loaded.load().expect("valid").into_config().telemetry
}

/// Runs `f` under the telemetry layer and returns what it wrote.
fn capture(settings: &Settings, f: impl FnOnce()) -> CapturedLogs {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::registry().with(telemetry::layer(settings, logs.clone()));
    support::with_subscriber(subscriber, f);
    logs
}

#[test]
fn each_event_is_one_json_line_with_every_documented_key() {
    let clock = FakeClock::new();
    let format =
        RedactingFormat::new(LogFormat::Json, Arc::new(Redactor::default())).clock(clock.clone());
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .fmt_fields(format.fields())
            .event_format(format)
            .with_writer(logs.clone()),
    );
    clock.advance(std::time::Duration::from_micros(1_500_250));
    support::with_subscriber(subscriber, || {
        let outer = tracing::info_span!("request", request_id = "r-1", route = "/a");
        let _o = outer.enter();
        let inner = tracing::info_span!("db", route = "/inner", attempt = tracing::field::Empty);
        let _i = inner.enter();
        inner.record("attempt", 2);
        tracing::warn!(target: "app::orders", user = "bob", count = 3u64, ok = true, ratio = 0.5, "order {} failed", 7);
        tracing::info!(bare = -1i64);
    });
    let lines = logs.json_lines();
    assert_eq!(lines.len(), 2, "{}", logs.text());
    let line = &lines[0];
    assert_eq!(line["timestamp"], "2025-01-01T00:00:01.500250Z");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["target"], "app::orders");
    assert_eq!(line["message"], "order 7 failed");
    assert_eq!(line["module"], "telemetry");
    assert_eq!(line["file"], "crates/rampart/tests/telemetry.rs");
    assert!(line["line"].as_u64().is_some_and(|n| n > 0));
    // Inner spans win over outer ones; values recorded later are kept.
    assert_eq!(line["span"], json!({"request_id": "r-1", "route": "/inner", "attempt": 2}));
    assert_eq!(line["fields"], json!({"user": "bob", "count": 3, "ok": true, "ratio": 0.5}));
    assert!(lines[1].get("message").is_none());
    assert_eq!(lines[1]["fields"], json!({"bare": -1}));
    assert_eq!(logs.text().lines().count(), 2);
}

#[test]
fn sensitive_fields_are_redacted_in_events_and_spans() {
    let s = settings("[telemetry]\nredact_fields = [\"ssn\"]\n");
    let logs = capture(&s, || {
        let span = tracing::info_span!("req", session_id = "sess-1", user_ssn = 123456789u64);
        let _e = span.enter();
        tracing::info!(password = "pw-1", apiKey = 42, authorization = ?"Basic x", safe = "ok", "hi");
    });
    let line = &logs.json_lines()[0];
    assert_eq!(line["span"], json!({"session_id": "[REDACTED]", "user_ssn": "[REDACTED]"}));
    assert_eq!(
        line["fields"],
        json!({"password": "[REDACTED]", "apiKey": "[REDACTED]", "authorization": "[REDACTED]", "safe": "ok"})
    );
}

#[test]
fn credentials_inside_messages_and_values_are_redacted() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZw";
    let logs = capture(&Settings::default(), || {
        let err = std::io::Error::other("auth to postgres://app:pg-secret@db failed");
        tracing::error!(
            note = %format!("client sent {jwt}"),
            header = ?("Authorization", "Bearer tok-1234567890"),
            error = &err as &dyn std::error::Error,
            "retrying with password={} key rk_live_AbC123_secretpart_xy", "pw-2"
        );
    });
    let text = logs.text();
    for secret in [jwt, "tok-1234567890", "pg-secret", "pw-2", "secretpart"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let line = &logs.json_lines()[0];
    assert_eq!(line["message"], "retrying with password=[REDACTED] key [REDACTED]");
    assert_eq!(line["fields"]["note"], "client sent [REDACTED]");
    assert_eq!(line["fields"]["error"], "auth to postgres://app:[REDACTED]@db failed");
}

#[test]
fn text_format_is_one_line_with_control_characters_escaped() {
    let s = settings("[telemetry]\nformat = \"text\"\n");
    let logs = capture(&s, || {
        let span = tracing::info_span!("req", request_id = "r\n9");
        let _e = span.enter();
        tracing::info!(
            user = "eve\u{1b}[2J",
            token = "t",
            "login\r\nINFO forged line \u{9b}31m password=pw-3"
        );
    });
    let text = logs.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.trim_end_matches('\n').chars().any(char::is_control), "{text:?}");
    assert!(
        text.contains(
            " INFO telemetry: login\\r\\nINFO forged line \\u009b31m password=[REDACTED]"
        ),
        "{text}"
    );
    assert!(text.contains("user=\"eve\\u001b[2J\""), "{text}");
    assert!(text.contains("token=[REDACTED]"), "{text}");
    assert!(text.contains("request_id=\"r\\n9\""), "{text}");
}

#[test]
fn json_output_survives_hostile_values() {
    let logs = capture(&Settings::default(), || {
        tracing::info!(v = "\"}{\"level\":\"ERROR\"\n\u{0}", "\u{2028}\\");
    });
    let lines = logs.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["fields"]["v"], "\"}{\"level\":\"ERROR\"\n\u{0}");
    assert_eq!(lines[0]["level"], "INFO");
}

#[test]
fn the_filter_selects_events() {
    let s = settings("[telemetry]\nfilter = \"warn,app::chatty=debug\"\n");
    let logs = capture(&s, || {
        tracing::info!(target: "app::quiet", "dropped");
        tracing::warn!(target: "app::quiet", "kept");
        tracing::debug!(target: "app::chatty", "kept too");
    });
    let messages: Vec<Value> = logs.json_lines().iter().map(|l| l["message"].clone()).collect();
    assert_eq!(messages, [json!("kept"), json!("kept too")]);
    assert!(Settings::from_value(json!({})).is_ok());
    let bad = Loader::new().toml_text("t.toml", "[telemetry]\nfilter = \"info,app=loud\"\n");
    let err = bad.env_vars(None::<(String, String)>).load().expect_err("a bad filter");
    assert_eq!(err.problems()[0].config_key(), Some("telemetry.filter"));
}

#[cfg(feature = "metrics")]
#[test]
fn the_handler_logs_through_the_formatter_and_counts_errors() {
    use rampart::handler::{ErrorHandler, RequestContext};

    let (recorder, metrics) = telemetry::local_recorder();
    let logs = metrics::with_local_recorder(&recorder, || {
        capture(&Settings::default(), || {
            let handler = ErrorHandler::default();
            let ctx = RequestContext::new().request_id("r-7");
            handler.report(&rampart::Error::not_found("no order"), &ctx);
            handler.report(&rampart::Error::not_found("no order"), &ctx);
            let leak = std::io::Error::other("login failed: password=pw-4");
            handler.report(&rampart::Error::internal(leak), &ctx);
        })
    });
    let lines = logs.json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["target"], "rampart::error");
    assert_eq!(lines[0]["fields"]["request_id"], "r-7");
    assert_eq!(lines[2]["fields"]["chain"], "login failed: password=[REDACTED]");
    let text = metrics.render();
    assert!(
        text.contains("rampart_errors_total{kind=\"not_found\",code=\"NOT_FOUND\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("rampart_errors_total{kind=\"internal\",code=\"INTERNAL_ERROR\"} 1"),
        "{text}"
    );
}

#[test]
fn development_warnings_are_logged_with_their_key() {
    let loaded = Loader::new()
        .toml_text("t.toml", "[rate_limit]\nenabled = false\n")
        .env_vars(None::<(String, String)>);
    let loaded = loaded.load().expect("loads in development");
    let logs = capture(&Settings::default(), || loaded.log_warnings());
    let keys: Vec<Value> =
        logs.json_lines().iter().map(|l| l["fields"]["config_key"].clone()).collect();
    assert_eq!(keys, [json!("secret_key"), json!("rate_limit.enabled"), json!("tls")]);
    let line = &logs.json_lines()[1];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["target"], "rampart::config");
    assert_eq!(
        line["message"],
        "insecure setting tolerated in development: is false: rate limiting is off (t.toml:2)"
    );
}
