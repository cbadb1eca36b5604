//! The PostgreSQL sink against the real server (RAMPART_TEST_DATABASE_URL).
//! Each test works in its own schema and drops it afterwards.
#![cfg(feature = "postgres")]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rampart::audit::sink::SyncPolicy;
use rampart::audit::sink::file::FileSink;
use rampart::audit::sink::postgres::PostgresSink;
use rampart::audit::verify::{FindingKind, Verdict, verify_paths};
use rampart::audit::{AuditEvent, AuditKey, Auditor, FailurePolicy};

fn key() -> AuditKey {
    AuditKey::new("k1", b"pg-key-pg-key-pg-key-pg-key-pg-key".to_vec()).expect("key")
}

/// Runs `f` on a connection to `url`.
fn sql<T>(url: &str, f: impl AsyncFnOnce(tokio_postgres::Client) -> T) -> T {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connects");
        tokio::spawn(connection);
        f(client).await
    })
}

/// Runs `statements` on a connection to `url`.
fn execute(url: &str, statements: &str) {
    let statements = statements.to_owned();
    sql(url, async move |client| {
        client.batch_execute(&statements).await.unwrap_or_else(|e| panic!("{statements}: {e}"));
    });
}

/// A schema of our own, dropped when the guard goes.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str) -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .subsec_nanos();
        Schema {
            url: url.to_owned(),
            name: format!("rampart_audit_{}_{nanos}", std::process::id()),
        }
    }

    fn table(&self) -> String {
        format!("{}.events", self.name)
    }

    fn sql<T>(&self, f: impl AsyncFnOnce(tokio_postgres::Client) -> T) -> T {
        sql(&self.url, f)
    }

    /// Exports the table and its checkpoints as files, as the docs show with psql.
    fn export(&self, dir: &Path) -> Verdict {
        let (records, checkpoints) = self.sql(async |client| {
            let column = |rows: Vec<tokio_postgres::Row>| {
                rows.iter().map(|r| format!("{}\n", r.get::<_, String>(0))).collect::<String>()
            };
            let records = client
                .query(&format!("SELECT record FROM {} ORDER BY seq", self.table()), &[])
                .await
                .expect("query");
            let cps = client
                .query(
                    &format!("SELECT record FROM {}_checkpoints ORDER BY seq", self.table()),
                    &[],
                )
                .await
                .expect("query");
            (column(records), column(cps))
        });
        std::fs::write(dir.join("export.jsonl"), records).expect("write");
        std::fs::write(dir.join("cps.jsonl"), checkpoints).expect("write");
        verify_paths(&key(), &[dir.join("export.jsonl")], Some(&dir.join("cps.jsonl")))
            .expect("verifies")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.sql(async move |client| {
            let _ =
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).await;
        });
    }
}

fn record_n(auditor: &Auditor, n: usize) {
    for i in 0..n {
        auditor
            .record_blocking(
                AuditEvent::new("db.write", "insert")
                    .actor("svc")
                    .detail("i", i)
                    .detail("quote", "a\\b\t\"c\""),
            )
            .expect("recorded");
    }
}

#[test]
fn records_land_in_postgres_chained_and_an_export_verifies() {
    let Some(url) = support::database_url() else { return };
    let schema = Schema::new(&url);
    let tmp = tempfile::tempdir().expect("tempdir");
    for round in 0..2 {
        let auditor = Auditor::builder(key())
            .sink(PostgresSink::new(url.clone(), &schema.table()).expect("sink").batch_size(7))
            .start()
            .expect("starts");
        record_n(&auditor, 25);
        // Concurrent callers share batches.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| record_n(&auditor, 10));
            }
        });
        auditor.shutdown(Duration::from_secs(10)).expect("stops");
        let verdict = schema.export(tmp.path());
        assert!(verdict.is_intact(), "round {round}: {verdict:?}");
        assert_eq!(verdict.records, 66 * (round + 1), "restart continues the chain");
        assert!(verdict.checkpoints_matched >= 1);
    }
    // A record changed in the database is found.
    schema.sql(async |client| {
        let changed = client
            .execute(
                &format!(
                    "UPDATE {} SET record = replace(record, '\"i\":3', '\"i\":4') WHERE seq = 5",
                    schema.table()
                ),
                &[],
            )
            .await
            .expect("update");
        assert_eq!(changed, 1);
    });
    let finding = schema.export(tmp.path()).finding.expect("found");
    assert_eq!((finding.kind, finding.line), (FindingKind::Altered, 5));
    // Deleting the newest rows is found through the checkpoints.
    schema.sql(async |client| {
        client
            .execute(&format!("DELETE FROM {} WHERE seq > 100", schema.table()), &[])
            .await
            .expect("delete");
        client
            .execute(
                &format!(
                    "UPDATE {} SET record = replace(record, '\"i\":4', '\"i\":3') WHERE seq = 5",
                    schema.table()
                ),
                &[],
            )
            .await
            .expect("restore");
    });
    let finding = schema.export(tmp.path()).finding.expect("found");
    assert_eq!(finding.kind, FindingKind::Truncated);
}

