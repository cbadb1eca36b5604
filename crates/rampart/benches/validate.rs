//! Validation costs, each beside its anchor in the same run.
//!
//! `cargo bench -p rampart --bench validate`
//!
//! - schema: a typical 1 KB order body against its JSON Schema, with
//!   rampart's `Schema::validate` and jsonschema's own `validate` (same
//!   compiled options) side by side;
//! - limits: the JSON limits scan in MB/s (with and without the duplicate
//!   key check), beside
//!   `serde_json::from_slice::<IgnoredAny>` of the same bytes (the cheapest
//!   full parse) and the checked parse into a `Value` beside serde_json's.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart::validate::{JsonLimits, Schema};
use serde::de::IgnoredAny;
use serde_json::{Value, json};

fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "customer", "items", "currency", "created_at"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "customer": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "email": {"type": "string", "format": "email"},
                    "phone": {"type": "string", "pattern": "^\\+[0-9]{6,15}$"}
                }
            },
            "items": {
                "type": "array", "minItems": 1, "maxItems": 50,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity", "unit_price"],
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
                        "unit_price": {"type": "number", "exclusiveMinimum": 0},
                        "note": {"type": "string", "maxLength": 200}
                    }
                }
            },
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "coupon": {"type": ["string", "null"], "maxLength": 20},
            "created_at": {"type": "string", "format": "date-time"},
            "shipping": {
                "type": "object",
                "properties": {
                    "street": {"type": "string"}, "city": {"type": "string"},
                    "postal_code": {"type": "string", "maxLength": 10},
                    "country": {"type": "string", "minLength": 2, "maxLength": 2}
                }
            }
        }
    })
}

fn order_body() -> Value {
    let items: Vec<Value> = (0..7)
        .map(|i| {
            json!({"sku": format!("ABC-{:04}", 1000 + i), "quantity": i + 1,
                   "unit_price": 9.99 + f64::from(i), "note": "gift wrap, please leave at the door"})
        })
        .collect();
    json!({
        "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+441234567890"},
        "items": items,
        "currency": "EUR",
        "coupon": null,
        "created_at": "2024-05-01T12:30:00Z",
        "shipping": {"street": "12 Analytical Engine Road", "city": "London",
                     "postal_code": "NW1 2DB", "country": "GB"}
    })
}

/// About `target` bytes of realistic JSON: an array of order bodies.
fn big_document(target: usize) -> Vec<u8> {
    let one = serde_json::to_vec(&order_body()).expect("serializes");
    let copies = target / (one.len() + 1) + 1;
    let mut out = Vec::with_capacity(copies * (one.len() + 1) + 2);
    out.push(b'[');
    for i in 0..copies {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&one);
    }
    out.push(b']');
    out
}

fn schema(c: &mut Criterion) {
    let source = order_schema();
    let body = order_body();
    let size = serde_json::to_vec(&body).expect("serializes").len();
    let ours = Schema::compile(&source).expect("compiles");
    let theirs = jsonschema::options()
        .offline()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&source)
        .expect("compiles");
    assert!(ours.validate(&body).is_valid());

    let mut group = c.benchmark_group(format!("schema ({size} B body)"));
    group
        .bench_function("rampart Schema::validate", |b| b.iter(|| ours.validate(black_box(&body))));
    group.bench_function("jsonschema validate (anchor)", |b| {
        b.iter(|| theirs.validate(black_box(&body)));
    });
    group.bench_function("jsonschema is_valid (anchor)", |b| {
        b.iter(|| theirs.is_valid(black_box(&body)));
    });
    let mut invalid = body.clone();
    invalid["items"][2]["quantity"] = json!(0);
    invalid["customer"]["email"] = json!("nope");
    group.bench_function("rampart Schema::validate, 2 violations", |b| {
        b.iter(|| ours.validate(black_box(&invalid)));
    });
    group.bench_function("jsonschema iter_errors, 2 errors (anchor)", |b| {
        b.iter(|| theirs.iter_errors(black_box(&invalid)).count());
    });
    group.finish();
}

fn limits(c: &mut Criterion) {
    let doc = big_document(1 << 20);
    let limits = JsonLimits::default().max_size(4 << 20).max_array_len(100_000);
    limits.check(&doc).expect("within limits");

    let mut group = c.benchmark_group("json limits (1 MiB document)");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.bench_function("rampart JsonLimits::check", |b| b.iter(|| limits.check(black_box(&doc))));
    let lenient = limits.allow_duplicate_keys();
    group.bench_function("rampart JsonLimits::check, duplicate keys allowed", |b| {
        b.iter(|| lenient.check(black_box(&doc)));
    });
    group.bench_function("serde_json IgnoredAny (anchor)", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&doc)));
    });
    group.bench_function("rampart JsonLimits::parse to Value", |b| {
        b.iter(|| limits.parse(black_box(&doc)));
    });
    group.bench_function("serde_json from_slice to Value (anchor)", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&doc)));
    });
    group.finish();
}

criterion_group!(benches, schema, limits);
criterion_main!(benches);
