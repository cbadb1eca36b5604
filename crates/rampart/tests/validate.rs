//! Validation through the public API: typed structs (garde) with serde
//! renames, reports rendered by the error handler, and the canary rule that
//! no violation ever echoes a sensitive value.

use std::collections::BTreeMap;

use garde::Validate;
use rampart::handler::{ErrorHandler, RequestContext};
#[cfg(feature = "schema")]
use rampart::validate::Schema;
use rampart::validate::{JsonLimits, SensitiveFields, Validated, ValidationReport, Validator};
use rampart::{Error, ErrorKind};
use serde::Deserialize;
use serde_json::json;

const CANARY: &str = "CANARY-d41d8cd9";

fn validate<T>(body: &serde_json::Value) -> Result<Validated<T>, Error>
where
    T: serde::de::DeserializeOwned + Validate,
    T::Context: Default,
{
    let bytes = serde_json::to_vec(body).expect("serializes");
    Validated::<T>::from_json(&bytes, &JsonLimits::default(), &SensitiveFields::default())
}

fn pointers(err: &Error) -> Vec<(String, String)> {
    let mut out: Vec<_> =
        err.violations().iter().map(|v| (v.pointer.clone(), v.code.to_string())).collect();
    out.sort();
    out
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())).collect()
}

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct Order {
    #[garde(length(chars, min = 1, max = 20))]
    customer_name: String,
    #[garde(length(min = 1), dive)]
    line_items: Vec<LineItem>,
    #[garde(required, email)]
    contact_email: Option<String>,
    #[garde(dive)]
    shipping_address: Address,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct LineItem {
    #[garde(range(min = 1, max = 100))]
    unit_count: u32,
    #[garde(pattern(r"^[A-Z]{3}-[0-9]{4}$"))]
    product_code: String,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "kebab-case")]
struct Address {
    #[garde(length(min = 2))]
    postal_code: String,
    #[garde(length(min = 1))]
    street_lines: Vec<String>,
}

