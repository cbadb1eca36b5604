//! Human units in configuration: durations (`"500ms"`, `"60s"`, `"24h"`) and
//! byte sizes (`"1MiB"`, or a plain number of bytes).
//!
//! Each comes as a serde module for `#[serde(with = ...)]`, so a section's
//! raw struct can hold a plain [`Duration`] or `u64`:
//!
//! ```
//! use std::time::Duration;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Raw {
//!     #[serde(with = "rampart::config::duration")]
//!     window: Duration,
//!     #[serde(with = "rampart::config::byte_size")]
//!     limit: u64,
//! }
//! let raw: Raw = serde_json::from_str(r#"{"window": "1m30s", "limit": "2KiB"}"#).unwrap();
//! assert_eq!(raw.window, Duration::from_secs(90));
//! assert_eq!(raw.limit, 2048);
//! ```
//!
//! A value that does not parse is reported with what was expected and never
//! with the value itself.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Unexpected, Visitor};

use crate::error::Error;

/// Formats a duration the way configuration files write it: the largest of
/// `h`, `m`, `s`, `ms` that divides it (`"24h"`, `"90s"`), else humantime's
/// form (`"1s 500us"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.subsec_nanos().is_multiple_of(1_000_000) && ms > 0 {
        for (unit, per) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms.is_multiple_of(per) {
                return format!("{}{unit}", ms / per);
            }
        }
    }
    if d.is_zero() { "0s".to_owned() } else { humantime::format_duration(d).to_string() }
}

/// Parses a human duration ("500ms", "10s"), `default` when absent.
pub(crate) fn parse_duration_setting(
    key: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, Error> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text).map_err(|_| {
            Error::configuration(key.to_owned(), "is not a duration such as \"500ms\" or \"10s\"")
        }),
    }
}

/// Formats a byte count as the largest binary unit that divides it
/// (`"1MiB"`), else as a plain number.
pub fn format_byte_size(bytes: u64) -> String {
    for (unit, per) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= per && bytes.is_multiple_of(per) {
            return format!("{}{unit}", bytes / per);
        }
    }
    bytes.to_string()
}

/// Parses a byte size: a number with an optional unit, `B`, `KB`/`MB`/`GB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB` (powers of 1024), case-insensitive.
/// `None` when it does not parse or overflows.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `#[serde(with = "rampart::config::duration")]` for a [`Duration`] written
/// as a human string (`"500ms"`, `"60s"`, `"1h 30m"`, `"24h"`).
pub mod duration {
    use super::*;

    const EXPECTED: &str = "a duration such as \"500ms\", \"60s\" or \"24h\"";

    /// Serializes as [`format_duration`] does.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserializes from a human string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                // humantime's own error quotes the text: report only what was expected.
                humantime::parse_duration(v.trim())
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(DurationVisitor)
    }
}

/// `#[serde(with = "rampart::config::byte_size")]` for a `u64` byte count
/// written as a number of bytes or a string with a unit (see
/// [`parse_byte_size`]).
pub mod byte_size {
    use super::*;

    const EXPECTED: &str = "a size such as \"1MiB\", \"512KiB\" or a number of bytes";

    /// Serializes as [`format_byte_size`] does.
    pub fn serialize<S: serde::Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_byte_size(*bytes))
    }

    /// Deserializes from a number of bytes or a string with a unit.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse_byte_size(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_the_largest_unit() {
        for (text, secs_ms) in
            [("500ms", 500), ("45s", 45_000), ("24h", 86_400_000), ("90m", 5_400_000)]
        {
            let d = humantime::parse_duration(text).expect("parses");
            assert_eq!(d.as_millis(), secs_ms);
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms 500us");
    }

    #[test]
    fn byte_sizes_parse_with_units_and_refuse_overflow() {
        assert_eq!(parse_byte_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_byte_size("10 kb"), Some(10_000));
        assert_eq!(parse_byte_size("4096"), Some(4096));
        assert_eq!(parse_byte_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_byte_size("18446744073709551615GiB"), None);
        assert_eq!(parse_byte_size("1.5MiB"), None);
        assert_eq!(parse_byte_size("MiB"), None);
        assert_eq!(parse_byte_size("12 parsecs"), None);
        assert_eq!(format_byte_size(1 << 20), "1MiB");
        assert_eq!(format_byte_size(1000), "1000");
    }
}
