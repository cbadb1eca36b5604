//! Telemetry.

mod settings;

pub use settings::{LogFormat, RawSettings, Settings};
