//! The auditor: what callers use. Events are sealed and queued here, each
//! caller waits (up to the timeout) for its event to be written, and the
//! failure policy decides what a loss means; the threads that write live in
//! [`delivery`](super::delivery).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::context;
use super::delivery::{self, Ack, Job, Pending, Stats, refuse_rest};
use super::event::AuditEvent;
use super::key::AuditKey;
use super::sink::Sink;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, code};

/// What happens to the operation being audited when its event cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// The operation fails with an `Unavailable` error (`AUDIT_UNAVAILABLE`):
    /// no audit, no service.
    #[default]
    FailClosed,
    /// The operation goes on; the loss is counted and logged every time.
    FailOpen,
}

/// Counters since start (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Events written by at least one sink.
    pub written: u64,
    /// Events that no sink holds: the queue stayed full, or every sink failed.
    pub lost: u64,
    /// Events whose caller stopped waiting before a sink confirmed them
    /// (they may still be written).
    pub unconfirmed: u64,
    /// Failed sink operations (writes, syncs, checkpoints, opens).
    pub sink_errors: u64,
}

/// Records audit events through a bounded queue into one or more sinks.
/// Cheap to clone; see the [module documentation](super).
#[derive(Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

struct Shared {
    key: AuditKey,
    clock: Arc<dyn Clock>,
    policy: FailurePolicy,
    timeout: Duration,
    tx: flume::Sender<Job>,
    /// Kept to refuse what is queued after a shutdown.
    rx: flume::Receiver<Job>,
    closed: AtomicBool,
    stats: Arc<Stats>,
    done: Mutex<Vec<flume::Receiver<()>>>,
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("key", &self.shared.key)
            .field("policy", &self.shared.policy)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Why an event did not make it.
#[derive(Debug, Clone, Copy)]
enum Failure {
    QueueFull,
    Closed,
    NoSink,
    Unconfirmed,
}

impl Failure {
    fn describe(self) -> &'static str {
        match self {
            Failure::QueueFull => "the audit queue stayed full for the whole timeout",
            Failure::Closed => "the auditor is shut down",
            Failure::NoSink => "no audit sink could write the event",
            Failure::Unconfirmed => "no audit sink confirmed the event within the timeout",
        }
    }
}

/// Sets up an [`Auditor`].
pub struct AuditorBuilder {
    key: AuditKey,
    sinks: Vec<Box<dyn Sink>>,
    queue_capacity: usize,
    timeout: Duration,
    policy: FailurePolicy,
    checkpoint_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for AuditorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditorBuilder")
            .field("key", &self.key)
            .field("sinks", &self.sinks.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>())
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .finish_non_exhaustive()
    }
}

impl AuditorBuilder {
    /// Adds a sink. Every event goes to every sink; it counts as written
    /// once one of them has it.
    #[must_use]
    pub fn sink(mut self, sink: impl Sink) -> AuditorBuilder {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Adds a boxed sink.
    #[must_use]
    pub fn boxed_sink(mut self, sink: Box<dyn Sink>) -> AuditorBuilder {
        self.sinks.push(sink);
        self
    }

    /// How many events may wait in the queue (default 8192).
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> AuditorBuilder {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// How long a caller waits, in all, for room in the queue and for a
    /// sink to confirm its event (default 2 s). Never forever.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> AuditorBuilder {
        self.timeout = timeout;
        self
    }

    /// What happens when an event cannot be written (default fail closed).
    #[must_use]
    pub fn failure_policy(mut self, policy: FailurePolicy) -> AuditorBuilder {
        self.policy = policy;
        self
    }

    /// How often each sink writes a checkpoint when it has new records
    /// (default 10 s; also on shutdown).
    #[must_use]
    pub fn checkpoint_interval(mut self, interval: Duration) -> AuditorBuilder {
        self.checkpoint_interval = interval;
        self
    }

    /// The clock for event and checkpoint times.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> AuditorBuilder {
        self.clock = Arc::new(clock);
        self
    }

