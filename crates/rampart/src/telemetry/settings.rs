//! The `[telemetry]` section of the configuration.

use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::Targets;

use crate::error::Error;
use crate::settings::Section;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default).
    #[default]
    Json,
    /// One human-readable line per event, control characters escaped.
    Text,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Settings {
    /// Which events are written: a level (`"info"`) or directives
    /// (`"warn,rampart=info,rampart::auth=debug"`). Default `"info"`. When
    /// the configuration is loaded, `RUST_LOG` (if set and not empty)
    /// replaces it, whatever the file or `RAMPART_TELEMETRY__FILTER` says.
    pub filter: String,
    /// `json` (default) or `text`.
    pub format: LogFormat,
    /// Field names to redact in addition to the built-in list.
    pub redact_fields: Vec<String>,
}

impl Settings {
    /// The filter, parsed.
    pub fn targets(&self) -> Targets {
        // Validated when the section was loaded; an unparsable filter cannot get here.
        self.filter.parse().unwrap_or_default()
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { filter: "info".to_owned(), format: LogFormat::Json, redact_fields: Vec::new() }
    }
}

/// The `[telemetry]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    filter: String,
    format: LogFormat,
    redact_fields: Vec<String>,
}

impl Default for RawSettings {
    fn default() -> RawSettings {
        let Settings { filter, format, redact_fields } = Settings::default();
        RawSettings { filter, format, redact_fields }
    }
}

impl Section for Settings {
    const NAME: &'static str = "telemetry";
    type Raw = RawSettings;

    fn from_raw(raw: RawSettings) -> Result<Settings, Error> {
        if raw.filter.parse::<Targets>().is_err() {
            return Err(Error::configuration(
                "telemetry.filter",
                "is not a log filter: write a level such as \"info\", or directives such as \
                 \"warn,rampart=info\"",
            ));
        }
        if let Some(i) = raw.redact_fields.iter().position(|f| f.trim().is_empty()) {
            return Err(Error::configuration(
                format!("telemetry.redact_fields[{i}]"),
                "must not be empty",
            ));
        }
        Ok(Settings { filter: raw.filter, format: raw.format, redact_fields: raw.redact_fields })
    }
}
