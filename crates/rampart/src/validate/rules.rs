//! Built-in rules: length, range, pattern, email, URL (feature `url`), UUID,
//! one-of, not-blank, and the maximum input size.
//!
//! Every string rule validates a `&str` (its output is the accepted string,
//! transformed only where the rule says so) and a JSON value (a non-string
//! is a `type` violation). Messages state the rule, never the value.
//!
//! ```
//! use rampart::validate::rules::{Email, Length, OneOf, Range, Uuid};
//! use rampart::validate::Validator;
//! use serde_json::json;
//!
//! assert!(Length::chars(1..=5).validate("héllo").is_valid()); // 5 chars, 6 bytes
//! assert!(!Length::bytes(1..=5).validate("héllo").is_valid());
//! assert!(Range::new(1.0..=100.0).unwrap().validate(&json!(42)).is_valid());
//! assert!(!Email.validate("not-an-address").is_valid());
//! assert!(!OneOf::new(["draft", "sent"]).validate("ｄｒａｆｔ").is_valid()); // full-width
//! // A transforming rule: the canonical form is the report's value.
//! let report = Uuid.validate("67E55044-10B1-426F-9247-BB680E5FE0C8");
//! assert_eq!(report.value().unwrap(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
//! ```

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::ops::{Bound, RangeBounds};
use std::sync::LazyLock;

use serde_json::{Number, Value};

use crate::error::{Error, ErrorKind, FieldViolation};

use super::{ValidationReport, Validator};

/// The default maximum length of a string: 10,000 characters.
pub const DEFAULT_MAX_STRING_CHARS: usize = 10_000;

/// The default maximum input size: 1 MiB.
pub const DEFAULT_MAX_INPUT_SIZE: usize = 1024 * 1024;

fn violation(code: &'static str, message: impl Into<String>) -> FieldViolation {
    FieldViolation::new("", code, message.into())
}

pub(crate) fn type_violation(expected: &'static str) -> FieldViolation {
    FieldViolation::new("", "type", format!("must be {expected}"))
}

/// Implements `Validator<str>` and `Validator<Value>` for a rule with an
/// inherent `check(&self, &str) -> Result<Option<String>, FieldViolation>`
/// (`Some` is a transformed value).
macro_rules! string_rule {
    ($($rule:ty),* $(,)?) => {$(
        impl Validator<str> for $rule {
            type Output = String;
            fn validate(&self, value: &str) -> ValidationReport<String> {
                match self.check(value) {
                    Ok(transformed) => {
                        ValidationReport::valid(transformed.unwrap_or_else(|| value.to_owned()))
                    }
                    Err(violation) => ValidationReport::invalid(violation),
                }
            }
        }

        impl Validator<Value> for $rule {
            type Output = Value;
            fn validate(&self, value: &Value) -> ValidationReport<Value> {
                let Value::String(text) = value else {
                    return ValidationReport::invalid(type_violation("a string"));
                };
                match self.check(text) {
                    Ok(Some(transformed)) => ValidationReport::valid(Value::String(transformed)),
                    Ok(None) => ValidationReport::valid(value.clone()),
                    Err(violation) => ValidationReport::invalid(violation),
                }
            }
        }
    )*};
}

string_rule!(Length, Pattern, Email, Uuid, OneOf, NotBlank);
#[cfg(feature = "url")]
string_rule!(Url);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Chars,
    Bytes,
}

/// A string length, in characters (Unicode scalar values: a letter with a
/// combining accent is two) or in bytes of UTF-8.
#[derive(Debug, Clone)]
pub struct Length {
    unit: Unit,
    min: usize,
    max: usize,
}

impl Length {
    /// A length in characters within `range` (e.g. `3..=32`, `..=10_000`).
    pub fn chars(range: impl RangeBounds<usize>) -> Length {
        Length::with_unit(Unit::Chars, &range)
    }

    /// A length in bytes of UTF-8 within `range`.
    pub fn bytes(range: impl RangeBounds<usize>) -> Length {
        Length::with_unit(Unit::Bytes, &range)
    }

