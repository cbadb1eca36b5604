//! The outcome of a validation: the (possibly transformed) value, or every
//! violation found.

use std::borrow::Cow;

use crate::error::{Error, FieldViolation};

use super::pointer::escape_token;
use super::sensitive::SensitiveFields;

/// The message of every validation error rampart raises; the violations say
/// what is wrong.
pub const INVALID_INPUT: &str = "The input is invalid";

/// The most violations one report keeps: a hostile document with a million
/// bad items yields a bounded answer.
pub const MAX_VIOLATIONS: usize = 100;

/// What validating a value found: the value a validator produced (the input,
/// or its transformed form) when it is valid, or every violation, each
/// located by a JSON Pointer relative to the validated value (`""` is the
/// value itself).
///
/// ```
/// use rampart::validate::{rules::Length, ValidationReport, Validator};
///
/// let report = Length::chars(3..=8).validate("ab").at_key("nickname");
/// assert!(!report.is_valid());
/// assert_eq!(report.violations()[0].pointer, "/nickname");
/// assert_eq!(report.violations()[0].code, "length");
///
/// let err = report.into_result().unwrap_err();
/// assert_eq!(err.status().as_u16(), 400);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ValidationReport<T> {
    outcome: Result<T, Vec<FieldViolation>>,
}

impl<T> ValidationReport<T> {
    /// A valid outcome carrying `value`.
    pub fn valid(value: T) -> ValidationReport<T> {
        ValidationReport { outcome: Ok(value) }
    }

    /// An invalid outcome with one violation.
    pub fn invalid(violation: FieldViolation) -> ValidationReport<T> {
        ValidationReport { outcome: Err(vec![violation]) }
    }

    /// `value` if `violations` is empty, else the violations (at most
    /// [`MAX_VIOLATIONS`] are kept).
    pub fn new(value: T, violations: Vec<FieldViolation>) -> ValidationReport<T> {
        if violations.is_empty() {
            ValidationReport::valid(value)
        } else {
            ValidationReport::from_violations(violations)
        }
    }

    pub(crate) fn from_violations(mut violations: Vec<FieldViolation>) -> ValidationReport<T> {
        debug_assert!(!violations.is_empty());
        violations.truncate(MAX_VIOLATIONS);
        ValidationReport { outcome: Err(violations) }
    }

    /// Whether the value is valid.
    pub fn is_valid(&self) -> bool {
        self.outcome.is_ok()
    }

    /// Every violation (none when valid).
    pub fn violations(&self) -> &[FieldViolation] {
        match &self.outcome {
            Ok(_) => &[],
            Err(violations) => violations,
        }
    }

    /// The validated (possibly transformed) value, when valid.
    pub fn value(&self) -> Option<&T> {
        self.outcome.as_ref().ok()
    }

    /// Moves every violation under the member `key` (escaped as RFC 6901 says).
    pub fn at_key(self, key: &str) -> ValidationReport<T> {
        self.at(&format!("/{}", escape_token(key)))
    }

    /// Moves every violation under the array element `index`.
    pub fn at_index(self, index: usize) -> ValidationReport<T> {
        self.at(&format!("/{index}"))
    }

    /// Moves every violation under `pointer`, a JSON Pointer (e.g. `/items/0`).
    pub fn at(mut self, pointer: &str) -> ValidationReport<T> {
        if let Err(violations) = &mut self.outcome {
            for violation in violations {
                violation.pointer.insert_str(0, pointer);
            }
        }
        self
    }

    /// Replaces the message of every violation located at or under a
    /// sensitive field by a generic one, so that neither the value nor the
    /// rule's parameters (allowed values, patterns) reach the client.
    pub fn redact(mut self, sensitive: &SensitiveFields) -> ValidationReport<T> {
        if let Err(violations) = &mut self.outcome {
            redact(violations, sensitive);
        }
        self
    }

    /// Maps a valid value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ValidationReport<U> {
        ValidationReport { outcome: self.outcome.map(f) }
    }

    /// The value, or a [`Validation`](crate::ErrorKind::Validation) error
    /// listing every violation (rendered as `errors` in the problem response).
    pub fn into_result(self) -> Result<T, Error> {
        self.outcome.map_err(into_error)
    }
}

/// The generic message of a violation at a sensitive field.
pub(crate) const REDACTED_MESSAGE: &str = "is invalid";

pub(crate) fn redact(violations: &mut [FieldViolation], sensitive: &SensitiveFields) {
    for violation in violations {
        if sensitive.is_sensitive(&violation.pointer) {
            violation.message = Cow::Borrowed(REDACTED_MESSAGE);
        }
    }
}

/// A validation error carrying `violations`.
pub(crate) fn into_error(violations: Vec<FieldViolation>) -> Error {
    Error::validation(INVALID_INPUT).with_violations(violations)
}

/// A validation error with a single violation.
pub(crate) fn violation_error(
    pointer: impl Into<String>,
    code: &'static str,
    message: impl Into<Cow<'static, str>>,
) -> Error {
    into_error(vec![FieldViolation::new(pointer, code, message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(pointer: &str) -> FieldViolation {
        FieldViolation::new(pointer, "length", "must be at most 3 characters")
    }

    #[test]
    fn a_report_is_valid_exactly_when_it_has_no_violations() {
        let report = ValidationReport::new(5, vec![]);
        assert!(report.is_valid());
        assert_eq!(report.value(), Some(&5));
        assert_eq!(report.into_result().unwrap(), 5);

        let report = ValidationReport::new(5, vec![violation("")]);
        assert!(!report.is_valid());
        assert_eq!(report.value(), None);
        let err = report.into_result().unwrap_err();
        assert_eq!(err.message(), INVALID_INPUT);
        assert_eq!(err.violations().len(), 1);
    }

    #[test]
    fn prefixes_nest_outermost_last_and_escape_keys() {
        let report =
            ValidationReport::<()>::invalid(violation("/name")).at_index(2).at_key("a/b~c");
        assert_eq!(report.violations()[0].pointer, "/a~1b~0c/2/name");
    }

    #[test]
    fn a_report_keeps_at_most_max_violations() {
        let many = (0..MAX_VIOLATIONS + 50).map(|i| violation(&format!("/{i}"))).collect();
        let report = ValidationReport::new((), many);
        assert_eq!(report.violations().len(), MAX_VIOLATIONS);
    }

    #[test]
    fn redaction_hides_messages_under_sensitive_fields_only() {
        let report = ValidationReport::<()>::new(
            (),
            vec![violation("/password"), violation("/user/api_key/0"), violation("/name")],
        )
        .redact(&SensitiveFields::default());
        let messages: Vec<_> = report.violations().iter().map(|v| v.message.as_ref()).collect();
        assert_eq!(messages, [REDACTED_MESSAGE, REDACTED_MESSAGE, "must be at most 3 characters"]);
        // The code stays: clients still learn which rule failed.
        assert!(report.violations().iter().all(|v| v.code == "length"));
    }
}
