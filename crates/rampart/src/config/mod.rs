//! Configuration: one typed [`Config`] from defaults ← a file (TOML, or
//! JSON) ← environment variables, validated, with secrets that cannot be
//! printed.
//!
//! Every problem is an [`Error`] of kind
//! [`Configuration`](crate::ErrorKind::Configuration) that names the key and
//! where its value came from (file and line, or the variable), and never the
//! value: a mistyped secret is not echoed into a terminal or a log.
//!
//! ```
//! use rampart::config::{Loader, Profile};
//!
//! let loaded = Loader::new()
//!     .toml_text("inline.toml", "[rate_limit]\nrequests = 50\n")
//!     .env_vars([("RAMPART_RATE_LIMIT__WINDOW", "10s")])
//!     .load()
//!     .unwrap();
//! let config = loaded.config();
//! assert_eq!(config.profile, Profile::Development);
//! assert_eq!(config.rate_limit.quota.requests(), 50);
//! assert_eq!(config.rate_limit.quota.window().as_secs(), 10);
//! assert_eq!(config.max_input_size, 1024 * 1024);
//! // The development defaults include a well-known secret: fine here, refused
//! // in production. Printing the configuration never shows a secret.
//! assert!(!loaded.warnings().is_empty());
//! assert!(format!("{config:?}").contains("secret_key: ******"));
//!
//! // A mistyped value names the key and the source, not the value.
//! let err = Loader::new().env_vars([("RAMPART_RATE_LIMIT__REQUESTS", "hunter2")]).load().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "rate_limit.requests: expected a whole number, 0 or more, found a string (env RAMPART_RATE_LIMIT__REQUESTS)"
//! );
//! ```
//!
//! ## Sections
//!
//! Each module owns its settings as a [`Section`]: a raw serde struct (what
//! the file says, private to the module) and one function,
//! [`Section::from_raw`], that validates it into the typed form; units are
//! read with [`duration`] and [`byte_size`], secrets held in [`Secret`].
//! Adding a section to [`Config`] is one line in the `config!` list below.
//! Production checks ([`Profile::Production`]) refuse insecure settings; in
//! development the same findings are [`Loaded::warnings`].
//!
//! [`Section`], [`Secret`], the units and [`ConfigError`] are defined in a
//! private leaf module that depends only on [`crate::error`]; each section's
//! module imports them from there, and this module, which assembles every
//! section, sits above them all: no module imports `config`, so the modules
//! form no circle. Their one public path is this module.
//!
//! ## An application's own tables
//!
//! The file may hold the application's tables beside rampart's: register a
//! [`Section`] of the application's own ([`Loader::section`], read back with
//! [`Loaded::section`]) to have it validated, overridden by variables and
//! reported with everything else; or read any other table as it is
//! ([`Loaded::extra`]). Unknown keys inside rampart's own tables, and
//! unknown keys that are not tables at the top level, stay errors.
//!
//! ```
//! use rampart::config::Loader;
//!
//! #[derive(serde::Deserialize)]
//! struct Shop { currency: String }
//!
//! let loaded = Loader::new()
//!     .toml_text("app.toml", "[rate_limit]\nrequests = 50\n\n[shop]\ncurrency = \"EUR\"\n")
//!     .env_vars(None::<(String, String)>)
//!     .load()
//!     .unwrap();
//! let shop: Shop = loaded.extra("shop").unwrap().unwrap();
//! assert_eq!(shop.currency, "EUR");
//! assert_eq!(loaded.extra_tables().collect::<Vec<_>>(), ["shop"]);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::handler::ErrorFormat;

mod checks;
mod loader;
mod origin;
mod parse;
mod paths;
mod problems;
mod sections;

pub use crate::settings::{
    ConfigError, MASK, Secret, Section, byte_size, duration, format_byte_size, format_duration,
    parse_byte_size,
};
pub use loader::{DEFAULT_ENV_PREFIX, Loaded, Loader};
pub use origin::{Setting, Source};
pub use sections::{CorsSettings, TlsSettings};

