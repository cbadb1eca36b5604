//! A tamper-evident, loss-free audit trail.
//!
//! An [`AuditEvent`] recorded through an [`Auditor`] is sealed into a hash
//! chain ([`chain`]: `seq`, `prev`, `key_id`, `hash = HMAC-SHA256(key, prev
//! || canonical record)`) and written by every configured [`Sink`](sink::Sink): JSON
//! lines files ([`sink::file`]) and PostgreSQL ([`sink::postgres`], feature
//! `postgres`). Each sink writes periodic signed checkpoints elsewhere, so a
//! cut-off tail is detected by [`verify`] (and `rampart audit verify`).
//!
//! Delivery goes through a bounded queue. A caller waits for room and for a
//! sink to confirm its event, up to a timeout, never forever; then the
//! [`FailurePolicy`] decides: fail closed (the operation fails with
//! `AUDIT_UNAVAILABLE`) or fail open (it goes on; the loss is counted and
//! logged). Nothing is dropped without a count and a log line.
//!
//! Confirmed means kept: a sink that finds, on re-opening, fewer records
//! than it had confirmed (a removed directory, a replaced file, a dropped
//! table) refuses to go on under fail-closed, and under fail-open goes on
//! after an `audit.gap` record that [`verify`] reports as lost.
//!
//! Values merged into every event come from the [`AuditContext`] of the
//! scope ([`scope`], [`scope_sync`]).
//! Sensitive values are stored only as an HMAC
//! ([`AuditEvent::sensitive_detail`]).
//!
//! ```
//! use rampart::audit::{self, AuditContext, AuditEvent, AuditKey, Auditor, Outcome};
//! use rampart::audit::sink::{file::FileSink, SyncPolicy};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let key = AuditKey::new("k1", b"a key of at least thirty-two bytes!!".to_vec()).unwrap();
//! let auditor = Auditor::builder(key.clone())
//!     .sink(FileSink::new(dir.path()).fsync(SyncPolicy::Always))
//!     .start()
//!     .unwrap();
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! audit::scope(AuditContext::new().with("request_id", "r-1"), async {
//!     auditor
//!         .record(AuditEvent::new("order.delete", "delete").actor("alice").resource("order/7"))
//!         .await
//! })
//! .await
//! .unwrap();
//! # });
//! auditor.shutdown(std::time::Duration::from_secs(5)).unwrap();
//!
//! // The start-up self-test record, then ours; and a checkpoint vouching for both.
//! let verdict = audit::verify::verify_paths(
//!     &key,
//!     &[dir.path().to_path_buf()],
//!     Some(&dir.path().join("audit.checkpoints.jsonl")),
//! )
//! .unwrap();
//! assert!(verdict.is_intact());
//! assert_eq!(verdict.records, 2);
//! ```

mod auditor;
pub mod chain;
mod config;
mod context;
mod delivery;
mod event;
mod key;
pub mod sink;
pub mod verify;

pub use auditor::{AuditStats, Auditor, AuditorBuilder, FailurePolicy};
pub use config::AuditConfig;
pub use context::{AuditContext, current, in_current_scope, scope, scope_sync};
pub use event::{AuditEvent, Outcome};
pub use key::{AuditKey, MIN_KEY_LEN};