    fn with_unit(unit: Unit, range: &impl RangeBounds<usize>) -> Length {
        let min = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let max = match range.end_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_sub(1),
            Bound::Unbounded => usize::MAX,
        };
        Length { unit, min, max }
    }

    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        let bytes = value.len();
        // A character takes 1 to 4 bytes: count them only when the byte
        // length cannot decide.
        let len = match self.unit {
            Unit::Bytes => bytes,
            Unit::Chars if bytes >= self.min && bytes <= self.max => return Ok(None),
            Unit::Chars => value.chars().count(),
        };
        let unit = match self.unit {
            Unit::Chars => "characters",
            Unit::Bytes => "bytes",
        };
        if len < self.min {
            Err(violation("length", format!("must be at least {} {unit} long", self.min)))
        } else if len > self.max {
            Err(violation("length", format!("must be at most {} {unit} long", self.max)))
        } else {
            Ok(None)
        }
    }
}

impl Default for Length {
    /// The maximum string length: at most [`DEFAULT_MAX_STRING_CHARS`] characters.
    fn default() -> Length {
        Length::chars(..=DEFAULT_MAX_STRING_CHARS)
    }
}

/// A number within bounds. Integers are compared exactly, even beyond 2^53.
#[derive(Debug, Clone)]
pub struct Range {
    min: Bound<f64>,
    max: Bound<f64>,
}

impl Range {
    /// A range such as `1.0..=100.0`, `0.0..` or `..10.0`.
    ///
    /// # Errors
    /// A configuration error when a bound is NaN.
    pub fn new(range: impl RangeBounds<f64>) -> Result<Range, Error> {
        let bound = |b: Bound<&f64>| match b {
            Bound::Included(&x) | Bound::Excluded(&x) if x.is_nan() => {
                Err(Error::configuration("validate.range", "a range bound is not a number"))
            }
            Bound::Included(&x) => Ok(Bound::Included(x)),
            Bound::Excluded(&x) => Ok(Bound::Excluded(x)),
            Bound::Unbounded => Ok(Bound::Unbounded),
        };
        Ok(Range { min: bound(range.start_bound())?, max: bound(range.end_bound())? })
    }

    fn check(&self, cmp: impl Fn(f64) -> Ordering) -> Result<(), FieldViolation> {
        match self.min {
            Bound::Included(min) if cmp(min) == Ordering::Less => {
                return Err(violation("range", format!("must be at least {min}")));
            }
            Bound::Excluded(min) if cmp(min) != Ordering::Greater => {
                return Err(violation("range", format!("must be greater than {min}")));
            }
            _ => {}
        }
        match self.max {
            Bound::Included(max) if cmp(max) == Ordering::Greater => {
                Err(violation("range", format!("must be at most {max}")))
            }
            Bound::Excluded(max) if cmp(max) != Ordering::Less => {
                Err(violation("range", format!("must be less than {max}")))
            }
            _ => Ok(()),
        }
    }
}

/// Compares an integer with a finite or infinite bound, exactly.
fn cmp_int(n: i128, bound: f64) -> Ordering {
    // i128 holds every integer a JSON number parses to, and every floor of a
    // bound below 1.7e38 in magnitude.
    const LIMIT: f64 = 1.0e38;
    if bound >= LIMIT {
        return Ordering::Less;
    }
    if bound <= -LIMIT {
        return Ordering::Greater;
    }
    let floor = bound.floor();
    #[allow(clippy::cast_possible_truncation, reason = "a finite whole number within i128")]
    let whole = floor as i128;
    match n.cmp(&whole) {
        Ordering::Equal if floor < bound => Ordering::Less,
        other => other,
    }
}

fn cmp_number(n: &Number, bound: f64) -> Ordering {
    if let Some(i) = n.as_i64() {
        cmp_int(i128::from(i), bound)
    } else if let Some(u) = n.as_u64() {
        cmp_int(i128::from(u), bound)
    } else {
        // serde_json numbers are finite: partial_cmp only fails on NaN bounds,
        // which Range::new refuses.
        n.as_f64().and_then(|f| f.partial_cmp(&bound)).unwrap_or(Ordering::Less)
    }
}

