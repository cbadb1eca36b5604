//! JSON Schema validation, compiled once and offline.

use std::fmt;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{PatternOptions, ValidationError};
use serde_json::Value;

use crate::error::{Error, FieldViolation};

use super::ValidationReport;
use super::pointer::push_token;
use super::report::{MAX_VIOLATIONS, REDACTED_MESSAGE};
use super::sensitive::SensitiveFields;

/// JSON Schema validation of documents, with the [`jsonschema`] crate.
///
/// A [`Schema`] is compiled once and reused (it is `Send + Sync`; share it
/// behind an `Arc`). Compilation is offline: jsonschema is built without
/// its HTTP and file resolvers and told to fetch nothing, so a `$ref` to
/// `http://...` or `file://...` fails to compile instead of reaching the
/// network or the disk. Patterns run on the linear-time `regex` engine, so a
/// hostile string cannot make a `pattern` backtrack for ever. Formats
/// (`email`, `uri`, `uuid`, `date-time`, ...) are checked.
///
/// Each failure becomes a violation located by the instance's JSON Pointer,
/// coded by the keyword in snake case (`min_length`, `required`,
/// `additional_properties`, ...), with a message that states the rule and
/// never quotes the value. A field is [sensitive](SensitiveFields) when its
/// name or pointer says so, or when its schema says `"writeOnly": true`:
/// then the message is only "is invalid".
///
/// ```
/// use rampart::validate::Schema;
/// use serde_json::json;
///
/// let schema = Schema::compile(&json!({
///     "type": "object",
///     "required": ["quantity"],
///     "properties": {"quantity": {"type": "integer", "minimum": 1}}
/// })).unwrap();
///
/// assert!(schema.validate(&json!({"quantity": 3})).is_valid());
/// let report = schema.validate(&json!({"quantity": 0}));
/// let v = &report.violations()[0];
/// assert_eq!((v.pointer.as_str(), v.code.as_ref()), ("/quantity", "minimum"));
/// assert_eq!(v.message, "must be at least 1");
/// ```
pub struct Schema {
    validator: jsonschema::Validator,
    source: Value,
    sensitive: SensitiveFields,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("sensitive", &self.sensitive).finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles `schema` (draft from its `$schema`, else 2020-12), with the
    /// default sensitive fields.
    ///
    /// # Errors
    /// A configuration error (key `validate.schema`) when the schema is
    /// invalid or refers to anything outside itself.
    pub fn compile(schema: &Value) -> Result<Schema, Error> {
        let validator = jsonschema::options()
            .offline()
            .should_validate_formats(true)
            .with_pattern_options(PatternOptions::regex().size_limit(1 << 20))
            .build(schema)
            .map_err(|err| {
                Error::configuration(
                    "validate.schema",
                    format!("the JSON Schema is invalid: {err}"),
                )
            })?;
        Ok(Schema { validator, source: schema.clone(), sensitive: SensitiveFields::default() })
    }

    /// Replaces the sensitive fields (the schema's `writeOnly` fields stay sensitive).
    #[must_use]
    pub fn sensitive(mut self, sensitive: SensitiveFields) -> Schema {
        self.sensitive = sensitive;
        self
    }

    /// Validates `instance`: a report with every violation (at most
    /// [`MAX_VIOLATIONS`]).
    pub fn validate(&self, instance: &Value) -> ValidationReport<()> {
        // The fast path builds no error at all.
        if self.validator.is_valid(instance) {
            return ValidationReport::valid(());
        }
        let mut violations = Vec::new();
        for error in self.validator.iter_errors(instance) {
            self.push_violations(&error, &mut violations);
            if violations.len() >= MAX_VIOLATIONS {
                break;
            }
        }
        if violations.is_empty() {
            // is_valid and iter_errors disagreeing would be a jsonschema bug;
            // refusing is the safe answer.
            violations.push(FieldViolation::new("", "schema", "does not match the schema"));
        }
        ValidationReport::from_violations(violations)
    }

    /// Validates `instance`, as an error listing the violations.
    ///
    /// # Errors
    /// A validation error when the instance does not match.
    pub fn check(&self, instance: &Value) -> Result<(), Error> {
        self.validate(instance).into_result()
    }