    /// Opens every sink, resumes its chain from its last record, runs the
    /// start-up self-test (an `audit.started` record written, synced and
    /// read back), and starts delivery.
    ///
    /// Fails under [`FailurePolicy::FailClosed`] when no sink passes the
    /// self-test within the timeout; under fail-open it logs the failure
    /// and starts anyway (the sinks keep retrying).
    pub fn start(self) -> Result<Auditor, Error> {
        if self.sinks.is_empty() {
            return Err(Error::configuration("audit", "no sink is configured"));
        }
        let stats = Arc::new(Stats::default());
        let (tx, rx) = flume::bounded(self.queue_capacity);
        let settings = delivery::Settings {
            key: self.key.clone(),
            clock: Arc::clone(&self.clock),
            policy: self.policy,
            timeout: self.timeout,
            checkpoint_interval: self.checkpoint_interval,
        };
        let done = delivery::start(self.sinks, &rx, &stats, &settings)?;
        Ok(Auditor {
            shared: Arc::new(Shared {
                key: self.key,
                clock: self.clock,
                policy: self.policy,
                timeout: self.timeout,
                tx,
                rx,
                closed: AtomicBool::new(false),
                stats,
                done: Mutex::new(done),
            }),
        })
    }
}

/// The error of every failed audit: `Unavailable`, code `AUDIT_UNAVAILABLE`.
pub(super) fn unavailable() -> Error {
    Error::unavailable("The audit trail is unavailable").with_code(code::AUDIT_UNAVAILABLE)
}

