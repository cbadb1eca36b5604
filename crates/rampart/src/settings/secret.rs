//! [`Secret`]: a value that cannot be printed by accident, the one type every
//! secret of the configuration is held in.
//!
//! ```
//! use rampart::config::Secret;
//!
//! let key = Secret::new(String::from("correct horse battery staple"));
//! assert_eq!(format!("{key:?} {key}"), "****** ******");
//! assert_eq!(serde_json::to_string(&key).unwrap(), r#""******""#);
//! assert_eq!(key.expose(), "correct horse battery staple");
//! ```

use std::fmt;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret prints as, everywhere.
pub const MASK: &str = "******";

/// A secret value: `Debug`, `Display` and serialization print [`MASK`]; the
/// value is reachable only through [`Secret::expose`]; its memory is zeroed
/// when dropped (through `secrecy`).
///
/// Deserializing reads the plain value, so a secret can sit in a
/// configuration file or variable.
pub struct Secret<T: Zeroize>(SecretBox<T>);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Secret<T> {
        Secret(SecretBox::new(Box::new(value)))
    }

    /// The value itself. Every use is a place a secret may leak: keep them few.
    pub fn expose(&self) -> &T {
        self.0.expose_secret()
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Secret<T> {
        Secret::new(self.expose().clone())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T: Zeroize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret<T>, D::Error> {
        T::deserialize(deserializer).map(Secret::new)
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize)]
    struct Holder {
        name: &'static str,
        key: Secret<String>,
        pin: Secret<u32>,
    }

    #[test]
    fn every_printed_form_is_masked() {
        let h = Holder { name: "db", key: Secret::new("hunter2".into()), pin: Secret::new(4242) };
        for text in [
            format!("{h:?}"),
            format!("{h:#?}"),
            format!("{} {}", h.key, h.pin),
            serde_json::to_string(&h).expect("serializes"),
        ] {
            assert!(!text.contains("hunter2") && !text.contains("4242"), "{text}");
            assert!(text.contains(MASK), "{text}");
        }
        assert_eq!(h.key.expose(), "hunter2");
        assert_eq!(*h.pin.expose(), 4242);
    }

    #[test]
    fn deserializes_the_plain_value_and_clones() {
        let s: Secret<String> = serde_json::from_str(r#""hunter2""#).expect("deserializes");
        let copy = s.clone();
        drop(s);
        assert_eq!(copy.expose(), "hunter2");
    }
}
