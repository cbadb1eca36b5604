//! Validators by name, so that configuration can refer to them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Error;

#[cfg(feature = "url")]
use super::rules::Url;
use super::rules::{Email, Length, NotBlank, Uuid};
use super::{ValidationReport, Validator};

/// A validator of JSON values as the registry keeps it.
pub type DynValidator = Arc<dyn Validator<Value, Output = Value>>;

/// A registry of named validators.
///
/// The default registry holds the built-in rules that need no parameter:
/// `email`, `url` (https and http), `uuid`, `not_blank` and `max_length`
/// (10,000 characters). Register rules with parameters, or your own
/// validators, under names of your choosing; an unknown name is a
/// configuration error, found when the configuration is checked.
///
/// ```
/// use rampart::validate::{Registry, rules::Length};
/// use serde_json::json;
///
/// let mut registry = Registry::default();
/// registry.register("username", Length::chars(3..=32)).unwrap();
///
/// assert!(registry.validate("email", &json!("ada@example.com")).unwrap().is_valid());
/// assert!(!registry.validate("username", &json!("al")).unwrap().is_valid());
/// let err = registry.validate("emial", &json!("x")).unwrap_err();
/// assert_eq!(err.kind(), rampart::ErrorKind::Configuration);
/// ```
#[derive(Clone)]
pub struct Registry {
    validators: BTreeMap<String, DynValidator>,
}

impl Default for Registry {
    fn default() -> Registry {
        let mut registry = Registry::empty();
        let builtins = [
            ("email", Arc::new(Email) as DynValidator),
            #[cfg(feature = "url")]
            ("url", Arc::new(Url::default())),
            ("uuid", Arc::new(Uuid)),
            ("not_blank", Arc::new(NotBlank)),
            ("max_length", Arc::new(Length::default())),
        ];
        for (name, validator) in builtins {
            registry.validators.insert(name.to_owned(), validator);
        }
        registry
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("names", &self.validators.keys()).finish()
    }
}

impl Registry {
    /// A registry with no validator at all.
    pub fn empty() -> Registry {
        Registry { validators: BTreeMap::new() }
    }

    /// Registers `validator` under `name`.
    ///
    /// # Errors
    /// A configuration error when the name is taken or is not made of ASCII
    /// letters, digits, `_`, `-` and `.`.
    pub fn register<V>(&mut self, name: impl Into<String>, validator: V) -> Result<(), Error>
    where
        V: Validator<Value, Output = Value> + 'static,
    {
        let name = name.into();
        let well_formed = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !well_formed {
            return Err(Error::configuration(
                "validate.registry",
                "a validator name is made of ASCII letters, digits, '_', '-' and '.'",
            ));
        }
        if self.validators.contains_key(&name) {
            return Err(Error::configuration(
                "validate.registry",
                format!("a validator named {name:?} is already registered"),
            ));
        }
        self.validators.insert(name, Arc::new(validator));
        Ok(())
    }

    /// The validator registered under `name`; resolve names once, when the
    /// configuration is loaded.
    ///
    /// # Errors
    /// A configuration error naming the unknown name and the known ones.
    pub fn get(&self, name: &str) -> Result<DynValidator, Error> {
        self.validators.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            Error::configuration(
                "validate.registry",
                format!("no validator is named {name:?}; known: {}", known.join(", ")),
            )
        })
    }

    /// Validates `value` with the validator registered under `name`.
    ///
    /// # Errors
    /// A configuration error when no validator has that name.
    pub fn validate(&self, name: &str, value: &Value) -> Result<ValidationReport<Value>, Error> {
        Ok(self.get(name)?.validate(value))
    }

    /// The registered names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;
    use crate::validate::rules::OneOf;

    #[test]
    fn the_default_registry_holds_the_builtins() {
        let registry = Registry::default();
        let mut builtins = vec!["email", "max_length", "not_blank", "uuid"];
        if cfg!(feature = "url") {
            builtins.insert(3, "url");
        }
        assert_eq!(registry.names().collect::<Vec<_>>(), builtins);
        let report = registry.validate("uuid", &json!("67E55044-10B1-426F-9247-BB680E5FE0C8"));
        assert_eq!(report.unwrap().value(), Some(&json!("67e55044-10b1-426f-9247-bb680e5fe0c8")));
        #[cfg(feature = "url")]
        {
            let report = registry.validate("url", &json!("javascript:alert(1)")).unwrap();
            assert_eq!(report.violations()[0].code, "url");
        }
        let long = "x".repeat(10_001);
        assert!(!registry.validate("max_length", &json!(long)).unwrap().is_valid());
    }

    #[test]
    fn unknown_names_are_a_clear_configuration_error() {
        let err = Registry::default().validate("emial", &json!("a@b")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert_eq!(err.config_key(), Some("validate.registry"));
        assert!(err.message().contains("\"emial\""), "{}", err.message());
        assert!(err.message().contains("email"), "{}", err.message());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut registry = Registry::empty();
        registry.register("status", OneOf::new(["open", "closed"])).unwrap();
        assert!(registry.register("status", OneOf::new(["x"])).is_err());
        assert!(registry.register("", OneOf::new(["x"])).is_err());
        assert!(registry.register("a b", OneOf::new(["x"])).is_err());
        assert!(!registry.validate("status", &json!("pending")).unwrap().is_valid());
        assert!(registry.validate("email", &json!("a@b")).is_err());
    }
}