impl Validator<Value> for Range {
    type Output = Value;
    fn validate(&self, value: &Value) -> ValidationReport<Value> {
        let Value::Number(n) = value else {
            return ValidationReport::invalid(type_violation("a number"));
        };
        match self.check(|bound| cmp_number(n, bound)) {
            Ok(()) => ValidationReport::valid(value.clone()),
            Err(violation) => ValidationReport::invalid(violation),
        }
    }
}

macro_rules! int_range {
    ($($t:ty),*) => {$(
        impl Validator<$t> for Range {
            type Output = $t;
            fn validate(&self, value: &$t) -> ValidationReport<$t> {
                match self.check(|bound| cmp_int(i128::from(*value), bound)) {
                    Ok(()) => ValidationReport::valid(*value),
                    Err(violation) => ValidationReport::invalid(violation),
                }
            }
        }
    )*};
}
int_range!(i32, i64, u32, u64);

impl Validator<f64> for Range {
    type Output = f64;
    fn validate(&self, value: &f64) -> ValidationReport<f64> {
        if !value.is_finite() {
            return ValidationReport::invalid(type_violation("a finite number"));
        }
        match self.check(|bound| value.partial_cmp(&bound).unwrap_or(Ordering::Less)) {
            Ok(()) => ValidationReport::valid(*value),
            Err(violation) => ValidationReport::invalid(violation),
        }
    }
}

/// A string that matches a regular expression as a whole (the pattern is
/// anchored at both ends). Matching takes linear time (the `regex` crate has
/// no backtracking), so a hostile input cannot stall it.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles `pattern` (the `regex` crate's syntax).
    ///
    /// # Errors
    /// A configuration error when the pattern does not compile or is too large.
    pub fn new(pattern: &str) -> Result<Pattern, Error> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|err| Error::configuration("validate.pattern", err.to_string()))?;
        Ok(Pattern { regex })
    }

    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        if self.regex.is_match(value) {
            Ok(None)
        } else {
            Err(violation("pattern", "does not match the required pattern"))
        }
    }
}

/// An email address as the HTML standard defines a valid one (the form
/// `<input type=email>` accepts): ASCII only, a dot-separated domain of
/// labels up to 63 characters, at most 254 characters in all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Email;

static EMAIL: LazyLock<regex::Regex> = LazyLock::new(|| {
    // Spelled out by the WHATWG HTML standard, "valid e-mail address".
    regex::Regex::new(concat!(
        r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@",
        r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?",
        r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
    ))
    .unwrap_or_else(|err| unreachable!("the email pattern compiles: {err}"))
});

impl Email {
    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        let local_len = value.split('@').next().map_or(0, str::len);
        if value.len() <= 254 && local_len <= 64 && EMAIL.is_match(value) {
            Ok(None)
        } else {
            Err(violation("email", "is not a valid email address"))
        }
    }
}

/// An absolute URL with an allowed scheme (by default `https` and `http`)
/// and, for web schemes, a host. Credentials in the URL
/// (`https://user:pass@host`, also a phishing trick) are refused unless
/// allowed, and so are whitespace and control characters, which URL parsers
/// silently drop. The output is the URL in its normalized form.
#[cfg(feature = "url")]
#[derive(Debug, Clone)]
pub struct Url {
    schemes: Vec<String>,
    allow_credentials: bool,
}

#[cfg(feature = "url")]
impl Default for Url {
    /// `https` and `http` URLs without credentials.
    fn default() -> Url {
        Url::schemes(["https", "http"])
    }
}

#[cfg(feature = "url")]
impl Url {
    /// URLs with one of `schemes` (compared case-insensitively).
    pub fn schemes<I, S>(schemes: I) -> Url
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Url {
            schemes: schemes.into_iter().map(|s| s.as_ref().to_ascii_lowercase()).collect(),
            allow_credentials: false,
        }
    }

    /// Whether a user name or password in the URL is accepted.
    #[must_use]
    pub fn allow_credentials(mut self, allow: bool) -> Url {
        self.allow_credentials = allow;
        self
    }

    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(violation("url", "must not contain whitespace or control characters"));
        }
        let url =
            url::Url::parse(value).map_err(|_| violation("url", "is not a valid absolute URL"))?;
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(violation(
                "url",
                format!("must use one of the schemes: {}", self.schemes.join(", ")),
            ));
        }
        if url.is_special() && url.host().is_none() && url.scheme() != "file" {
            return Err(violation("url", "must have a host"));
        }
        if !self.allow_credentials && (!url.username().is_empty() || url.password().is_some()) {
            return Err(violation("url", "must not contain credentials"));
        }
        Ok(Some(url.into()))
    }
}

