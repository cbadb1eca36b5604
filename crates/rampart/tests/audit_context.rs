//! Audit context: what reaches an event, across `.await`, nested scopes,
//! threads and spawned tasks.
#![cfg(feature = "audit")]

mod support;

use std::time::Duration;

use rampart::audit::{self, AuditContext, AuditEvent, AuditKey};

fn ctx(pairs: &[(&str, &str)]) -> AuditContext {
    pairs.iter().fold(AuditContext::new(), |c, (k, v)| c.with(*k, *v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_reaches_events_across_awaits_and_only_chosen_spawns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = AuditKey::new("k1", vec![5; 32]).expect("key");
    let auditor = support::synced_file_auditor(dir.path(), key);

    let a = auditor.clone();
    audit::scope(ctx(&[("request_id", "r-1"), ("tenant", "outer")]), async move {
        tokio::time::sleep(Duration::from_millis(5)).await; // across an await, maybe another thread
        a.record(AuditEvent::new("t", "after-await")).await.expect("recorded");
        audit::scope(ctx(&[("tenant", "inner"), ("user", "alice")]), async {
            a.record(AuditEvent::new("t", "nested")).await.expect("recorded");
        })
        .await;
        let plain = a.clone();
        tokio::spawn(async move { plain.record(AuditEvent::new("t", "plain-spawn")).await })
            .await
            .expect("joins")
            .expect("recorded");
        let carried = a.clone();
        tokio::spawn(audit::in_current_scope(async move {
            carried.record(AuditEvent::new("t", "carried-spawn")).await
        }))
        .await
        .expect("joins")
        .expect("recorded");
        let blocking = a.clone();
        let captured = audit::current();
        tokio::task::spawn_blocking(move || {
            audit::scope_sync(captured, || {
                audit::scope_sync(ctx(&[("step", "2")]), || {
                    blocking.record_blocking(AuditEvent::new("t", "blocking"))
                })
            })
        })
        .await
        .expect("joins")
        .expect("recorded");
    })
    .await;
    auditor.record(AuditEvent::new("t", "outside")).await.expect("recorded");
    auditor.shutdown(Duration::from_secs(5)).expect("stops");

    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("read");
    let by_action: std::collections::HashMap<String, serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .map(|v| (v["action"].as_str().expect("action").to_owned(), v["context"].clone()))
        .collect();
    let expect = |action: &str, context: serde_json::Value| {
        assert_eq!(by_action[action], context, "{action}");
    };
    expect("after-await", serde_json::json!({"request_id": "r-1", "tenant": "outer"}));
    expect("nested", serde_json::json!({"request_id": "r-1", "tenant": "inner", "user": "alice"}));
    expect("plain-spawn", serde_json::json!({}));
    expect("carried-spawn", serde_json::json!({"request_id": "r-1", "tenant": "outer"}));
    expect("blocking", serde_json::json!({"request_id": "r-1", "step": "2", "tenant": "outer"}));
    expect("outside", serde_json::json!({}));
}

#[test]
fn sync_scopes_nest_and_unwind_even_on_panic() {
    audit::scope_sync(ctx(&[("a", "1")]), || {
        let caught = std::panic::catch_unwind(|| {
            audit::scope_sync(ctx(&[("b", "2")]), || panic!("inside"));
        });
        assert!(caught.is_err());
        assert_eq!(audit::current(), ctx(&[("a", "1")]), "the inner scope is gone");
    });
    assert!(audit::current().is_empty());
    // A thread starts with nothing.
    audit::scope_sync(ctx(&[("a", "1")]), || {
        assert!(std::thread::spawn(audit::current).join().expect("joins").is_empty());
    });
}
