//! The request id: what ties a client's problem response to the server's
//! log lines ([`RequestId`], set by [`RequestIdLayer`]).
//!
//! ```
//! use rampart::http::RequestId;
//!
//! assert_eq!(RequestId::parse("req-7f3a").map(|id| id.to_string()).as_deref(), Some("req-7f3a"));
//! // Only short, safe ids are taken from a client: no spaces, quotes or CR/LF
//! // that could forge a log line or a header.
//! assert!(RequestId::parse("a b").is_none());
//! assert!(RequestId::parse(&"x".repeat(129)).is_none());
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use http::{HeaderValue, Request};
use tower::{Layer, Service};
use tracing::Instrument;

use super::{ResponseFuture, take_ready};

/// The header a request id travels in.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest request id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: 1 to [`MAX_REQUEST_ID_LEN`] ASCII letters, digits, `-`,
/// `_`, `.` and `:`. As a request extension it is the request's id for
/// every layer and log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// `text` as a request id, if it is a well-formed one.
    pub fn parse(text: &str) -> Option<RequestId> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        let well_formed = (1..=MAX_REQUEST_ID_LEN).contains(&text.len()) && text.bytes().all(safe);
        well_formed.then(|| RequestId(Arc::from(text)))
    }

    /// A new random id: 128 bits as 32 hex digits.
    fn fresh() -> RequestId {
        RequestId(Arc::from(format!("{:032x}", fastrand::u128(..)).as_str()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of `request`: the [`RequestId`] extension a layer set, or a
    /// well-formed `X-Request-Id` header.
    pub(crate) fn of<B>(request: &Request<B>) -> Option<RequestId> {
        if let Some(id) = request.extensions().get::<RequestId>() {
            return Some(id.clone());
        }
        let header = request.headers().get(REQUEST_ID)?.to_str().ok()?;
        RequestId::parse(header)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives every request an id: a well-formed incoming `X-Request-Id` is
/// kept, anything else is replaced by a fresh random one. The id goes in
/// the request extensions ([`RequestId`]), in a `request` span around
/// everything inside (so every log line carries `request_id`), in problem
/// bodies (through [`RenderErrorsLayer`](super::RenderErrorsLayer)) and in
/// the response's `X-Request-Id`. Install it outermost.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = WithRequestId<S>;

    fn layer(&self, inner: S) -> WithRequestId<S> {
        WithRequestId { inner }
    }
}

/// The service [`RequestIdLayer`] makes.
#[derive(Debug, Clone)]
pub struct WithRequestId<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for WithRequestId<S>
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = RequestId::of(&request).unwrap_or_else(RequestId::fresh);
        let header = HeaderValue::from_str(id.as_str()).ok();
        if let Some(header) = &header {
            request.headers_mut().insert(REQUEST_ID, header.clone());
        }
        let span = tracing::info_span!("request", request_id = id.as_str());
        request.extensions_mut().insert(id);
        let mut inner = take_ready(&mut self.inner);
        Box::pin(
            async move {
                let mut response = inner.call(request).await?;
                if let Some(header) = header {
                    response.headers_mut().insert(REQUEST_ID, header);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
