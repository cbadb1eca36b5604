//! The PostgreSQL sink (feature `postgres`).
//!
//! On its first open it looks for the table and a `<table>_checkpoints`
//! table (`to_regclass`) and creates only what is missing (the migration
//! below), then continues the chain from the row with the highest `seq`.
//! Once it has seen its tables it never creates them again: a table dropped
//! while the sink runs makes every later write fail (handled by the failure
//! policy), rather than a new chain starting at seq 1 unnoticed.
//! A batch goes in as one `COPY ... FROM STDIN` statement
//! (sent `batch_size` rows per message), so it is stored whole or not at all.
//!
//! Least privilege: when the tables exist, the sink needs only `SELECT` and
//! `INSERT` on them (and `USAGE` on their schema). Let an owner role create
//! them (run the migration, or start the sink once as the owner) and run the
//! service as a writer role that cannot delete or change what it wrote
//! (docs/OPERATIONS.md shows the grants).
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS <table> (
//!     seq        bigint PRIMARY KEY,
//!     time       timestamptz NOT NULL,
//!     event_type text NOT NULL,
//!     hash       text NOT NULL,
//!     record     text NOT NULL      -- the record line, byte for byte as in the file sink
//! );
//! CREATE TABLE IF NOT EXISTS <table>_checkpoints (
//!     seq bigint NOT NULL, time timestamptz NOT NULL, record text NOT NULL
//! );
//! ```
//!
//! `record` holds exactly the line the file sink would write, so an export
//! verifies with `rampart audit verify`:
//!
//! ```sh
//! psql "$URL" -Atc 'SELECT record FROM audit.events ORDER BY seq' > audit.jsonl
//! psql "$URL" -Atc 'SELECT record FROM audit.events_checkpoints ORDER BY seq' > cps.jsonl
//! rampart audit verify audit.jsonl --key-file audit.key --checkpoints cps.jsonl
//! ```
//!
//! One table holds one chain: give each writer (each replica) its own table.
//!
//! ```no_run
//! use rampart::audit::sink::postgres::PostgresSink;
//!
//! let sink = PostgresSink::new("postgres://audit@db/app", "audit.events").unwrap();
//! # let _ = sink;
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls, Statement};

use super::{Sink, SyncPolicy, sink_error};
use crate::audit::chain::{Checkpoint, SealedRecord};
use crate::audit::config::RawPostgresSink;
use crate::error::Error;
use crate::settings::Secret;

/// Validated `[audit.postgres]` settings.
#[derive(Debug, Clone)]
pub(crate) struct PostgresSettings {
    url: Secret<String>,
    table: TableName,
    batch_size: usize,
}

impl PostgresSettings {
    pub(crate) fn from_raw(raw: RawPostgresSink) -> Result<PostgresSettings, Error> {
        let url = raw.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::configuration("audit.postgres.url", "must be a postgres:// URL"));
        }
        let table = TableName::parse(raw.table.as_deref().unwrap_or("rampart_audit"))
            .map_err(|why| Error::configuration("audit.postgres.table", why))?;
        let batch_size = raw.batch_size.unwrap_or(1000);
        if !(1..=100_000).contains(&batch_size) {
            return Err(Error::configuration(
                "audit.postgres.batch_size",
                "must be between 1 and 100000",
            ));
        }
        Ok(PostgresSettings { url: raw.url, table, batch_size })
    }
}

/// Serializes as `[audit.postgres]` is written, with the URL masked.
impl serde::Serialize for PostgresSettings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut table = serializer.serialize_struct("postgres", 3)?;
        table.serialize_field("url", &self.url)?;
        let name = match &self.table.schema {
            Some(schema) => format!("{schema}.{}", self.table.name),
            None => self.table.name.clone(),
        };
        table.serialize_field("table", &name)?;
        table.serialize_field("batch_size", &self.batch_size)?;
        table.end()
    }
}

/// A table name, `name` or `schema.name`, each part `[A-Za-z_][A-Za-z0-9_]*`.
#[derive(Debug, Clone)]
struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    fn parse(text: &str) -> Result<TableName, &'static str> {
        let ident = |part: &str| {
            let mut bytes = part.bytes();
            part.len() <= 48
                && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, text),
        };
        if !ident(name) || schema.is_some_and(|s| !ident(s)) {
            return Err(
                "must be `name` or `schema.name`, each of letters, digits and '_' (at most 48)",
            );
        }
        Ok(TableName { schema: schema.map(str::to_owned), name: name.to_owned() })
    }

    fn quoted(&self, suffix: &str) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}{suffix}\"", self.name),
            None => format!("\"{}{suffix}\"", self.name),
        }
    }
}

