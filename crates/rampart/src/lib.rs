//! # rampart
//!
//! Security and error handling for HTTP services: one error model whose
//! responses never leak internals, and (as the project grows) retries and
//! circuit breakers, input validation, rate limits, authentication, secure
//! configuration, redacting logs and a tamper-evident audit trail, usable as
//! tower layers or as plain calls.
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
//! | feature     | what it adds |
//! |-------------|--------------|
//! | `http`      | tower layers and axum integration ([`http`]), including the validated JSON extractor `Valid<Json<T>>` |
//! | `postgres`  | the PostgreSQL audit sink ([`audit::sink::postgres`]) |
//! | `test-util` | [`clock::FakeClock`](crate::clock) for deterministic tests |
//! | `redis`     | the Redis rate-limit backend ([`ratelimit`]) |

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod handler;
#[cfg(feature = "http")]
pub mod http;
pub mod monitor;
pub mod ratelimit;
pub mod resilience;
pub mod sanitize;
pub mod telemetry;
pub mod validate;

pub use error::{Error, ErrorKind, ResultExt, Severity};
pub use handler::{ErrorHandler, Problem, RequestContext};
