//! The error handler: log an error once, render what the client may see.
//!
//! [`ErrorHandler::report`] logs the error with `tracing` at the level its
//! severity calls for (with kind, code, the whole source chain, context notes
//! and the request id) and returns a [`Problem`]: an RFC 9457
//! `application/problem+json` document, or the simple
//! `{"error": true, ...}` form when configured. Internal and configuration
//! errors render [`GENERIC_MESSAGE`] and nothing else of themselves.
//!
//! An error's [`retry_after`](Error::retry_after) becomes the `Retry-After`
//! header and the `retry_after` member: whole seconds, rounded up so a
//! client never comes back early, and at most one hour. A longer wait (a
//! far-off quota reset, or a hostile dependency's `Retry-After: 1000000000`
//! passed on by a retry policy that gave up) is announced as one hour, after
//! which the client asks again; no value, however large, overflows.
//!
//! ```
//! use rampart::error::Error;
//! use rampart::handler::{ErrorHandler, RequestContext};
//!
//! let handler = ErrorHandler::default();
//! let ctx = RequestContext::new().request_id("req-42").instance("/orders/7");
//! let problem = handler.report(&Error::not_found("No order 7"), &ctx);
//! assert_eq!(problem.status().as_u16(), 404);
//! assert_eq!(problem.content_type(), "application/problem+json");
//! assert_eq!(problem.body()["detail"], "No order 7");
//! assert_eq!(problem.body()["request_id"], "req-42");
//!
//! let leak = Error::internal(std::io::Error::other("connect to 10.0.0.5:5432 failed"));
//! let problem = handler.report(&leak, &ctx);
//! assert_eq!(problem.body()["detail"], "An unexpected error occurred");
//! assert!(!problem.to_json().contains("10.0.0.5"));
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use http::StatusCode;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::ceil_secs;
use crate::error::{Code, Error, ErrorKind, GENERIC_MESSAGE, Severity};

/// Which body shape errors are rendered in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorFormat {
    /// RFC 9457 `application/problem+json` (the default).
    #[default]
    Problem,
    /// `{"error": true, "message": ..., "type": ..., "severity": ...}` as
    /// `application/json`.
    Simple,
}

/// What the handler knows of the request an error belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    request_id: Option<String>,
    instance: Option<String>,
}

impl RequestContext {
    /// An empty context.
    pub fn new() -> RequestContext {
        RequestContext::default()
    }

    /// Sets the request id (echoed to the client and logged).
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> RequestContext {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the problem `instance`: usually the request path.
    #[must_use]
    pub fn instance(mut self, instance: impl Into<String>) -> RequestContext {
        self.instance = Some(instance.into());
        self
    }
}

/// Logs errors and renders them; see the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct ErrorHandler {
    format: ErrorFormat,
    type_base: Option<String>,
}

impl ErrorHandler {
    /// A handler that renders `format`.
    pub fn new(format: ErrorFormat) -> ErrorHandler {
        ErrorHandler { format, type_base: None }
    }

    /// Makes each problem `type` a URI: `base` followed by the code in lower
    /// kebab case (`https://errors.example.com/` + `not-found`). Without a
    /// base, `type` is `about:blank`, as RFC 9457 asks when a type has no page
    /// of its own.
    #[must_use]
    pub fn problem_type_base(mut self, base: impl Into<String>) -> ErrorHandler {
        self.type_base = Some(base.into());
        self
    }

    /// The body format.
    pub fn format(&self) -> ErrorFormat {
        self.format
    }

    /// Logs `error` (once, however often it is reported) and renders it.
    pub fn report(&self, error: &Error, ctx: &RequestContext) -> Problem {
        log(error, ctx);
        self.render(error, ctx)
    }

