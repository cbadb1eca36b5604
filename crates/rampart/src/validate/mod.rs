//! Input validation: reject bad input with a precise report, never rewrite
//! it silently.
//!
//! Stripping `<script>` or SQL keywords with regular expressions is a known
//! broken defence: it is bypassed, and it mangles honest data ("O'Brian",
//! "Drop-down menu"). rampart validates and **rejects** with a report that
//! says where and why; encoding for output is [`sanitize`](crate::sanitize)'s
//! job, and SQL values go as bind parameters.
//!
//! - [`Validator`]: validates a value and may transform it (a [`rules::Uuid`]
//!   comes out lower case); its [`ValidationReport`] holds the value or
//!   every violation, located by a JSON Pointer (RFC 6901) with the names
//!   the client used, with a stable code and a message.
//! - [`rules`]: length, range, pattern, email, URL, UUID, one-of,
//!   not-blank, maximum input size.
//! - [`Registry`]: validators by name, for configuration.
//! - [`JsonLimits`]: size, depth, keys, array and string lengths, checked
//!   by a streaming scan before anything is parsed.
//! - [`Validated`]: typed structs validated with [`garde`] (re-exported
//!   here); the proof type.
//! - [`Schema`]: JSON Schema, compiled once, offline (feature `schema`).
//! - [`UploadPolicy`]: uploads checked by extension **and** content.
//!
//! A failure becomes an [`Error`](crate::Error) of kind `Validation`
//! (400) whose problem response lists the violations under `errors`;
//! violations of [sensitive fields](SensitiveFields) never say more than
//! "is invalid". Oversized input is `PayloadTooLarge` (413).
//!
//! ```
//! use rampart::handler::{ErrorHandler, RequestContext};
//! use rampart::validate::{rules::Email, Validator};
//!
//! let err = Email.validate("ada@").at_key("email").into_result().unwrap_err();
//! let problem = ErrorHandler::default().render(&err, &RequestContext::new());
//! assert_eq!(problem.status().as_u16(), 400);
//! assert_eq!(problem.body()["errors"][0]["pointer"], "/email");
//! assert_eq!(problem.body()["errors"][0]["code"], "email");
//! ```

mod files;
mod limits;
mod pointer;
mod registry;
mod report;
pub mod rules;
#[cfg(feature = "schema")]
mod schema;
mod sensitive;
mod typed;

pub use files::{FileType, UploadPolicy};
pub use limits::{JsonLimits, MAX_DEPTH_CEILING};
pub use registry::{DynValidator, Registry};
pub(crate) use report::violation_error;
pub use report::{INVALID_INPUT, MAX_VIOLATIONS, ValidationReport};
#[cfg(feature = "schema")]
pub use schema::Schema;
pub use sensitive::SensitiveFields;
pub use typed::Validated;

/// The crate typed structs are validated with, at the version rampart uses.
#[doc(no_inline)]
pub use garde;

/// Validates a value of type `T` (by default a JSON value) and may transform
/// it: the report carries the value to use from then on.
///
/// ```
/// use rampart::error::FieldViolation;
/// use rampart::validate::{ValidationReport, Validator};
///
/// /// An ISO 3166 alpha-2 country code, upper-cased.
/// struct Country;
///
/// impl Validator<str> for Country {
///     type Output = String;
///     fn validate(&self, value: &str) -> ValidationReport<String> {
///         if value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
///             ValidationReport::valid(value.to_ascii_uppercase())
///         } else {
///             ValidationReport::invalid(FieldViolation::new("", "country", "is not a country code"))
///         }
///     }
/// }
///
/// assert_eq!(Country.validate("fr").value().unwrap(), "FR");
/// assert!(!Country.validate("France").is_valid());
/// ```
pub trait Validator<T: ?Sized = serde_json::Value>: Send + Sync {
    /// What a valid value becomes.
    type Output;

    /// Validates `value`; violations are located relative to it (`""`).
    fn validate(&self, value: &T) -> ValidationReport<Self::Output>;
}
