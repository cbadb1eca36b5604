//! [`Section`]: one table of the configuration, and [`ConfigError`], every
//! problem found while loading one.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// One table of the configuration, owned by the module it configures.
///
/// The convention every section follows: a raw serde struct (what the file
/// says; private to its module), validated into the typed settings by one
/// function, [`Section::from_raw`]. An application registers its own
/// sections the same way ([`Loader::section`](crate::config::Loader::section)).
/// `Option<S>` is the section `S` made optional: no table, `None`.
///
/// ```
/// use rampart::config::Section;
/// use rampart::Error;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize)]
/// pub struct Greeting { pub text: String }
///
/// #[derive(Debug, Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// pub struct RawGreeting { text: String }
///
/// impl Default for RawGreeting {
///     fn default() -> Self { RawGreeting { text: "hello".into() } }
/// }
///
/// impl Section for Greeting {
///     const NAME: &'static str = "greeting";
///     type Raw = RawGreeting;
///     fn from_raw(raw: RawGreeting) -> Result<Greeting, Error> {
///         if raw.text.is_empty() {
///             // Name the key and say why; never quote the value.
///             return Err(Error::configuration("greeting.text", "must not be empty"));
///         }
///         Ok(Greeting { text: raw.text })
///     }
/// }
/// assert!(Greeting::from_raw(RawGreeting { text: String::new() }).is_err());
/// let greeting = Greeting::from_value(serde_json::json!({"text": "hi"})).unwrap();
/// assert_eq!(greeting.text, "hi");
/// ```
pub trait Section: Sized + Clone + fmt::Debug + Serialize {
    /// The table's name at the top of the file (`"rate_limit"`): every key
    /// in the section's errors begins with it.
    const NAME: &'static str;

    /// The table as written: `#[serde(default, deny_unknown_fields)]`, with
    /// the defaults in its `Default`. Parse units with
    /// [`duration`](crate::config::duration) /
    /// [`byte_size`](crate::config::byte_size) and hold secrets in
    /// [`Secret`](crate::config::Secret), rather than in a custom
    /// `Deserialize` whose message could quote the value.
    type Raw: DeserializeOwned + Default;

    /// Validates the raw table. An error names its key as a dotted path from
    /// the top (`"rate_limit.window"`; a path inside the section is prefixed
    /// with the section's name) and says why without quoting the value.
    fn from_raw(raw: Self::Raw) -> Result<Self, Error>;

    /// Reads the table from any serializable value (a `serde_json::json!`
    /// literal, a table parsed elsewhere) and validates it: for settings
    /// made in code and tests. A value of the wrong shape is refused the
    /// way the loader refuses it, naming the key and never the value.
    ///
    /// # Errors
    /// A configuration error: the first value of the wrong shape, else what
    /// [`Section::from_raw`] finds.
    fn from_value(value: impl Serialize) -> Result<Self, Error> {
        let raw = super::read_value(value).map_err(|err| {
            let key = match err.config_key() {
                Some("") | None => Self::NAME.to_owned(),
                Some(key) => format!("{}.{key}", Self::NAME),
            };
            Error::configuration(key, err.message().to_owned())
        })?;
        Self::from_raw(raw)
    }
}

/// A section that may be left out: no table, `None` (the audit trail).
impl<S: Section> Section for Option<S> {
    const NAME: &'static str = S::NAME;
    type Raw = Option<S::Raw>;

    fn from_raw(raw: Option<S::Raw>) -> Result<Option<S>, Error> {
        raw.map(S::from_raw).transpose()
    }
}

/// Every problem that stopped a configuration from loading, each a
/// [`Configuration`](crate::ErrorKind::Configuration) [`Error`] naming its
/// key and source. `Display` prints one `key: why (source)` per line.
#[derive(Debug)]
pub struct ConfigError {
    problems: Vec<Error>,
}

impl ConfigError {
    /// Several problems as one error, e.g. for a [`Section`]
    /// whose tables each have one: converted into an [`Error`], the loader
    /// reports each of them.
    pub(crate) fn new(problems: Vec<Error>) -> ConfigError {
        ConfigError { problems }
    }

    /// The problems, in the order found.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }
}

impl From<Error> for ConfigError {
    fn from(problem: Error) -> ConfigError {
        ConfigError { problems: vec![problem] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match problem.config_key().filter(|k| !k.is_empty()) {
                Some(key) => write!(f, "{key}: {}", problem.message())?,
                None => f.write_str(problem.message())?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Error {
    /// One configuration error for the lot, keyed on the first problem, with
    /// every problem in its source chain (logged, never rendered).
    fn from(err: ConfigError) -> Error {
        let key = err.problems.first().and_then(Error::config_key).unwrap_or("").to_owned();
        let count = err.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        Error::configuration(key, format!("the configuration has {count} {noun}")).with_source(err)
    }
}
