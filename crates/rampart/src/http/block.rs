//! Refusing requests from clients on the monitor's block list, and feeding
//! the monitor with the refusals rendered below: [`BlockLayer`] (why 429
//! and not 403 is said there).

use std::fmt;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use tower::{Layer, Service};

use super::client::client_addr;
use super::response::unlogged;
use super::{RenderedError, ResponseFuture, take_ready};
use crate::client::{Identity, ip_key};
use crate::error::{Error, ErrorKind, code};
use crate::monitor::{Monitor, Signal};

/// Refuses requests from clients on the [`Monitor`]'s block list with 429
/// and `Retry-After` (code `CLIENT_BLOCKED`), rendered by the error handler.
/// Refusals are counted (`rampart_monitor_blocked_requests_total`), not
/// logged one by one: the block itself was logged and audited when it began.
///
/// It also feeds the monitor: every rampart error rendered by the layers
/// and handlers inside it ([`RenderedError`] in the response) is observed
/// for the client: a failed authentication (not a request with no
/// credential at all, nor an old session cookie the server no longer
/// honours), a permission denial, a validation rejection, a rate limit hit,
/// a session cookie that does not open (`SESSION_TAMPERED`). Put it outermost, so a
/// client that keeps failing is blocked without further calls by hand.
/// A refusal made after an [`AuthLayer`](super::auth::AuthLayer) inside it
/// verified the caller also counts for that subject.
///
/// 429 rather than 403: the block is temporary and earned by request
/// behaviour, like a rate limit, and `Retry-After` tells a well-behaved
/// client (or a user behind a shared address) exactly when to come back;
/// 403 reads as a lasting refusal of the resource.
///
/// ```
/// use axum::{Router, routing::get};
/// use rampart::http::BlockLayer;
/// use rampart::monitor::{Monitor, MonitorConfig};
///
/// let monitor = Monitor::new(MonitorConfig::default());
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(BlockLayer::new(monitor));
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct BlockLayer {
    monitor: Monitor,
}

impl fmt::Debug for BlockLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockLayer").field("monitor", &self.monitor).finish_non_exhaustive()
    }
}

impl BlockLayer {
    /// Blocks clients by their address as
    /// [`ClientIpLayer`](super::ClientIpLayer) resolved it, keyed by
    /// [`ip_key`] (IPv6 by its /64). Without a client address every request
    /// is refused with a 500 naming the fix, never let through unchecked.
    pub fn new(monitor: Monitor) -> BlockLayer {
        BlockLayer { monitor }
    }
}

impl<S> Layer<S> for BlockLayer {
    type Service = Block<S>;

    fn layer(&self, inner: S) -> Block<S> {
        Block { inner, monitor: self.monitor.clone() }
    }
}

/// The service [`BlockLayer`] makes.
#[derive(Clone)]
pub struct Block<S> {
    inner: S,
    monitor: Monitor,
}

impl<S> fmt::Debug for Block<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block").field("monitor", &self.monitor).finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Block<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let key = match client_addr(request.extensions()) {
            Ok(ip) => ip_key(ip),
            Err(err) => return Box::pin(async move { Ok(err.into_response()) }),
        };
        if let Some(wait) = self.monitor.blocked(&key) {
            metrics::counter!("rampart_monitor_blocked_requests_total").increment(1);
            let err = Error::rate_limited(wait)
                .with_code(code::CLIENT_BLOCKED)
                .context("the client is on the monitor's block list");
            return Box::pin(async move { Ok(unlogged(err)) });
        }
        let mut inner = take_ready(&mut self.inner);
        let monitor = self.monitor.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let rendered = response.extensions().get::<RenderedError>();
            if let Some(signal) = rendered.and_then(signal_of) {
                let identity = response.extensions().get::<Identity>();
                let subject = identity.and_then(|identity| identity.subject.as_deref());
                monitor.observe(signal, Some(&key), subject);
            }
            Ok(response)
        })
    }
}

/// The signal a refusal rendered below this layer is to the monitor. A
/// request that carried no credential at all is not a failed attempt, and
/// neither is a genuine session cookie the server no longer honours (ended,
/// expired, forgotten): only a cookie that does not open is tampering.
fn signal_of(rendered: &RenderedError) -> Option<Signal> {
    if rendered.code() == code::SESSION_TAMPERED {
        return Some(Signal::TamperedCookie);
    }
    if [code::AUTHENTICATION_REQUIRED, code::SESSION_INVALID, code::SESSION_EXPIRED]
        .contains(&rendered.code())
    {
        return None;
    }
    match rendered.kind() {
        ErrorKind::Authentication => Some(Signal::AuthFailure),
        ErrorKind::Authorization => Some(Signal::PermissionDenied),
        ErrorKind::Validation => Some(Signal::ValidationRejected),
        ErrorKind::RateLimited => Some(Signal::RateLimited),
        _ => None,
    }
}
