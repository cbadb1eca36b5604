//! Typed structs validated with garde; `Validated<T>` is the proof.

use std::borrow::Cow;
use std::fmt::Display;
use std::ops::Deref;

use garde::i18n::{
    I18n, InvalidCreditCard, InvalidEmail, InvalidPhoneNumber, InvalidUrl, IpKind, with_i18n,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, FieldViolation};

use super::limits::JsonLimits;
use super::pointer::push_token;
use super::report::{into_error, redact};
use super::sensitive::{SensitiveFields, normalize};

/// A value that passed its validation. Only validation makes one, so a
/// function taking `Validated<T>` cannot be handed an unchecked `T`. Typed
/// structs are validated with [garde](https://docs.rs/garde) and reported in
/// rampart's format. With the feature `http`, `Validated<Json<T>>` is an axum
/// extractor that does all of this for a request body.
///
/// Its `value` is public, so it destructures
/// (`let Validated { value, .. } = checked;`, in a handler's arguments too),
/// but nothing outside rampart can build one by hand:
///
/// ```compile_fail,E0639
/// use rampart::validate::Validated;
/// let forged = Validated { value: "never checked" };
/// ```
///
/// garde is re-exported as [`rampart::validate::garde`](super::garde). Its
/// `#[derive(Validate)]` writes `::garde::...`, so a crate deriving it lists
/// `garde` in its own `Cargo.toml`, at the version rampart uses (0.23), which
/// cargo then unifies with rampart's.
///
/// garde names fields as they are in Rust; clients know them by their serde
/// names. [`Validated::from_json`] resolves each garde path against the document
/// the client sent, member by member:
///
/// 1. a member with exactly the Rust name;
/// 2. else a member whose name is the same once case and `_`/`-` are
///    ignored: this is every `#[serde(rename_all = "...")]` convention
///    (`camelCase`, `kebab-case`, `SCREAMING_SNAKE_CASE`, ...);
/// 3. else (the member is absent, e.g. a missing optional field that is
///    `required`) the Rust name written in the convention the object's
///    other members use.
///
/// Limits: a field renamed with `#[serde(rename = "...")]` to a name that is
/// not a case convention of its Rust name, and fields of a
/// `#[serde(flatten)]`ed struct, cannot be recognised from garde's path;
/// they are reported under their Rust name. Name such fields in Rust as on
/// the wire (or use `rename_all`).
///
/// Each violation gets a stable code from the garde rule that failed
/// (`length`, `range`, `pattern`, `email`, `url`, `required`, ...; `custom`
/// for custom rules), and violations of [sensitive](SensitiveFields) fields
/// say only "is invalid".
///
/// ```
/// use garde::Validate;
/// use rampart::validate::{JsonLimits, SensitiveFields, Validated};
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize, Validate)]
/// #[serde(rename_all = "camelCase")]
/// struct Signup {
///     #[garde(email)]
///     email_address: String,
///     #[garde(length(min = 12))]
///     password: String,
/// }
///
/// let body = br#"{"emailAddress": "ada@example.com", "password": "short"}"#;
/// let err = Validated::<Signup>::from_json(body, &JsonLimits::default(), &SensitiveFields::default())
///     .unwrap_err();
/// let v = &err.violations()[0];
/// assert_eq!((v.pointer.as_str(), v.code.as_ref(), v.message.as_ref()),
///            ("/password", "length", "is invalid"));
///
/// let body = br#"{"emailAddress": "ada@example.com", "password": "correct horse battery"}"#;
/// let Validated { value: signup, .. } =
///     Validated::<Signup>::from_json(body, &JsonLimits::default(), &SensitiveFields::default())
///         .unwrap();
/// assert_eq!(signup.email_address, "ada@example.com");
/// ```
// `non_exhaustive`, so that outside rampart only validation makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validated<T> {
    /// The validated value.
    pub value: T,
}

impl<T> Validated<T> {
    /// The validated value.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The same proof for a value built from the validated one (the body
    /// extractor wraps it in `Json`).
    #[cfg_attr(not(feature = "http"), allow(dead_code, reason = "the extractor maps"))]
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Validated<U> {
        Validated { value: f(self.value) }
    }
}

