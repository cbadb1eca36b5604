//! What every section of the configuration is made with: [`Section`],
//! [`Secret`], the units ([`duration`], [`byte_size`]), [`ConfigError`],
//! and the rules sections share (what an origin is).
//!
//! This module is a leaf: it depends only on [`crate::error`]. Each module
//! that owns a section (`auth`, `ratelimit`, `telemetry`...) imports it by
//! this path, and [`crate::config`] assembles those sections into
//! [`Config`](crate::config::Config) above them all, so no module imports
//! `config` and `config` imports no module that imports it. It is private:
//! users reach each item through its one public path, `rampart::config`.

mod origin;
mod read;
mod secret;
mod section;
mod units;

pub(crate) use origin::is_origin;
pub(crate) use read::{is_index, printable, problem, read_value};
pub use secret::{MASK, Secret};
pub use section::{ConfigError, Section};
#[cfg(feature = "audit")]
pub(crate) use units::parse_duration;
pub use units::{byte_size, duration, format_byte_size, format_duration, parse_byte_size};
