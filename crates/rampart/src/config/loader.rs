//! Loading: defaults ← a TOML file ← environment variables, with the source
//! of every value kept, so each problem and each effective setting can say
//! where it came from.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Provider};

use super::{Config, MASK, Profile, RawConfig, TOP_LEVEL_KEYS, checks, paths, section_errors};
use crate::error::{Error, io_reason};

/// The default prefix of configuration variables: `RAMPART_RATE_LIMIT__REQUESTS`
/// sets `rate_limit.requests`.
pub const DEFAULT_ENV_PREFIX: &str = "RAMPART_";

const FILE_PROVIDER: &str = "file";
const ENV_PROVIDER: &str = "environment";

/// Builds a [`Config`] from layers: defaults, then a TOML file, then
/// environment variables; later layers win.
///
/// Variables are `<PREFIX><KEY>` with `__` between nested keys
/// (`RAMPART_CORS__ALLOWED_ORIGINS='["https://app.example"]'`); names are
/// case-insensitive. A variable whose first key is not a top-level key of
/// the configuration is left alone (orchestrators set variables such as
/// `RAMPART_PORT` on their own); a variable inside a known table that names
/// no key is an error, like an unknown key in the file.
#[derive(Debug, Clone)]
pub struct Loader {
    file: Option<FileInput>,
    env_prefix: String,
    env: Option<Vec<(String, String)>>,
    profile: Option<Profile>,
}

#[derive(Debug, Clone)]
enum FileInput {
    Path(PathBuf),
    Text { name: String, text: String },
}

impl Default for Loader {
    fn default() -> Loader {
        Loader::new()
    }
}

impl Loader {
    /// Defaults and the process environment with prefix `RAMPART_`.
    pub fn new() -> Loader {
        Loader { file: None, env_prefix: DEFAULT_ENV_PREFIX.to_owned(), env: None, profile: None }
    }

    /// Reads the TOML file at `path`; it must exist.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Loader {
        self.file = Some(FileInput::Path(path.into()));
        self
    }

    /// Uses `text` as the TOML file, reported as `name` (for configurations
    /// embedded in a program, and tests).
    #[must_use]
    pub fn toml_text(mut self, name: impl Into<String>, text: impl Into<String>) -> Loader {
        self.file = Some(FileInput::Text { name: name.into(), text: text.into() });
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

    /// Loads, validates, and runs the production checks.
    ///
    /// # Errors
    /// Every problem found, each naming its key and source: an unreadable
    /// file, bad TOML, an unknown key, a wrong type, a value out of range,
    /// a file the configuration names that cannot be read, and in the
    /// production profile every insecure setting. All of them at once: a
    /// value of the wrong type is left out (its default stands in) and the
    /// rest is still validated and checked, so one run reports everything
    /// (except after bad TOML, which leaves nothing to read).
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let mut origin = Origin { profile_forced: self.profile.is_some(), ..Origin::default() };
        let mut figment = Figment::new();
        if let Some(file) = &self.file {
            let (name, text) = match file {
                FileInput::Path(path) => {
                    let name = path.display().to_string();
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        ConfigError::from(Error::configuration(
                            "",
                            format!("cannot read the configuration file {name}: {}", io_reason(&e)),
                        ))
                    })?;
                    (name, text)
                }
                FileInput::Text { name, text } => (name.clone(), text.clone()),
            };
            let mut dict = parse_toml(&name, &text, &mut origin.lines)?;
            if let FileInput::Path(path) = file {
                paths::resolve(&mut dict, path.parent().unwrap_or(std::path::Path::new("")));
            }
            origin.file = Some(name);
            figment = figment.merge(Layer { dict, name: FILE_PROVIDER });
        }
        let dict = self.env_layer(&mut origin.vars)?;
        figment = figment.merge(Layer { dict, name: ENV_PROVIDER });
        origin.figment = figment;

        let mut problems = Problems::default();
        let mut raw: RawConfig = match origin.figment.extract_lossy() {
            Ok(raw) => raw,
            Err(first) => {
                // Extraction stops at the first error: read each table for all
                // of its problems, and look at every top-level key too.
                let unknown = origin.figment.extract::<Dict>().unwrap_or_default().into_keys();
                let unknown = unknown
                    .filter(|key| !TOP_LEVEL_KEYS.contains(&key.as_str()))
                    .map(|key| figment::Error::from(Kind::UnknownField(key, TOP_LEVEL_KEYS)));
                for err in first.into_iter().chain(section_errors(&origin.figment)).chain(unknown) {
                    problems.add(origin.rewrite(&err));
                }
                // Go on without the values that did not read, so the checks
                // below report their problems in this same run.
                match every_error::<RawConfig>(&origin.figment).1 {
                    Some(raw) => raw,
                    None => return Err(ConfigError { problems: problems.0 }),
                }
            }
        };
        if let Some(profile) = self.profile {
            raw.profile = profile;
        }
        let (config, invalid) = Config::from_raw(raw);
        for problem in &invalid {
            problems.add(origin.locate(&origin.masked(problem)));
        }
        let findings: Vec<Error> =
            config.iter().flat_map(checks::findings).map(|f| origin.locate(&f)).collect();
        // In production the findings are problems; in development, warnings.
        let warnings = if config.as_ref().is_none_or(|c| c.profile == Profile::Production) {
            findings.into_iter().for_each(|finding| problems.add(finding));
            Vec::new()
        } else {
            findings
        };
        match config {
            Some(config) if problems.0.is_empty() => {
                let settings = origin.settings(&config);
                Ok(Loaded { config, warnings, settings })
            }
            _ => Err(ConfigError { problems: problems.0 }),
        }
    }

    /// The configuration variables, nested by `__`, as one table.
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
        for (var, value) in vars {
            let lower = var.to_ascii_lowercase();
            let Some(rest) = lower.strip_prefix(&prefix) else { continue };
            let path: Vec<&str> = rest.split("__").collect();
            if !TOP_LEVEL_KEYS.contains(&path[0]) {
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
        if problems.is_empty() { Ok(dict) } else { Err(ConfigError { problems }) }
    }
}

