//! Delivery: the threads that take events off the auditor's queue and
//! hand them to the sinks. One sink is fed by its worker straight from the
//! queue; several are fed by a dispatcher thread, each through a short
//! queue of its own, so a stalled sink cannot hold up the others.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::auditor::{FailurePolicy, unavailable};
use super::chain::{Chain, ChainHead, GAP_EVENT_TYPE};
use super::event::{AuditEvent, Outcome, PreparedEvent};
use super::key::AuditKey;
use super::sink::{Sink, SyncPolicy};
use crate::clock::Clock;
use crate::error::{Error, Severity};

/// Events at most in one batch handed to the sinks.
const MAX_BATCH: usize = 4096;
/// A batch at least this large means load: the next one waits [`LINGER`] to fill.
const LINGER_AFTER: usize = 4;
const LINGER: Duration = Duration::from_micros(50);
/// Batches waiting for one sink before it is treated as stalled.
const SINK_QUEUE: usize = 16;

#[derive(Debug, Default)]
/// The counters behind [`AuditStats`](super::AuditStats), shared with the workers.
pub(super) struct Stats {
    pub(super) written: AtomicU64,
    pub(super) lost: AtomicU64,
    pub(super) unconfirmed: AtomicU64,
    pub(super) sink_errors: AtomicU64,
}

/// What callers put on the queue.
pub(super) enum Job {
    Event(Pending),
    Close,
}

pub(super) struct Pending {
    pub(super) event: PreparedEvent,
    pub(super) ack: Option<Ack>,
}

/// Where a waiting caller learns whether its event was written.
pub(super) enum Ack {
    Async(tokio::sync::oneshot::Sender<bool>),
    Blocking(std::sync::mpsc::SyncSender<bool>),
}

impl Ack {
    pub(super) fn send(self, written: bool) {
        // A caller that gave up waiting has dropped its end: nothing to tell.
        let _ = match self {
            Ack::Async(tx) => tx.send(written).map_err(drop),
            Ack::Blocking(tx) => tx.try_send(written).map_err(drop),
        };
    }
}

/// What every worker is set up with.
pub(super) struct Settings {
    pub(super) key: AuditKey,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) policy: FailurePolicy,
    /// How long the start-up self-test, and a hand-over to a sink, may take.
    pub(super) timeout: Duration,
    pub(super) checkpoint_interval: Duration,
}

/// Starts a worker per sink reading `rx` (and the dispatcher, with several
/// sinks), and waits for the sinks' start-up self-tests. Returns, per
/// worker, the channel that says it has stopped.
///
/// Fails under [`FailurePolicy::FailClosed`] when no sink passed the
/// self-test within the timeout.
pub(super) fn start(
    sinks: Vec<Box<dyn Sink>>,
    rx: &flume::Receiver<Job>,
    stats: &Arc<Stats>,
    settings: &Settings,
) -> Result<Vec<flume::Receiver<()>>, Error> {
    // One sink reads the queue itself; several are fed by a dispatcher
    // thread, so a stalled one cannot hold up the others.
    let direct = sinks.len() == 1;
    let mut workers = Vec::new();
    let mut ready = Vec::new();
    let mut done = Vec::new();
    for sink in sinks {
        let name = sink.name().to_owned();
        let (ready_tx, ready_rx) = flume::bounded(1);
        let (done_tx, done_rx) = flume::bounded(1);
        let source = if direct {
            Source::Direct {
                rx: rx.clone(),
                stats: Arc::clone(stats),
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
            key: settings.key.clone(),
            clock: Arc::clone(&settings.clock),
            stats: Arc::clone(stats),
            checkpoint_interval: settings.checkpoint_interval,
            policy: settings.policy,
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
    let deadline = Instant::now() + settings.timeout;
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
    if passed == 0 && settings.policy == FailurePolicy::FailClosed {
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
            stats: Arc::clone(stats),
            wait: settings.timeout,
        };
        thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || dispatcher.run())
            .map_err(|err| Error::internal(err).context("starting the audit thread"))?;
    }
    Ok(done)
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
pub(super) fn refuse_rest(rx: &flume::Receiver<Job>, stats: &Stats) {
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
