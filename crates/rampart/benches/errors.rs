//! The cost of turning an error into a response.
//!
//! `cargo bench -p rampart --bench errors`

use criterion::{Criterion, criterion_group, criterion_main};
use rampart::error::{Error, FieldViolation};
use rampart::handler::{ErrorHandler, RequestContext};
use std::hint::black_box;

fn render(c: &mut Criterion) {
    let handler = ErrorHandler::default();
    let ctx = RequestContext::new().request_id("req-1").instance("/orders");
    let validation = Error::validation("The order is invalid").with_violations([
        FieldViolation::new("/quantity", "range", "must be between 1 and 100"),
        FieldViolation::new("/email", "email", "is not an email address"),
    ]);
    let internal = Error::internal(std::io::Error::other("connection refused"));

    let mut group = c.benchmark_group("handler");
    group.bench_function("render validation error to JSON", |b| {
        b.iter(|| handler.render(black_box(&validation), &ctx).to_json());
    });
    group.bench_function("render internal error to JSON", |b| {
        b.iter(|| handler.render(black_box(&internal), &ctx).to_json());
    });
    group.bench_function("build a validation error", |b| {
        b.iter(|| {
            Error::validation(black_box("The order is invalid"))
                .with_violation(FieldViolation::new("/quantity", "range", "must be at least 1"))
        });
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