#[test]
fn garde_paths_become_pointers_with_the_serde_names() {
    let body = json!({
        "customerName": "",
        "lineItems": [
            {"UNIT_COUNT": 5, "PRODUCT_CODE": "ABC-1234"},
            {"UNIT_COUNT": 0, "PRODUCT_CODE": "nope"}
        ],
        "shippingAddress": {"postal-code": "1", "street-lines": []}
    });
    let err = validate::<Order>(&body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(
        pointers(&err),
        pairs(&[
            ("/contactEmail", "required"), // absent: named in the object's convention
            ("/customerName", "length"),
            ("/lineItems/1/PRODUCT_CODE", "pattern"),
            ("/lineItems/1/UNIT_COUNT", "range"),
            ("/shippingAddress/postal-code", "length"),
            ("/shippingAddress/street-lines", "length"),
        ])
    );
    let body = json!({
        "customerName": "Zoë",
        "lineItems": [{"UNIT_COUNT": 5, "PRODUCT_CODE": "ABC-1234"}],
        "contactEmail": "zoe@example.com",
        "shippingAddress": {"postal-code": "75001", "street-lines": ["1 rue de Rivoli"]}
    });
    let order = validate::<Order>(&body).unwrap();
    assert_eq!(order.line_items[0].unit_count, 5);
}

#[derive(Debug, Deserialize, Validate)]
struct Tagged {
    #[garde(dive)]
    labels: BTreeMap<String, Label>,
    /// An explicit rename that no case convention produces: see the limits
    /// in the docs of `rampart::validate::Validated`.
    #[serde(rename = "qty")]
    #[garde(range(min = 1))]
    quantity: u32,
}

#[derive(Debug, Deserialize, Validate)]
struct Label {
    #[garde(length(max = 3))]
    text: String,
}

#[test]
fn map_keys_are_escaped_and_explicit_renames_fall_back_to_the_rust_name() {
    let body = json!({"labels": {"a/b~c": {"text": "long"}, "ok": {"text": "x"}}, "qty": 0});
    let err = validate::<Tagged>(&body).unwrap_err();
    assert_eq!(
        pointers(&err),
        pairs(&[("/labels/a~1b~0c/text", "length"), ("/quantity", "range")])
    );
}

fn pin_is_not(value: &str, _: &()) -> garde::Result {
    // A careless custom rule that quotes the value.
    if value == "0000" {
        Err(garde::Error::new(format!("{value} is too easy to guess")))
    } else {
        Ok(())
    }
}

#[derive(Debug, Deserialize, Validate)]
struct Signup {
    #[garde(length(min = 32))]
    password: String,
    #[garde(custom(pin_is_not))]
    pin: String,
    #[garde(custom(pin_is_not))]
    nickname: String,
}

/// Renders `err` as the client would see it.
fn rendered(err: &Error) -> String {
    ErrorHandler::default().render(err, &RequestContext::new()).to_json()
}

#[test]
fn no_violation_echoes_a_sensitive_value() {
    // garde: a rule parameter and a custom message quoting the value.
    let err = validate::<Signup>(&json!({"password": CANARY, "pin": "0000", "nickname": "0000"}))
        .unwrap_err();
    let text = rendered(&err);
    assert!(!text.contains(CANARY), "{text}");
    assert!(
        text.contains(r#""pointer":"/password","code":"length","detail":"is invalid""#),
        "{text}"
    );
    assert!(text.contains(r#""pointer":"/pin","code":"custom","detail":"is invalid""#), "{text}");
    // A custom message of a field not marked sensitive is the application's own words.
    assert!(text.contains("0000 is too easy to guess"), "{text}");

    // Deserialization: the wrong type for a sensitive field.
    let err = validate::<Signup>(&json!({"password": [CANARY], "pin": CANARY, "nickname": 1}))
        .unwrap_err();
    assert!(!rendered(&err).contains(CANARY));

    // Marking a field sensitive by pointer hides even application messages.
    let bytes =
        serde_json::to_vec(&json!({"password": "a long enough one, thirty-two bytes", "pin": "1",
                                           "nickname": "0000"}))
        .unwrap();
    let sensitive = SensitiveFields::default().pointer("/nickname");
    let err =
        Validated::<Signup>::from_json(&bytes, &JsonLimits::default(), &sensitive).unwrap_err();
    assert!(!rendered(&err).contains("0000"));

    // JSON Schema: enum, const and pattern of sensitive fields, instance values.
    #[cfg(feature = "schema")]
    {
        let schema = Schema::compile(&json!({"properties": {
            "api_key": {"const": "sk_live_expected"},
            "token": {"pattern": "^tok_[a-z]+$"},
            "note": {"type": "integer"}
        }}))
        .unwrap();
        let err =
            schema.check(&json!({"api_key": CANARY, "token": CANARY, "note": CANARY})).unwrap_err();
        let text = rendered(&err);
        for leak in [CANARY, "sk_live_expected", "tok_"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }

    // The limits and the rules never quote input.
    let long = format!("\"{}\"", CANARY.repeat(2_000));
    let err = JsonLimits::default().max_string_chars(10).check(long.as_bytes()).unwrap_err();
    assert!(!rendered(&err).contains(CANARY));
}

#[test]
fn a_failed_validation_is_a_400_problem_listing_every_violation() {
    let err = validate::<Order>(&json!({"customerName": "x", "lineItems": [],
        "contactEmail": "nope", "shippingAddress": {"postal-code": "12", "street-lines": ["a"]}}))
    .unwrap_err();
    let problem = ErrorHandler::default().render(&err, &RequestContext::new().request_id("r-9"));
    assert_eq!(problem.status().as_u16(), 400);
    assert_eq!(problem.content_type(), "application/problem+json");
    let body = problem.body();
    assert_eq!(body["code"], "VALIDATION_ERROR");
    assert_eq!(body["detail"], rampart::validate::INVALID_INPUT);
    assert_eq!(
        body["errors"],
        json!([
            {"pointer": "/contactEmail", "code": "email", "detail": "is not a valid email address"},
            {"pointer": "/lineItems", "code": "length", "detail": "must be at least 1 long"}
        ])
    );
}

#[test]
fn a_typed_value_built_in_code_is_located_by_rust_names() {
    let label = Label { text: "too long".to_owned() };
    let err = Validated::new(label, &SensitiveFields::default()).unwrap_err();
    assert_eq!(pointers(&err), pairs(&[("/text", "length")]));
    let label =
        Validated::new(Label { text: "ok".to_owned() }, &SensitiveFields::default()).unwrap();
    assert_eq!(label.into_inner().text, "ok");
}

/// Composing reports of several fields with the built-in rules.
#[test]
fn reports_compose_under_pointers() {
    use rampart::validate::rules::{Email, Length};
    let reports: [ValidationReport<String>; 2] =
        [Email.validate("ada@").at_key("email"), Length::chars(2..).validate("x").at_key("name")];
    let violations: Vec<_> = reports.iter().flat_map(|r| r.violations().to_vec()).collect();
    let err = ValidationReport::new((), violations).into_result().unwrap_err();
    assert_eq!(pointers(&err), pairs(&[("/email", "email"), ("/name", "length")]));
}

/// The settings the configuration owns feed the validators directly.
#[test]
fn limits_and_uploads_are_built_from_the_configuration() {
    use rampart::config::Loader;
    use rampart::validate::UploadPolicy;

    let loaded = Loader::new()
        .toml_text(
            "t.toml",
            "max_input_size = \"2 KiB\"\nallowed_file_types = [\"png\", \"json\"]\n",
        )
        .load()
        .expect("a valid configuration");
    let config = loaded.config();
    let limits = JsonLimits::with_max_input_size(config.max_input_size);
    assert_eq!(limits.size_limit(), 2048);
    let policy = UploadPolicy::new(&config.allowed_file_types, config.max_input_size)
        .expect("supported types");
    assert!(policy.check("a.json", b"{}").is_ok());
    assert_eq!(policy.check("a.txt", b"hi").unwrap_err().violations()[0].code, "file_type");
    let big = vec![b' '; 2049];
    assert_eq!(policy.check("a.json", &big).unwrap_err().kind(), ErrorKind::PayloadTooLarge);
}

/// The attack: a body whose first `role` passes the schema, for a service
/// whose parser keeps the first value, while the last one (`admin`) is what
/// serde_json would keep. The scan refuses the body before any parser
/// chooses.
#[cfg(feature = "schema")]
#[test]
fn a_duplicate_key_cannot_smuggle_a_second_value_past_the_schema() {
    let schema = Schema::compile(&json!({
        "type": "object",
        "properties": {"role": {"enum": ["user"]}},
    }))
    .expect("compiles");
    let body = br#"{"name": "mallory", "role": "user", "role": "admin"}"#;
    let limits = JsonLimits::default();
    let err = limits.parse(body).expect_err("refused");
    assert_eq!(pointers(&err), [("/role".to_owned(), "json_duplicate_key".to_owned())]);
    // Allowed on purpose, the last value wins and the schema sees it.
    let value = limits.allow_duplicate_keys().parse(body).expect("parses");
    assert!(schema.check(&value).is_err());
    // Typed bodies are covered by the same scan.
    #[derive(Debug, Deserialize, Validate)]
    struct Member {
        #[garde(skip)]
        #[allow(dead_code)]
        role: BTreeMap<String, String>,
    }
    let nested = json!({"role": {"a": "1"}});
    assert!(validate::<Member>(&nested).is_ok());
    let err = Validated::<Member>::from_json(
        br#"{"role": {"a": "1", "a": "2"}}"#,
        &limits,
        &SensitiveFields::default(),
    )
    .expect_err("refused");
    assert_eq!(pointers(&err), [("/role/a".to_owned(), "json_duplicate_key".to_owned())]);
}

/// An application that glob-imports garde and rampart's validation: every
/// name it uses resolves (garde's `Valid` stays garde's), and `Validated`
/// destructures.
mod glob_imports {
    use garde::*;
    use rampart::validate::*;

    #[derive(Debug, serde::Deserialize, Validate)]
    struct Order {
        #[garde(range(min = 1))]
        quantity: u32,
    }

    #[test]
    fn garde_and_rampart_validation_glob_imports_work_together() {
        let body = br#"{"quantity": 2}"#;
        let Validated { value: order, .. } = Validated::<Order>::from_json(
            body,
            &JsonLimits::default(),
            &SensitiveFields::default(),
        )
        .expect("valid");
        assert_eq!(order.quantity, 2);

        let checked: Valid<Order> = Unvalidated::new(Order { quantity: 3 }).validate().expect("ok");
        assert_eq!(checked.quantity, 3);

        // The re-exported garde is the garde the derive implemented.
        fn rampart_garde<T: rampart::validate::garde::Validate>(_: &T) {}
        rampart_garde(&order);
    }
}
