//! The worker's loop: reserve, start, renew, settle, stop. One task runs it;
//! each attempt runs on a task of its own and reports back over a channel,
//! and the loop settles finished attempts in batches.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use conc_core::backoff::Delays;
use conc_core::metrics as names;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant as TokioInstant;
use tracing::Instrument;

mod calls;

use super::attempt::{self, AttemptOutcome};
use super::event::{WorkerEvent, WorkerStop};
use super::metrics::WorkerState;
use super::{Counters, Shared, lock};
use crate::failed::FailReason;
use crate::id::JobId;
use crate::job::{Cancellation, ContextSink, Envelope, JobBackoff, JobContext};
use crate::queue::{
    Lease, LeaseToken, QueueBackend, QueueError, Reserved, Settled, Settlement, Transition,
};

/// The most transitions sent to the backend in one call.
const SETTLE_BATCH: usize = 256;

/// An attempt's report to the loop.
struct Done {
    id: JobId,
    token: LeaseToken,
    outcome: AttemptOutcome,
    runtime: Duration,
}

/// A job running now.
struct Running {
    reserved: Reserved,
    ctx: JobContext,
    cancel: Cancellation,
    abort: AbortHandle,
}

/// Why a transition was sent, for the events and counts once it is applied.
enum Why {
    Succeeded { runtime: Duration },
    Failed { error: String },
    Released { delay: Duration },
    Shutdown,
}

/// A transition waiting to be sent.
struct Pending {
    lease: Lease,
    transition: Transition,
    name: String,
    attempt: u32,
    why: Why,
}

/// Writes a running job's progress and checkpoints to the backend.
struct BackendSink<B>(Arc<B>);

impl<B: QueueBackend> ContextSink for BackendSink<B> {
    fn save(
        &self,
        lease: Lease,
        transition: Transition,
    ) -> conc_core::BoxFuture<'static, Result<(), QueueError>> {
        let backend = Arc::clone(&self.0);
        Box::pin(async move {
            let job = lease.job;
            let mut settled = backend.settle(vec![(lease, transition)]).await?;
            match settled.pop() {
                Some(Ok(_)) => Ok(()),
                Some(Err(lost)) => Err(QueueError::LeaseLost(lost)),
                None => Err(QueueError::LeaseLost(crate::queue::LeaseLost { job })),
            }
        })
    }
}

/// `metrics` handles of one queue, made once.
struct QueueMetrics {
    processed: metrics::Counter,
    failed: metrics::Counter,
    retried: metrics::Counter,
    dead: metrics::Counter,
    released: metrics::Counter,
    lost: metrics::Counter,
    duration: metrics::Histogram,
    wait: metrics::Histogram,
}

impl QueueMetrics {
    fn new(queue: &str) -> Self {
        let label = || [("queue", queue.to_owned())];
        Self {
            processed: metrics::counter!(names::BUS_JOBS_PROCESSED, &label()),
            failed: metrics::counter!(names::BUS_JOBS_FAILED, &label()),
            retried: metrics::counter!(names::BUS_JOBS_RETRIED, &label()),
            dead: metrics::counter!(names::BUS_JOBS_DEAD, &label()),
            released: metrics::counter!(names::BUS_JOBS_RELEASED, &label()),
            lost: metrics::counter!(names::BUS_LEASES_LOST, &label()),
            duration: metrics::histogram!(names::BUS_JOB_DURATION, &label()),
            wait: metrics::histogram!(names::BUS_JOB_WAIT, &label()),
        }
    }
}

struct Runner<B> {
    shared: Arc<Shared<B>>,
    sink: Arc<dyn ContextSink>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    buffer: VecDeque<Reserved>,
    running: HashMap<JobId, Running>,
    pending: VecDeque<Pending>,
    /// Whether the last reservation filled every free slot (more may wait).
    more_available: bool,
    stopping: Option<WorkerStop>,
    grace_deadline: Option<TokioInstant>,
    /// When a stopping worker gives up sending what the backend did not take.
    give_up_at: Option<TokioInstant>,
    max_time_deadline: Option<TokioInstant>,
    backend_down_until: Option<TokioInstant>,
    backend_retry: Option<Delays>,
    long_wait_reported: HashMap<String, TokioInstant>,
    queue_metrics: HashMap<String, QueueMetrics>,
}