/// Writes records to a PostgreSQL table; see the [module documentation](self).
pub struct PostgresSink {
    url: Secret<String>,
    table: TableName,
    batch_size: usize,
    op_timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
    /// The `COPY` statement, prepared once per connection.
    copy: Option<Statement>,
    /// The tables were found (or made) by an earlier open: they are never made again.
    tables_seen: bool,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("table", &self.table.quoted(""))
            .field("batch_size", &self.batch_size)
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresSink {
    /// A sink writing to `table` (`name` or `schema.name`) at `url`, 1000
    /// rows per `COPY` message, 5 s per database operation.
    pub fn new(url: impl Into<String>, table: &str) -> Result<PostgresSink, Error> {
        let table = TableName::parse(table)
            .map_err(|why| Error::configuration("audit.postgres.table", why))?;
        Ok(PostgresSink {
            url: Secret::new(url.into()),
            table,
            batch_size: 1000,
            op_timeout: Duration::from_secs(5),
            runtime: None,
            client: None,
            copy: None,
            tables_seen: false,
        })
    }

    pub(crate) fn from_settings(settings: &PostgresSettings, op_timeout: Duration) -> PostgresSink {
        PostgresSink {
            url: settings.url.clone(),
            table: settings.table.clone(),
            batch_size: settings.batch_size,
            op_timeout: op_timeout.max(Duration::from_secs(1)),
            runtime: None,
            client: None,
            copy: None,
            tables_seen: false,
        }
    }

    /// Rows per `COPY` data message.
    #[must_use]
    pub fn batch_size(mut self, rows: usize) -> PostgresSink {
        self.batch_size = rows.max(1);
        self
    }

    /// The longest one database operation may take before it counts as failed.
    #[must_use]
    pub fn op_timeout(mut self, timeout: Duration) -> PostgresSink {
        self.op_timeout = timeout;
        self
    }

    /// The statements creating what `found` (schema, table, checkpoints
    /// table) says is missing.
    fn migration(&self, [schema, table, checkpoints]: [bool; 3]) -> String {
        let mut sql = String::new();
        if let (false, Some(name)) = (schema, &self.table.schema) {
            sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS \"{name}\"; "));
        }
        if !table {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint PRIMARY KEY, time timestamptz NOT NULL, \
                 event_type text NOT NULL, hash text NOT NULL, record text NOT NULL); ",
                self.table.quoted("")
            ));
        }
        if !checkpoints {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint NOT NULL, time timestamptz NOT NULL, \
                 record text NOT NULL);",
                self.table.quoted("_checkpoints")
            ));
        }
        sql
    }

    /// Runs `op` on the sink's runtime within the operation timeout; on any
    /// failure the connection is dropped, to be made anew on the next open.
    fn run<T, F>(&mut self, what: &str, op: impl FnOnce(Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = (Client, Result<T, tokio_postgres::Error>)>,
    {
        let (Some(runtime), Some(client)) = (self.runtime.as_ref(), self.client.take()) else {
            return Err(sink_error("postgres", what, std::io::Error::other("not connected")));
        };
        let timeout = self.op_timeout;
        match runtime.block_on(async { tokio::time::timeout(timeout, op(client)).await }) {
            Ok((client, Ok(value))) => {
                self.client = Some(client);
                Ok(value)
            }
            Ok((_, Err(err))) => Err(sink_error("postgres", what, err)),
            Err(elapsed) => Err(sink_error("postgres", what, elapsed)),
        }
    }
}

fn copy_escape(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn sync_policy(&self) -> SyncPolicy {
        // A committed transaction is durable.
        SyncPolicy::Never
    }

    fn open(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.client = None;
        self.copy = None;
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| sink_error("postgres", "starting a runtime", err))?;
            self.runtime = Some(runtime);
        }
        let Some(runtime) = self.runtime.as_ref() else { return Ok(None) };
        let url = self.url.expose().to_owned();
        let connected = runtime.block_on(async {
            tokio::time::timeout(self.op_timeout, tokio_postgres::connect(&url, NoTls)).await
        });
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => return Err(sink_error("postgres", "connecting", err)),
            Err(elapsed) => return Err(sink_error("postgres", "connecting", elapsed)),
        };
        runtime.spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(target: "rampart::audit", error = %err, "the audit PostgreSQL connection closed");
            }
        });
        self.client = Some(client);
        // What exists already is not created again, so a role allowed only
        // to write into existing tables can run the sink.
        let names = [
            self.table.schema.as_ref().map_or_else(|| "public".to_owned(), |s| format!("\"{s}\"")),
            self.table.quoted(""),
            self.table.quoted("_checkpoints"),
        ];
        let found: [bool; 3] = self.run("looking for the tables", |client| async move {
            let query = "SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL, \
                         to_regclass($3) IS NOT NULL";
            let result = client
                .query_one(query, &[&names[0], &names[1], &names[2]])
                .await
                .map(|row| [row.get(0), row.get(1), row.get(2)]);
            (client, result)
        })?;
        if found.contains(&false) {
            if self.tables_seen {
                return Err(sink_error(
                    "postgres",
                    "opening",
                    std::io::Error::other(format!(
                        "the table {} or its checkpoints table is gone; it is not made again \
                         (the chain would start over at seq 1): restore it",
                        self.table.quoted("")
                    )),
                ));
            }
            let migration = self.migration(found);
            self.run("creating the tables", |client| async move {
                let result = client.batch_execute(&migration).await;
                (client, result)
            })?;
        }
        self.tables_seen = true;
        let copy = format!(
            "COPY {} (seq, time, event_type, hash, record) FROM STDIN",
            self.table.quoted("")
        );
        let statement = self.run("preparing the copy", |client| async move {
            let result = client.prepare(&copy).await;
            (client, result)
        })?;
        self.copy = Some(statement);
        self.last_record()
    }

    fn append(&mut self, records: &[SealedRecord<'_>]) -> Result<(), Error> {
        let Some(statement) = self.copy.clone() else {
            return Err(sink_error("postgres", "writing", std::io::Error::other("not connected")));
        };
        let mut chunks = Vec::new();
        for rows in records.chunks(self.batch_size) {
            let mut data = Vec::with_capacity(rows.iter().map(|r| r.line.len() + 200).sum());
            for record in rows {
                data.extend_from_slice(record.seq.to_string().as_bytes());
                data.push(b'\t');
                copy_escape(&mut data, record.time().as_bytes());
                data.push(b'\t');
                copy_escape(&mut data, record.event_type().as_bytes());
                data.push(b'\t');
                data.extend_from_slice(&record.hash);
                data.push(b'\t');
                copy_escape(&mut data, &record.line);
                data.push(b'\n');
            }
            chunks.push(Bytes::from(data));
        }
        // One COPY statement is one transaction: the batch is stored whole or not at all.
        self.run("writing", |client| async move {
            let result = async {
                let sink = client.copy_in::<_, Bytes>(&statement).await?;
                futures_util::pin_mut!(sink);
                for chunk in chunks {
                    sink.send(chunk).await?;
                }
                sink.finish().await.map(drop)
            }
            .await;
            (client, result)
        })
    }

    fn sync(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn last_record(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let query =
            format!("SELECT record FROM {} ORDER BY seq DESC LIMIT 1", self.table.quoted(""));
        let row = self.run("reading", |client| async move {
            let result = client.query_opt(&query, &[]).await;
            (client, result)
        })?;
        Ok(row.map(|row| row.get::<_, String>(0).into_bytes()))
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let statement = format!(
            "INSERT INTO {} (seq, time, record) VALUES ($1, $2::text::timestamptz, $3)",
            self.table.quoted("_checkpoints")
        );
        let seq = i64::try_from(checkpoint.seq)
            .map_err(|err| sink_error("postgres", "checkpoint", err))?;
        let time = checkpoint.time.clone();
        let line = String::from_utf8_lossy(&checkpoint.line).into_owned();
        self.run("writing a checkpoint", |client| async move {
            let result = client.execute(&statement, &[&seq, &time, &line]).await.map(|_| ());
            (client, result)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(
            TableName::parse("audit.events").expect("ok").quoted("_checkpoints"),
            "\"audit\".\"events_checkpoints\""
        );
        assert_eq!(TableName::parse("events").expect("ok").quoted(""), "\"events\"");
        for bad in ["", "a.b.c", "1x", "x;drop table y", "x\"y", "a."] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_text_escapes_what_it_must() {
        let mut out = Vec::new();
        copy_escape(&mut out, b"a\\b\tc\nd\re");
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re");
    }
}