/// Keys of earlier releases that moved, and what to write instead: loading
/// one is an error that says so, rather than a value silently ignored.
const MOVED_KEYS: &[(&str, &str)] =
    &[("jwt", "moved into [auth.jwt]: write auth.jwt.lifetime instead of jwt.lifetime")];

/// The secret key used when none is configured: fine for development,
/// refused by the production profile.
pub const DEVELOPMENT_SECRET_KEY: &str = "rampart-development-secret-key-not-for-production";

/// The shortest `secret_key` the production profile accepts, in bytes.
pub const MIN_SECRET_KEY_LEN: usize = 32;

/// How strict loading is about insecure settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Insecure settings are warnings (the default).
    #[default]
    Development,
    /// Insecure settings are errors: the service refuses to start.
    Production,
}

impl Profile {
    /// `"development"` or `"production"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Production => "production",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the sections of [`Config`]: each `name: Type` line adds the
/// field to the raw and validated structs and calls `Type::from_raw`. A
/// `#[cfg(...)]` after a line's doc comment leaves the section out with
/// its feature.
macro_rules! config {
    ($( $(#[doc = $doc:expr])* $(#[cfg($cfg:meta)])* $name:ident : $ty:ty, )*) => {
        /// The whole configuration, validated. Build it with [`Loader`];
        /// [`Config::default`] is the development defaults.
        #[derive(Debug, Clone, Serialize)]
        #[non_exhaustive]
        pub struct Config {
            /// `development` (default) or `production`.
            pub profile: Profile,
            /// The service's secret key (signing, encryption).
            pub secret_key: Secret<String>,
            /// How errors are rendered: `problem` (RFC 9457, default) or `simple`.
            pub error_format: ErrorFormat,
            /// The largest request body or input accepted, in bytes (default 1 MiB).
            #[serde(with = "byte_size")]
            pub max_input_size: u64,
            /// File extensions accepted for uploads (default txt, json, csv).
            pub allowed_file_types: Vec<String>,
            $( $(#[doc = $doc])* $(#[cfg($cfg)])* pub $name: $ty, )*
        }

        /// The whole file as written. Unknown keys at the top level are
        /// found by the loader, which tells an application's tables from
        /// mistakes.
        #[derive(Debug, Deserialize)]
        #[serde(default)]
        struct RawConfig {
            profile: Profile,
            secret_key: Option<Secret<String>>,
            error_format: ErrorFormat,
            #[serde(with = "byte_size")]
            max_input_size: u64,
            allowed_file_types: Vec<String>,
            $( $(#[cfg($cfg)])* $name: <$ty as Section>::Raw, )*
        }

        impl Default for RawConfig {
            fn default() -> RawConfig {
                RawConfig {
                    profile: Profile::default(),
                    secret_key: None,
                    error_format: ErrorFormat::default(),
                    max_input_size: u64::try_from(crate::validate::rules::DEFAULT_MAX_INPUT_SIZE)
                        .unwrap_or(u64::MAX),
                    allowed_file_types: ["txt", "json", "csv"].map(Into::into).into(),
                    $( $(#[cfg($cfg)])* $name: Default::default(), )*
                }
            }
        }

        /// The keys a file may hold at the top level.
        const TOP_LEVEL_KEYS: &[&str] = &[
            "profile", "secret_key", "error_format", "max_input_size",
            "allowed_file_types", $( $(#[cfg($cfg)])* stringify!($name), )*
        ];

        impl Config {
            /// Validates every part, collecting every problem. Beside the
            /// problems comes the configuration with each part that failed
            /// at its default, so the production checks still look at the
            /// parts that did not (`None` only if a default fails too).
            fn from_raw(raw: RawConfig) -> (Option<Config>, Vec<Error>) {
                let mut problems = Vec::new();
                let secret_key = validate_top_level(&raw, &mut problems);
                $(
                    $(#[cfg($cfg)])*
                    let $name = <$ty as Section>::from_raw(raw.$name)
                        .map_err(|e| problems.extend(section_problems(&e, stringify!($name))))
                        .or_else(|()| <$ty as Section>::from_raw(Default::default()))
                        .ok();
                )*
                $(
                    $(#[cfg($cfg)])*
                    let Some($name) = $name else { return (None, problems) };
                )*
                let config = Config {
                    profile: raw.profile,
                    secret_key,
                    error_format: raw.error_format,
                    max_input_size: raw.max_input_size,
                    allowed_file_types: raw.allowed_file_types,
                    $( $(#[cfg($cfg)])* $name, )*
                };
                (Some(config), problems)
            }
        }

        #[cfg(test)]
        #[test]
        fn each_section_is_named_as_its_field() {
            $( $(#[cfg($cfg)])* assert_eq!(<$ty as Section>::NAME, stringify!($name)); )*
        }

        /// Extracts each section on its own, so a file with mistakes in
        /// several sections gets all of them reported at once.
        fn section_errors(figment: &figment::Figment) -> Vec<figment::Error> {
            let mut errors = Vec::new();
            $(
                $(#[cfg($cfg)])*
                if figment.contains(stringify!($name)) {
                    let section = figment.focus(stringify!($name));
                    let (found, _) = problems::every_error::<<$ty as Section>::Raw>(&section);
                    errors.extend(found.into_iter().map(|mut e| {
                        e.path.insert(0, stringify!($name).to_owned());
                        e
                    }));
                }
            )*
            errors
        }
    };
}

config! {
    /// Which proxies are believed about the client's address (`[proxy]`, see
    /// [`crate::client`]).
    proxy: crate::client::ProxySettings,
    /// Cross-origin requests (`[cors]`).
    cors: CorsSettings,
    /// The request rate limit (`[rate_limit]`, see [`crate::ratelimit`]).
    rate_limit: crate::ratelimit::RateLimitSettings,
    /// TLS for the listener (`[tls]`).
    tls: TlsSettings,
    /// Logs (`[telemetry]`).
    telemetry: crate::telemetry::Settings,
    /// The audit trail (`[audit]`, see [`crate::audit`]); none without the table.
    #[cfg(feature = "audit")]
    audit: Option<crate::audit::AuditConfig>,
    /// Security-event detection (`[monitor]`, see [`crate::monitor`]).
    monitor: crate::monitor::MonitorConfig,
    /// Authentication and authorization (`[auth]`, see [`crate::auth`]).
    #[cfg(feature = "auth")]
    auth: crate::auth::AuthConfig,
    /// The default retry policy of outbound calls (`[retry]`, see [`crate::resilience`]).
    retry: crate::resilience::RetrySettings,
    /// The default circuit breaker of outbound calls (`[circuit_breaker]`).
    circuit_breaker: crate::resilience::CircuitBreakerSettings,
}

impl Default for Config {
    /// The development defaults, as loading an empty file gives.
    fn default() -> Config {
        // The defaults are valid: `defaults_are_valid_and_as_documented` says so.
        let (config, problems) = Config::from_raw(RawConfig::default());
        assert!(problems.is_empty(), "the defaults are valid: {problems:?}");
        config.expect("the defaults are valid")
    }
}

/// The problems a section's error stands for: those of a
/// [`ConfigError`] it bundles (a section with several bad tables), or
/// itself; each keyed from the top.
fn section_problems(err: &Error, section: &str) -> Vec<Error> {
    let bundled = err.chain().next().and_then(|cause| cause.downcast_ref::<ConfigError>());
    match bundled {
        Some(bundle) => bundle.problems().iter().map(|p| in_section(p, section)).collect(),
        None => vec![in_section(err, section)],
    }
}

/// Prefixes a section's key with the section name when the section gave a
/// path relative to itself.
fn in_section(err: &Error, section: &str) -> Error {
    let key = match err.config_key() {
        Some(key) if key == section || key.starts_with(&format!("{section}.")) => key.to_owned(),
        Some(key) => format!("{section}.{key}"),
        None => section.to_owned(),
    };
    Error::configuration(key, err.message().to_owned())
}

/// Validates the top-level keys; returns the secret key.
fn validate_top_level(raw: &RawConfig, problems: &mut Vec<Error>) -> Secret<String> {
    let secret_key = match &raw.secret_key {
        None => Secret::new(DEVELOPMENT_SECRET_KEY.to_owned()),
        Some(key) if key.expose().is_empty() => {
            problems.push(Error::configuration("secret_key", "must not be empty"));
            Secret::new(String::new())
        }
        Some(key) => key.clone(),
    };
    if raw.max_input_size == 0 {
        problems.push(Error::configuration("max_input_size", "must be at least 1 byte"));
    }
    for (i, ext) in raw.allowed_file_types.iter().enumerate() {
        if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            problems.push(Error::configuration(
                format!("allowed_file_types[{i}]"),
                "is not a file extension: write it without the dot, in lower case, e.g. \"json\"",
            ));
        }
    }
    secret_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = Config::default();
        assert_eq!(c.profile, Profile::Development);
        assert_eq!(c.secret_key.expose(), DEVELOPMENT_SECRET_KEY);
        assert_eq!(c.error_format, ErrorFormat::Problem);
        assert_eq!(c.max_input_size, 1 << 20);
        // One default for the body limit, the JSON limits and uploads.
        let validate_default = crate::validate::rules::DEFAULT_MAX_INPUT_SIZE;
        assert_eq!(usize::try_from(c.max_input_size).ok(), Some(validate_default));
        assert_eq!(c.allowed_file_types, ["txt", "json", "csv"]);
        assert!(c.proxy.trusted_proxies.is_empty());
        assert!(c.cors.allowed_origins.is_empty() && !c.cors.allow_credentials);
        #[cfg(feature = "auth")]
        assert_eq!(c.auth.jwt().lifetime().as_secs(), 24 * 3600);
        assert!(c.rate_limit.enabled);
        let quota = c.rate_limit.quota;
        assert_eq!((quota.requests(), quota.window().as_secs()), (100, 60));
        assert!(!c.tls.enabled() && !c.tls.terminated_upstream);
    }

    #[test]
    fn section_keys_are_made_absolute() {
        let err = in_section(&Error::configuration("window", "why"), "rate_limit");
        assert_eq!(err.config_key(), Some("rate_limit.window"));
        let err = in_section(&Error::configuration("rate_limit.window", "why"), "rate_limit");
        assert_eq!(err.config_key(), Some("rate_limit.window"));
        // A section with several bad tables bundles their problems: each counts.
        let bundle = Error::from(ConfigError::new(vec![
            Error::configuration("auth.jwt.leeway", "a"),
            Error::configuration("session.secret", "b"),
        ]));
        let keys: Vec<_> = section_problems(&bundle, "auth")
            .iter()
            .map(|p| p.config_key().unwrap_or("").to_owned())
            .collect();
        assert_eq!(keys, ["auth.jwt.leeway", "auth.session.secret"]);
    }

    #[test]
    fn top_level_values_are_checked() {
        let raw = RawConfig {
            secret_key: Some(Secret::new(String::new())),
            max_input_size: 0,
            allowed_file_types: vec!["json".into(), ".exe".into(), "PNG".into()],
            ..RawConfig::default()
        };
        let keys: Vec<String> = Config::from_raw(raw)
            .1
            .iter()
            .filter_map(|e| e.config_key().map(str::to_owned))
            .collect();
        assert_eq!(
            keys,
            ["secret_key", "max_input_size", "allowed_file_types[1]", "allowed_file_types[2]",]
        );
    }
}