#[test]
fn file_and_postgres_sinks_run_side_by_side() {
    let Some(url) = support::database_url() else { return };
    let schema = Schema::new(&url);
    let tmp = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::builder(key())
        .sink(FileSink::new(tmp.path().join("files")).fsync(SyncPolicy::Always))
        .sink(PostgresSink::new(url, &schema.table()).expect("sink"))
        .start()
        .expect("starts");
    record_n(&auditor, 30);
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    let files = verify_paths(
        &key(),
        &[tmp.path().join("files")],
        Some(&tmp.path().join("files/audit.checkpoints.jsonl")),
    )
    .expect("verifies");
    assert_eq!((files.is_intact(), files.records), (true, 31));
    let db = schema.export(tmp.path());
    assert_eq!((db.is_intact(), db.records), (true, 31));
}

#[test]
fn an_unreachable_database_is_handled_by_the_policy_without_hanging() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let sink =
        || PostgresSink::new("postgres://postgres@127.0.0.1:9/none", "events").expect("sink");
    let began = Instant::now();
    let err = Auditor::builder(key())
        .sink(sink())
        .timeout(Duration::from_secs(1))
        .start()
        .expect_err("fail-closed");
    assert_eq!(err.code().as_str(), "AUDIT_UNAVAILABLE");
    let auditor = Auditor::builder(key())
        .sink(sink())
        .failure_policy(FailurePolicy::FailOpen)
        .timeout(Duration::from_secs(1))
        .start()
        .expect("fail-open starts");
    auditor.record_blocking(AuditEvent::new("x", "y")).expect("goes on");
    assert_eq!(auditor.stats().lost, 1);
    assert!(began.elapsed() < Duration::from_secs(5));
}

/// Whether `table` exists.
fn exists(schema: &Schema, table: &str) -> bool {
    let table = table.to_owned();
    schema.sql(async move |client| {
        let row =
            client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.expect("query");
        row.get::<_, bool>(0)
    })
}

/// Records `n` events; how many were confirmed.
fn confirmed(auditor: &Auditor, n: usize) -> usize {
    (0..n)
        .filter(|&i| {
            auditor.record_blocking(AuditEvent::new("db.write", "insert").detail("i", i)).is_ok()
        })
        .count()
}

#[test]
fn a_dropped_table_is_never_made_again_under_either_policy() {
    let Some(url) = support::database_url() else { return };
    for policy in [FailurePolicy::FailClosed, FailurePolicy::FailOpen] {
        let schema = Schema::new(&url);
        let auditor = Auditor::builder(key())
            .sink(PostgresSink::new(url.clone(), &schema.table()).expect("sink"))
            .failure_policy(policy)
            .timeout(Duration::from_secs(2))
            .start()
            .expect("starts");
        assert_eq!(confirmed(&auditor, 5), 5);
        execute(&url, &format!("DROP TABLE {}", schema.table()));
        let after = confirmed(&auditor, 5);
        auditor.shutdown(Duration::from_secs(10)).expect("stops");
        assert!(!exists(&schema, &schema.table()), "{policy:?}: the table was made again");
        match policy {
            FailurePolicy::FailClosed => assert_eq!(after, 0, "confirmed into a dropped table"),
            FailurePolicy::FailOpen => assert_eq!(after, 5),
        }
        assert_eq!(auditor.stats().written, 5, "{policy:?}");
        assert_eq!(auditor.stats().lost, 5, "{policy:?}");
    }
}