    fn push_violations(&self, error: &ValidationError<'_>, out: &mut Vec<FieldViolation>) {
        let at = error.instance_path().as_str();
        let kind = error.kind();
        // Members named by the keyword itself get their own pointer.
        let members: Vec<String> = match kind {
            ValidationErrorKind::Required { property } => {
                vec![property.as_str().map_or_else(|| property.to_string(), str::to_owned)]
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected.clone(),
            _ => Vec::new(),
        };
        let code = snake_case(kind.keyword());
        let sensitive_schema = self.write_only(error.schema_path().as_str());
        let message = describe(kind);
        let mut push = |pointer: String| {
            let message = if sensitive_schema || self.sensitive.is_sensitive(&pointer) {
                REDACTED_MESSAGE.to_owned()
            } else {
                message.clone()
            };
            out.push(FieldViolation::new(pointer, code.clone(), message));
        };
        if members.is_empty() {
            push(at.to_owned());
        }
        for member in members {
            let mut pointer = at.to_owned();
            push_token(&mut pointer, &member);
            push(pointer);
        }
    }

    /// Whether the subschema holding the failed keyword says `writeOnly`.
    fn write_only(&self, keyword_location: &str) -> bool {
        let parent = keyword_location.rsplit_once('/').map_or("", |(parent, _)| parent);
        self.source.pointer(parent).and_then(|s| s.get("writeOnly")) == Some(&Value::Bool(true))
    }
}

fn snake_case(keyword: &str) -> String {
    let mut out = String::with_capacity(keyword.len() + 4);
    for c in keyword.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        }
    }
    out
}

/// A JSON value from the schema, short enough for a message.
fn shown(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 100 {
        let cut = (0..=100).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" or "),
    }
}

