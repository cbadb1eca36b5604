//! Loading: defaults ← a file (TOML or JSON) ← environment variables, with
//! the source of every value kept, so each problem and each effective
//! setting can say where it came from.

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;

use figment::Figment;
use figment::error::Kind;
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use super::origin::{Layer, Origin, Setting};
use super::parse::Format;
use super::problems::{Problems, every_error};
use super::{
    Config, MOVED_KEYS, Profile, RawConfig, TOP_LEVEL_KEYS, checks, paths, section_errors,
    section_problems,
};
use crate::error::{Error, io_reason};
use crate::settings::{ConfigError, Section, printable, problem};

/// The default prefix of configuration variables: `RAMPART_RATE_LIMIT__REQUESTS`
/// sets `rate_limit.requests`.
pub const DEFAULT_ENV_PREFIX: &str = "RAMPART_";

/// The variable that, when set, replaces `telemetry.filter`: the convention
/// of Rust programs.
const RUST_LOG: &str = "RUST_LOG";

/// Builds a [`Config`] from layers: defaults, then a file, then environment
/// variables; later layers win.
///
/// The file is TOML, or JSON when its name ends in `.json` (the same keys,
/// and the same errors with the key and the line).
///
/// Variables are `<PREFIX><KEY>` with `__` between nested keys
/// (`RAMPART_CORS__ALLOWED_ORIGINS='["https://app.example"]'`); names are
/// case-insensitive. A variable whose first key is not a top-level key of
/// the configuration (nor a section registered with [`Loader::section`]) is
/// left alone (orchestrators set variables such as `RAMPART_PORT` on their
/// own); a variable inside a known table that names no key is an error, like
/// an unknown key in the file. `RUST_LOG`, when set, replaces
/// `telemetry.filter`, whatever the file and `RAMPART_TELEMETRY__FILTER` say.
#[derive(Debug, Clone)]
pub struct Loader {
    file: Option<FileInput>,
    env_prefix: String,
    env: Option<Vec<(String, String)>>,
    profile: Option<Profile>,
    sections: Vec<AppSection>,
}

#[derive(Debug, Clone)]
enum FileInput {
    Path(PathBuf),
    Text { name: String, text: String, format: Format },
}

/// An application's own section: its table's name, and the function that
/// reads and validates it.
#[derive(Debug, Clone)]
struct AppSection {
    name: &'static str,
    load: LoadSection,
}

type LoadSection = fn(&Origin, &str, &mut Problems) -> Option<SectionValue>;

/// An application's section as loaded: the value, and how it prints.
#[derive(Debug)]
struct SectionValue {
    value: Box<dyn Any + Send + Sync>,
    shown: serde_json::Value,
}

impl Default for Loader {
    fn default() -> Loader {
        Loader::new()
    }
}

impl Loader {
    /// Defaults and the process environment with prefix `RAMPART_`.
    pub fn new() -> Loader {
        Loader {
            file: None,
            env_prefix: DEFAULT_ENV_PREFIX.to_owned(),
            env: None,
            profile: None,
            sections: Vec::new(),
        }
    }

