//! tower and axum integration (feature `http`).
//!
//! Each layer is one concept, shaped as tower-http's are (`XLayer`, its
//! service `X<S>`, the shared [`ResponseFuture`]); inner errors pass
//! through untouched. Put them in this order, outermost first:
//!
//! 1. [`RequestIdLayer`]: every request gets an id, in the logs (its span)
//!    and the response;
//! 2. [`RenderErrorsLayer`]: renders every error response inside it in the
//!    configured format, with the request id and `instance`;
//! 3. [`ClientIpLayer`]: who is calling, resolved once through the trusted
//!    proxies and read by every layer below;
//! 4. [`BlockLayer`]: refuses clients on the monitor's block list, and feeds
//!    the monitor with every refusal below;
//! 5. [`AuthLayer`](auth::AuthLayer) (with its lockout): the verified
//!    principal and identity;
//! 6. [`RateLimitLayer`]: counted per client, API key, subject or route;
//! 7. per route: [`RequireLayer`](auth::RequireLayer) and the validated
//!    body `Validated<Json<T>>` (see [`JsonBodyConfig`]).
//!
//! Every refusal is a [`rampart::Error`](crate::Error), and so is anything a
//! handler returns as `Result<T, rampart::Error>`: one renderer answers for
//! all of them.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use rampart::Error;
//! use rampart::client::ProxySettings;
//! use rampart::handler::ErrorHandler;
//! use rampart::http::{ClientIpLayer, RateLimitLayer, RenderErrorsLayer};
//! use rampart::ratelimit::{MemoryLimiter, Quota};
//! use tower::ServiceBuilder;
//!
//! async fn order() -> Result<String, Error> {
//!     Err(Error::not_found("No order 7"))
//! }
//!
//! let limiter = MemoryLimiter::new(Quota::new(100, Duration::from_secs(60))?);
//! let app: Router = Router::new().route("/orders/7", get(order)).layer(
//!     ServiceBuilder::new()
//!         .layer(RenderErrorsLayer::new(ErrorHandler::default()))
//!         .layer(ClientIpLayer::new(ProxySettings::default()))
//!         .layer(RateLimitLayer::new(limiter)),
//! );
//! # let _ = app;
//! # Ok::<(), Error>(())
//! ```

#[cfg(feature = "auth")]
pub mod auth;
mod block;
mod client;
mod ratelimit;
mod request_id;
mod response;
mod valid;

use std::future::Future;
use std::pin::Pin;

use axum::response::Response;

pub use block::{Block, BlockLayer};
pub use client::{ClientIp, ClientIpLayer};
pub use ratelimit::{RATELIMIT, RATELIMIT_POLICY, RateLimit, RateLimitLayer};
pub use request_id::{MAX_REQUEST_ID_LEN, REQUEST_ID, RequestId, RequestIdLayer, WithRequestId};
pub use response::{RenderErrors, RenderErrorsLayer, RenderedError};
pub use valid::JsonBodyConfig;

/// The response future of rampart's layers whose decision may wait (on a
/// limiter, a lockout, the inner service's response): one boxed type for
/// all of them.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// Takes the inner service that was polled ready, leaving a clone in its
/// place: the ready one must serve this call (tower's `poll_ready`
/// contract), and the future that calls it outlives `&mut self`.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
