//! One error type for the whole service.
//!
//! An [`Error`] knows its [`ErrorKind`] (and so its HTTP status), its
//! [`Severity`], a stable [`Code`], a public message and public details, plus
//! a private source chain and context notes that are logged but never shown
//! to clients. Retries, circuit breakers and rate limits read
//! [`Error::is_retryable`] and [`Error::retry_after`]; the [error
//! handler](crate::handler) renders the same values as an RFC 9457 response.
//!
//! ```
//! use std::time::Duration;
//! use rampart::error::{Error, ErrorKind, FieldViolation, ResultExt, Severity};
//!
//! // Public facts for the client...
//! let err = Error::validation("The order is invalid")
//!     .with_violation(FieldViolation::new("/quantity", "range", "must be between 1 and 100"));
//! assert_eq!(err.status().as_u16(), 400);
//! assert_eq!(err.code().as_str(), "VALIDATION_ERROR");
//! assert_eq!(err.severity(), Severity::Low);
//!
//! // ...and private ones for the log: a foreign error becomes an Internal one.
//! let read: Result<String, std::io::Error> =
//!     Err(std::io::Error::other("disk on fire"));
//! let err = read.context("loading the price list").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Internal);
//! assert_eq!(err.context_notes().collect::<Vec<_>>(), ["loading the price list"]);
//!
//! // Transient failures say so, and say when to come back.
//! let err = Error::rate_limited(Duration::from_secs(3));
//! assert!(err.is_retryable());
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
//! ```

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

pub mod code;
mod context;
mod kind;

pub use code::Code;
pub use context::{Handling, ResultExt, handling};
pub use kind::{ErrorKind, Severity};

/// A boxed error from anywhere, as kept in a source chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The message every internal or configuration error shows to clients.
pub const GENERIC_MESSAGE: &str = "An unexpected error occurred";

/// Why a file could not be read, in words an operator reads ("No such file
/// or directory", "stream did not contain valid UTF-8"), without the OS
/// error number.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// rampart's error: see the [module documentation](self).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    severity: Severity,
    code: Code,
    message: Cow<'static, str>,
    details: Map<String, Value>,
    violations: Vec<FieldViolation>,
    required_permissions: Vec<String>,
    config_key: Option<String>,
    attempts: Option<u32>,
    retry_after: Option<Duration>,
    retryable: Option<bool>,
    challenge: Option<String>,
    source: Option<BoxError>,
    context: Vec<Cow<'static, str>>,
    /// Set by the handler so an error is logged once however often it is reported.
    reported: AtomicBool,
}

/// One rule one input field broke. `pointer` is a JSON Pointer (RFC 6901)
/// naming the field as the client sent it, e.g. `/items/0/quantity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// Where the offending value is, as a JSON Pointer (`""` is the whole input).
    pub pointer: String,
    /// A stable code for the broken rule, e.g. `"length"` or `"email"`.
    pub code: Cow<'static, str>,
    /// What is wrong, for a human; never the offending value of a sensitive field.
    #[serde(rename = "detail")]
    pub message: Cow<'static, str>,
}

