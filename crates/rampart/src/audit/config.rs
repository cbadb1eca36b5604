//! Audit settings: the raw form read from TOML, validated into [`AuditConfig`].
//!
//! ```toml
//! [audit]
//! key_file = "/etc/myapp/audit.key"   # or key = "..." (at least 32 bytes)
//! key_id = "k1"
//! queue_capacity = 8192
//! timeout = "2s"                      # waiting for room and for the write, in all
//! failure_policy = "fail_closed"      # or "fail_open"
//! checkpoint_interval = "10s"
//!
//! [audit.file]
//! dir = "/var/log/myapp/audit"
//! fsync = "10ms"                      # "always", "never", or a duration
//! rotate_bytes = 67108864
//! checkpoints = "/var/lib/myapp/audit.checkpoints.jsonl"   # optional
//!
//! [audit.postgres]                    # feature `postgres`
//! url = "postgres://audit@db/app"
//! table = "audit.events"
//! batch_size = 1000
//! ```
//!
//! ```
//! use rampart::audit::config::{AuditConfig, RawAuditConfig};
//!
//! let raw: RawAuditConfig = serde_json::from_value(serde_json::json!({
//!     "key": "0123456789abcdef0123456789abcdef", "key_id": "k1",
//!     "file": {"dir": "audit", "fsync": "always"}
//! })).unwrap();
//! let config = AuditConfig::from_raw(raw).unwrap();
//! assert_eq!(config.key().id(), "k1");
//!
//! let raw: RawAuditConfig = serde_json::from_value(serde_json::json!({
//!     "key": "too short", "key_id": "k1", "file": {"dir": "audit"}
//! })).unwrap();
//! let err = AuditConfig::from_raw(raw).unwrap_err();
//! assert_eq!(err.config_key(), Some("audit.key"));
//! assert!(!err.message().contains("too short"));
//! ```

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::auditor::{Auditor, FailurePolicy};
use super::key::AuditKey;
use super::sink::SyncPolicy;
use super::sink::file::FileSink;
use crate::config::{MASK, Section, format_duration, parse_duration_setting as duration};
use crate::error::Error;

/// `[audit]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuditConfig {
    /// The key itself (prefer `key_file`).
    pub key: Option<SecretString>,
    /// A file holding the key.
    pub key_file: Option<PathBuf>,
    /// The key's id, written into every record.
    pub key_id: Option<String>,
    /// Queue capacity, in events.
    pub queue_capacity: Option<usize>,
    /// How long a caller waits in all (a duration such as "2s").
    pub timeout: Option<String>,
    /// `fail_closed` or `fail_open`.
    pub failure_policy: Option<FailurePolicy>,
    /// How often checkpoints are written ("10s").
    pub checkpoint_interval: Option<String>,
    /// The file sink.
    pub file: Option<RawFileSink>,
    /// The PostgreSQL sink.
    pub postgres: Option<RawPostgresSink>,
}

/// `[audit.file]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileSink {
    /// The directory (created 0700).
    pub dir: PathBuf,
    /// "always", "never", or a duration ("10ms").
    pub fsync: Option<String>,
    /// Rotation size in bytes (0: never rotate).
    pub rotate_bytes: Option<u64>,
    /// Where checkpoints go (default: `audit.checkpoints.jsonl` in `dir`).
    pub checkpoints: Option<PathBuf>,
}

/// `[audit.postgres]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgresSink {
    /// The connection URL (a secret: it may hold a password).
    pub url: SecretString,
    /// The table, `name` or `schema.name`.
    pub table: Option<String>,
    /// Rows per `COPY` data message.
    pub batch_size: Option<usize>,
}

/// Validated audit settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    key: AuditKey,
    /// Where the key was read from, when it came from a file.
    key_file: Option<PathBuf>,
    queue_capacity: usize,
    timeout: Duration,
    failure_policy: FailurePolicy,
    checkpoint_interval: Duration,
    file: Option<FileSettings>,
    #[cfg(feature = "postgres")]
    postgres: Option<super::sink::postgres::PostgresSettings>,
}

#[derive(Debug, Clone)]
struct FileSettings {
    dir: PathBuf,
    sync: SyncPolicy,
    rotate_bytes: Option<u64>,
    checkpoints: Option<PathBuf>,
}

