//! Where sealed records go.
//!
//! Each sink keeps its own chain: the [`Auditor`](super::Auditor) seals
//! every event once per sink, from the head the sink reports when opened,
//! so each sink's records verify on their own and a sink that was down for
//! a while does not leave a hole in another's chain.
//!
//! Several sinks at once: every event goes to every sink, and counts as
//! written once one of them has it.
//!
//! ```no_run
//! use std::time::Duration;
//! use rampart::audit::{AuditKey, Auditor};
//! use rampart::audit::sink::{file::FileSink, SyncPolicy};
//!
//! let key = AuditKey::new("k1", b"a key of at least thirty-two bytes!!".to_vec())?;
//! let auditor = Auditor::builder(key)
//!     .sink(FileSink::new("/var/log/myapp/audit").fsync(SyncPolicy::Always))
//!     .sink(FileSink::new("/mnt/replica/audit").fsync(SyncPolicy::Every(Duration::from_millis(10))))
//!     .start()?;
//! # Ok::<(), rampart::Error>(())
//! ```

use std::time::Duration;

use super::chain::{Checkpoint, SealedRecord};
use crate::error::Error;

pub mod file;
#[cfg(feature = "postgres")]
pub mod postgres;

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every batch, before callers are told it was written.
    Always,
    /// At most this long after a write (callers are told once it is written).
    Every(Duration),
    /// Left to the operating system.
    Never,
}

/// A store for audit records. Implementations are driven by one thread
/// each, so they need not be `Sync`.
///
/// The worker calls [`open`](Sink::open) first and again after any error,
/// so a sink returns to a consistent state by re-reading what it holds. A
/// re-open that returns a record older than the last one the sink
/// confirmed is a loss: refused under fail-closed, recorded as an
/// `audit.gap` record under fail-open. So a sink must never hand back
/// storage it silently made anew: fail instead (the PostgreSQL sink does
/// not create its table again; the file sink fails a write whose file is
/// no longer at its path).
pub trait Sink: Send + 'static {
    /// A short name for logs and metrics (`file`, `postgres`).
    fn name(&self) -> &str;

    /// When appended records are made durable.
    fn sync_policy(&self) -> SyncPolicy {
        SyncPolicy::Always
    }

    /// Prepares the sink (creating what is missing, repairing a torn tail)
    /// and returns its last record line, from which the chain continues.
    fn open(&mut self) -> Result<Option<Vec<u8>>, Error>;

    /// Appends records, all or none: on error nothing of the batch may remain.
    fn append(&mut self, records: &[SealedRecord<'_>]) -> Result<(), Error>;

    /// Makes what was appended durable, before returning.
    fn sync(&mut self) -> Result<(), Error>;

    /// Starts making what was appended durable, without holding up the next
    /// append (the timed fsync policy calls this). A failure may be
    /// reported by a later call. By default, [`sync`](Sink::sync).
    fn sync_soon(&mut self) -> Result<(), Error> {
        self.sync()
    }

    /// Reads the last record back (the start-up self-test compares it with
    /// what was written).
    fn last_record(&mut self) -> Result<Option<Vec<u8>>, Error>;

    /// Stores a checkpoint, durably, apart from the records.
    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Error>;
}

/// An I/O failure of a sink, as an [`Error`] of kind unavailable.
pub(crate) fn sink_error(sink: &str, what: &str, err: impl Into<crate::error::BoxError>) -> Error {
    Error::unavailable("The audit trail is unavailable")
        .with_code(crate::error::code::AUDIT_UNAVAILABLE)
        .with_source(err)
        .context(format!("audit sink {sink}: {what}"))
}