impl FieldViolation {
    /// Makes a violation.
    pub fn new(
        pointer: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> FieldViolation {
        FieldViolation { pointer: pointer.into(), code: code.into(), message: message.into() }
    }
}

impl Error {
    /// Makes an error of `kind` with a message. For public kinds the message
    /// is shown to clients; for [`ErrorKind::Internal`] and
    /// [`ErrorKind::Configuration`] it is only logged.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                severity: kind.default_severity(),
                code: kind.default_code(),
                message: message.into(),
                details: Map::new(),
                violations: Vec::new(),
                required_permissions: Vec::new(),
                config_key: None,
                attempts: None,
                retry_after: None,
                retryable: None,
                challenge: None,
                source: None,
                context: Vec::new(),
                reported: AtomicBool::new(false),
            }),
        }
    }

    /// Invalid input. Add what is wrong with [`Error::with_violation`].
    pub fn validation(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Validation, message)
    }

    /// Well-formed input that breaks a business rule.
    pub fn business_rule(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::BusinessRule, message)
    }

    /// A body in a media type the operation does not accept.
    pub fn unsupported_media_type(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::UnsupportedMediaType, message)
    }

    /// A missing resource.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// A conflict with the current state.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    /// Missing or invalid credentials.
    pub fn authentication(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Authentication, message)
    }

    /// A missing permission; `required` lists what the operation needs.
    pub fn authorization<I, S>(required: I) -> Error
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Error::new(ErrorKind::Authorization, "You do not have permission to do this")
            .with_required_permissions(required)
    }

    /// Too many requests; the client may try again after `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Error {
        Error::new(ErrorKind::RateLimited, "Too many requests").with_retry_after(retry_after)
    }

    /// A dependency failed.
    pub fn external_service(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::ExternalService, message)
    }

    /// An operation ran out of time.
    pub fn timeout(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Timeout, message)
    }

    /// The service or a dependency is temporarily unavailable.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// A configuration problem with the setting at `key` (a dotted path such
    /// as `rate_limit.requests`). The message must never hold the value.
    pub fn configuration(key: impl Into<String>, message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Configuration, message).with_config_key(key)
    }

    /// An unexpected failure caused by `source`. Clients see only
    /// [`GENERIC_MESSAGE`]; the log gets the whole chain. If `source` already
    /// is a rampart [`Error`] it is returned as it is.
    pub fn internal(source: impl Into<BoxError>) -> Error {
        match source.into().downcast::<Error>() {
            Ok(err) => *err,
            Err(source) => Error::new(ErrorKind::Internal, GENERIC_MESSAGE).with_source(source),
        }
    }

    /// Replaces the code with a more precise one.
    #[must_use]
    pub fn with_code(mut self, code: Code) -> Error {
        self.inner.code = code;
        self
    }

    /// Overrides the kind's default severity.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Error {
        self.inner.severity = severity;
        self
    }

    /// Adds a public detail, rendered under `details` for public kinds.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Error {
        self.inner.details.insert(key.into(), value.into());
        self
    }

    /// Sets the underlying cause (logged, never rendered).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Says when trying again makes sense (rendered as `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Error {
        self.inner.retry_after = Some(retry_after);
        self
    }

    /// Overrides the kind's default retry decision.
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Error {
        self.inner.retryable = Some(retryable);
        self
    }

    /// Records how many attempts were made (for dependency failures).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = Some(attempts);
        self
    }

    /// Adds one field violation.
    #[must_use]
    pub fn with_violation(mut self, violation: FieldViolation) -> Error {
        self.inner.violations.push(violation);
        self
    }

    /// Adds field violations.
    #[must_use]
    pub fn with_violations(
        mut self,
        violations: impl IntoIterator<Item = FieldViolation>,
    ) -> Error {
        self.inner.violations.extend(violations);
        self
    }

    /// Adds permissions the operation requires.
    #[must_use]
    pub fn with_required_permissions<I, S>(mut self, required: I) -> Error
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.required_permissions.extend(required.into_iter().map(Into::into));
        self
    }

    /// Names the configuration key at fault.
    #[must_use]
    pub fn with_config_key(mut self, key: impl Into<String>) -> Error {
        self.inner.config_key = Some(key.into());
        self
    }

    /// Sets the `WWW-Authenticate` challenge of an authentication error,
    /// e.g. `Bearer error="invalid_token"`.
    #[must_use]
    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Error {
        self.inner.challenge = Some(challenge.into());
        self
    }

    /// Adds a private context note (logged, never rendered).
    #[must_use]
    pub fn context(mut self, note: impl Into<Cow<'static, str>>) -> Error {
        self.inner.context.push(note.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        self.inner.severity
    }

    /// The stable machine code.
    pub fn code(&self) -> Code {
        self.inner.code
    }

    /// The message. Public for public kinds (see [`ErrorKind::is_public`]).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Public details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.inner.details
    }

    /// The HTTP status of the kind.
    pub fn status(&self) -> StatusCode {
        self.inner.kind.status()
    }

    /// Whether trying again may succeed: the override if one was set, else
    /// the kind's default.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable.unwrap_or_else(|| self.inner.kind.is_retryable())
    }

    /// How long to wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Field violations (validation errors).
    pub fn violations(&self) -> &[FieldViolation] {
        &self.inner.violations
    }

    /// Required permissions (authorization errors).
    pub fn required_permissions(&self) -> &[String] {
        &self.inner.required_permissions
    }

    /// The configuration key at fault (configuration errors).
    pub fn config_key(&self) -> Option<&str> {
        self.inner.config_key.as_deref()
    }

    /// How many attempts were made (dependency failures).
    pub fn attempts(&self) -> Option<u32> {
        self.inner.attempts
    }

    /// The `WWW-Authenticate` challenge, if one was set.
    pub fn challenge(&self) -> Option<&str> {
        self.inner.challenge.as_deref()
    }

    /// The private context notes, oldest first.
    pub fn context_notes(&self) -> impl Iterator<Item = &str> {
        self.inner.context.iter().map(|note| note.as_ref())
    }

    /// The source chain, nearest cause first (this error not included).
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        std::iter::successors(self.source(), |err| (*err).source())
    }

    /// Marks the error as logged; true if it already was.
    pub(crate) fn mark_reported(&self) -> bool {
        self.inner.reported.swap(true, Ordering::Relaxed)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &inner.kind)
            .field("code", &inner.code)
            .field("severity", &inner.severity)
            .field("message", &inner.message);
        if !inner.details.is_empty() {
            d.field("details", &inner.details);
        }
        if !inner.violations.is_empty() {
            d.field("violations", &inner.violations);
        }
        if !inner.required_permissions.is_empty() {
            d.field("required_permissions", &inner.required_permissions);
        }
        if let Some(key) = &inner.config_key {
            d.field("config_key", key);
        }
        if let Some(attempts) = inner.attempts {
            d.field("attempts", &attempts);
        }
        if let Some(retry_after) = inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        if !inner.context.is_empty() {
            d.field("context", &inner.context);
        }
        if let Some(source) = &inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaky;
    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("password=hunter2")
        }
    }
    impl StdError for Leaky {}

    #[test]
    fn every_kind_has_its_status_code_and_severity() {
        let expected = [
            (ErrorKind::Validation, 400, "VALIDATION_ERROR", Severity::Low, false),
            (ErrorKind::BusinessRule, 422, "BUSINESS_RULE_VIOLATION", Severity::Low, false),
            (ErrorKind::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE", Severity::Low, false),
            (ErrorKind::UnsupportedMediaType, 415, "UNSUPPORTED_MEDIA_TYPE", Severity::Low, false),
            (ErrorKind::NotFound, 404, "NOT_FOUND", Severity::Low, false),
            (ErrorKind::Conflict, 409, "CONFLICT", Severity::Low, false),
            (ErrorKind::Authentication, 401, "AUTHENTICATION_FAILED", Severity::Medium, false),
            (ErrorKind::Authorization, 403, "PERMISSION_DENIED", Severity::Medium, false),
            (ErrorKind::RateLimited, 429, "RATE_LIMITED", Severity::Low, true),
            (ErrorKind::ExternalService, 502, "EXTERNAL_SERVICE_ERROR", Severity::High, true),
            (ErrorKind::Timeout, 504, "TIMEOUT", Severity::Medium, true),
            (ErrorKind::Unavailable, 503, "SERVICE_UNAVAILABLE", Severity::High, true),
            (ErrorKind::Configuration, 500, "CONFIGURATION_ERROR", Severity::Critical, false),
            (ErrorKind::Internal, 500, "INTERNAL_ERROR", Severity::High, false),
        ];
        assert_eq!(expected.len(), ErrorKind::ALL.len());
        for (kind, status, code, severity, retryable) in expected {
            let err = Error::new(kind, "x");
            assert_eq!(err.status().as_u16(), status, "{kind}");
            assert_eq!(err.code().as_str(), code, "{kind}");
            assert_eq!(err.severity(), severity, "{kind}");
            assert_eq!(err.is_retryable(), retryable, "{kind}");
        }
    }

    #[test]
    fn overrides_win_over_kind_defaults() {
        let err = Error::external_service("retries exhausted")
            .with_retryable(false)
            .with_severity(Severity::Critical)
            .with_attempts(4);
        assert!(!err.is_retryable());
        assert_eq!(err.severity(), Severity::Critical);
        assert_eq!(err.attempts(), Some(4));
    }

    #[test]
    fn internal_keeps_the_source_but_not_in_its_message() {
        let err = Error::internal(Leaky);
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(err.message(), GENERIC_MESSAGE);
        assert_eq!(err.to_string(), GENERIC_MESSAGE);
        let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        assert_eq!(chain, ["password=hunter2"]);
    }

    #[test]
    fn internal_of_a_rampart_error_is_that_error() {
        let err = Error::internal(Error::not_found("no such order"));
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "no such order");
    }

    #[test]
    fn kind_specific_data_is_kept() {
        let err = Error::authorization(["orders:write", "orders:read"]);
        assert_eq!(err.required_permissions(), ["orders:write", "orders:read"]);
        let err = Error::configuration("jwt.secret", "is shorter than 32 bytes");
        assert_eq!(err.config_key(), Some("jwt.secret"));
        assert_eq!(err.severity(), Severity::Critical);
        let err =
            Error::authentication("bad token").with_challenge("Bearer error=\"invalid_token\"");
        assert_eq!(err.challenge(), Some("Bearer error=\"invalid_token\""));
    }
}