impl AuditConfig {
    /// Validates `raw`. Errors name the key (`audit.file.fsync`...) and why,
    /// never the value.
    pub fn from_raw(raw: RawAuditConfig) -> Result<AuditConfig, Error> {
        let key_id = raw.key_id.unwrap_or_else(|| "default".to_owned());
        let key_file = raw.key_file.clone();
        let key = match (raw.key, raw.key_file) {
            (Some(_), Some(_)) => {
                return Err(Error::configuration(
                    "audit.key",
                    "set either key or key_file, not both",
                ));
            }
            (Some(key), None) => AuditKey::new(key_id, key.expose_secret().as_bytes().to_vec())?,
            (None, Some(path)) => AuditKey::from_file(key_id, &path, "audit.key_file")?,
            (None, None) => {
                return Err(Error::configuration("audit.key", "is required (or key_file)"));
            }
        };
        let queue_capacity = raw.queue_capacity.unwrap_or(8192);
        if queue_capacity == 0 || queue_capacity > 1 << 22 {
            return Err(Error::configuration(
                "audit.queue_capacity",
                "must be between 1 and 4194304",
            ));
        }
        let timeout = duration("audit.timeout", raw.timeout.as_deref(), Duration::from_secs(2))?;
        if timeout.is_zero() || timeout > Duration::from_secs(300) {
            return Err(Error::configuration(
                "audit.timeout",
                "must be more than 0 and at most 5 minutes",
            ));
        }
        let checkpoint_interval = duration(
            "audit.checkpoint_interval",
            raw.checkpoint_interval.as_deref(),
            Duration::from_secs(10),
        )?;
        if checkpoint_interval < Duration::from_millis(10) {
            return Err(Error::configuration("audit.checkpoint_interval", "must be at least 10ms"));
        }
        let file = raw.file.map(file_settings).transpose()?;
        #[cfg(feature = "postgres")]
        let postgres =
            raw.postgres.map(super::sink::postgres::PostgresSettings::from_raw).transpose()?;
        #[cfg(not(feature = "postgres"))]
        if raw.postgres.is_some() {
            return Err(Error::configuration(
                "audit.postgres",
                "this build has no PostgreSQL support (feature `postgres`)",
            ));
        }
        #[cfg(feature = "postgres")]
        let any_sink = file.is_some() || postgres.is_some();
        #[cfg(not(feature = "postgres"))]
        let any_sink = file.is_some();
        if !any_sink {
            return Err(Error::configuration(
                "audit",
                "needs at least one sink ([audit.file] or [audit.postgres])",
            ));
        }
        Ok(AuditConfig {
            key,
            key_file,
            queue_capacity,
            timeout,
            failure_policy: raw.failure_policy.unwrap_or_default(),
            checkpoint_interval,
            file,
            #[cfg(feature = "postgres")]
            postgres,
        })
    }

    /// The key.
    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// The key file, when the key came from one.
    pub(crate) fn key_file(&self) -> Option<&std::path::Path> {
        self.key_file.as_deref()
    }

    /// The failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.failure_policy
    }

    /// Builds the sinks and starts an [`Auditor`] (see [`AuditorBuilder::start`](super::AuditorBuilder::start)).
    pub fn start(&self) -> Result<Auditor, Error> {
        let mut builder = Auditor::builder(self.key.clone())
            .queue_capacity(self.queue_capacity)
            .timeout(self.timeout)
            .failure_policy(self.failure_policy)
            .checkpoint_interval(self.checkpoint_interval);
        if let Some(file) = &self.file {
            let mut sink =
                FileSink::new(&file.dir).fsync(file.sync).rotate_bytes(file.rotate_bytes);
            if let Some(path) = &file.checkpoints {
                sink = sink.checkpoints_path(path);
            }
            builder = builder.sink(sink);
        }
        #[cfg(feature = "postgres")]
        if let Some(settings) = &self.postgres {
            builder = builder
                .sink(super::sink::postgres::PostgresSink::from_settings(settings, self.timeout));
        }
        builder.start()
    }
}

/// The optional `[audit]` table of [`Config`](crate::config::Config): no
/// table, no audit trail.
impl Section for Option<AuditConfig> {
    type Raw = Option<RawAuditConfig>;

    fn from_raw(raw: Option<RawAuditConfig>) -> Result<Option<AuditConfig>, Error> {
        raw.map(AuditConfig::from_raw).transpose()
    }
}

/// Serializes as `[audit]` is written (what `rampart config show` prints),
/// the key and the PostgreSQL URL masked.
impl Serialize for AuditConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = serializer.serialize_struct("audit", 9)?;
        match &self.key_file {
            Some(path) => table.serialize_field("key_file", path)?,
            None => table.serialize_field("key", MASK)?,
        }
        table.serialize_field("key_id", self.key.id())?;
        table.serialize_field("queue_capacity", &self.queue_capacity)?;
        table.serialize_field("timeout", &format_duration(self.timeout))?;
        table.serialize_field("failure_policy", &self.failure_policy)?;
        table.serialize_field("checkpoint_interval", &format_duration(self.checkpoint_interval))?;
        table.serialize_field("file", &self.file)?;
        #[cfg(feature = "postgres")]
        table.serialize_field("postgres", &self.postgres)?;
        table.end()
    }
}

impl Serialize for FileSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = serializer.serialize_struct("file", 4)?;
        table.serialize_field("dir", &self.dir)?;
        let fsync = match self.sync {
            SyncPolicy::Always => "always".to_owned(),
            SyncPolicy::Never => "never".to_owned(),
            SyncPolicy::Every(every) => format_duration(every),
        };
        table.serialize_field("fsync", &fsync)?;
        table.serialize_field("rotate_bytes", &self.rotate_bytes.unwrap_or(0))?;
        table.serialize_field("checkpoints", &self.checkpoints)?;
        table.end()
    }
}

