//! Telemetry: JSON log lines that cannot leak secrets, and Prometheus metrics.
//!
//! Every event becomes one line with its timestamp (RFC 3339, UTC), level,
//! target, message, module, file, line, the fields of the spans it happened
//! in (`"span": {"request_id": ...}`) and its own fields (`"fields": {...}`).
//! Redaction happens in the formatter itself ([`RedactingFormat`]), so no
//! call site can go around it: fields with sensitive names (password, token,
//! secret, authorization, cookie, api_key, ... see [`Redactor`]) print
//! `[REDACTED]`, and so does anything that looks like a credential inside any
//! message or value (JWTs, `Bearer ...`, rampart API keys `rk_...`, PEM
//! private keys, passwords in URLs, `password=...`).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use rampart::telemetry::{self, Settings};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! # #[derive(Clone, Default)] struct Buf(Arc<Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buf {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! let out = Buf::default();
//! let writer = { let out = out.clone(); move || out.clone() };
//! let subscriber = tracing_subscriber::registry().with(telemetry::layer(&Settings::default(), writer));
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("request", request_id = "r-1");
//!     let _in = span.enter();
//!     tracing::info!(user = "bob", password = "hunter2", "login with Bearer eyJhbGciOi.eyJzdWIi.sig");
//! });
//! let line = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
//! let json: serde_json::Value = serde_json::from_str(&line).unwrap();
//! assert_eq!(json["message"], "login with Bearer [REDACTED]");
//! assert_eq!(json["span"]["request_id"], "r-1");
//! assert_eq!(json["fields"]["user"], "bob");
//! assert_eq!(json["fields"]["password"], "[REDACTED]");
//! assert!(!line.contains("hunter2"));
//! ```
//!
//! The filter is `telemetry.filter`; when the configuration is loaded,
//! `RUST_LOG` (if set and not empty) replaces it, as Rust programs expect
//! (see [`Settings::filter`]).
//!
//! In a service, [`init`] installs all of it for the process, and
//! [`install_metrics`] (feature `metrics`) the Prometheus recorder whose
//! [`render`](MetricsHandle::render) serves `/metrics`.

use std::sync::Arc;

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use crate::error::Error;

mod format;
#[cfg(feature = "metrics")]
mod metrics;
mod redact;
mod settings;

pub use crate::sensitive::{DEFAULT_SENSITIVE_NAMES, DEFAULT_SENSITIVE_WORDS};
pub use format::{RedactingFields, RedactingFormat};
#[cfg(feature = "metrics")]
pub use metrics::{METRICS_CONTENT_TYPE, MetricsHandle, install_metrics, local_recorder};
pub use redact::{REDACTED, Redactor};
pub use settings::{LogFormat, Settings};

/// The redactor `settings` ask for: the built-in names and words plus
/// `settings.redact_fields`.
pub fn redactor(settings: &Settings) -> Redactor {
    Redactor::with_defaults(&settings.redact_fields)
}

/// A `tracing` layer writing redacted lines in `settings.format` to
/// `writer`, keeping the events `settings.filter` selects.
pub fn layer<S, W>(settings: &Settings, writer: W) -> impl Layer<S> + Send + Sync + use<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format = RedactingFormat::new(settings.format, Arc::new(redactor(settings)));
    tracing_subscriber::fmt::layer()
        .fmt_fields(format.fields())
        .event_format(format)
        .with_writer(writer)
        .with_filter(settings.targets())
}

/// Installs the process-wide `tracing` subscriber: [`layer`] writing to
/// standard output.
///
/// # Errors
/// A configuration error when a global subscriber is already installed.
pub fn init(settings: &Settings) -> Result<(), Error> {
    let subscriber = tracing_subscriber::registry().with(layer(settings, std::io::stdout));
    tracing::subscriber::set_global_default(subscriber).map_err(|_| {
        Error::configuration("telemetry", "a global tracing subscriber is already installed")
    })
}