#[test]
fn a_table_made_again_empty_is_a_recorded_gap_under_fail_open() {
    let Some(url) = support::database_url() else { return };
    let schema = Schema::new(&url);
    let tmp = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::builder(key())
        .sink(PostgresSink::new(url.clone(), &schema.table()).expect("sink"))
        .failure_policy(FailurePolicy::FailOpen)
        .timeout(Duration::from_secs(2))
        .start()
        .expect("starts");
    assert_eq!(confirmed(&auditor, 5), 5);
    // Dropped: the writes fail (fail-open goes on, the events are lost).
    let table = schema.table();
    execute(&url, &format!("DROP TABLE {table}"));
    assert_eq!(confirmed(&auditor, 2), 2);
    assert_eq!(auditor.stats().lost, 2);
    // Then made again by hand, empty: the sink goes on from what it had
    // confirmed and records that the records before are lost.
    execute(
        &url,
        &format!(
            "CREATE TABLE {table} (seq bigint PRIMARY KEY, time timestamptz NOT NULL, \
             event_type text NOT NULL, hash text NOT NULL, record text NOT NULL)"
        ),
    );
    assert_eq!(confirmed(&auditor, 5), 5);
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    let verdict = schema.export(tmp.path());
    let finding = verdict.finding.expect("the loss is reported");
    assert_eq!((finding.kind, finding.line), (FindingKind::Lost, 1), "{finding}");
    assert!(finding.detail.contains("confirmed seq 6"), "{finding}");
}

/// Login roles of our own, dropped when the guard goes (after the schema).
struct Roles {
    url: String,
    names: Vec<String>,
}

impl Drop for Roles {
    fn drop(&mut self) {
        let names = self.names.clone();
        sql(&self.url, async move |client| {
            for name in names {
                let _ = client
                    .batch_execute(&format!(
                        "DROP OWNED BY \"{name}\" CASCADE; DROP ROLE IF EXISTS \"{name}\""
                    ))
                    .await;
            }
        });
    }
}

#[test]
fn the_sink_runs_as_a_writer_that_can_only_select_and_insert() {
    let Some(url) = support::database_url() else { return };
    let schema = Schema::new(&url);
    let owner = format!("{}_owner", schema.name);
    let writer = format!("{}_writer", schema.name);
    let _roles = Roles { url: url.clone(), names: vec![owner.clone(), writer.clone()] };
    let as_role = |role: &str| {
        let mut url = url::Url::parse(&url).expect("url");
        url.set_username(role).expect("user");
        url.to_string()
    };
    let name = &schema.name;
    execute(
        &url,
        &format!(
            "CREATE ROLE \"{owner}\" LOGIN; CREATE ROLE \"{writer}\" LOGIN; \
             CREATE SCHEMA \"{name}\" AUTHORIZATION \"{owner}\""
        ),
    );
    // The owner role creates the tables (its first start), then grants the writer
    // what it needs: USAGE on the schema, SELECT and INSERT on the two tables.
    let owner_url = as_role(&owner);
    let auditor = Auditor::builder(key())
        .sink(PostgresSink::new(owner_url.clone(), &schema.table()).expect("sink"))
        .start()
        .expect("the owner starts");
    auditor.shutdown(Duration::from_secs(10)).expect("stops");
    let table = schema.table();
    execute(
        &owner_url,
        &format!(
            "GRANT USAGE ON SCHEMA \"{name}\" TO \"{writer}\"; \
             GRANT SELECT, INSERT ON {table}, {table}_checkpoints TO \"{writer}\""
        ),
    );
    let writer_url = as_role(&writer);
    for _ in 0..2 {
        let auditor = Auditor::builder(key())
            .sink(PostgresSink::new(writer_url.clone(), &schema.table()).expect("sink"))
            .start()
            .expect("the writer starts");
        record_n(&auditor, 5);
        auditor.shutdown(Duration::from_secs(10)).expect("stops");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let verdict = schema.export(tmp.path());
    assert_eq!((verdict.is_intact(), verdict.records), (true, 13), "{verdict:?}");
    // And the writer cannot take back what it wrote.
    let table = schema.table();
    let refused = sql(&writer_url, async move |client| {
        let mut refused = Vec::new();
        for sql in [
            format!("DELETE FROM {table}"),
            format!("UPDATE {table} SET record = ''"),
            format!("TRUNCATE {table}_checkpoints"),
            format!("DROP TABLE {table}"),
        ] {
            refused.push(client.batch_execute(&sql).await.is_err());
        }
        refused
    });
    assert_eq!(refused, [true; 4]);
}