impl<T> Deref for Validated<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Validated<T>
where
    T: garde::Validate,
    T::Context: Default,
{
    /// Validates a value built in code. With no document to resolve names
    /// against, violations are located by the Rust field names.
    ///
    /// # Errors
    /// A validation error listing every violation.
    pub fn new(value: T, sensitive: &SensitiveFields) -> Result<Validated<T>, Error> {
        validate(value, None, sensitive)
    }

    /// Reads a JSON document within `limits`, deserializes it and validates
    /// it; violations are located by the member names of the document.
    ///
    /// # Errors
    /// As [`JsonLimits::deserialize`], then a validation error listing every
    /// violation.
    pub fn from_json(
        input: &[u8],
        limits: &JsonLimits,
        sensitive: &SensitiveFields,
    ) -> Result<Validated<T>, Error>
    where
        T: DeserializeOwned,
    {
        let value: T = limits.deserialize(input)?;
        validate(value, Some(input), sensitive)
    }
}

fn validate<T>(
    value: T,
    document: Option<&[u8]>,
    sensitive: &SensitiveFields,
) -> Result<Validated<T>, Error>
where
    T: garde::Validate,
    T::Context: Default,
{
    let context = T::Context::default();
    let Err(report) = with_i18n(Codes, || value.validate_with(&context)) else {
        return Ok(Validated { value });
    };
    // Only a failure needs the tree, to name the members as the client did;
    // the bytes already passed the limits and the parser.
    let document: Option<Value> = document.and_then(|bytes| serde_json::from_slice(bytes).ok());
    let mut violations: Vec<FieldViolation> = report
        .iter()
        .map(|(path, error)| {
            let (code, message) = split_coded(error.message());
            FieldViolation::new(pointer(path, document.as_ref()), code, message)
        })
        .collect();
    // Sorted by pointer: a stable order, whatever order garde visits fields in.
    violations.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    violations.truncate(super::MAX_VIOLATIONS);
    redact(&mut violations, sensitive);
    Err(into_error(violations))
}

/// Starts every message garde builds for a built-in rule, so that the rule
/// can be told apart from a custom rule's free text.
const CODE_MARK: char = '\u{1F}';

/// garde messages carrying rampart's codes: `MARK code MARK message`.
struct Codes;

fn coded(code: &str, message: impl Display) -> Cow<'static, str> {
    Cow::Owned(format!("{CODE_MARK}{code}{CODE_MARK}{message}"))
}

fn split_coded(message: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    match message.strip_prefix(CODE_MARK).and_then(|rest| rest.split_once(CODE_MARK)) {
        Some((code, message)) => (Cow::Owned(code.to_owned()), Cow::Owned(message.to_owned())),
        None => (Cow::Borrowed("custom"), Cow::Owned(message.to_owned())),
    }
}

impl I18n for Codes {
    fn length_lower_than(&self, min: usize) -> Cow<'static, str> {
        coded("length", format_args!("must be at least {min} long"))
    }
    fn length_greater_than(&self, max: usize) -> Cow<'static, str> {
        coded("length", format_args!("must be at most {max} long"))
    }
    fn range_lower_than(&self, min: &dyn Display) -> Cow<'static, str> {
        coded("range", format_args!("must be at least {min}"))
    }
    fn range_greater_than(&self, max: &dyn Display) -> Cow<'static, str> {
        coded("range", format_args!("must be at most {max}"))
    }
    fn credit_card_invalid(&self, _: InvalidCreditCard) -> Cow<'static, str> {
        coded("credit_card", "is not a valid card number")
    }
    fn pattern_no_match(&self, _: &dyn Display) -> Cow<'static, str> {
        coded("pattern", "does not match the required pattern")
    }
    fn contains_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("contains", format_args!("must contain {:?}", pattern.to_string()))
    }
    fn url_invalid(&self, _: InvalidUrl) -> Cow<'static, str> {
        coded("url", "is not a valid URL")
    }
    fn prefix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("prefix", format_args!("must begin with {:?}", pattern.to_string()))
    }
    fn suffix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        coded("suffix", format_args!("must end with {:?}", pattern.to_string()))
    }
    fn phone_number_invalid(&self, _: InvalidPhoneNumber) -> Cow<'static, str> {
        coded("phone_number", "is not a valid phone number")
    }
    fn ip_invalid(&self, kind: IpKind) -> Cow<'static, str> {
        coded("ip", format_args!("is not a valid {kind} address"))
    }
    fn matches_field_mismatch(&self, field: &dyn Display) -> Cow<'static, str> {
        coded("matches", format_args!("does not match the field {field}"))
    }
    fn email_invalid(&self, _: InvalidEmail) -> Cow<'static, str> {
        coded("email", "is not a valid email address")
    }
    fn ascii_invalid(&self) -> Cow<'static, str> {
        coded("ascii", "must contain only ASCII characters")
    }
    fn alphanumeric_invalid(&self) -> Cow<'static, str> {
        coded("alphanumeric", "must contain only letters and digits")
    }
    fn required_not_set(&self) -> Cow<'static, str> {
        coded("required", "is required")
    }
}