/// What a keyword requires, in words, from the schema side only.
fn describe(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::AdditionalItems { limit } => format!("must have at most {limit} items"),
        K::AdditionalProperties { .. } | K::UnevaluatedProperties { .. } => {
            "is not an allowed member".to_owned()
        }
        K::UnevaluatedItems { .. } => "has items that are not allowed".to_owned(),
        K::AnyOf { .. } | K::OneOfNotValid { .. } => {
            "does not match any of the allowed forms".to_owned()
        }
        K::OneOfMultipleValid { .. } => "matches more than one of the allowed forms".to_owned(),
        K::Constant { expected_value } => format!("must be {}", shown(expected_value)),
        K::Contains => "must contain a matching item".to_owned(),
        K::ContentEncoding { content_encoding } => format!("is not valid {content_encoding}"),
        K::ContentMediaType { content_media_type } => format!("is not valid {content_media_type}"),
        K::FromUtf8 { .. } => "does not decode to valid UTF-8".to_owned(),
        K::Custom { message, .. } => message.clone(),
        K::Enum { options } => format!("must be one of {}", shown(options)),
        K::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
        K::Maximum { limit } => format!("must be at most {limit}"),
        K::Minimum { limit } => format!("must be at least {limit}"),
        K::FalseSchema => "is not allowed".to_owned(),
        K::Format { format } => format!("is not a valid {format}"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxProperties { limit } => format!("must have at most {limit} members"),
        K::MinProperties { limit } => format!("must have at least {limit} members"),
        K::MultipleOf { multiple_of } => format!("must be a multiple of {multiple_of}"),
        K::Not { .. } => "matches a form that is not allowed".to_owned(),
        K::Pattern { .. } => "does not match the required pattern".to_owned(),
        K::PropertyNames { .. } => "has a member name that is not allowed".to_owned(),
        K::Required { .. } => "is required".to_owned(),
        K::Type { kind } => format!("must be of type {}", type_names(kind)),
        K::UniqueItems => "must not contain duplicate items".to_owned(),
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } | K::Referencing(_) => {
            "could not be checked".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    fn violations(schema: &Value, instance: &Value) -> Vec<(String, String, String)> {
        Schema::compile(schema)
            .unwrap()
            .validate(instance)
            .violations()
            .iter()
            .map(|v| (v.pointer.clone(), v.code.to_string(), v.message.to_string()))
            .collect()
    }

    #[test]
    fn violations_are_located_and_coded() {
        let schema = json!({
            "type": "object",
            "required": ["name", "items"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 2},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "qty": {"type": "integer", "maximum": 10},
                    "email": {"format": "email"}
                }}},
                "a/b": {"enum": ["x", "y"]}
            }
        });
        let instance = json!({
            "name": "A",
            "items": [{"qty": 1}, {"qty": 11, "email": "nope"}],
            "a/b": "z",
            "extra~": 1
        });
        let mut got = violations(&schema, &instance);
        got.sort();
        // additionalProperties yields one violation per unexpected member, at that member.
        let expected: Vec<(String, String, String)> = [
            ("/a~1b", "enum", "must be one of [\"x\",\"y\"]"),
            ("/extra~0", "additional_properties", "is not an allowed member"),
            ("/items/1/email", "format", "is not a valid email"),
            ("/items/1/qty", "maximum", "must be at most 10"),
            ("/name", "min_length", "must be at least 2 characters long"),
        ]
        .iter()
        .map(|(p, c, m)| ((*p).to_owned(), (*c).to_owned(), (*m).to_owned()))
        .collect();
        assert_eq!(got, expected);
        let got = violations(&schema, &json!({"name": "Ada"}));
        assert_eq!(got, [("/items".to_owned(), "required".to_owned(), "is required".to_owned())]);
    }

    #[test]
    fn messages_never_quote_the_instance_and_sensitive_fields_say_nothing() {
        let canary = "CANARY-51f0";
        let schema = json!({"type": "object", "properties": {
            "pin": {"type": "string", "enum": ["1234"]},
            "recovery": {"type": "string", "writeOnly": true, "pattern": "^[0-9]{6}$"},
            "name": {"type": "integer"},
            "tags": {"type": "array", "uniqueItems": true, "maxItems": 1}
        }});
        let instance = json!({"pin": canary, "recovery": canary, "name": canary,
                              "tags": [canary, canary]});
        let report = Schema::compile(&schema).unwrap().validate(&instance);
        let text = serde_json::to_string(report.violations()).unwrap();
        assert!(!text.contains(canary), "{text}");
        assert!(!text.contains("1234"), "the allowed value of a sensitive field leaked: {text}");
        assert!(!text.contains("[0-9]"), "the pattern of a writeOnly field leaked: {text}");
        for v in report.violations() {
            if v.pointer == "/pin" || v.pointer == "/recovery" {
                assert_eq!(v.message, REDACTED_MESSAGE);
            }
        }
        assert_eq!(report.violations().len(), 5, "{text}");
    }

    #[test]
    fn remote_and_file_refs_are_never_fetched() {
        // A listener that records whether anyone connects.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pwn.json");
        std::fs::File::create(&file).unwrap().write_all(br#"{"type": "string"}"#).unwrap();

        for reference in [
            format!("http://127.0.0.1:{port}/schema.json"),
            format!("https://127.0.0.1:{port}/schema.json"),
            format!("file://{}", file.display()),
            "pwn.json".to_owned(),
        ] {
            let schema = json!({"$id": format!("file://{}/", dir.path().display()),
                                "properties": {"a": {"$ref": reference}}});
            let err = Schema::compile(&schema).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{reference}");
            let schema = json!({"$ref": reference});
            assert!(Schema::compile(&schema).is_err(), "{reference}");
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(listener.accept().is_err(), "the validator connected to the listener");
    }

    #[test]
    fn local_refs_work_and_the_schema_is_reusable_across_threads() {
        let schema = Schema::compile(&json!({
            "$defs": {"qty": {"type": "integer", "minimum": 1}},
            "type": "array", "items": {"$ref": "#/$defs/qty"}
        }))
        .unwrap();
        let schema = std::sync::Arc::new(schema);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let schema = schema.clone();
                std::thread::spawn(move || schema.validate(&json!([1, 0])).violations().len())
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), 1);
        }
        assert_eq!(schema.validate(&json!([1, 0])).violations()[0].pointer, "/1");
    }

    #[test]
    fn hostile_patterns_and_huge_reports_stay_bounded() {
        let schema = Schema::compile(&json!({"type": "array",
            "items": {"type": "string", "pattern": "^(a+)+$"}}))
        .unwrap();
        let hostile = format!("{}!", "a".repeat(20_000));
        let items: Vec<Value> = (0..150).map(|_| json!(hostile.clone())).collect();
        let report = schema.validate(&Value::Array(items));
        assert_eq!(report.violations().len(), MAX_VIOLATIONS);
        // Backreferences need a backtracking engine: the schema is refused.
        assert!(Schema::compile(&json!({"pattern": "(a)\\1"})).is_err());
    }

    #[test]
    fn keywords_become_snake_case_codes() {
        assert_eq!(snake_case("additionalProperties"), "additional_properties");
        assert_eq!(snake_case("$ref"), "ref");
        assert_eq!(snake_case("type"), "type");
    }
}
