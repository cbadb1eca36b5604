//! Reading a configuration file: TOML or JSON, chosen by the extension,
//! into one table, with the line of every key recorded so each problem can
//! say where it is. A syntax error is reported by position only: the
//! parser's excerpt of the line would show the value.

use std::collections::HashMap;
use std::path::Path;

use figment::value::Dict;

use crate::error::Error;
use crate::settings::ConfigError;

/// The language a configuration file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// TOML: the default, and any extension but `.json`.
    Toml,
    /// JSON (`.json`): one object, whose objects are tables.
    Json,
}

impl Format {
    /// JSON for a `.json` file (any case), TOML for anything else.
    pub(super) fn of(path: &Path) -> Format {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }

    /// Parses `text` (reported as `name`) into a table, recording in `lines`
    /// the line of every key (`rate_limit.window`) and array item
    /// (`auth.jwt.keys[1]`).
    pub(super) fn parse(
        self,
        name: &str,
        text: &str,
        lines: &mut HashMap<String, usize>,
    ) -> Result<Dict, ConfigError> {
        match self {
            Format::Toml => parse_toml(name, text, lines),
            Format::Json => parse_json(name, text, lines),
        }
    }
}

/// A syntax error at `line:column`, said without quoting the text.
fn syntax_error(name: &str, format: &str, line: usize, column: usize, why: &str) -> ConfigError {
    ConfigError::from(Error::configuration(
        "",
        format!("{name}:{line}:{column}: invalid {format}: {why}"),
    ))
}

fn parse_toml(
    name: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Result<Dict, ConfigError> {
    let error = |span: Option<std::ops::Range<usize>>, why: &str| {
        let at = span.map_or(0, |s| s.start);
        let column = at - text[..at].rfind('\n').map_or(0, |nl| nl + 1) + 1;
        syntax_error(name, "TOML", line_of(text, at), column, why)
    };
    let doc =
        toml::de::DeTable::parse(text).map_err(|e| error(e.span(), first_line(e.message())))?;
    record_toml_lines(doc.get_ref(), "", text, lines);
    toml::from_str::<Dict>(text).map_err(|e| error(e.span(), "unreadable value"))
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn record_toml_lines(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) {
    for (key, value) in table {
        let path = join(prefix, key.get_ref());
        lines.insert(path.clone(), line_of(text, key.span().start));
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => record_toml_lines(inner, &path, text, lines),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    lines.insert(item_path.clone(), line_of(text, item.span().start));
                    // Arrays of tables ([[auth.jwt.keys]]): each key of each entry.
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        record_toml_lines(inner, &item_path, text, lines);
                    }
                }
            }
            _ => {}
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

fn parse_json(
    name: &str,
    text: &str,
    lines: &mut HashMap<String, usize>,
) -> Result<Dict, ConfigError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's syntax messages name what was expected, never the
        // text; the position is given apart.
        let message = e.to_string();
        let why = message.rfind(" at line ").map_or(message.as_str(), |at| &message[..at]);
        syntax_error(name, "JSON", e.line(), e.column(), why)
    })?;
    if !value.is_object() {
        return Err(syntax_error(name, "JSON", 1, 1, "the file must hold one object"));
    }
    if let Some((key, line)) = record_json_lines(text, lines) {
        return Err(ConfigError::from(Error::configuration(
            key,
            format!("is set twice ({name}:{line})"),
        )));
    }
    serde_json::from_value(value).map_err(|_| syntax_error(name, "JSON", 1, 1, "unreadable value"))
}

/// Where the scanner is in a JSON text: inside an object (the path of the
/// object, and of the key whose value comes next) or an array.
enum Frame {
    Object { path: String, key: Option<String> },
    Array { path: String, index: usize },
}

