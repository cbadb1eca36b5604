//! Where each value came from: the file and line, the variable, or the
//! default; every problem and every effective setting says which.

use std::collections::HashMap;
use std::fmt;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Provider};

use crate::error::Error;
use crate::settings::{MASK, printable, problem};

const FILE_PROVIDER: &str = "file";
const ENV_PROVIDER: &str = "environment";

/// One layer of values, named for the source it came from.
pub(super) struct Layer {
    dict: Dict,
    name: &'static str,
}

impl Layer {
    /// The file's values.
    pub(super) fn file(dict: Dict) -> Layer {
        Layer { dict, name: FILE_PROVIDER }
    }

    /// The variables' values.
    pub(super) fn env(dict: Dict) -> Layer {
        Layer { dict, name: ENV_PROVIDER }
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
#[derive(Debug, Default)]
pub(super) struct Origin {
    pub(super) figment: Figment,
    pub(super) file: Option<String>,
    pub(super) lines: HashMap<String, usize>,
    pub(super) vars: HashMap<String, String>,
    pub(super) profile_forced: bool,
}

impl Origin {
    pub(super) fn source_of(&self, key: &str) -> Source {
        if key == "profile" && self.profile_forced {
            return Source::Override;
        }
        let base = key.split('[').next().unwrap_or(key);
        let provider = self.figment.find_metadata(base).map(|m| m.name.as_ref());
        match (provider, &self.file) {
            (Some(ENV_PROVIDER), _) => {
                // The variable that set this key or the table holding it;
                // for a table, the first variable that set a key in it.
                let mut path = base;
                let var = loop {
                    if let Some(var) = self.vars.get(path) {
                        break Some(var);
                    }
                    match path.rsplit_once('.') {
                        Some((parent, _)) => path = parent,
                        None => {
                            let inside = format!("{base}.");
                            let under = self.vars.iter().filter(|(k, _)| k.starts_with(&inside));
                            break under.map(|(_, var)| var).min();
                        }
                    }
                };
                var.map_or(Source::Default, |var| Source::Env { var: printable(var) })
            }
            (Some(FILE_PROVIDER), Some(file)) => Source::File {
                path: file.clone(),
                line: self.lines.get(key).or_else(|| self.lines.get(base)).copied(),
            },
            _ => Source::Default,
        }
    }

    /// Turns a figment error into a problem that never shows the value.
    pub(super) fn rewrite(&self, err: &figment::Error) -> Error {
        self.locate(&problem(err))
    }

    /// Adds the source of the problem's key to its message.
    pub(super) fn locate(&self, problem: &Error) -> Error {
        let key = problem.config_key().unwrap_or("");
        Error::configuration(key, format!("{} ({})", problem.message(), self.source_of(key)))
    }

    /// Masks the value of the problem's key should a section's message have
    /// quoted it, as a word of its own.
    pub(super) fn masked(&self, problem: &Error) -> Error {
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
    pub(super) fn settings(&self, value: &serde_json::Value) -> Vec<Setting> {
        let mut out = Vec::new();
        self.flatten("", value, &mut out);
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
    /// [`Loader::profile`](super::Loader::profile) (a command-line flag).
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
}