/// A garde path as a JSON Pointer into `document` (see the module docs).
fn pointer(path: &garde::error::Path, document: Option<&Value>) -> String {
    // garde's public, structured view of a path: [[kind, component], ...].
    let components: Vec<(String, String)> = serde_json::to_value(path)
        .ok()
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default();
    let mut pointer = String::new();
    let mut node = document;
    for (kind, component) in components {
        match kind.as_str() {
            "index" => {
                node = node.and_then(|n| component.parse::<usize>().ok().and_then(|i| n.get(i)));
                push_token(&mut pointer, &component);
            }
            "key" => {
                let name = match node {
                    Some(Value::Object(members)) => member_name(members, &component),
                    _ => component,
                };
                node = node.and_then(|n| n.get(&name));
                push_token(&mut pointer, &name);
            }
            // A component without a key (an Option, a newtype) is not in the document.
            _ => {}
        }
    }
    pointer
}

/// The document's name for the Rust field `rust` of an object.
fn member_name(members: &Map<String, Value>, rust: &str) -> String {
    if members.contains_key(rust) {
        return rust.to_owned();
    }
    let wanted = normalize(rust);
    if let Some(name) = members.keys().find(|name| normalize(name) == wanted) {
        return name.clone();
    }
    Convention::of(members.keys()).apply(rust)
}

/// serde's `rename_all` conventions, as far as they can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
    Camel,
    Pascal,
}

impl Convention {
    /// The convention of the first member name that shows one.
    fn of<'a>(names: impl Iterator<Item = &'a String>) -> Convention {
        for name in names {
            let upper = name.chars().any(|c| c.is_ascii_uppercase());
            let lower = name.chars().any(|c| c.is_ascii_lowercase());
            if name.contains('-') {
                return if upper && !lower {
                    Convention::ScreamingKebab
                } else {
                    Convention::Kebab
                };
            }
            if upper && !lower {
                return Convention::ScreamingSnake;
            }
            if upper && !name.contains('_') {
                return if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    Convention::Pascal
                } else {
                    Convention::Camel
                };
            }
            if name.contains('_') {
                return Convention::Snake;
            }
        }
        Convention::Snake
    }

    /// A snake_case Rust name in this convention.
    fn apply(self, rust: &str) -> String {
        let words = rust.split('_').filter(|w| !w.is_empty());
        let capitalize = |w: &str| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
        };
        match self {
            Convention::Snake => rust.to_owned(),
            Convention::ScreamingSnake => rust.to_uppercase(),
            Convention::Kebab => rust.replace('_', "-"),
            Convention::ScreamingKebab => rust.replace('_', "-").to_uppercase(),
            Convention::Pascal => words.map(capitalize).collect(),
            Convention::Camel => words
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_owned() } else { capitalize(w) })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_are_recognised_and_applied() {
        let of = |names: &[&str]| {
            Convention::of(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>().iter())
        };
        assert_eq!(of(&["id", "unitPrice"]), Convention::Camel);
        assert_eq!(of(&["UnitPrice"]), Convention::Pascal);
        assert_eq!(of(&["unit-price"]), Convention::Kebab);
        assert_eq!(of(&["UNIT-PRICE"]), Convention::ScreamingKebab);
        assert_eq!(of(&["UNIT_PRICE"]), Convention::ScreamingSnake);
        assert_eq!(of(&["id", "unit_price"]), Convention::Snake);
        assert_eq!(of(&[]), Convention::Snake);
        let name = "max_unit_price";
        assert_eq!(Convention::Camel.apply(name), "maxUnitPrice");
        assert_eq!(Convention::Pascal.apply(name), "MaxUnitPrice");
        assert_eq!(Convention::Kebab.apply(name), "max-unit-price");
        assert_eq!(Convention::ScreamingKebab.apply(name), "MAX-UNIT-PRICE");
        assert_eq!(Convention::ScreamingSnake.apply(name), "MAX_UNIT_PRICE");
        assert_eq!(Convention::Snake.apply(name), name);
    }

    #[test]
    fn custom_messages_are_coded_custom() {
        assert_eq!(split_coded("too spicy").0, "custom");
        let (code, message) = split_coded(&coded("length", "must be short"));
        assert_eq!((code.as_ref(), message.as_ref()), ("length", "must be short"));
    }
}