/// Records the line of every key and array item of a JSON text that
/// parsed; returns a key written twice in one object, and its line (JSON
/// readers keep the last silently, TOML refuses: so does rampart).
fn record_json_lines(text: &str, lines: &mut HashMap<String, usize>) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let literal = text.get(start..=i).unwrap_or("");
                if let Some(Frame::Object { path, key: key @ None }) = stack.last_mut() {
                    let name: String = serde_json::from_str(literal).unwrap_or_default();
                    let full = join(path, &name);
                    if lines.insert(full.clone(), line).is_some() {
                        return Some((full, line));
                    }
                    *key = Some(full);
                } else {
                    value_path(&mut stack, line, lines);
                }
            }
            b'{' | b'[' => {
                let path = value_path(&mut stack, line, lines);
                stack.push(if bytes[i] == b'{' {
                    Frame::Object { path, key: None }
                } else {
                    Frame::Array { path, index: 0 }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, .. }) => *key = None,
                Some(Frame::Array { index, .. }) => *index += 1,
                None => {}
            },
            b':' | b' ' | b'\t' | b'\r' => {}
            _ => {
                // A number, true, false or null: one value, to its end.
                value_path(&mut stack, line, lines);
                while i + 1 < bytes.len() && !b",}] \t\r\n".contains(&bytes[i + 1]) {
                    i += 1;
                }
            }
        }
        i += 1;
    }
    None
}

/// The path of the value starting here; an array item's line is recorded.
fn value_path(stack: &mut [Frame], line: usize, lines: &mut HashMap<String, usize>) -> String {
    match stack.last() {
        Some(Frame::Object { key: Some(key), .. }) => key.clone(),
        Some(Frame::Array { path, index }) => {
            let item = format!("{path}[{index}]");
            lines.insert(item.clone(), line);
            item
        }
        Some(Frame::Object { path, key: None }) => path.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_and_items_get_their_lines() {
        let text = "{\n  \"rate_limit\": {\"requests\": 5,\n    \"key\": [\"ip\",\n \"route\"]},\n  \
                    \"auth\": {\"jwt\": {\"keys\": [\n    {\"kid\": \"a\\\"b\", \"x\": null},\n    \
                    {\"kid\": \"c\"}]}}\n}\n";
        let mut lines = HashMap::new();
        let dict = Format::Json.parse("app.json", text, &mut lines).expect("parses");
        assert!(dict.contains_key("rate_limit"));
        for (key, line) in [
            ("rate_limit", 2),
            ("rate_limit.requests", 2),
            ("rate_limit.key", 3),
            ("rate_limit.key[0]", 3),
            ("rate_limit.key[1]", 4),
            ("auth.jwt.keys", 5),
            ("auth.jwt.keys[0]", 6),
            ("auth.jwt.keys[0].kid", 6),
            ("auth.jwt.keys[0].x", 6),
            ("auth.jwt.keys[1].kid", 7),
        ] {
            assert_eq!(lines.get(key), Some(&line), "{key}");
        }
    }

    #[test]
    fn json_syntax_errors_and_duplicates_are_located_without_the_text() {
        let mut lines = HashMap::new();
        let err = Format::Json
            .parse("app.json", "{\n  \"secret_key\": hunter2\n}", &mut lines)
            .expect_err("bad JSON");
        let text = err.to_string();
        assert!(text.starts_with("app.json:2:17: invalid JSON: expected value"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = Format::Json
            .parse(
                "app.json",
                "{\"cors\": {\"allow_credentials\": true,\n\"allow_credentials\": false}}",
                &mut HashMap::new(),
            )
            .expect_err("twice");
        assert_eq!(err.to_string(), "cors.allow_credentials: is set twice (app.json:2)");
        let err = Format::Json.parse("app.json", "[1]", &mut HashMap::new()).expect_err("array");
        assert!(err.to_string().contains("must hold one object"), "{err}");
    }

    #[test]
    fn the_extension_chooses_the_format() {
        assert_eq!(Format::of(Path::new("conf/app.json")), Format::Json);
        assert_eq!(Format::of(Path::new("conf/APP.JSON")), Format::Json);
        assert_eq!(Format::of(Path::new("conf/app.toml")), Format::Toml);
        assert_eq!(Format::of(Path::new("conf/app")), Format::Toml);
    }
}
