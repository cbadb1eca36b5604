//! The error handler at work: a few failures a service meets, each logged once
//! (on stderr, with its private chain) and rendered as the client sees it (on
//! stdout, with nothing private in it).
//!
//! Run: `cargo run --example error_handler`

use std::time::Duration;

use rampart::error::{Error, FieldViolation, ResultExt};
use rampart::handler::{ErrorFormat, ErrorHandler, Problem, RequestContext};

fn load_price_list() -> Result<String, Error> {
    // A foreign error with something sensitive in it: the client must never see it.
    let io = std::io::Error::other("connect to postgres://billing:s3cr3t@10.0.0.5/prices refused");
    Err(io).context("loading the price list")
}

fn print(title: &str, problem: &Problem) {
    println!("--- {title}");
    println!("HTTP/1.1 {}", problem.status());
    println!("content-type: {}", problem.content_type());
    for (name, value) in problem.headers() {
        println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    println!();
    println!("{}\n", serde_json::to_string_pretty(problem.body()).unwrap_or_default());
}

fn main() {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();

    let handler = ErrorHandler::default();
    let ctx = RequestContext::new().request_id("req-7f3a").instance("/orders");

    let invalid = Error::validation("The order is invalid").with_violations([
        FieldViolation::new("/quantity", "range", "must be between 1 and 100"),
        FieldViolation::new("/email", "email", "is not an email address"),
    ]);
    print("a validation error (400)", &handler.report(&invalid, &ctx));

    print(
        "a missing permission (403)",
        &handler.report(&Error::authorization(["orders:write"]), &ctx),
    );

    print(
        "a rate limit (429, with Retry-After)",
        &handler.report(&Error::rate_limited(Duration::from_millis(2500)), &ctx),
    );

    let internal = load_price_list().expect_err("the example fails on purpose");
    print(
        "an internal error (500): the log has the chain, the client only a generic sentence",
        &handler.report(&internal, &ctx),
    );

    let simple = ErrorHandler::new(ErrorFormat::Simple);
    print(
        "the simple format",
        &simple.report(&Error::not_found("No order 7"), &RequestContext::new()),
    );
}