/// A UUID in its hyphenated form (`8-4-4-4-12` hex digits). The output is
/// lower case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uuid;

impl Uuid {
    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        let well_formed = value.len() == 36
            && value.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if well_formed {
            Ok(Some(value.to_ascii_lowercase()))
        } else {
            Err(violation("uuid", "is not a valid UUID"))
        }
    }
}

/// One of a fixed set of strings, compared exactly: no case folding and no
/// Unicode normalization, so look-alikes (full-width letters, a decomposed
/// accent) are refused.
#[derive(Debug, Clone)]
pub struct OneOf {
    allowed: Vec<String>,
}

impl OneOf {
    /// The allowed values.
    pub fn new<I, S>(allowed: I) -> OneOf
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OneOf { allowed: allowed.into_iter().map(Into::into).collect() }
    }

    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        if self.allowed.iter().any(|a| a == value) {
            return Ok(None);
        }
        const SHOWN: usize = 10;
        let mut message = String::from("must be one of: ");
        for (i, allowed) in self.allowed.iter().take(SHOWN).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(message, "{sep}{allowed}");
        }
        if self.allowed.len() > SHOWN {
            message.push_str(", ...");
        }
        Err(violation("one_of", message))
    }
}

/// A string with something in it: not empty, and not only whitespace
/// (Unicode White_Space, so also no-break and ideographic spaces) or
/// invisible format characters (zero-width space, joiners, BOM).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotBlank;

pub(crate) fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}')
}

impl NotBlank {
    fn check(&self, value: &str) -> Result<Option<String>, FieldViolation> {
        if value.chars().all(is_invisible) {
            Err(violation("not_blank", "must not be blank"))
        } else {
            Ok(None)
        }
    }
}

/// The maximum size of a whole input (a request body, an upload); 1 MiB by
/// default, or the configured `max_input_size`. Going over is a
/// [`PayloadTooLarge`](ErrorKind::PayloadTooLarge) error (413), not a
/// violation.
///
/// ```
/// use rampart::validate::rules::MaxInputSize;
///
/// let limit = MaxInputSize::new(4);
/// assert!(limit.check(b"1234").is_ok());
/// assert_eq!(limit.check(b"12345").unwrap_err().status().as_u16(), 413);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxInputSize {
    bytes: usize,
}

impl Default for MaxInputSize {
    /// [`DEFAULT_MAX_INPUT_SIZE`] (1 MiB).
    fn default() -> MaxInputSize {
        MaxInputSize::new(DEFAULT_MAX_INPUT_SIZE)
    }
}

impl MaxInputSize {
    /// At most `bytes` bytes (the config's `max_input_size`).
    pub const fn new(bytes: usize) -> MaxInputSize {
        MaxInputSize { bytes }
    }

    /// The limit in bytes.
    pub const fn bytes(self) -> usize {
        self.bytes
    }

    /// Refuses `input` if it is larger than the limit.
    ///
    /// # Errors
    /// A payload-too-large error naming the limit.
    pub fn check(self, input: &[u8]) -> Result<(), Error> {
        self.check_len(input.len())
    }

    /// Refuses an input of `len` bytes if it is larger than the limit.
    ///
    /// # Errors
    /// A payload-too-large error naming the limit.
    pub fn check_len(self, len: usize) -> Result<(), Error> {
        if len <= self.bytes { Ok(()) } else { Err(self.exceeded()) }
    }