    /// Reads the file at `path`, which must exist: JSON when its name ends
    /// in `.json`, TOML otherwise.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Loader {
        self.file = Some(FileInput::Path(path.into()));
        self
    }

    /// Uses `text` as the TOML file, reported as `name` (for configurations
    /// embedded in a program, and tests).
    #[must_use]
    pub fn toml_text(mut self, name: impl Into<String>, text: impl Into<String>) -> Loader {
        self.file =
            Some(FileInput::Text { name: name.into(), text: text.into(), format: Format::Toml });
        self
    }

    /// Uses `text` as a JSON file, reported as `name`.
    #[must_use]
    pub fn json_text(mut self, name: impl Into<String>, text: impl Into<String>) -> Loader {
        self.file =
            Some(FileInput::Text { name: name.into(), text: text.into(), format: Format::Json });
        self
    }

    /// Sets the variable prefix (default `RAMPART_`).
    #[must_use]
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Loader {
        self.env_prefix = prefix.into();
        self
    }

    /// Reads these variables instead of the process environment.
    #[must_use]
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Loader
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// Forces the profile, whatever the file and the environment say (a
    /// command-line `--profile`).
    #[must_use]
    pub fn profile(mut self, profile: Profile) -> Loader {
        self.profile = Some(profile);
        self
    }

    /// Registers the application's own section `T`, read from the table
    /// `T::NAME` (absent: `T::Raw::default()`). It is loaded like rampart's
    /// sections: unknown keys and bad values are problems with their key
    /// and line, variables (`RAMPART_<NAME>__KEY`) override it, and
    /// `config show` lists it (secrets masked). Read it back with
    /// [`Loaded::section`].
    ///
    /// ```
    /// use rampart::config::{Loader, Section};
    /// use rampart::Error;
    ///
    /// #[derive(Debug, Clone, serde::Serialize)]
    /// struct Shop { currency: String }
    ///
    /// #[derive(Debug, Default, serde::Deserialize)]
    /// #[serde(default, deny_unknown_fields)]
    /// struct RawShop { currency: Option<String> }
    ///
    /// impl Section for Shop {
    ///     const NAME: &'static str = "shop";
    ///     type Raw = RawShop;
    ///     fn from_raw(raw: RawShop) -> Result<Shop, Error> {
    ///         let currency = raw.currency.unwrap_or_else(|| "EUR".into());
    ///         if currency.len() != 3 {
    ///             return Err(Error::configuration("shop.currency", "must be an ISO 4217 code"));
    ///         }
    ///         Ok(Shop { currency })
    ///     }
    /// }
    ///
    /// let loader = Loader::new().section::<Shop>().env_vars([("RAMPART_SHOP__CURRENCY", "USD")]);
    /// let loaded = loader.toml_text("app.toml", "[shop]\ncurrency = \"GBP\"\n").load().unwrap();
    /// assert_eq!(loaded.section::<Shop>().unwrap().currency, "USD");
    ///
    /// let err = Loader::new().section::<Shop>()
    ///     .toml_text("app.toml", "[shop]\ncurency = \"GBP\"\n")
    ///     .env_vars(None::<(String, String)>)
    ///     .load()
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "shop.curency: is not a known key (expected one of: currency) (app.toml:2)");
    /// ```
    #[must_use]
    pub fn section<T: Section + Send + Sync + 'static>(mut self) -> Loader {
        self.sections.retain(|section| section.name != T::NAME);
        self.sections.push(AppSection { name: T::NAME, load: load_section::<T> });
        self
    }

    /// Loads, validates, and runs the production checks.
    ///
    /// # Errors
    /// Every problem found, each naming its key and source: an unreadable
    /// file, bad TOML or JSON, an unknown key, a wrong type, a value out of
    /// range, a file the configuration names that cannot be read, and in the
    /// production profile every insecure setting. All of them at once: a
    /// value of the wrong type is left out (its default stands in) and the
    /// rest is still validated and checked, so one run reports everything
    /// (except after a syntax error, which leaves nothing to read).
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let origin = self.read_layers()?;
        let mut problems = Problems::default();
        let (extra, unknown) = self.top_level_tables(&origin);
        let raw: Option<RawConfig> = match origin.figment.extract_lossy() {
            Ok(raw) => Some(raw),
            Err(first) => {
                // Extraction stops at the first error: read each table for
                // all of its problems.
                for err in first.into_iter().chain(section_errors(&origin.figment)) {
                    problems.add(origin.rewrite(&err));
                }
                // Go on without the values that did not read, so the checks
                // below report their problems in this same run.
                every_error::<RawConfig>(&origin.figment).1
            }
        };
        unknown.into_iter().for_each(|problem| problems.add(problem));
        let Some(mut raw) = raw else { return Err(ConfigError::new(problems.0)) };
        if let Some(profile) = self.profile {
            raw.profile = profile;
        }
        let (config, invalid) = Config::from_raw(raw);
        for problem in &invalid {
            problems.add(origin.locate(&origin.masked(problem)));
        }
        let sections: Vec<(&'static str, Option<SectionValue>)> = self
            .sections
            .iter()
            .map(|section| (section.name, (section.load)(&origin, section.name, &mut problems)))
            .collect();
        let findings: Vec<Error> =
            config.iter().flat_map(checks::findings).map(|f| origin.locate(&f)).collect();
        // In production the findings are problems; in development, warnings.
        let warnings = if config.as_ref().is_none_or(|c| c.profile == Profile::Production) {
            findings.into_iter().for_each(|finding| problems.add(finding));
            Vec::new()
        } else {
            findings
        };
        let Some(config) = config.filter(|_| problems.0.is_empty()) else {
            return Err(ConfigError::new(problems.0));
        };
        let mut shown = serde_json::to_value(&config).unwrap_or_default();
        let mut loaded_sections = Vec::with_capacity(sections.len());
        // No problem was found, so each section loaded.
        for (name, section) in sections {
            let Some(section) = section else { continue };
            if let Some(table) = shown.as_object_mut() {
                table.insert(name.to_owned(), section.shown);
            }
            loaded_sections.push(section.value);
        }
        let settings = origin.settings(&shown);
        Ok(Loaded { config, warnings, settings, sections: loaded_sections, extra, origin })
    }

    /// The file and the variables as layers, with where each value came from.
    fn read_layers(&self) -> Result<Origin, ConfigError> {
        let mut origin = Origin { profile_forced: self.profile.is_some(), ..Origin::default() };
        let mut figment = Figment::new();
        if let Some(file) = &self.file {
            let (name, text, format) = match file {
                FileInput::Path(path) => {
                    let name = path.display().to_string();
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        ConfigError::from(Error::configuration(
                            "",
                            format!("cannot read the configuration file {name}: {}", io_reason(&e)),
                        ))
                    })?;
                    (name, text, Format::of(path))
                }
                FileInput::Text { name, text, format } => (name.clone(), text.clone(), *format),
            };
            let mut dict = format.parse(&name, &text, &mut origin.lines)?;
            if let FileInput::Path(path) = file {
                paths::resolve(&mut dict, path.parent().unwrap_or(std::path::Path::new("")));
            }
            origin.file = Some(name);
            figment = figment.merge(Layer::file(dict));
        }
        let dict = self.env_layer(&mut origin.vars)?;
        origin.figment = figment.merge(Layer::env(dict));
        Ok(origin)
    }

    /// Sorts the top-level keys that are not rampart's own: the
    /// application's tables (returned first), and problems: a key that
    /// moved, a registered name taken by rampart, a value that is not a
    /// table, a table named nearly as one of rampart's.
    fn top_level_tables(&self, origin: &Origin) -> (Vec<String>, Vec<Error>) {
        let (mut extra, mut problems) = (Vec::new(), Vec::new());
        for section in &self.sections {
            if TOP_LEVEL_KEYS.contains(&section.name) {
                problems.push(Error::configuration(
                    printable(section.name),
                    "is one of rampart's own keys: register the application's section under another name",
                ));
            }
        }
        let top = origin.figment.extract::<Dict>().unwrap_or_default();
        for (key, value) in top {
            if TOP_LEVEL_KEYS.contains(&key.as_str()) || self.is_registered(&key) {
                continue;
            }
            let moved = MOVED_KEYS.iter().find(|(old, _)| *old == key);
            let near = TOP_LEVEL_KEYS.iter().find(|known| nearly_equal(known, &key));
            let problem = match (moved, near, &value) {
                (Some((_, why)), _, _) => Error::configuration(printable(&key), *why),
                (None, Some(near), Value::Dict(..)) => Error::configuration(
                    printable(&key),
                    format!(
                        "is not a known key: did you mean {near}? (an application's own table \
                         needs a name unlike rampart's)"
                    ),
                ),
                (None, None, Value::Dict(..)) => {
                    extra.push(key);
                    continue;
                }
                _ => problem(&figment::Error::from(Kind::UnknownField(key, TOP_LEVEL_KEYS))),
            };
            problems.push(origin.locate(&problem));
        }
        (extra, problems)
    }

    fn is_registered(&self, name: &str) -> bool {
        self.sections.iter().any(|section| section.name == name)
    }

    /// The configuration variables, nested by `__`, as one table; `RUST_LOG`
    /// as `telemetry.filter`.
    fn env_layer(&self, names: &mut HashMap<String, String>) -> Result<Dict, ConfigError> {
        let vars: Vec<(String, Result<String, ()>)> = match &self.env {
            Some(vars) => vars.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().map_err(drop))))
                .collect(),
        };
        let prefix = self.env_prefix.to_ascii_lowercase();
        let mut dict = Dict::new();
        let mut problems = Vec::new();
        let mut rust_log = None;
        for (var, value) in vars {
            if var == RUST_LOG {
                rust_log = Some(value);
                continue;
            }
            let lower = var.to_ascii_lowercase();
            let Some(rest) = lower.strip_prefix(&prefix) else { continue };
            let path: Vec<&str> = rest.split("__").collect();
            let first = path[0];
            if !TOP_LEVEL_KEYS.contains(&first)
                && !self.is_registered(first)
                && !MOVED_KEYS.iter().any(|(old, _)| *old == first)
            {
                continue;
            }
            let key = path.join(".");
            if path.iter().any(|p| p.is_empty()) {
                problems.push(Error::configuration(
                    printable(&key),
                    format!("has an empty key part (env {})", printable(&var)),
                ));
                continue;
            }
            let Ok(value) = value else {
                problems.push(Error::configuration(
                    key,
                    format!("is not valid UTF-8 (env {})", printable(&var)),
                ));
                continue;
            };
            // Numbers and booleans stay text: a secret of digits must not
            // lose its leading zeros. Typed fields still read them, since
            // extraction is lossy.
            let parsed = match value.parse::<Value>() {
                Ok(Value::Num(..) | Value::Bool(..)) | Err(_) => Value::from(value),
                Ok(parsed) => parsed,
            };
            insert_path(&mut dict, &path, parsed);
            names.insert(key, var);
        }
        match rust_log {
            // Set but empty means "not set", as tracing's EnvFilter reads it.
            Some(Ok(filter)) if filter.trim().is_empty() => {}
            Some(Ok(filter)) => {
                insert_path(&mut dict, &["telemetry", "filter"], Value::from(filter));
                names.insert("telemetry.filter".to_owned(), RUST_LOG.to_owned());
            }
            Some(Err(())) => problems.push(Error::configuration(
                "telemetry.filter",
                format!("is not valid UTF-8 (env {RUST_LOG})"),
            )),
            None => {}
        }
        if problems.is_empty() { Ok(dict) } else { Err(ConfigError::new(problems)) }
    }
}