/// Parses TOML into a table, recording the line of every key. A syntax
/// error is reported by position only: the parser's excerpt of the line
/// would show the value.
fn parse_toml(
    name: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Result<Dict, ConfigError> {
    let syntax_error = |span: Option<std::ops::Range<usize>>, why: &str| {
        let at = span.map_or(0, |s| s.start);
        let line = line_of(text, at);
        let column = at - text[..at].rfind('\n').map_or(0, |nl| nl + 1) + 1;
        ConfigError::from(Error::configuration(
            "",
            format!("{name}:{line}:{column}: invalid TOML: {why}"),
        ))
    };
    let doc = toml::de::DeTable::parse(text)
        .map_err(|e| syntax_error(e.span(), first_line(e.message())))?;
    record_lines(doc.get_ref(), "", text, lines);
    toml::from_str::<Dict>(text).map_err(|e| syntax_error(e.span(), "unreadable value"))
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
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
fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn record_lines(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        lines.insert(path.clone(), line_of(text, key.span().start));
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => record_lines(inner, &path, text, lines),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    lines.insert(item_path.clone(), line_of(text, item.span().start));
                    // Arrays of tables ([[auth.jwt.keys]]): each key of each entry.
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        record_lines(inner, &item_path, text, lines);
                    }
                }
            }
            _ => {}
        }
    }
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

/// A key or variable name with control characters escaped, safe to print.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] })
        .collect()
}

/// The problems found so far, one per key: a problem is left out when one
/// already reported concerns the same key, or a table holding it or held by
/// it (a value of the wrong type, replaced by its default, must not be
/// reported again by the checks that then see the default).
#[derive(Default)]
struct Problems(Vec<Error>);

impl Problems {
    fn add(&mut self, problem: Error) {
        let key = problem.config_key().unwrap_or("");
        if !self.0.iter().any(|p| keys_overlap(p.config_key().unwrap_or(""), key)) {
            self.0.push(problem);
        }
    }
}

/// Whether `a` and `b` are the same key, or one holds the other
/// (`tls` and `tls.cert_path`, `keys` and `keys[0].kid`). The empty key (a
/// problem with the file itself) overlaps only itself.
fn keys_overlap(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short).is_some_and(|rest| {
        rest.is_empty() || (!short.is_empty() && (rest.starts_with('.') || rest.starts_with('[')))
    })
}

/// One layer of values, named for the source it came from.
struct Layer {
    dict: Dict,
    name: &'static str,
}

/// The most problems reported for one table.
const MAX_PROBLEMS_PER_TABLE: usize = 32;

