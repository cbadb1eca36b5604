//! Delivery: the bounded queue, the sink workers, the failure policy.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::chain::{Chain, ChainHead, GAP_EVENT_TYPE};
use super::context;
use super::event::{AuditEvent, Outcome, PreparedEvent};
use super::key::AuditKey;
use super::sink::{Sink, SyncPolicy};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Severity, code};

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

/// Events at most in one batch handed to the sinks.
const MAX_BATCH: usize = 4096;
/// A batch at least this large means load: the next one waits [`LINGER`] to fill.
const LINGER_AFTER: usize = 4;
const LINGER: Duration = Duration::from_micros(50);
/// Batches waiting for one sink before it is treated as stalled.
const SINK_QUEUE: usize = 16;

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

#[derive(Debug, Default)]
struct Stats {
    written: AtomicU64,
    lost: AtomicU64,
    unconfirmed: AtomicU64,
    sink_errors: AtomicU64,
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

enum Job {
    Event(Pending),
    Close,
}

struct Pending {
    event: PreparedEvent,
    ack: Option<Ack>,
}

/// Where a waiting caller learns whether its event was written.
enum Ack {
    Async(tokio::sync::oneshot::Sender<bool>),
    Blocking(std::sync::mpsc::SyncSender<bool>),
}

impl Ack {
    fn send(self, written: bool) {
        // A caller that gave up waiting has dropped its end: nothing to tell.
        let _ = match self {
            Ack::Async(tx) => tx.send(written).map_err(drop),
            Ack::Blocking(tx) => tx.try_send(written).map_err(drop),
        };
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
        // One sink reads the queue itself; several are fed by a dispatcher
        // thread, so a stalled one cannot hold up the others.
        let direct = self.sinks.len() == 1;
        let mut workers = Vec::new();
        let mut ready = Vec::new();
        let mut done = Vec::new();
        for sink in self.sinks {
            let name = sink.name().to_owned();
            let (ready_tx, ready_rx) = flume::bounded(1);
            let (done_tx, done_rx) = flume::bounded(1);
            let source = if direct {
                Source::Direct {
                    rx: rx.clone(),
                    stats: Arc::clone(&stats),
                    closing: false,
                    last_batch: 0,
                }
            } else {
                let (stx, srx) = flume::bounded(SINK_QUEUE);
                workers.push(SinkHandle { name: name.clone(), tx: stx, stalled: false });
                Source::Fanout(srx)
            };
            let worker = Worker {
                sink,
                key: self.key.clone(),
                clock: Arc::clone(&self.clock),
                stats: Arc::clone(&stats),
                checkpoint_interval: self.checkpoint_interval,
                policy: self.policy,
                chain: None,
                confirmed: None,
                unsynced_since: None,
                checkpointed: 0,
                last_checkpoint: Instant::now(),
            };
            thread::Builder::new()
                .name(format!("rampart-audit-{name}"))
                .spawn(move || worker.run(source, &ready_tx, &done_tx))
                .map_err(|err| Error::internal(err).context("starting an audit sink thread"))?;
            ready.push((name, ready_rx));
            done.push(done_rx);
        }
        let deadline = Instant::now() + self.timeout;
        let mut passed = 0;
        for (name, ready_rx) in ready {
            let wait = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(wait) {
                Ok(None) => passed += 1,
                Ok(Some(err)) => {
                    tracing::error!(target: "rampart::audit", sink = %name, error = ?err, "audit sink failed its start-up self-test");
                }
                Err(_) => {
                    tracing::error!(target: "rampart::audit", sink = %name, "audit sink did not finish its start-up self-test in time");
                }
            }
        }
        if passed == 0 && self.policy == FailurePolicy::FailClosed {
            // Dropping the senders stops the workers.
            return Err(unavailable().context("no audit sink passed the start-up self-test"));
        }
        if passed == 0 {
            tracing::error!(target: "rampart::audit", "no audit sink passed the start-up self-test; starting anyway (fail_open): events will be lost until a sink recovers");
        }
        if !direct {
            let dispatcher = Dispatcher {
                rx: rx.clone(),
                sinks: workers,
                stats: Arc::clone(&stats),
                wait: self.timeout,
            };
            thread::Builder::new()
                .name("rampart-audit".into())
                .spawn(move || dispatcher.run())
                .map_err(|err| Error::internal(err).context("starting the audit thread"))?;
        }
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

fn unavailable() -> Error {
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

    /// Records `event` (with the current [context](super::context) merged
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

/// A batch of events on its way to every sink.
struct Batch {
    events: Vec<PreparedEvent>,
    acks: Mutex<Vec<Ack>>,
    pending: AtomicUsize,
    written: AtomicBool,
    stats: Arc<Stats>,
}

impl Batch {
    /// One sink is done with the batch. The first success confirms it to
    /// the callers; if the last sink to finish found no success, it is lost.
    fn finish(&self, ok: bool) {
        let n = self.events.len() as u64;
        if ok && !self.written.swap(true, Ordering::AcqRel) {
            self.stats.written.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("rampart_audit_events_total").increment(n);
            for ack in self.take_acks() {
                ack.send(true);
            }
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 && !self.written.load(Ordering::Acquire)
        {
            self.stats.lost.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("rampart_audit_lost_total", "reason" => "no_sink").increment(n);
            tracing::error!(target: "rampart::audit", events = n, "no audit sink could write a batch of events; they are lost");
            for ack in self.take_acks() {
                ack.send(false);
            }
        }
    }

    fn take_acks(&self) -> Vec<Ack> {
        std::mem::take(&mut *self.acks.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

enum SinkJob {
    Batch(Arc<Batch>),
    Close,
}

/// Takes `first` and whatever else is queued (up to a batch) off the queue.
/// Returns the batch, if it holds events, and whether a close was asked for.
fn gather(
    first: Job,
    rx: &flume::Receiver<Job>,
    stats: &Arc<Stats>,
    sinks: usize,
) -> (Option<Batch>, bool) {
    let mut closing = false;
    let mut events = Vec::new();
    let mut acks = Vec::new();
    for job in std::iter::once(first).chain(rx.try_iter().take(MAX_BATCH - 1)) {
        match job {
            Job::Event(pending) => {
                events.push(pending.event);
                acks.extend(pending.ack);
            }
            Job::Close => closing = true,
        }
    }
    metrics::gauge!("rampart_audit_queue_depth").set(rx.len() as f64);
    let batch = (!events.is_empty()).then(|| Batch {
        events,
        acks: Mutex::new(acks),
        pending: AtomicUsize::new(sinks),
        written: AtomicBool::new(false),
        stats: Arc::clone(stats),
    });
    (batch, closing)
}

/// Where a sink worker gets its batches.
enum Source {
    /// Straight from the queue (the only sink).
    Direct { rx: flume::Receiver<Job>, stats: Arc<Stats>, closing: bool, last_batch: usize },
    /// From the dispatcher (one of several sinks).
    Fanout(flume::Receiver<SinkJob>),
}

impl Source {
    /// The next job, or `None` if `deadline` passed first.
    fn next(&mut self, deadline: Option<Instant>) -> Option<SinkJob> {
        match self {
            Source::Fanout(rx) => receive(rx, deadline),
            Source::Direct { closing: true, .. } => Some(SinkJob::Close),
            Source::Direct { rx, stats, closing, last_batch } => {
                let first = receive(rx, deadline)?;
                // Group commit: under load, give the callers just woken by the
                // last batch a moment to queue their next events, so one write
                // carries many instead of a trickle of small ones.
                if *last_batch >= LINGER_AFTER && rx.len() * 2 < *last_batch {
                    thread::sleep(LINGER);
                }
                let (batch, close) = gather(first, rx, stats, 1);
                *closing = close;
                *last_batch = batch.as_ref().map_or(0, |b| b.events.len());
                Some(batch.map_or(SinkJob::Close, |b| SinkJob::Batch(Arc::new(b))))
            }
        }
    }
}

/// After a close: counts and refuses what is still queued, so no caller
/// is left without an answer and no event goes uncounted.
fn refuse_rest(rx: &flume::Receiver<Job>, stats: &Stats) {
    for job in rx.drain() {
        if let Job::Event(pending) = job {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("rampart_audit_lost_total", "reason" => "closed").increment(1);
            if let Some(ack) = pending.ack {
                ack.send(false);
            }
        }
    }
}

/// A message, or `None` at the deadline; a closed channel reads as `Close`.
fn receive<T: Closing>(rx: &flume::Receiver<T>, deadline: Option<Instant>) -> Option<T> {
    match deadline {
        Some(at) => match rx.recv_deadline(at) {
            Ok(job) => Some(job),
            Err(flume::RecvTimeoutError::Timeout) => None,
            Err(flume::RecvTimeoutError::Disconnected) => Some(T::CLOSE),
        },
        None => Some(rx.recv().unwrap_or(T::CLOSE)),
    }
}

trait Closing {
    const CLOSE: Self;
}

impl Closing for Job {
    const CLOSE: Job = Job::Close;
}

impl Closing for SinkJob {
    const CLOSE: SinkJob = SinkJob::Close;
}

struct SinkHandle {
    name: String,
    tx: flume::Sender<SinkJob>,
    /// Did not take a batch within the timeout: offered batches without
    /// waiting until it catches up, so it cannot hold up the others.
    stalled: bool,
}

struct Dispatcher {
    rx: flume::Receiver<Job>,
    sinks: Vec<SinkHandle>,
    stats: Arc<Stats>,
    wait: Duration,
}

impl Dispatcher {
    fn run(mut self) {
        let mut closing = false;
        while !closing {
            let Ok(first) = self.rx.recv() else { break };
            let (batch, close) = gather(first, &self.rx, &self.stats, self.sinks.len());
            closing = close;
            if let Some(batch) = batch {
                self.dispatch(batch);
            }
        }
        refuse_rest(&self.rx, &self.stats);
        for sink in &self.sinks {
            let _ = sink.tx.send_timeout(SinkJob::Close, self.wait);
        }
    }

    fn dispatch(&mut self, batch: Batch) {
        let batch = Arc::new(batch);
        for sink in &mut self.sinks {
            let job = SinkJob::Batch(Arc::clone(&batch));
            let sent = if sink.stalled {
                sink.tx.try_send(job).map_err(|_| ())
            } else {
                sink.tx.send_timeout(job, self.wait).map_err(|_| ())
            };
            match sent {
                Ok(()) => sink.stalled = false,
                Err(()) => {
                    if !sink.stalled {
                        tracing::error!(target: "rampart::audit", sink = %sink.name, "audit sink is stalled; it misses events until it catches up");
                    }
                    sink.stalled = true;
                    self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("rampart_audit_sink_errors_total", "sink" => sink.name.clone()).increment(1);
                    batch.finish(false);
                }
            }
        }
    }
}

struct Worker {
    sink: Box<dyn Sink>,
    key: AuditKey,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    checkpoint_interval: Duration,
    policy: FailurePolicy,
    /// `None` until opened, and again after an error (the sink is re-opened).
    chain: Option<Chain>,
    /// The newest record known to be in the sink's storage (read back when
    /// opened, or confirmed since): a re-open must find the storage at least
    /// this far, or confirmed records were lost.
    confirmed: Option<ChainHead>,
    unsynced_since: Option<Instant>,
    checkpointed: u64,
    last_checkpoint: Instant,
}

impl Worker {
    fn run(
        mut self,
        mut source: Source,
        ready: &flume::Sender<Option<Error>>,
        done: &flume::Sender<()>,
    ) {
        let started = self.open().and_then(|()| self.self_test());
        let _ = ready.send(started.err());
        loop {
            match source.next(self.next_deadline()) {
                Some(SinkJob::Batch(batch)) => {
                    let ok = self.write(&batch);
                    batch.finish(ok);
                }
                Some(SinkJob::Close) => {
                    self.sync_if_needed(true);
                    self.checkpoint_if_due(true);
                    if let Source::Direct { rx, .. } = &source {
                        refuse_rest(rx, &self.stats);
                    }
                    break;
                }
                None => {}
            }
            self.sync_if_needed(false);
            self.checkpoint_if_due(false);
        }
        let _ = done.send(());
    }

    fn name(&self) -> String {
        self.sink.name().to_owned()
    }

    fn failed(&mut self, what: &str, err: &Error) {
        self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("rampart_audit_sink_errors_total", "sink" => self.name()).increment(1);
        metrics::gauge!("rampart_audit_sink_up", "sink" => self.name()).set(0.0);
        tracing::error!(target: "rampart::audit", sink = %self.sink.name(), error = ?err, "audit sink failed {what}");
        self.chain = None;
    }

    fn open(&mut self) -> Result<(), Error> {
        let opened = self.sink.open().and_then(|last| match last {
            None => Ok(ChainHead::empty()),
            Some(line) => ChainHead::from_record(&self.key, &line).ok_or_else(|| {
                unavailable().context(
                    "the sink's last record does not verify with the audit key: it was altered, or written with another key; refusing to extend it",
                )
            }),
        });
        let head = match opened {
            Ok(head) => head,
            Err(err) => {
                self.failed("to open", &err);
                return Err(err);
            }
        };
        if let Some(confirmed) = self.confirmed.clone().filter(|c| is_behind(&head, c)) {
            return self.lost_records(&head, &confirmed);
        }
        if self.checkpointed == 0 {
            self.checkpointed = head.seq;
        }
        self.chain = Some(Chain::new(self.key.clone(), &head));
        self.confirmed = Some(head);
        metrics::gauge!("rampart_audit_sink_up", "sink" => self.name()).set(1.0);
        Ok(())
    }

    /// The re-opened storage ends before `confirmed`: records callers were
    /// told are kept are gone (the directory removed, the file or the table
    /// replaced). Fail-closed refuses to go on; fail-open goes on from
    /// `confirmed` with an `audit.gap` record that verification reports.
    fn lost_records(&mut self, found: &ChainHead, confirmed: &ChainHead) -> Result<(), Error> {
        metrics::counter!("rampart_audit_gaps_total", "sink" => self.name()).increment(1);
        let what = format!(
            "its storage ends at seq {} but seq {} was confirmed: confirmed records were removed or replaced",
            found.seq, confirmed.seq
        );
        if self.policy == FailurePolicy::FailClosed {
            let err = unavailable().context(format!(
                "{what}; refusing to go on (fail_closed) until they are restored or the process restarts"
            ));
            self.failed("to open", &err);
            return Err(err);
        }
        tracing::error!(target: "rampart::audit", sink = %self.sink.name(), found_seq = found.seq, confirmed_seq = confirmed.seq,
            "audit sink lost records it had confirmed ({what}); going on (fail_open) after an audit.gap record");
        let gap = AuditEvent::new(GAP_EVENT_TYPE, "lost")
            .severity(Severity::Critical)
            .outcome(Outcome::Error)
            .detail("sink", self.sink.name())
            .detail("found_seq", found.seq)
            .detail("found_hash", found.hash.clone())
            .detail("confirmed_seq", confirmed.seq)
            .detail("confirmed_hash", confirmed.hash.clone());
        let mut chain = Chain::new(self.key.clone(), confirmed);
        match self.write_now(&mut chain, gap) {
            Ok(_) => {
                self.confirmed = Some(chain.head());
                self.chain = Some(chain);
                metrics::gauge!("rampart_audit_sink_up", "sink" => self.name()).set(1.0);
                Ok(())
            }
            Err(err) => {
                self.failed("to record a gap", &err);
                Err(err)
            }
        }
    }

    /// Seals `event` onto `chain`, appends and syncs it; returns its line.
    fn write_now(&mut self, chain: &mut Chain, event: AuditEvent) -> Result<Vec<u8>, Error> {
        let event = event.into_prepared(&self.key, self.clock.system_time(), &Default::default());
        let record = chain.seal(&event);
        self.sink.append(std::slice::from_ref(&record)).and_then(|()| self.sink.sync())?;
        Ok(record.line)
    }

    fn self_test(&mut self) -> Result<(), Error> {
        let Some(mut chain) = self.chain.take() else { return Err(unavailable()) };
        let started = AuditEvent::new("audit.started", "start")
            .detail("sink", self.sink.name())
            .detail("resumed_after_seq", chain.seq());
        let result =
            self.write_now(&mut chain, started).and_then(|line| match self.sink.last_record()? {
                Some(back) if back == line => Ok(()),
                _ => {
                    Err(unavailable().context("the record read back differs from the one written"))
                }
            });
        match &result {
            Ok(()) => {
                self.confirmed = Some(chain.head());
                self.chain = Some(chain);
            }
            Err(err) => self.failed("its start-up self-test", err),
        }
        result
    }

    fn write(&mut self, batch: &Batch) -> bool {
        if self.chain.is_none() && self.open().is_err() {
            return false;
        }
        let Some(chain) = self.chain.as_mut() else { return false };
        let records: Vec<_> = batch.events.iter().map(|event| chain.seal(event)).collect();
        let mut result = self.sink.append(&records);
        if result.is_ok() {
            match self.sink.sync_policy() {
                SyncPolicy::Always => result = self.sink.sync(),
                SyncPolicy::Every(_) => {
                    self.unsynced_since.get_or_insert_with(Instant::now);
                }
                SyncPolicy::Never => {}
            }
        }
        match result {
            Ok(()) => {
                self.confirmed = Some(chain.head());
                true
            }
            Err(err) => {
                self.failed("to write", &err);
                false
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let sync = match (self.sink.sync_policy(), self.unsynced_since) {
            (SyncPolicy::Every(every), Some(since)) => Some(since + every),
            _ => None,
        };
        let new_records = self.chain.as_ref().is_some_and(|c| c.seq() > self.checkpointed);
        let checkpoint = new_records.then(|| self.last_checkpoint + self.checkpoint_interval);
        match (sync, checkpoint) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn sync_if_needed(&mut self, now: bool) {
        let Some(since) = self.unsynced_since else { return };
        let due = match self.sink.sync_policy() {
            SyncPolicy::Every(every) => now || since.elapsed() >= every,
            _ => true,
        };
        if due {
            self.unsynced_since = None;
            // On close, wait for it; otherwise let the sink sync beside the writes.
            let synced = if now { self.sink.sync() } else { self.sink.sync_soon() };
            if let Err(err) = synced {
                self.failed("to sync", &err);
            }
        }
    }

    fn checkpoint_if_due(&mut self, now: bool) {
        let Some(chain) = self.chain.as_ref() else { return };
        if chain.seq() <= self.checkpointed
            || (!now && self.last_checkpoint.elapsed() < self.checkpoint_interval)
        {
            return;
        }
        let checkpoint = chain.checkpoint(self.clock.system_time());
        // Vouch only for what is durable.
        let result = self.sink.sync().and_then(|()| self.sink.checkpoint(&checkpoint));
        self.last_checkpoint = Instant::now();
        match result {
            Ok(()) => {
                self.unsynced_since = None;
                self.checkpointed = checkpoint.seq;
                metrics::counter!("rampart_audit_checkpoints_total", "sink" => self.name())
                    .increment(1);
            }
            Err(err) => self.failed("to write a checkpoint", &err),
        }
    }
}

/// Whether storage ending at `head` lacks the `confirmed` record.
fn is_behind(head: &ChainHead, confirmed: &ChainHead) -> bool {
    head.seq < confirmed.seq || (head.seq == confirmed.seq && head.hash != confirmed.hash)
}