/// Whether `name`, not one of rampart's keys, looks like a mistyped `known`:
/// the same but for case, or, for a name of five letters or more, one edit
/// away (a letter added, dropped, changed, or two swapped). Shorter names
/// are too close to ordinary words (`core` and `cors`, `oauth` and `auth`).
fn nearly_equal(known: &str, name: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) =
        (known.chars().collect(), name.to_lowercase().chars().collect());
    if a == b {
        return true;
    }
    if a.len() < 5 || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    // Optimal string alignment distance, stopped as soon as it exceeds one.
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1).min(row[j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()] <= 1
}

fn insert_path(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict.entry((*first).to_owned()).or_insert_with(|| Dict::new().into());
            if !matches!(entry, Value::Dict(..)) {
                *entry = Dict::new().into();
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Reads and validates the application's section `T` from its table `name`
/// (`T::NAME`), noting its problems; the section when it has none.
fn load_section<T: Section + Send + Sync + 'static>(
    origin: &Origin,
    name: &str,
    problems: &mut Problems,
) -> Option<SectionValue> {
    let (found, raw) = if origin.figment.contains(name) {
        every_error::<T::Raw>(&origin.figment.focus(name))
    } else {
        (Vec::new(), Some(T::Raw::default()))
    };
    let read_cleanly = found.is_empty();
    for mut err in found {
        err.path.insert(0, name.to_owned());
        problems.add(origin.rewrite(&err));
    }
    match T::from_raw(raw?) {
        Ok(section) if read_cleanly => {
            let shown = serde_json::to_value(&section).unwrap_or_default();
            Some(SectionValue { value: Box::new(section), shown })
        }
        Ok(_) => None,
        Err(err) => {
            for problem in section_problems(&err, name) {
                problems.add(origin.locate(&origin.masked(&problem)));
            }
            None
        }
    }
}

/// A loaded, valid configuration, with the warnings found on the way, the
/// source of every setting, and the application's own tables.
#[derive(Debug)]
pub struct Loaded {
    config: Config,
    warnings: Vec<Error>,
    settings: Vec<Setting>,
    sections: Vec<Box<dyn Any + Send + Sync>>,
    extra: Vec<String>,
    origin: Origin,
}

impl Loaded {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, owned.
    pub fn into_config(self) -> Config {
        self.config
    }

    /// Insecure settings tolerated because the profile is development
    /// (the production profile refuses them).
    pub fn warnings(&self) -> &[Error] {
        &self.warnings
    }

    /// Logs each warning at `warn` level (target `rampart::config`); call
    /// once logging is set up.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!(
                target: "rampart::config",
                config_key = warning.config_key(),
                "insecure setting tolerated in development: {}",
                warning.message()
            );
        }
    }

    /// Every effective setting with its source, in key order: rampart's,
    /// then those of the sections registered with [`Loader::section`].
    /// Unregistered tables ([`Loaded::extra`]) are not listed: rampart
    /// cannot tell their secrets.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// The application's section `T`, registered with [`Loader::section`];
    /// `None` if it was not.
    pub fn section<T: Section + 'static>(&self) -> Option<&T> {
        self.sections.iter().find_map(|value| value.downcast_ref())
    }

    /// Reads the application's table `name`, which rampart does not know
    /// and did not register, as a `T`; `None` when the file has no such
    /// table. Variables do not reach it (register a [`Section`] for that).
    ///
    /// # Errors
    /// Every value that does not read as `T`, each naming its key and line
    /// (and never the value), as loading does.
    pub fn extra<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        if !self.extra.iter().any(|table| table == name) {
            return Ok(None);
        }
        let (found, value) = every_error::<T>(&self.origin.figment.focus(name));
        if found.is_empty()
            && let Some(value) = value
        {
            return Ok(Some(value));
        }
        let mut problems = Problems::default();
        for mut err in found {
            err.path.insert(0, name.to_owned());
            problems.add(self.origin.rewrite(&err));
        }
        Err(ConfigError::new(problems.0))
    }

    /// The names of the file's top-level tables that are neither rampart's
    /// nor registered: the application's, read with [`Loaded::extra`].
    pub fn extra_tables(&self) -> impl Iterator<Item = &str> {
        self.extra.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_configuration_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Loaded>();
        shared::<Loader>();
    }

    #[test]
    fn near_misses_of_rampart_tables_are_told_from_other_names() {
        for (known, name) in [
            ("rate_limit", "rate_limits"),
            ("rate_limit", "ratelimit"),
            ("audit", "audti"),
            ("audit", "audits"),
            ("auth", "Auth"),
            ("telemetry", "telemtry"),
        ] {
            assert!(nearly_equal(known, name), "{name}");
        }
        for (known, name) in [
            ("auth", "oauth"),
            ("cors", "core"),
            ("tls", "ttl"),
            ("audit", "shop"),
            ("retry", "rates"),
        ] {
            assert!(!nearly_equal(known, name), "{name}");
        }
    }
}
