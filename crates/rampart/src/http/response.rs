//! One renderer for every error response: [`RenderErrorsLayer`].
//!
//! Every rampart refusal and every [`Error`] a handler returns becomes a
//! response through `IntoResponse for Error`, which logs the error once (in
//! the request's span, so the log line carries its request id) and marks
//! the response with a [`RenderedError`]. [`RenderErrorsLayer`], installed
//! outermost, renders each marked response again with the configured
//! [`ErrorHandler`] (problem+json or the simple form, the problem `type`
//! base) and the request's context (request id, `instance`), so a 401 from
//! authentication, a 429 from the rate limit and a 400 from a handler all
//! come out in one format. Without the layer, errors render in the default
//! problem form with no request context.
//!
//! ```
//! use axum::{Router, routing::get};
//! use rampart::Error;
//! use rampart::handler::{ErrorFormat, ErrorHandler};
//! use rampart::http::RenderErrorsLayer;
//!
//! async fn order() -> Result<String, Error> {
//!     Err(Error::not_found("No order 7"))
//! }
//!
//! // `error_format = "simple"` in the configuration:
//! let app: Router = Router::new()
//!     .route("/orders/7", get(order))
//!     .layer(RenderErrorsLayer::new(ErrorHandler::new(ErrorFormat::Simple)));
//! # let _ = app;
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use super::request_id::RequestId;
use super::{ResponseFuture, take_ready};
use crate::error::{Code, Error, ErrorKind};
use crate::handler::{ErrorHandler, Problem, RequestContext, report};

/// Marks a response that renders a rampart error (in its extensions), so
/// layers further out see what was refused without reading the body:
/// [`BlockLayer`](super::BlockLayer) feeds the monitor from it, and
/// [`RenderErrorsLayer`] renders it in the configured format.
#[derive(Debug, Clone)]
pub struct RenderedError {
    kind: ErrorKind,
    code: Code,
    error: Option<Arc<Error>>,
}

impl RenderedError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's code.
    pub fn code(&self) -> Code {
        self.code
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let rendered = RenderedError { kind: self.kind(), code: self.code(), error: None };
        let mut response = (self.status(), self.to_json()).into_response();
        write_problem(&mut response, &self);
        response.extensions_mut().insert(rendered);
        response
    }
}

/// Logs the error once and renders it with the default handler; the
/// [`RenderErrorsLayer`] outside renders it again in the configured form.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = report(&self, &RequestContext::new()).into_response();
        let rendered =
            RenderedError { kind: self.kind(), code: self.code(), error: Some(Arc::new(self)) };
        response.extensions_mut().insert(rendered);
        response
    }
}

/// The response for a refusal that is counted, not logged: a flood of them
/// must not become a flood of log lines (rate-limit denials, blocked clients).
pub(crate) fn unlogged(error: Error) -> Response {
    error.mark_reported();
    error.into_response()
}

/// Sets `problem`'s content type and headers on `response`.
fn write_problem(response: &mut Response, problem: &Problem) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(problem.content_type()));
    for (name, value) in problem.headers() {
        headers.insert(name, value.clone());
    }
}

/// Renders every rampart error response inside it (each carries a
/// [`RenderedError`]) with one [`ErrorHandler`] and the request's context:
/// its request id (a [`RequestId`] extension, or a well-formed
/// `X-Request-Id` header) and path as `instance`. Install it outermost.
/// Errors are logged where they become responses, inside the `request`
/// span of [`RequestIdLayer`](super::RequestIdLayer), which carries the
/// request id.
#[derive(Debug, Clone, Default)]
pub struct RenderErrorsLayer {
    handler: Arc<ErrorHandler>,
}

impl RenderErrorsLayer {
    /// Renders with `handler`.
    pub fn new(handler: ErrorHandler) -> RenderErrorsLayer {
        RenderErrorsLayer { handler: Arc::new(handler) }
    }
}

impl<S> Layer<S> for RenderErrorsLayer {
    type Service = RenderErrors<S>;

    fn layer(&self, inner: S) -> RenderErrors<S> {
        RenderErrors { inner, handler: Arc::clone(&self.handler) }
    }
}

/// The service [`RenderErrorsLayer`] makes.
#[derive(Debug, Clone)]
pub struct RenderErrors<S> {
    inner: S,
    handler: Arc<ErrorHandler>,
}

impl<S, B> Service<Request<B>> for RenderErrors<S>
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
        let request_id = RequestId::of(&request);
        let mut ctx = RequestContext::new().instance(request.uri().path());
        if let Some(id) = &request_id {
            ctx = ctx.request_id(id.as_str());
        }
        let mut inner = take_ready(&mut self.inner);
        let handler = Arc::clone(&self.handler);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            let error = response.extensions().get::<RenderedError>().and_then(|r| r.error.clone());
            if let Some(error) = error {
                let problem = handler.render(&error, &ctx);
                *response.body_mut() = Body::from(problem.to_json());
                response.headers_mut().remove(CONTENT_LENGTH);
                write_problem(&mut response, &problem);
            }
            Ok(response)
        })
    }
}
