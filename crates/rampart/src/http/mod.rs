//! tower and axum integration (feature `http`).
//!
//! Every failure becomes a response through the [error handler](crate::handler):
//! an axum handler may return `Result<T, rampart::Error>`. The extractor
//! `Validated<Json<T>>` reads a JSON body within limits and validates it
//! (see [`JsonBodyConfig`]).
//!
//! ```
//! use axum::{Router, routing::get};
//! use rampart::Error;
//!
//! async fn order() -> Result<String, Error> {
//!     Err(Error::not_found("No order 7"))
//! }
//!
//! let app: Router = Router::new().route("/orders/7", get(order));
//! # let _ = app;
//! ```

#[cfg(feature = "auth")]
pub mod auth;
mod block;
mod client;
mod ratelimit;
mod response;
mod valid;

pub use block::{BlockLayer, BlockService};
pub use client::{ClientIp, ClientIpLayer};
pub use ratelimit::{RATELIMIT, RATELIMIT_POLICY, RateLimit, RateLimitLayer};
pub use response::RenderedError;
pub use valid::JsonBodyConfig;
