//! What went wrong, how bad it is, and how each kind answers over HTTP.

use std::fmt;

use http::StatusCode;
use serde::Serialize;

use super::code::{self, Code};

/// The category of an [`Error`](super::Error). Each kind maps to exactly one
/// HTTP status, a default [`Severity`], a default [`Code`] and a default
/// retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is malformed or breaks a rule of its shape (400).
    Validation,
    /// The input is well-formed but the operation breaks a business rule (422).
    BusinessRule,
    /// The input is larger than allowed (413).
    PayloadTooLarge,
    /// The input is in a media type the operation does not accept (415).
    UnsupportedMediaType,
    /// The resource does not exist, or the caller may not know it does (404).
    NotFound,
    /// The operation conflicts with the current state of the resource (409).
    Conflict,
    /// The caller is not authenticated or its credentials are invalid (401).
    Authentication,
    /// The caller is authenticated but lacks a permission (403).
    Authorization,
    /// The caller sent too many requests (429).
    RateLimited,
    /// A dependency failed or answered with an error (502).
    ExternalService,
    /// An operation did not finish in time (504).
    Timeout,
    /// The service or a dependency is temporarily unavailable (503).
    Unavailable,
    /// The service is misconfigured (500; details are never shown to clients).
    Configuration,
    /// A bug or an unexpected failure (500; details are never shown to clients).
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Validation,
        ErrorKind::BusinessRule,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Authentication,
        ErrorKind::Authorization,
        ErrorKind::RateLimited,
        ErrorKind::ExternalService,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Configuration,
        ErrorKind::Internal,
    ];

    /// The HTTP status every error of this kind answers with.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation => StatusCode::BAD_REQUEST,
            ErrorKind::BusinessRule => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::Authorization => StatusCode::FORBIDDEN,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::ExternalService => StatusCode::BAD_GATEWAY,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Configuration | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The severity an error of this kind has unless it says otherwise.
    pub const fn default_severity(self) -> Severity {
        match self {
            ErrorKind::Validation
            | ErrorKind::BusinessRule
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::RateLimited => Severity::Low,
            ErrorKind::Authentication | ErrorKind::Authorization | ErrorKind::Timeout => {
                Severity::Medium
            }
            ErrorKind::ExternalService | ErrorKind::Unavailable | ErrorKind::Internal => {
                Severity::High
            }
            ErrorKind::Configuration => Severity::Critical,
        }
    }

    /// The code an error of this kind carries unless it names a more precise one.
    pub const fn default_code(self) -> Code {
        match self {
            ErrorKind::Validation => code::VALIDATION_ERROR,
            ErrorKind::BusinessRule => code::BUSINESS_RULE_VIOLATION,
            ErrorKind::PayloadTooLarge => code::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => code::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::NotFound => code::NOT_FOUND,
            ErrorKind::Conflict => code::CONFLICT,
            ErrorKind::Authentication => code::AUTHENTICATION_FAILED,
            ErrorKind::Authorization => code::PERMISSION_DENIED,
            ErrorKind::RateLimited => code::RATE_LIMITED,
            ErrorKind::ExternalService => code::EXTERNAL_SERVICE_ERROR,
            ErrorKind::Timeout => code::TIMEOUT,
            ErrorKind::Unavailable => code::SERVICE_UNAVAILABLE,
            ErrorKind::Configuration => code::CONFIGURATION_ERROR,
            ErrorKind::Internal => code::INTERNAL_ERROR,
        }
    }

    /// Whether trying the same operation again may succeed. Timeouts,
    /// unavailability, rate limits and failed dependencies are transient;
    /// everything the caller sent wrong is not.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::ExternalService
                | ErrorKind::Timeout
                | ErrorKind::Unavailable
        )
    }

    /// Whether an error's message and details may be shown to the client.
    /// Internal and configuration errors describe the server, not the
    /// request, so clients only ever see a generic sentence.
    pub const fn is_public(self) -> bool {
        !matches!(self, ErrorKind::Configuration | ErrorKind::Internal)
    }

    /// A short human-readable summary of the kind, used as the problem title.
    pub const fn title(self) -> &'static str {
        match self {
            ErrorKind::Validation => "Invalid input",
            ErrorKind::BusinessRule => "Business rule violated",
            ErrorKind::PayloadTooLarge => "Payload too large",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Authentication => "Authentication required",
            ErrorKind::Authorization => "Permission denied",
            ErrorKind::RateLimited => "Too many requests",
            ErrorKind::ExternalService => "Dependency failed",
            ErrorKind::Timeout => "Timed out",
            ErrorKind::Unavailable => "Service unavailable",
            ErrorKind::Configuration | ErrorKind::Internal => "Internal error",
        }
    }

    /// The kind's name in snake case, as it appears in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::BusinessRule => "business_rule",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Authorization => "authorization",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ExternalService => "external_service",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious an error is; it decides the log level and alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Expected in normal operation (bad input, missing resources).
    Low,
    /// Worth a look (failed authentication, timeouts).
    Medium,
    /// Something is broken (a dependency, a bug).
    High,
    /// The service cannot do its job (misconfiguration, data at risk).
    Critical,
}

impl Severity {
    /// The severity's name in lowercase.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