/// Runs the worker until it stops; why it stopped.
pub(super) async fn run<B: QueueBackend>(shared: Arc<Shared<B>>) -> WorkerStop {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let sink: Arc<dyn ContextSink> = Arc::new(BackendSink(Arc::clone(&shared.backend)));
    let max_time_deadline = shared.config.max_time.map(|time| TokioInstant::now() + time);
    let mut runner = Runner {
        shared,
        sink,
        done_tx,
        done_rx,
        buffer: VecDeque::new(),
        running: HashMap::new(),
        pending: VecDeque::new(),
        more_available: true,
        stopping: None,
        grace_deadline: None,
        give_up_at: None,
        max_time_deadline,
        backend_down_until: None,
        backend_retry: None,
        long_wait_reported: HashMap::new(),
        queue_metrics: HashMap::new(),
    };
    runner.shared.state.send_replace(WorkerState::Running);
    let heartbeat = super::heartbeat::Heartbeat::start(&runner.shared);
    let reason = runner.main().await;
    if let Some(heartbeat) = heartbeat {
        heartbeat.finish().await;
    }
    runner.shared.state.send_replace(WorkerState::Stopped(reason));
    reason
}

/// What woke the loop.
enum Wake {
    Done(Done),
    Renew,
    StopRequested,
    GraceOver,
    MaxTime,
    Retry,
    Work,
}

