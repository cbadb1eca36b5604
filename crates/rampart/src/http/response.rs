//! Errors and problems as axum responses.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;

use crate::error::Error;
use crate::handler::{Problem, RequestContext, report};

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let content_type = HeaderValue::from_static(self.content_type());
        let mut response = (self.status(), self.to_json()).into_response();
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