    /// Renders `error` without logging it.
    pub fn render(&self, error: &Error, ctx: &RequestContext) -> Problem {
        let kind = error.kind();
        let public = kind.is_public();
        let message = if public { error.message() } else { GENERIC_MESSAGE };
        let mut body = Map::new();
        match self.format {
            ErrorFormat::Problem => {
                let ty = match &self.type_base {
                    Some(base) => {
                        format!("{base}{}", error.code().as_str().to_lowercase().replace('_', "-"))
                    }
                    None => "about:blank".to_owned(),
                };
                body.insert("type".into(), ty.into());
                body.insert("title".into(), kind.title().into());
                body.insert("status".into(), kind.status().as_u16().into());
                body.insert("detail".into(), message.into());
                if let Some(instance) = &ctx.instance {
                    body.insert("instance".into(), instance.as_str().into());
                }
                body.insert("code".into(), error.code().as_str().into());
            }
            ErrorFormat::Simple => {
                body.insert("error".into(), true.into());
                body.insert("message".into(), message.into());
                body.insert("type".into(), error.code().as_str().into());
            }
        }
        body.insert("severity".into(), error.severity().as_str().into());
        if let Some(id) = &ctx.request_id {
            body.insert("request_id".into(), id.as_str().into());
        }
        if public {
            insert_public_data(&mut body, error);
        }

        let mut headers = Vec::new();
        if let Some(after) = error.retry_after().filter(|_| public) {
            headers.push((RETRY_AFTER, HeaderValue::from(retry_after_secs(after))));
        }
        if kind == ErrorKind::Authentication {
            // RFC 9110 requires a challenge on every 401.
            let challenge = error
                .challenge()
                .and_then(|c| HeaderValue::from_str(c).ok())
                .unwrap_or(HeaderValue::from_static("Bearer"));
            headers.push((WWW_AUTHENTICATE, challenge));
        }
        Problem {
            kind,
            code: error.code(),
            format: self.format,
            body: Value::Object(body),
            headers,
        }
    }
}

fn insert_public_data(body: &mut Map<String, Value>, error: &Error) {
    if !error.violations().is_empty() {
        body.insert("errors".into(), json!(error.violations()));
    }
    if !error.required_permissions().is_empty() {
        body.insert("required_permissions".into(), json!(error.required_permissions()));
    }
    if let Some(after) = error.retry_after() {
        body.insert("retry_after".into(), f64::from(retry_after_secs(after)).into());
    }
    if !error.details().is_empty() {
        body.insert("details".into(), Value::Object(error.details().clone()));
    }
}

/// The longest wait a rendered error announces.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `after` in whole seconds for `Retry-After`: rounded up, at most [`MAX_RETRY_AFTER`].
fn retry_after_secs(after: Duration) -> u32 {
    // At most an hour, so it fits.
    u32::try_from(ceil_secs(after.min(MAX_RETRY_AFTER))).unwrap_or(u32::MAX)
}

/// Reports `error` with the default handler (problem format).
pub fn report(error: &Error, ctx: &RequestContext) -> Problem {
    ErrorHandler::default().report(error, ctx)
}

/// Logs `error` once: `error` level for high and critical severities and for
/// every internal or configuration error, `warn` otherwise; counts it in
/// `rampart_errors_total{kind, code}`.
fn log(error: &Error, ctx: &RequestContext) {
    if error.mark_reported() {
        return;
    }
    let mut chain = String::new();
    for (i, cause) in error.chain().enumerate() {
        if i > 0 {
            chain.push_str(": ");
        }
        let _ = write!(chain, "{cause}");
    }
    let notes = error.context_notes().collect::<Vec<_>>().join("; ");
    // Empty values are left out of the record rather than logged as "".
    let chain = Some(chain.as_str()).filter(|c| !c.is_empty());
    let notes = Some(notes.as_str()).filter(|n| !n.is_empty());
    let request_id = ctx.request_id.as_deref();
    metrics::counter!(
        "rampart_errors_total",
        "kind" => error.kind().as_str(),
        "code" => error.code().as_str()
    )
    .increment(1);
    let loud = error.severity() >= Severity::High || !error.kind().is_public();
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                target: "rampart::error",
                kind = error.kind().as_str(),
                code = error.code().as_str(),
                severity = error.severity().as_str(),
                status = error.status().as_u16(),
                request_id,
                chain,
                context = notes,
                config_key = error.config_key(),
                attempts = error.attempts(),
                "{}",
                error.message()
            )
        };
    }
    if loud {
        emit!(error);
    } else {
        emit!(warn);
    }
}