impl<B: QueueBackend> Runner<B> {
    async fn main(&mut self) -> WorkerStop {
        let period = self.shared.config.lease / 3;
        let mut renew = tokio::time::interval_at(TokioInstant::now() + period, period);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.check_max_jobs();
            // Acknowledgements and the next reservation go together (one
            // round trip where the backend can pipeline them). Only
            // acknowledgements: a retry or release must be in place before
            // the reservation is decided, and the worker sends those first.
            let mut filled = None;
            if self.backend_up() && self.stopping.is_none() && self.free() > 0 && self.acks_first()
            {
                filled = Some(self.ack_and_fill().await);
            }
            if self.backend_up() {
                self.flush().await;
            }
            if let Some(reason) = self.stopping
                && self.running.is_empty()
                && self.buffer.is_empty()
            {
                if self.pending.is_empty() {
                    return reason;
                }
                if self.give_up_at.is_some_and(|at| TokioInstant::now() >= at) {
                    // The backend stayed down past the grace: the leases
                    // still held expire on their own and the jobs come back.
                    tracing::warn!(
                        target: "conc_bus",
                        unsent = self.pending.len(),
                        "worker stopped with transitions the backend never took"
                    );
                    return reason;
                }
            }
            let backend_up = self.backend_up();
            let mut reserved_now = filled.unwrap_or(false);
            if filled.is_none() && self.stopping.is_none() && backend_up && self.free() > 0 {
                reserved_now = self.fill().await;
            }
            self.start_jobs();
            if self.stopping.is_none()
                && self.shared.config.stop_when_empty
                && !self.more_available
                && backend_up
                && self.running.is_empty()
                && self.buffer.is_empty()
                && self.pending.is_empty()
            {
                self.begin_stop(WorkerStop::Empty);
                continue;
            }
            if reserved_now && self.more_available && self.free() > 0 {
                // More is waiting: take it, but let the runtime's other tasks
                // (the attempts, the timers) run between rounds.
                tokio::task::yield_now().await;
                self.drain_done();
                continue;
            }
            let wake = self.wait(&mut renew).await;
            match wake {
                Wake::Done(done) => {
                    self.finish(done);
                    self.drain_done();
                }
                Wake::Renew => self.renew().await,
                Wake::StopRequested => self.begin_stop(WorkerStop::Requested),
                Wake::GraceOver => self.abandon_running(),
                Wake::MaxTime => self.begin_stop(WorkerStop::MaxTime),
                // The wait is over: the next call tells whether the backend is
                // back (the backoff goes on from where it was if it is not).
                Wake::Retry => self.backend_down_until = None,
                Wake::Work => self.more_available = true,
            }
        }
    }

    /// Waits for the next thing to do.
    async fn wait(&mut self, renew: &mut tokio::time::Interval) -> Wake {
        let stopping = self.stopping.is_some();
        let backend_down = self.backend_down_until;
        let can_take = !stopping && backend_down.is_none() && self.free() > 0;
        let poll = self.shared.config.poll_interval;
        let far = TokioInstant::now() + Duration::from_secs(86_400 * 365);
        let grace = self.grace_deadline;
        let max_time = self.max_time_deadline.filter(|_| !stopping);
        let shared = Arc::clone(&self.shared);
        let has_leases = !self.running.is_empty() || !self.buffer.is_empty();
        tokio::select! {
            biased;
            Some(done) = self.done_rx.recv() => Wake::Done(done),
            _ = renew.tick(), if has_leases => Wake::Renew,
            () = shared.stop.cancelled(), if !stopping => Wake::StopRequested,
            () = tokio::time::sleep_until(grace.unwrap_or(far)), if grace.is_some() => Wake::GraceOver,
            () = tokio::time::sleep_until(max_time.unwrap_or(far)), if max_time.is_some() => Wake::MaxTime,
            () = tokio::time::sleep_until(backend_down.unwrap_or(far)), if backend_down.is_some() => Wake::Retry,
            () = shared.backend.wait(&shared.config.queues, poll), if can_take => Wake::Work,
        }
    }

    /// Free slots: running and prefetched jobs against concurrency plus prefetch.
    fn free(&self) -> usize {
        let config = &self.shared.config;
        (config.concurrency + config.prefetch)
            .saturating_sub(self.running.len() + self.buffer.len())
    }

    /// Starts buffered jobs while slots are free.
    fn start_jobs(&mut self) {
        while self.running.len() < self.shared.config.concurrency {
            let Some(reserved) = self.buffer.pop_front() else { break };
            self.shared.counters.prefetched.fetch_sub(1, Ordering::Relaxed);
            self.start(reserved);
        }
    }

    fn start(&mut self, reserved: Reserved) {
        let queue = reserved.envelope.queue.clone();
        self.queue_metrics(&queue).wait.record(reserved.waited.as_secs_f64());
        lock(&self.shared.stats).waits.entry(queue.clone()).or_default().record(reserved.waited);
        if let Some(threshold) = self.shared.config.long_waits.get(&queue).copied()
            && reserved.waited > threshold
        {
            let now = TokioInstant::now();
            let recent = self
                .long_wait_reported
                .get(&queue)
                .is_some_and(|at| now.duration_since(*at) < Duration::from_secs(60));
            if !recent {
                self.long_wait_reported.insert(queue.clone(), now);
                let waited = reserved.waited;
                self.emit(|| WorkerEvent::LongWait { queue: queue.clone(), waited, threshold });
            }
        }
        self.emit(|| WorkerEvent::Processing {
            id: reserved.lease.job,
            name: reserved.envelope.name.clone(),
            queue: queue.clone(),
            attempt: reserved.attempt,
        });
        let cancel = Cancellation::default();
        let ctx = JobContext::new(
            reserved.envelope.name.clone(),
            reserved.attempt,
            reserved.lease.clone(),
            reserved.envelope.checkpoint.clone(),
            cancel.clone(),
            Arc::clone(&self.sink),
        )
        .with_flow(reserved.envelope.flow.clone());
        let kept = ctx.clone();
        let handlers = Arc::clone(&self.shared.handlers);
        let envelope: Arc<Envelope> = Arc::clone(&reserved.envelope);
        let tx = self.done_tx.clone();
        let (id, token) = (reserved.lease.job, reserved.lease.token);
        // The handler runs in a span carrying the job, so its own events say
        // which job they belong to.
        let span = tracing::info_span!(
            target: "conc_bus",
            "job",
            id = %id,
            name = %reserved.envelope.name,
            queue = %queue,
            attempt = reserved.attempt,
        );
        let task = tokio::spawn(
            async move {
                let started = Instant::now();
                let outcome = attempt::run(&handlers, &envelope, ctx).await;
                let _ = tx.send(Done { id, token, outcome, runtime: started.elapsed() });
            }
            .instrument(span),
        );
        Counters::add(&self.shared.counters.running, 1);
        self.running
            .insert(id, Running { reserved, ctx: kept, cancel, abort: task.abort_handle() });
    }

    /// Receives every report already waiting.
    fn drain_done(&mut self) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.finish(done);
        }
    }

    /// Turns a finished attempt into the transition to send.
    fn finish(&mut self, done: Done) {
        match self.running.get(&done.id) {
            Some(running) if running.reserved.lease.token == done.token => {}
            // Abandoned (lease lost, or the worker gave up on it at its grace).
            _ => return,
        }
        let running = self.running.remove(&done.id).expect("checked above");
        self.shared.counters.running.fetch_sub(1, Ordering::Relaxed);
        Counters::add(&self.shared.counters.finished, 1);
        let reserved = running.reserved;
        let name = reserved.envelope.name.clone();
        self.queue_metrics(&reserved.envelope.queue).duration.record(done.runtime.as_secs_f64());
        lock(&self.shared.stats).runtimes.entry(name.clone()).or_default().record(done.runtime);
        let retry = |error: String, timed_out: bool| {
            let delay = self.backoff(&reserved.envelope).delay(reserved.attempt);
            (Transition::Retry { delay, error: error.clone(), timed_out }, Why::Failed { error })
        };
        let (transition, why) = match done.outcome {
            AttemptOutcome::Succeeded => {
                let mut edits = running.ctx.take_chain_edits();
                let envelope = &reserved.envelope;
                if envelope.flow.as_ref().is_some_and(|flow| flow.batch.is_some())
                    && !envelope.middleware.is_empty()
                {
                    // Links a member adds are members too: they run
                    // through its named middleware, the batch's included.
                    for link in edits.prepend.iter_mut().chain(&mut edits.append) {
                        crate::batch::set_middleware(link, &envelope.middleware);
                    }
                }
                let handlers = &self.shared.handlers;
                let sealed = handlers
                    .seal_links(&mut edits.prepend)
                    .and_then(|()| handlers.seal_links(&mut edits.append));
                if let Err(error) = sealed {
                    // Never stored in clear: the job fails with the reason.
                    let fail = Transition::Fail { reason: FailReason::Fatal, error: error.clone() };
                    (fail, Why::Failed { error })
                } else if edits.prepend.is_empty() && edits.append.is_empty() {
                    (Transition::Ack, Why::Succeeded { runtime: done.runtime })
                } else {
                    let edit =
                        Transition::AckChain { prepend: edits.prepend, append: edits.append };
                    (edit, Why::Succeeded { runtime: done.runtime })
                }
            }
            AttemptOutcome::Released(delay) => {
                (Transition::Release { delay }, Why::Released { delay })
            }
            AttemptOutcome::Failed { error, fatal: false } => retry(error, false),
            AttemptOutcome::Failed { error, fatal: true } => (
                Transition::Fail { reason: FailReason::Fatal, error: error.clone() },
                Why::Failed { error },
            ),
            AttemptOutcome::Panicked(message) => retry(format!("panicked: {message}"), false),
            AttemptOutcome::TimedOut(after) => {
                running.cancel.cancel();
                retry(format!("timed out after {after:?}"), true)
            }
            AttemptOutcome::Undecodable(error) => (
                Transition::Fail { reason: FailReason::Undecodable, error: error.clone() },
                Why::Failed { error },
            ),
        };
        self.pending.push_back(Pending {
            lease: reserved.lease,
            transition,
            name,
            attempt: reserved.attempt,
            why,
        });
    }

    /// The backoff for `envelope`: its own delays, else its type's, else the default.
    fn backoff(&self, envelope: &Envelope) -> JobBackoff {
        if envelope.backoff_ms.is_empty() {
            self.shared.handlers.options(&envelope.name).map_or_else(
                || crate::JobOptions::new().backoff_or_default(),
                |o| o.backoff_or_default(),
            )
        } else {
            JobBackoff::Delays(
                envelope.backoff_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            )
        }
    }

    /// Counts and reports one applied (or refused) transition.
    fn settled(&mut self, pending: Pending, settled: Settled) {
        let Pending { lease, name, attempt, why, .. } = pending;
        let queue = lease.queue.clone();
        let second = self.shared.born.elapsed().as_secs();
        let Ok(settlement) = settled else {
            if !matches!(why, Why::Shutdown) {
                self.lost(&lease);
            }
            return;
        };
        match why {
            Why::Succeeded { runtime } => {
                self.count(&queue, |m| &m.processed, |c| &c.processed);
                lock(&self.shared.stats).processed.add(second);
                let id = lease.job;
                self.emit(|| WorkerEvent::Processed { id, name, queue: queue.clone(), runtime });
            }
            Why::Failed { error } => {
                self.count(&queue, |m| &m.failed, |c| &c.failed);
                lock(&self.shared.stats).failed.add(second);
                let dead = match settlement {
                    Settlement::Dead(reason) => {
                        self.count(&queue, |m| &m.dead, |c| &c.dead);
                        Some(reason)
                    }
                    // Dropped: its batch was cancelled; it is not retried.
                    Settlement::Skipped => None,
                    _ => {
                        self.count(&queue, |m| &m.retried, |c| &c.retried);
                        None
                    }
                };
                let id = lease.job;
                self.emit(|| WorkerEvent::Failed {
                    id,
                    name,
                    queue: queue.clone(),
                    attempt,
                    error,
                    dead,
                });
            }
            Why::Released { delay } => {
                let id = lease.job;
                if let Settlement::Dead(reason) = settlement {
                    self.count(&queue, |m| &m.dead, |c| &c.dead);
                    let error = "released after its last attempt".to_owned();
                    let dead = Some(reason);
                    self.emit(|| WorkerEvent::Failed {
                        id,
                        name,
                        queue: queue.clone(),
                        attempt,
                        error,
                        dead,
                    });
                } else {
                    self.count(&queue, |m| &m.released, |c| &c.released);
                    self.emit(|| WorkerEvent::Released { id, queue: queue.clone(), delay });
                }
            }
            Why::Shutdown => {}
        }
    }

    /// Renews every lease held.
    async fn renew(&mut self) {
        let lease = self.shared.config.lease;
        let leases: Vec<Lease> = self
            .running
            .values()
            .map(|r| r.reserved.lease.clone())
            .chain(self.buffer.iter().map(|r| r.lease.clone()))
            .collect();
        if leases.is_empty() {
            return;
        }
        let batch = leases.iter().map(|l| (l.clone(), Transition::Extend { lease })).collect();
        match self.shared.backend.settle(batch).await {
            Ok(results) => {
                self.backend_ok();
                for (lease, settled) in leases.iter().zip(results) {
                    match settled {
                        Err(_) => self.lost(lease),
                        // Its batch was cancelled: the handler is told to stop.
                        Ok(Settlement::StopAsked { .. }) => {
                            if let Some(running) = self.running.get(&lease.job)
                                && running.reserved.lease.token == lease.token
                            {
                                running.cancel.cancel();
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
            Err(error) => self.backend_failed(&error),
        }
    }

    /// Gives up on a job whose lease is gone: cancel and drop its attempt.
    fn lost(&mut self, lease: &Lease) {
        // Only the attempt that held this lease (a later reservation of the
        // same job has another token).
        let held =
            self.running.get(&lease.job).is_some_and(|r| r.reserved.lease.token == lease.token);
        if held && let Some(running) = self.running.remove(&lease.job) {
            running.cancel.cancel();
            running.abort.abort();
            self.shared.counters.running.fetch_sub(1, Ordering::Relaxed);
        } else if let Some(index) = self.buffer.iter().position(|r| r.lease == *lease) {
            self.buffer.remove(index);
            self.shared.counters.prefetched.fetch_sub(1, Ordering::Relaxed);
        }
        self.count(&lease.queue, |m| &m.lost, |c| &c.lease_lost);
        let (id, queue) = (lease.job, lease.queue.clone());
        self.emit(|| WorkerEvent::LeaseLost { id, queue });
    }

    /// Stops taking jobs: prefetched ones go back at once; running ones get the grace.
    fn begin_stop(&mut self, reason: WorkerStop) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(reason);
        self.shared.state.send_replace(WorkerState::Stopping);
        self.emit(|| WorkerEvent::Stopping { reason });
        for reserved in std::mem::take(&mut self.buffer) {
            self.shared.counters.prefetched.fetch_sub(1, Ordering::Relaxed);
            self.release_at_stop(reserved);
        }
        let configured = self.shared.config.grace;
        let grace = lock(&self.shared.grace).map_or(configured, |asked| asked.min(configured));
        let now = TokioInstant::now();
        self.grace_deadline = Some(now + grace);
        self.give_up_at = Some(now + grace + self.shared.config.lease / 3);
    }

    /// The grace is over: signal the running jobs, release their leases, drop them.
    fn abandon_running(&mut self) {
        self.grace_deadline = None;
        let running: Vec<Running> = self.running.drain().map(|(_, r)| r).collect();
        for job in running {
            job.cancel.cancel();
            job.abort.abort();
            self.shared.counters.running.fetch_sub(1, Ordering::Relaxed);
            self.release_at_stop(job.reserved);
        }
    }

    fn release_at_stop(&mut self, reserved: Reserved) {
        self.pending.push_back(Pending {
            lease: reserved.lease,
            transition: Transition::Release { delay: Duration::ZERO },
            name: reserved.envelope.name.clone(),
            attempt: reserved.attempt,
            why: Why::Shutdown,
        });
    }

    fn check_max_jobs(&mut self) {
        if let Some(max) = self.shared.config.max_jobs
            && self.shared.counters.finished.load(Ordering::Relaxed) >= max
        {
            self.begin_stop(WorkerStop::MaxJobs);
        }
    }

    fn backend_ok(&mut self) {
        self.backend_down_until = None;
        // A backoff under way means the backend had failed: it is back.
        if self.backend_retry.take().is_some() {
            self.emit(|| WorkerEvent::BackendRecovered);
        }
        let mut contact = lock(&self.shared.contact);
        contact.last_ok = Some(Instant::now());
        contact.error = None;
    }

    fn backend_failed(&mut self, error: &QueueError) {
        if matches!(error, QueueError::LeaseLost(_)) {
            return;
        }
        Counters::add(&self.shared.counters.backend_errors, 1);
        let retry = &self.shared.config.backend_retry;
        let delays = self.backend_retry.get_or_insert_with(|| retry.delays());
        let retry_in = delays.next().unwrap_or(Duration::from_secs(30));
        self.backend_down_until = Some(TokioInstant::now() + retry_in);
        let message = error.to_string();
        tracing::warn!(target: "conc_bus", error = %message, ?retry_in, "queue backend failed");
        lock(&self.shared.contact).error = Some(message.clone());
        self.emit(|| WorkerEvent::BackendError { error: message, retry_in });
    }

    fn queue_metrics(&mut self, queue: &str) -> &QueueMetrics {
        if !self.queue_metrics.contains_key(queue) {
            self.queue_metrics.insert(queue.to_owned(), QueueMetrics::new(queue));
        }
        &self.queue_metrics[queue]
    }

    /// Adds one to a queue's `metrics` counter and to the worker's own count.
    fn count(
        &mut self,
        queue: &str,
        metric: impl Fn(&QueueMetrics) -> &metrics::Counter,
        counter: impl Fn(&Counters) -> &std::sync::atomic::AtomicU64,
    ) {
        metric(self.queue_metrics(queue)).increment(1);
        Counters::add(counter(&self.shared.counters), 1);
    }

    /// Sends an event, built only when someone listens.
    fn emit(&self, event: impl FnOnce() -> WorkerEvent) {
        if self.shared.events.receiver_count() > 0 {
            let _ = self.shared.events.send(event());
        }
    }
}