/// Every problem in one table, not only the first one serde stops at: each
/// problem's key is taken out and the table read again, until it reads or
/// a problem has no key to take out (a missing one). Returns the problems,
/// and the table read without the keys taken out, when it then reads.
pub(super) fn every_error<T: serde::de::DeserializeOwned>(
    table: &Figment,
) -> (Vec<figment::Error>, Option<T>) {
    let mut dict = match table.extract::<Dict>() {
        Ok(dict) => dict,
        Err(err) => return (err.into_iter().collect(), None),
    };
    let mut errors: Vec<figment::Error> = Vec::new();
    let mut removed: Vec<Vec<String>> = Vec::new();
    while errors.len() < MAX_PROBLEMS_PER_TABLE {
        let attempt = Figment::from(Layer { dict: dict.clone(), name: FILE_PROVIDER });
        let found = match attempt.extract_lossy::<T>() {
            Ok(value) => return (errors, Some(value)),
            Err(found) => found,
        };
        let mut progress = false;
        for err in found {
            let mut path = err.path.clone();
            match &err.kind {
                Kind::UnknownField(name, _) if path.last() != Some(name) => path.push(name.clone()),
                // Taken out by an earlier round: not the user's doing. The
                // table that now misses it goes too, so the rest still reads.
                Kind::MissingField(name)
                    if removed
                        .iter()
                        .any(|r| r.split_last() == Some((&name.to_string(), &path))) =>
                {
                    if remove_at(&mut dict, &path) {
                        removed.push(path);
                        progress = true;
                    }
                    continue;
                }
                _ => {}
            }
            // An array item's problem takes out the whole array, so the
            // indices of later problems stay those of the file.
            while path.last().is_some_and(|segment| is_index(segment)) {
                path.pop();
            }
            if !matches!(err.kind, Kind::MissingField(_)) && remove_at(&mut dict, &path) {
                removed.push(path);
                progress = true;
            }
            errors.push(err);
        }
        if !progress {
            break;
        }
    }
    (errors, None)
}

/// Takes the value at `path` out of `dict`; false if there is none.
fn remove_at(dict: &mut Dict, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => dict.remove(last).is_some(),
        [first, rest @ ..] => dict.get_mut(first).is_some_and(|value| remove_in(value, rest)),
    }
}

/// [`remove_at`] below a table or an array item.
fn remove_in(value: &mut Value, path: &[String]) -> bool {
    match value {
        Value::Dict(_, dict) => remove_at(dict, path),
        Value::Array(_, items) => path.split_first().is_some_and(|(index, rest)| {
            let item = index.parse::<usize>().ok().and_then(|i| items.get_mut(i));
            item.is_some_and(|item| remove_in(item, rest))
        }),
        _ => false,
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        Ok(figment::Profile::Default.collect(self.dict.clone()))
    }
}

/// Where each value came from.
#[derive(Default)]
struct Origin {
    figment: Figment,
    file: Option<String>,
    lines: HashMap<String, usize>,
    vars: HashMap<String, String>,
    profile_forced: bool,
}

impl Origin {
    fn source_of(&self, key: &str) -> Source {
        if key == "profile" && self.profile_forced {
            return Source::Override;
        }
        let base = key.split('[').next().unwrap_or(key);
        let provider = self.figment.find_metadata(base).map(|m| m.name.as_ref());
        match (provider, &self.file) {
            (Some(ENV_PROVIDER), _) => {
                // The variable that set this key or the table holding it.
                let mut path = base;
                loop {
                    if let Some(var) = self.vars.get(path) {
                        break Source::Env { var: printable(var) };
                    }
                    match path.rsplit_once('.') {
                        Some((parent, _)) => path = parent,
                        None => break Source::Default,
                    }
                }
            }
            (Some(FILE_PROVIDER), Some(file)) => Source::File {
                path: file.clone(),
                line: self.lines.get(key).or_else(|| self.lines.get(base)).copied(),
            },
            _ => Source::Default,
        }
    }

