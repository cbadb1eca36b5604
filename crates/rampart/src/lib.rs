//! # rampart
//!
//! Security and error handling for HTTP services: one error model whose
//! responses never leak internals, retries and circuit breakers driven by
//! it, input validation that rejects precisely, rate limits that hold across
//! replicas, authentication and permissions, configuration whose secrets
//! cannot be printed, logs that redact credentials by construction, and a
//! tamper-evident audit trail; usable as tower layers or as plain calls.
//!
//! | module | for |
//! |---|---|
//! | [`error`], [`handler`] | the error model; logging once and rendering RFC 9457 problems |
//! | [`resilience`] | retry with backoff and jitter, retry budgets, circuit breaker, timeout, fallback |
//! | [`validate`], [`sanitize`] | rejecting bad input precisely; encoding output |
//! | [`config`] | layered, typed configuration with masked secrets and a production profile |
//! | [`telemetry`] | JSON logs with redaction in the formatter; Prometheus metrics |
//! | [`client`] | who is calling: the client address through trusted proxies, the verified identity |
//! | [`ratelimit`] | GCRA limits in memory or shared through Redis |
//! | [`auth`] | JWTs, API keys, sessions, permissions, lockout (feature `auth`) |
//! | [`audit`], [`monitor`] | the tamper-evident audit trail (feature `audit`); alerts and blocks on suspicious patterns |
//! | `http` | tower layers and axum extractors (feature `http`) |
//! | [`clock`] | injectable time |
//!
//! ```
//! use rampart::error::{Error, FieldViolation};
//! use rampart::handler::{ErrorHandler, RequestContext};
//!
//! fn create_order(quantity: u32) -> Result<u32, Error> {
//!     if quantity == 0 {
//!         return Err(Error::validation("The order is invalid")
//!             .with_violation(FieldViolation::new("/quantity", "range", "must be at least 1")));
//!     }
//!     Ok(quantity)
//! }
//!
//! let err = create_order(0).unwrap_err();
//! let problem = ErrorHandler::default().report(&err, &RequestContext::new().request_id("r-1"));
//! assert_eq!(problem.status().as_u16(), 400);
//! assert_eq!(problem.body()["errors"][0]["pointer"], "/quantity");
//! ```
//!
//! ## Features
//!
//! Additive; the defaults (`http`, `auth`, `audit`, `metrics`, `url`) are what
//! a typical HTTP service needs. With `default-features = false` the error
//! model and the modules above without a feature build alone, with light
//! dependencies.
//!
//! | feature     | default | what it adds |
//! |-------------|---------|--------------|
//! | `http`      | yes | tower layers and axum integration ([`http`]), including the validated JSON extractor `Validated<Json<T>>` |
//! | `auth`      | yes | [`auth`]: JWTs, API keys, sessions, permissions, lockout |
//! | `audit`     | yes | [`audit`]: the audit trail and its file sink |
//! | `metrics`   | yes | the Prometheus recorder ([`telemetry::install_metrics`]) and the `/metrics` response |
//! | `url`       | yes | the URL rule ([`validate::rules::Url`]) |
//! | `schema`    | no  | JSON Schema ([`validate::Schema`]) |
//! | `html`      | no  | the HTML sanitizer ([`sanitize::clean`]) |
//! | `redis`     | no  | the Redis rate-limit backend ([`ratelimit`]) |
//! | `postgres`  | no  | the PostgreSQL audit sink ([`audit::sink::postgres`]; turns on `audit`) |
//! | `test-util` | no  | [`clock::FakeClock`](crate::clock) for deterministic tests |

#[cfg(feature = "audit")]
pub mod audit;
#[cfg(feature = "auth")]
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
#[cfg(feature = "audit")]
mod files;
pub mod handler;
#[cfg(feature = "http")]
pub mod http;
pub mod monitor;
pub mod ratelimit;
pub mod resilience;
pub mod sanitize;
mod sensitive;
mod settings;
pub mod telemetry;
pub mod validate;

pub use error::{Error, ErrorKind, ResultExt, Severity};
pub use handler::{ErrorHandler, Problem, RequestContext};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