    /// The error for an input over the limit.
    pub(crate) fn exceeded(self) -> Error {
        Error::new(
            ErrorKind::PayloadTooLarge,
            format!("The input is larger than the limit of {} bytes", self.bytes),
        )
        .with_detail("max_bytes", self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn codes<T>(report: &ValidationReport<T>) -> Vec<&str> {
        report.violations().iter().map(|v| v.code.as_ref()).collect()
    }

    #[test]
    fn length_counts_scalar_values_or_bytes() {
        // "é" written as e + combining acute: 2 chars, 3 bytes; composed: 1 char, 2 bytes.
        let decomposed = "e\u{301}";
        assert!(Length::chars(2..=2).validate(decomposed).is_valid());
        assert!(Length::chars(1..=1).validate("\u{e9}").is_valid());
        assert!(Length::bytes(3..=3).validate(decomposed).is_valid());
        // Full-width letters are one char but three bytes each.
        assert!(Length::chars(..=3).validate("ＡＢＣ").is_valid());
        assert!(!Length::bytes(..=3).validate("ＡＢＣ").is_valid());
        // An emoji with a skin tone is two scalar values.
        assert!(!Length::chars(..=1).validate("👍🏽").is_valid());
        let report = Length::chars(3..).validate("ab");
        assert_eq!(report.violations()[0].message, "must be at least 3 characters long");
        let report = Length::chars(..5).validate("abcde");
        assert_eq!(report.violations()[0].message, "must be at most 4 characters long");
    }

    #[test]
    fn the_default_length_is_the_maximum_string_length() {
        let ok = "x".repeat(DEFAULT_MAX_STRING_CHARS);
        assert!(Length::default().validate(ok.as_str()).is_valid());
        let long = "é".repeat(DEFAULT_MAX_STRING_CHARS + 1);
        assert_eq!(codes(&Length::default().validate(long.as_str())), ["length"]);
    }

    #[test]
    fn range_is_exact_for_large_integers_and_honours_exclusive_bounds() {
        let big = 9_007_199_254_740_993_i64; // 2^53 + 1: not representable in f64
        let range = Range::new(..9_007_199_254_740_992.0).unwrap();
        assert!(!range.validate(&big).is_valid());
        assert!(!range.validate(&json!(big)).is_valid());
        assert!(range.validate(&json!(9_007_199_254_740_991_i64)).is_valid());

        let range = Range::new((Bound::Excluded(0.0), Bound::Included(1.5))).unwrap();
        assert!(!range.validate(&json!(0)).is_valid());
        assert!(range.validate(&json!(1)).is_valid());
        assert!(range.validate(&json!(1.5)).is_valid());
        assert!(!range.validate(&json!(2)).is_valid());
        assert!(!range.validate(&json!(u64::MAX)).is_valid());
        assert_eq!(codes(&range.validate(&json!("1"))), ["type"]);
        assert!(!range.validate(&f64::NAN).is_valid());
        assert!(Range::new(f64::NAN..).is_err());
        assert_eq!(
            Range::new(1.0..=100.0).unwrap().validate(&0_u32).violations()[0].message,
            "must be at least 1"
        );
    }

    #[test]
    fn pattern_matches_the_whole_string_only() {
        let pattern = Pattern::new("[a-z]+").unwrap();
        assert!(pattern.validate("abc").is_valid());
        assert!(!pattern.validate("abc1").is_valid());
        assert!(!pattern.validate("1abc").is_valid());
        // An alternation cannot escape the anchors.
        let pattern = Pattern::new("a|b").unwrap();
        assert!(!pattern.validate("ax").is_valid());
        assert!(Pattern::new("(unclosed").is_err());
        // A classic catastrophic-backtracking pattern stays linear.
        let pattern = Pattern::new("(a+)+$").unwrap();
        let hostile = format!("{}!", "a".repeat(100_000));
        assert!(!pattern.validate(hostile.as_str()).is_valid());
    }

    #[test]
    fn email_follows_the_html_standard() {
        for ok in ["a@b", "first.last+tag@example.co.uk", "o'brian@example.com"] {
            assert!(Email.validate(ok).is_valid(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "a@",
            "@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@-b.com",
            "a＠example.com",        // full-width at sign
            "josé@example.com",      // non-ASCII local part
            "a@exa\u{202E}mple.com", // RTL override
            "a@example.com\n",
        ] {
            assert_eq!(codes(&Email.validate(bad)), ["email"], "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(!Email.validate(long_local.as_str()).is_valid());
    }

    #[cfg(feature = "url")]
    #[test]
    fn url_checks_scheme_host_credentials_and_hidden_characters() {
        let url = Url::default();
        assert!(url.validate("https://example.com/a?b=c").is_valid());
        for bad in [
            "javascript:alert(1)",
            "java\nscript:alert(1)",
            "https://exa\tmple.com",
            " https://example.com",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com",
            "https://user:pass@example.com",
            "https://example.com@evil.example",
            "/relative/path",
            "https://",
        ] {
            assert_eq!(codes(&url.validate(bad)), ["url"], "{bad:?}");
        }
        let ftp = Url::schemes(["FTP"]);
        assert!(ftp.validate("ftp://example.com/file").is_valid());
        let creds = Url::default().allow_credentials(true);
        assert!(creds.validate("https://user:pass@example.com").is_valid());
        // The output is the normalized URL.
        let report = url.validate("HTTPS://Example.COM");
        assert_eq!(report.value().unwrap(), "https://example.com/");
    }

    #[test]
    fn uuid_is_strict_and_lowercased() {
        assert!(Uuid.validate("67e55044-10b1-426f-9247-bb680e5fe0c8").is_valid());
        for bad in [
            "67e5504410b1426f9247bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
            "67e55044-10b1-426f-9247-bb680e5fe0c8 ",
            "６7e55044-10b1-426f-9247-bb680e5fe0c",
        ] {
            assert_eq!(codes(&Uuid.validate(bad)), ["uuid"], "{bad:?}");
        }
        let report = Uuid.validate(&json!("67E55044-10B1-426F-9247-BB680E5FE0C8"));
        assert_eq!(report.value(), Some(&json!("67e55044-10b1-426f-9247-bb680e5fe0c8")));
    }

    #[test]
    fn one_of_is_exact_and_lists_what_is_allowed() {
        let rule = OneOf::new(["café", "tea"]);
        assert!(rule.validate("café").is_valid());
        assert!(!rule.validate("cafe\u{301}").is_valid()); // decomposed accent
        assert!(!rule.validate("Tea").is_valid());
        assert!(!rule.validate("ｔｅａ").is_valid());
        assert_eq!(rule.validate("x").violations()[0].message, "must be one of: café, tea");
        let many = OneOf::new((0..20).map(|i| i.to_string()));
        assert!(many.validate("x").violations()[0].message.ends_with("9, ..."));
    }

    #[test]
    fn not_blank_sees_through_unicode_spaces_and_invisible_characters() {
        for blank in ["", " ", "\t\n", "\u{A0}", "\u{3000}", "\u{200B}\u{FEFF}", "\u{2029}"] {
            assert_eq!(codes(&NotBlank.validate(blank)), ["not_blank"], "{blank:?}");
        }
        assert!(NotBlank.validate(" a ").is_valid());
        assert_eq!(codes(&NotBlank.validate(&json!(null))), ["type"]);
    }

    #[test]
    fn rules_never_put_the_value_in_their_messages() {
        let canary = "CANARY-7f3a";
        let value = json!(canary);
        let reports = [
            Length::chars(..=3).validate(&value),
            Pattern::new("[0-9]+").unwrap().validate(&value),
            Email.validate(&value),
            #[cfg(feature = "url")]
            Url::default().validate(&value),
            Uuid.validate(&value),
            OneOf::new(["a"]).validate(&value),
        ];
        for report in reports {
            let message = &report.violations()[0].message;
            assert!(!message.contains(canary), "{message}");
        }
    }

    #[test]
    fn max_input_size_defaults_to_one_mebibyte() {
        let limit = MaxInputSize::default();
        assert_eq!(limit.bytes(), 1024 * 1024);
        assert!(limit.check(&vec![0; 1024 * 1024]).is_ok());
        let err = limit.check(&vec![0; 1024 * 1024 + 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
        assert_eq!(err.details()["max_bytes"], 1024 * 1024);
    }
}
