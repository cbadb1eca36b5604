//! Reading values into raw tables: what serde (through figment) says about
//! a value that does not read, phrased as a keyed problem that never quotes
//! the value. The loader adds where the value came from.

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Reads `value` as a `T` the way the loader reads a table (numbers and
/// booleans written as text are accepted); the first problem, keyed.
pub(crate) fn read_value<T: DeserializeOwned>(value: impl Serialize) -> Result<T, Error> {
    Figment::from(Serialized::defaults(value)).extract_lossy().map_err(|err| problem(&err))
}

/// The problem a figment error stands for: its key (`keys[1].secret`) and
/// why, in the words of a configuration file, without the value.
pub(crate) fn problem(err: &figment::Error) -> Error {
    let mut path: Vec<String> = err.path.iter().map(|p| printable(p)).collect();
    let why = match &err.kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {}", in_file_terms(expected), describe(actual))
        }
        Kind::InvalidValue(_, expected) => {
            format!("invalid value: expected {}", in_file_terms(expected))
        }
        Kind::InvalidLength(len, expected) => format!("expected {expected}, found {len} items"),
        Kind::UnknownVariant(_, expected) => format!("must be one of: {}", expected.join(", ")),
        Kind::UnknownField(name, expected) => {
            if path.last() != Some(name) {
                path.push(printable(name));
            }
            match expected.len() {
                0 => "is not a known key".to_owned(),
                _ => format!("is not a known key (expected one of: {})", expected.join(", ")),
            }
        }
        Kind::MissingField(name) => {
            path.push(name.to_string());
            "is required".to_owned()
        }
        Kind::DuplicateField(name) => {
            path.push((*name).to_owned());
            "is set twice".to_owned()
        }
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "is out of range".to_owned(),
        Kind::Unsupported(actual) => format!("cannot be {}", describe(actual)),
        Kind::UnsupportedKey(actual, needed) => {
            format!("has a key that is {}, where {needed} is needed", describe(actual))
        }
        // A deserializer's own message may quote the value.
        Kind::Message(_) => "is not a valid value".to_owned(),
    };
    Error::configuration(key_path(&path), why)
}

/// Joins figment's path segments the way keys are named everywhere else:
/// figment gives an array index as a segment (`keys.1.secret`), rampart
/// writes `keys[1].secret`.
fn key_path(segments: &[String]) -> String {
    let mut key = String::new();
    for segment in segments {
        if !key.is_empty() && is_index(segment) {
            key.push('[');
            key.push_str(segment);
            key.push(']');
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// Whether a figment path segment is an array index.
pub(crate) fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// A key or variable name with control characters escaped, safe to print.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] })
        .collect()
}

/// serde's names for what was expected, in the words of a configuration
/// file (TOML's; a JSON file's objects are its tables).
fn in_file_terms(expected: &str) -> &str {
    match expected {
        "a sequence" => "an array",
        "a map" => "a table",
        "path string" => "a path",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        other => other,
    }
}

fn describe(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "nothing",
        Actual::Option => "an option",
        Actual::NewtypeStruct => "a newtype",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant => "an enum",
        Actual::Other(_) => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("rate\u{1b}[2J_limit\n"), "rate\\u{1b}[2J_limit\\n");
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_keyed_and_never_quoted() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Raw {
            items: Vec<Item>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Item {
            count: u32,
        }
        let json = serde_json::json!({"items": [{"count": 1}, {"count": "hunter2"}]});
        let err = read_value::<Raw>(json).unwrap_err();
        assert_eq!(err.config_key(), Some("items[1].count"));
        assert_eq!(err.message(), "expected a whole number, 0 or more, found a string");
    }
}
