//! Errors and problems as axum responses.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;

use crate::error::{Code, Error, ErrorKind};
use crate::handler::{Problem, RequestContext, report};

/// Marks a response that renders a rampart error (in its extensions), so
/// layers further out see what was refused without reading the body:
/// [`BlockLayer`](super::BlockLayer) feeds the monitor from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderedError {
    /// The error's kind.
    pub kind: ErrorKind,
    /// The error's code.
    pub code: Code,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let content_type = HeaderValue::from_static(self.content_type());
        let rendered = RenderedError { kind: self.kind(), code: self.code() };
        let mut response = (self.status(), self.to_json()).into_response();
        response.extensions_mut().insert(rendered);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        for (name, value) in self.headers() {
            headers.insert(name, value.clone());
        }
        response
    }
}

/// Renders with the default handler and no request context.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        report(&self, &RequestContext::new()).into_response()
    }
}
