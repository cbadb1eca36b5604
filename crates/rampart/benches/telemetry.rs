//! Cost of one JSON log event with rampart's redacting formatter, beside
//! tracing-subscriber's own JSON formatter on the same event, in the same
//! run, both writing to a sink that discards.
//!
//! `cargo bench -p rampart --bench telemetry`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use rampart::telemetry::{self, Settings};
use tracing_subscriber::layer::SubscriberExt;

/// A typical access-log event.
fn event() {
    tracing::info!(
        target: "app::http",
        path = "/orders/7",
        status = 200u64,
        latency_ms = 12.5,
        user = "bob",
        "request completed"
    );
}

/// The same event carrying credentials to redact.
fn event_with_secrets() {
    tracing::info!(
        target: "app::http",
        path = "/orders/7",
        status = 401u64,
        authorization = "Bearer abc.def-123456",
        detail = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln rejected",
        "login failed for password=hunter2"
    );
}

/// tracing-subscriber's JSON formatter, with the current span's fields.
fn stock() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::sink),
    )
}

/// rampart's redacting JSON formatter with the default settings.
fn rampart() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(telemetry::layer(&Settings::default(), std::io::sink))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_event");

    // Each iteration is one event, inside a request span entered once.
    for (name, f) in [("plain", event as fn()), ("with_secrets", event_with_secrets)] {
        tracing::subscriber::with_default(stock(), || {
            let span = tracing::info_span!("request", request_id = "01HZX3K9V7Q2", method = "GET");
            let _entered = span.enter();
            group.bench_function(format!("{name}/tracing_subscriber_json"), |b| {
                b.iter(f);
            });
        });
        tracing::subscriber::with_default(rampart(), || {
            let span = tracing::info_span!("request", request_id = "01HZX3K9V7Q2", method = "GET");
            let _entered = span.enter();
            group.bench_function(format!("{name}/rampart_json_redacting"), |b| {
                b.iter(f);
            });
        });
    }
    group.finish();
}

/// The ratio rampart / stock measured in alternating rounds, so both sides
/// see the same load on a busy machine: the median of 41 rounds of 2000
/// events each.
fn interleaved() {
    for (name, f) in [("plain", event as fn()), ("with_secrets", event_with_secrets)] {
        let time = |dispatch: &tracing::Dispatch| {
            tracing::dispatcher::with_default(dispatch, || {
                let span =
                    tracing::info_span!("request", request_id = "01HZX3K9V7Q2", method = "GET");
                let _entered = span.enter();
                let start = Instant::now();
                for _ in 0..2000 {
                    f();
                }
                start.elapsed()
            })
        };
        let stock = tracing::Dispatch::new(stock());
        let rampart = tracing::Dispatch::new(rampart());
        let mut ratios = Vec::new();
        let mut best = (Duration::MAX, Duration::MAX);
        for _ in 0..41 {
            let (s, r) = (time(&stock), time(&rampart));
            best = (best.0.min(s), best.1.min(r));
            ratios.push(r.as_secs_f64() / s.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "interleaved {name}: rampart/stock median ratio {:.2} (best per event: stock {:?}, rampart {:?})",
            ratios[ratios.len() / 2],
            best.0 / 2000,
            best.1 / 2000,
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    interleaved();
    Criterion::default().configure_from_args().final_summary();
}