    /// Turns a figment error into a problem that never shows the value.
    fn rewrite(&self, err: &figment::Error) -> Error {
        let mut path: Vec<String> = err.path.iter().map(|p| printable(p)).collect();
        let why = match &err.kind {
            Kind::InvalidType(actual, expected) => {
                format!("expected {}, found {}", in_toml_terms(expected), describe(actual))
            }
            Kind::InvalidValue(_, expected) => {
                format!("invalid value: expected {}", in_toml_terms(expected))
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
        self.locate(&Error::configuration(key_path(&path), why))
    }

    /// Adds the source of the problem's key to its message.
    fn locate(&self, problem: &Error) -> Error {
        let key = problem.config_key().unwrap_or("");
        Error::configuration(key, format!("{} ({})", problem.message(), self.source_of(key)))
    }

    /// Masks the value of the problem's key should a section's message have
    /// quoted it, as a word of its own.
    fn masked(&self, problem: &Error) -> Error {
        let key = problem.config_key().unwrap_or("");
        let mut why = problem.message().to_owned();
        if let Some(value) = self.value_at(key) {
            mask_values(&value, &mut why);
        }
        Error::configuration(key, why)
    }

    /// The value at a key path with array indices (`auth.jwt.keys[0].secret`):
    /// only that value is masked in a message, not its neighbours.
    fn value_at(&self, key: &str) -> Option<Value> {
        let mut segments = key.split(['.', '[', ']']).filter(|s| !s.is_empty());
        let mut value = self.figment.find_value(segments.next()?).ok()?;
        for segment in segments {
            value = match value {
                Value::Dict(_, mut dict) => dict.remove(segment)?,
                Value::Array(_, items) => items.into_iter().nth(segment.parse().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// Every effective setting, with its source.
    fn settings(&self, config: &Config) -> Vec<Setting> {
        let value = serde_json::to_value(config).unwrap_or_default();
        let mut out = Vec::new();
        self.flatten("", &value, &mut out);
        out
    }

    fn flatten(&self, key: &str, value: &serde_json::Value, out: &mut Vec<Setting>) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, inner) in map {
                    let path = if key.is_empty() { name.clone() } else { format!("{key}.{name}") };
                    self.flatten(&path, inner, out);
                }
            }
            serde_json::Value::Null => out.push(Setting {
                key: key.to_owned(),
                value: "(none)".to_owned(),
                source: self.source_of(key),
            }),
            other => out.push(Setting {
                key: key.to_owned(),
                value: printable(&other.to_string()),
                source: self.source_of(key),
            }),
        }
    }
}

fn mask_values(value: &Value, message: &mut String) {
    match value {
        Value::String(_, s) if !s.is_empty() => {
            let mut from = 0;
            while let Some(at) = message[from..].find(s.as_str()).map(|i| i + from) {
                let end = at + s.len();
                let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                if word(message[..at].chars().next_back()) || word(message[end..].chars().next()) {
                    from = end;
                } else {
                    message.replace_range(at..end, MASK);
                    from = at + MASK.len();
                }
            }
        }
        Value::Array(_, items) => items.iter().for_each(|v| mask_values(v, message)),
        Value::Dict(_, dict) => dict.values().for_each(|v| mask_values(v, message)),
        _ => {}
    }
}

/// serde's names for what was expected, in the words of TOML.
fn in_toml_terms(expected: &str) -> &str {
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

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file, and the line of the key when known.
    File {
        /// The file as it was named to the loader.
        path: String,
        /// The line of the key (1-based).
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// [`Loader::profile`] (a command-line flag).
    Override,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line: Some(line) } => write!(f, "{path}:{line}"),
            Source::File { path, line: None } => f.write_str(path),
            Source::Env { var } => write!(f, "env {var}"),
            Source::Override => f.write_str("command line"),
        }
    }
}

/// One effective setting: its key, its value as text (secrets masked), and
/// where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The dotted key, e.g. `rate_limit.window`.
    pub key: String,
    /// The value in JSON notation (`100`, `"60s"`, `["txt","json"]`), or
    /// `(none)`; a secret shows as `"******"`.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

/// A loaded, valid configuration, with the warnings found on the way and
/// the source of every setting.
#[derive(Debug)]
pub struct Loaded {
    config: Config,
    warnings: Vec<Error>,
    settings: Vec<Setting>,
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

    /// Every effective setting with its source, in key order.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
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
    /// Several problems as one error, e.g. for a [`Section`](super::Section)
    /// whose tables each have one: converted into an [`Error`], the loader
    /// reports each of them.
    #[cfg_attr(not(feature = "auth"), allow(dead_code, reason = "only `[auth]` bundles problems"))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_value_is_masked_as_a_word_of_its_own() {
        let mut why = "\"hunter2\" is wrong; hunter2s and xhunter2 are other words".to_owned();
        mask_values(&Value::from("hunter2"), &mut why);
        assert_eq!(why, "\"******\" is wrong; hunter2s and xhunter2 are other words");
        let mut why = "bad items: a1b2, c3d4".to_owned();
        mask_values(&Value::from(vec!["a1b2", "c3d4"]), &mut why);
        assert_eq!(why, "bad items: ******, ******");
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("rate\u{1b}[2J_limit\n"), "rate\\u{1b}[2J_limit\\n");
    }
}