fn file_settings(raw: RawFileSink) -> Result<FileSettings, Error> {
    if raw.dir.as_os_str().is_empty() {
        return Err(Error::configuration("audit.file.dir", "must not be empty"));
    }
    let sync = match raw.fsync.as_deref().unwrap_or("10ms") {
        "always" => SyncPolicy::Always,
        "never" => SyncPolicy::Never,
        other => {
            let every = humantime::parse_duration(other).map_err(|_| {
                Error::configuration(
                    "audit.file.fsync",
                    "must be \"always\", \"never\" or a duration such as \"10ms\"",
                )
            })?;
            if every.is_zero() || every > Duration::from_secs(60) {
                return Err(Error::configuration(
                    "audit.file.fsync",
                    "a duration must be more than 0 and at most 60s",
                ));
            }
            SyncPolicy::Every(every)
        }
    };
    let rotate_bytes = match raw.rotate_bytes {
        Some(0) => None,
        Some(n) if n < 4096 => {
            return Err(Error::configuration(
                "audit.file.rotate_bytes",
                "must be 0 (never) or at least 4096",
            ));
        }
        Some(n) => Some(n),
        None => Some(64 << 20),
    };
    Ok(FileSettings { dir: raw.dir, sync, rotate_bytes, checkpoints: raw.checkpoints })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawAuditConfig {
        serde_json::from_value(json).expect("raw config")
    }

    #[test]
    fn every_bad_setting_names_its_key_and_not_its_value() {
        let key = "k".repeat(32);
        let cases = [
            (serde_json::json!({"file": {"dir": "d"}}), "audit.key"),
            (serde_json::json!({"key": "secret-but-short", "file": {"dir": "d"}}), "audit.key"),
            (serde_json::json!({"key": key, "key_file": "/x", "file": {"dir": "d"}}), "audit.key"),
            (
                serde_json::json!({"key_file": "/nonexistent/secret-path", "file": {"dir": "d"}}),
                "audit.key_file",
            ),
            (
                serde_json::json!({"key": key, "key_id": "bad id!", "file": {"dir": "d"}}),
                "audit.key_id",
            ),
            (
                serde_json::json!({"key": key, "timeout": "forever-ish", "file": {"dir": "d"}}),
                "audit.timeout",
            ),
            (
                serde_json::json!({"key": key, "queue_capacity": 0, "file": {"dir": "d"}}),
                "audit.queue_capacity",
            ),
            (
                serde_json::json!({"key": key, "checkpoint_interval": "1ms", "file": {"dir": "d"}}),
                "audit.checkpoint_interval",
            ),
            (
                serde_json::json!({"key": key, "file": {"dir": "d", "fsync": "sometimes"}}),
                "audit.file.fsync",
            ),
            (
                serde_json::json!({"key": key, "file": {"dir": "d", "rotate_bytes": 10}}),
                "audit.file.rotate_bytes",
            ),
            (serde_json::json!({"key": key}), "audit"),
        ];
        for (json, expected) in cases {
            let text = json.to_string();
            let err = AuditConfig::from_raw(raw(json)).expect_err(&text);
            assert_eq!(err.config_key(), Some(expected), "{text}");
            for secret in ["secret-but-short", "forever-ish", "sometimes", "secret-path", "bad id!"]
            {
                assert!(!err.message().contains(secret), "{text}: {}", err.message());
            }
        }
    }

    #[test]
    fn the_key_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b'k'; 1 << 20]).expect("write");
        let dev_zero = std::path::Path::new("/dev/zero");
        for (path, why) in [
            (big.as_path(), "larger than"),
            (dev_zero, "not a regular file"),
            (dir.path(), "not a regular file"),
        ] {
            let json = serde_json::json!({"key_file": path, "file": {"dir": "d"}});
            let err = AuditConfig::from_raw(raw(json)).expect_err("refused");
            assert_eq!(err.config_key(), Some("audit.key_file"));
            assert!(err.message().contains(why), "{}", err.message());
        }
    }

    #[test]
    fn fsync_accepts_the_three_forms() {
        let key = "k".repeat(32);
        for (fsync, expected) in [
            ("always", SyncPolicy::Always),
            ("never", SyncPolicy::Never),
            ("10ms", SyncPolicy::Every(Duration::from_millis(10))),
        ] {
            let config = AuditConfig::from_raw(raw(
                serde_json::json!({"key": key, "file": {"dir": "d", "fsync": fsync}}),
            ))
            .expect("valid");
            assert_eq!(config.file.expect("file").sync, expected);
        }
    }

    #[test]
    fn the_key_never_prints() {
        let config = AuditConfig::from_raw(raw(
            serde_json::json!({"key": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t", "file": {"dir": "d"}}),
        ))
        .expect("valid");
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
