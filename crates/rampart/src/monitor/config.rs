//! The `[monitor]` section: the table as written, validated into
//! [`MonitorConfig`].

use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;
use crate::settings::{Section, duration, format_duration};

/// `[monitor]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMonitorConfig {
    /// The counting window.
    #[serde(with = "duration")]
    window: Duration,
    /// How long a client that crossed a threshold is blocked ("0s": never).
    #[serde(with = "duration")]
    block_duration: Duration,
    /// Most keys counted, and most clients blocked, at once.
    max_tracked: usize,
    /// Events per window that raise an alert; 0 turns a signal off.
    thresholds: RawThresholds,
}

impl Default for RawMonitorConfig {
    fn default() -> RawMonitorConfig {
        RawMonitorConfig {
            window: Duration::from_secs(60),
            block_duration: Duration::from_secs(900),
            max_tracked: 100_000,
            thresholds: RawThresholds::default(),
        }
    }
}

/// `[monitor.thresholds]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawThresholds {
    auth_failure: u32,
    permission_denied: u32,
    validation_rejected: u32,
    rate_limited: u32,
    tampered_cookie: u32,
}

impl Default for RawThresholds {
    fn default() -> RawThresholds {
        RawThresholds {
            auth_failure: 10,
            permission_denied: 20,
            validation_rejected: 50,
            rate_limited: 100,
            tampered_cookie: 3,
        }
    }
}

/// Validated monitor settings.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub(super) window: Duration,
    pub(super) block_duration: Option<Duration>,
    pub(super) max_tracked: usize,
    /// By [`Signal::index`](super::Signal).
    pub(super) thresholds: [u32; 5],
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: Duration::from_secs(60),
            block_duration: Some(Duration::from_secs(900)),
            max_tracked: 100_000,
            thresholds: [10, 20, 50, 100, 3],
        }
    }
}

/// The `[monitor]` table of [`Config`](crate::config::Config).
impl Section for MonitorConfig {
    const NAME: &'static str = "monitor";
    type Raw = RawMonitorConfig;

    /// Errors name the key (`monitor.window`...), never the value.
    fn from_raw(raw: RawMonitorConfig) -> Result<MonitorConfig, Error> {
        if raw.window < Duration::from_secs(1) || raw.window > Duration::from_secs(24 * 3600) {
            return Err(Error::configuration("monitor.window", "must be between 1s and 24h"));
        }
        if raw.block_duration > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::configuration("monitor.block_duration", "must be at most 7 days"));
        }
        if !(16..=10_000_000).contains(&raw.max_tracked) {
            return Err(Error::configuration(
                "monitor.max_tracked",
                "must be between 16 and 10000000",
            ));
        }
        let t = raw.thresholds;
        let thresholds = [
            t.auth_failure,
            t.permission_denied,
            t.validation_rejected,
            t.rate_limited,
            t.tampered_cookie,
        ];
        if thresholds.iter().any(|&n| n > 100_000) {
            return Err(Error::configuration(
                "monitor.thresholds",
                "a threshold must be at most 100000",
            ));
        }
        Ok(MonitorConfig {
            window: raw.window,
            block_duration: (!raw.block_duration.is_zero()).then_some(raw.block_duration),
            max_tracked: raw.max_tracked,
            thresholds,
        })
    }
}

/// Serializes as `[monitor]` is written (what `rampart config show` prints).
impl Serialize for MonitorConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [auth_failure, permission_denied, validation_rejected, rate_limited, tampered_cookie] =
            self.thresholds;
        let mut table = serializer.serialize_struct("monitor", 4)?;
        table.serialize_field("window", &format_duration(self.window))?;
        let block = self.block_duration.map_or_else(|| "0s".to_owned(), format_duration);
        table.serialize_field("block_duration", &block)?;
        table.serialize_field("max_tracked", &self.max_tracked)?;
        table.serialize_field(
            "thresholds",
            &serde_json::json!({
                "auth_failure": auth_failure,
                "permission_denied": permission_denied,
                "validation_rejected": validation_rejected,
                "rate_limited": rate_limited,
                "tampered_cookie": tampered_cookie,
            }),
        )?;
        table.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_those_an_empty_table_gives() {
        let empty = MonitorConfig::from_raw(RawMonitorConfig::default()).expect("valid");
        let default = MonitorConfig::default();
        assert_eq!(
            (empty.window, empty.block_duration, empty.max_tracked, empty.thresholds),
            (default.window, default.block_duration, default.max_tracked, default.thresholds)
        );
    }
}