/// What the client gets for an error: a status, headers, and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    kind: ErrorKind,
    code: Code,
    format: ErrorFormat,
    body: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The kind of the error rendered.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The code of the error rendered.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The media type of the body.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            ErrorFormat::Problem => "application/problem+json",
            ErrorFormat::Simple => "application/json",
        }
    }

    /// The body as a JSON value.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// Headers the response must carry besides `Content-Type`
    /// (`Retry-After`, `WWW-Authenticate`).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The body serialized.
    pub fn to_json(&self) -> String {
        self.body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::FieldViolation;

    #[test]
    fn problem_format_has_every_rfc9457_member() {
        let handler = ErrorHandler::default().problem_type_base("https://errors.example.com/");
        let ctx = RequestContext::new().request_id("r1").instance("/orders");
        let err = Error::validation("The order is invalid").with_violation(FieldViolation::new(
            "/qty",
            "range",
            "must be at least 1",
        ));
        let p = handler.render(&err, &ctx);
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            p.body(),
            &json!({
                "type": "https://errors.example.com/validation-error",
                "title": "Invalid input",
                "status": 400,
                "detail": "The order is invalid",
                "instance": "/orders",
                "code": "VALIDATION_ERROR",
                "severity": "low",
                "request_id": "r1",
                "errors": [{"pointer": "/qty", "code": "range", "detail": "must be at least 1"}],
            })
        );
    }

    #[test]
    fn simple_format_has_the_documented_shape() {
        let p = ErrorHandler::new(ErrorFormat::Simple)
            .render(&Error::conflict("Already paid"), &RequestContext::new());
        assert_eq!(p.content_type(), "application/json");
        assert_eq!(
            p.body(),
            &json!({"error": true, "message": "Already paid", "type": "CONFLICT", "severity": "low"})
        );
    }

    #[test]
    fn default_type_is_about_blank() {
        let p = report(&Error::not_found("x"), &RequestContext::new());
        assert_eq!(p.body()["type"], "about:blank");
        assert!(p.body().get("instance").is_none());
    }

    #[test]
    fn retry_after_becomes_a_header_rounded_up() {
        let p = report(&Error::rate_limited(Duration::from_millis(1500)), &RequestContext::new());
        assert_eq!(p.headers(), [(RETRY_AFTER, HeaderValue::from(2u64))]);
        assert_eq!(p.body()["retry_after"], 2.0);
    }

    #[test]
    fn a_huge_retry_after_is_capped_at_an_hour_and_never_overflows() {
        let hour = [(RETRY_AFTER, HeaderValue::from(3600u32))];
        // Duration::MAX: rounding up used to overflow (a panic in debug
        // builds, `retry-after: 0` in release).
        let p = report(&Error::rate_limited(Duration::MAX), &RequestContext::new());
        assert_eq!(p.headers(), hour);
        assert_eq!(p.body()["retry_after"], 3600.0);
        // A hostile dependency's hint, passed on by a retry policy that gave up.
        let upstream = Error::external_service("upstream failed")
            .with_retry_after(Duration::from_secs(1_000_000_000));
        let p = report(&upstream, &RequestContext::new());
        assert_eq!(p.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(p.headers(), hour);
        // Just under the cap is kept, rounded up.
        let p =
            report(&Error::rate_limited(Duration::from_millis(3_599_001)), &RequestContext::new());
        assert_eq!(p.headers(), hour);
        let p = report(&Error::rate_limited(Duration::from_secs(3_598)), &RequestContext::new());
        assert_eq!(p.headers(), [(RETRY_AFTER, HeaderValue::from(3598u32))]);
    }

    #[test]
    fn authentication_errors_carry_a_challenge() {
        let p = report(&Error::authentication("no token"), &RequestContext::new());
        assert_eq!(p.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(p.headers(), [(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))]);
        let err = Error::authentication("expired").with_challenge("Bearer error=\"invalid_token\"");
        let p = report(&err, &RequestContext::new());
        assert_eq!(p.headers()[0].1, "Bearer error=\"invalid_token\"");
    }

    #[test]
    fn authorization_lists_required_permissions() {
        let p = report(&Error::authorization(["orders:write"]), &RequestContext::new());
        assert_eq!(p.status(), StatusCode::FORBIDDEN);
        assert_eq!(p.body()["required_permissions"], json!(["orders:write"]));
    }

    #[test]
    fn private_kinds_render_nothing_of_themselves() {
        for format in [ErrorFormat::Problem, ErrorFormat::Simple] {
            let err = Error::configuration("db.password", "db.password=s3cr3t is wrong")
                .with_detail("dsn", "postgres://admin:s3cr3t@db")
                .with_retry_after(Duration::from_secs(1))
                .context("while starting s3cr3t");
            let json = ErrorHandler::new(format).render(&err, &RequestContext::new()).to_json();
            assert!(!json.contains("s3cr3t"), "{json}");
            assert!(!json.contains("db.password"), "{json}");
            assert!(json.contains(GENERIC_MESSAGE), "{json}");
        }
    }
}