impl Auditor {
    /// Starts setting up an auditor sealing with `key`.
    pub fn builder(key: AuditKey) -> AuditorBuilder {
        AuditorBuilder {
            key,
            sinks: Vec::new(),
            queue_capacity: 8192,
            timeout: Duration::from_secs(2),
            policy: FailurePolicy::FailClosed,
            checkpoint_interval: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }

    /// Records `event` (with the current [context](super::AuditContext) merged
    /// in) and waits until a sink has written it, or the timeout passes.
    ///
    /// `Ok(())` means written, or (fail-open) lost, counted and logged.
    /// `Err` (fail-closed) is an `Unavailable` error with code
    /// `AUDIT_UNAVAILABLE`: the audited operation should not go on.
    ///
    /// Runs on a tokio runtime with its timer enabled (`enable_time` or
    /// `enable_all`, as `#[tokio::main]` does).
    pub async fn record(&self, event: AuditEvent) -> Result<(), Error> {
        let started = Instant::now();
        let (ack_tx, mut ack) = tokio::sync::oneshot::channel();
        let job = self.job(event, Some(Ack::Async(ack_tx)));
        if self.shared.closed.load(Ordering::Acquire) {
            return self.settle(Err(Failure::Closed), started);
        }
        // One timer for both waits: for room, then for the write.
        let waited = tokio::time::timeout(self.shared.timeout, async {
            match self.shared.tx.try_send(job) {
                Ok(()) => {}
                Err(flume::TrySendError::Disconnected(_)) => return Err(Failure::Closed),
                Err(flume::TrySendError::Full(job)) => {
                    self.shared.tx.send_async(job).await.map_err(|_| Failure::Closed)?;
                }
            }
            match (&mut ack).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Failure::NoSink),
                // Dropped unanswered: the queue closed under it, uncounted so far.
                Err(_) => Err(Failure::Closed),
            }
        })
        .await;
        let outcome = match waited {
            Ok(outcome) => outcome,
            // The wait ended, and with it any send still pending (its job dropped).
            // A job the queue took may have been taken just before: it lives
            // on while its answer can still come, so it is unconfirmed, not lost.
            Err(_) => match ack.try_recv() {
                Ok(true) => Ok(()),
                Ok(false) => Err(Failure::NoSink),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => Err(Failure::Unconfirmed),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Err(Failure::QueueFull),
            },
        };
        self.settle(outcome, started)
    }

    /// [`record`](Auditor::record) for synchronous code: blocks this
    /// thread (never call it on an async runtime's thread).
    pub fn record_blocking(&self, event: AuditEvent) -> Result<(), Error> {
        let started = Instant::now();
        let (ack_tx, ack) = std::sync::mpsc::sync_channel(1);
        let job = self.job(event, Some(Ack::Blocking(ack_tx)));
        let timeout = self.shared.timeout;
        if self.shared.closed.load(Ordering::Acquire) {
            return self.settle(Err(Failure::Closed), started);
        }
        let outcome = match self.shared.tx.send_timeout(job, timeout) {
            Err(flume::SendTimeoutError::Timeout(_)) => Err(Failure::QueueFull),
            Err(flume::SendTimeoutError::Disconnected(_)) => Err(Failure::Closed),
            Ok(()) => match ack.recv_timeout(timeout.saturating_sub(started.elapsed())) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Failure::NoSink),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Failure::Closed),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Failure::Unconfirmed),
            },
        };
        self.settle(outcome, started)
    }

    /// Queues `event` without waiting for room or for the write: for events
    /// raised where waiting is not possible (the monitor's alerts). A full
    /// queue is handled by the failure policy at once; a later write failure
    /// is counted and logged by the sinks' side.
    pub fn submit(&self, event: AuditEvent) -> Result<(), Error> {
        let started = Instant::now();
        let job = self.job(event, None);
        if self.shared.closed.load(Ordering::Acquire) {
            return self.settle(Err(Failure::Closed), started);
        }
        let outcome = match self.shared.tx.try_send(job) {
            Ok(()) => return Ok(()),
            Err(flume::TrySendError::Full(_)) => Err(Failure::QueueFull),
            Err(flume::TrySendError::Disconnected(_)) => Err(Failure::Closed),
        };
        self.settle(outcome, started)
    }

    /// `hmac-sha256:<hex>` of `value`, as [`AuditEvent::sensitive_detail`]
    /// stores it: to find the events about a known secret.
    pub fn hash_detail(&self, value: &str) -> String {
        self.shared.key.hash_detail(value.as_bytes())
    }

    /// Counters since start.
    pub fn stats(&self) -> AuditStats {
        let s = &self.shared.stats;
        AuditStats {
            written: s.written.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            unconfirmed: s.unconfirmed.load(Ordering::Relaxed),
            sink_errors: s.sink_errors.load(Ordering::Relaxed),
        }
    }

    /// Events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.shared.tx.len()
    }

    /// Writes what is queued, syncs, writes a final checkpoint per sink and
    /// stops, waiting at most `timeout`. Events recorded afterwards fail
    /// (or, fail-open, are counted lost).
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        // Ignored: a disconnected queue means it is already stopping.
        let _ = self.shared.tx.send_timeout(Job::Close, timeout);
        let done = std::mem::take(&mut *self.shared.done.lock().unwrap_or_else(|p| p.into_inner()));
        let mut result = Ok(());
        for rx in done {
            if let Err(flume::RecvTimeoutError::Timeout) =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                result = Err(unavailable().context("an audit sink did not stop in time"));
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        refuse_rest(&self.shared.rx, &self.shared.stats);
        result
    }

    fn job(&self, event: AuditEvent, ack: Option<Ack>) -> Job {
        let scope = context::current().into_map();
        let prepared =
            event.into_prepared(&self.shared.key, self.shared.clock.system_time(), &scope);
        Job::Event(Pending { event: prepared, ack })
    }

    fn settle(&self, outcome: Result<(), Failure>, started: Instant) -> Result<(), Error> {
        metrics::histogram!("rampart_audit_wait_seconds").record(started.elapsed().as_secs_f64());
        let Err(failure) = outcome else { return Ok(()) };
        let stats = &self.shared.stats;
        match failure {
            Failure::QueueFull | Failure::Closed => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
                let reason =
                    if matches!(failure, Failure::QueueFull) { "queue_full" } else { "closed" };
                metrics::counter!("rampart_audit_lost_total", "reason" => reason).increment(1);
            }
            // Counted where it happened (the sinks' side).
            Failure::NoSink => {}
            Failure::Unconfirmed => {
                stats.unconfirmed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_audit_unconfirmed_total").increment(1);
            }
        }
        match self.shared.policy {
            FailurePolicy::FailClosed => {
                tracing::error!(target: "rampart::audit", policy = "fail_closed", reason = failure.describe(),
                    "an audit event could not be recorded; the operation is refused");
                Err(unavailable().context(failure.describe()))
            }
            FailurePolicy::FailOpen => {
                tracing::error!(target: "rampart::audit", policy = "fail_open", reason = failure.describe(),
                    "an audit event could not be recorded; the operation goes on without it");
                Ok(())
            }
        }
    }
}
