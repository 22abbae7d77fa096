//! The connection thread: it owns the queue's one SQLite connection and runs
//! the requests it receives in batches, one transaction per batch (`BEGIN
//! IMMEDIATE` when the batch writes), each request in a savepoint of its own
//! so that one refused or failing request leaves the others' work in place.
//! Every request of a batch shares its commit and disk flush (group commit).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::Connection;
use tokio::sync::{Notify, oneshot};

use super::Synchronous;
use super::row::{Failure, Refusal};
use super::{admin, flow, listing, store, workers};
use crate::batch::machine::Unrecoverable;
use crate::batch::model::MemberRows;
use crate::batch::{ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, BatchQuery};
use crate::clock::{Millis, WallClock};
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;
use crate::queue::backend::{Pushed, QueueSize, Reservation, Settled};
use crate::queue::beat::WorkerBeat;
use crate::queue::error::{PushError, QueueError};
use crate::queue::lease::{Lease, LeaseToken};
use crate::queue::settle::Transition;

/// The most requests run in one transaction: bounds how long one batch keeps
/// other processes from writing.
const MAX_BATCH: usize = 64;

/// The settings the thread applies.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) failed_max_jobs: usize,
    pub(super) failed_max_age_ms: Millis,
    pub(super) synchronous: Synchronous,
}

/// What the thread and the queue's handles share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) clock: WallClock,
    /// Woken after a commit that may have made a job available.
    pub(super) wake: Notify,
    pub(super) settings: Settings,
    /// Where member outcomes are announced, once their batch commits.
    pub(super) progress: crate::batch::progress::ProgressFeed,
}

/// The open transaction, as the requests of a batch see it.
pub(super) struct Tx<'a> {
    pub(super) conn: &'a Connection,
    /// The batch's time, Unix ms.
    pub(super) now: Millis,
    pub(super) settings: &'a Settings,
    woke: Cell<bool>,
    /// Member outcomes recorded, announced after the commit.
    progress: RefCell<Vec<BatchProgress>>,
}

impl<'a> Tx<'a> {
    /// A transaction the caller opened on `conn` (see `SqliteQueue::push_in`).
    pub(super) fn on(conn: &'a Connection, now: Millis, settings: &'a Settings) -> Self {
        Self { conn, now, settings, woke: Cell::new(false), progress: RefCell::default() }
    }

    /// Marks that a job may have become available: waiters are woken once
    /// the batch commits.
    pub(super) fn wake(&self) {
        self.woke.set(true);
    }

    /// Notes a member outcome, announced once the batch commits.
    pub(super) fn announce(&self, progress: BatchProgress) {
        self.progress.borrow_mut().push(progress);
    }

    /// Runs `f` in a savepoint: its changes are kept when it succeeds and
    /// rolled back when it fails. A corrupt job row it names is set aside.
    /// `Err` only when the savepoint itself fails (the batch is then lost).
    pub(super) fn savepoint<T>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, Failure>,
    ) -> rusqlite::Result<Result<T, Failure>> {
        self.conn.prepare_cached("SAVEPOINT request")?.execute([])?;
        let woke = self.woke.get();
        let announced = self.progress.borrow().len();
        let result = f(self);
        if result.is_err() {
            self.conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
            self.woke.set(woke);
            self.progress.borrow_mut().truncate(announced);
        }
        let result = match result {
            Err(Failure::Corrupt { message, set_aside: Some(seq) }) => {
                admin::set_aside(self, seq)?;
                tracing::error!(target: "conc_bus", %message, seq, "set aside a job row that does not decode");
                Err(Failure::corrupt(format!(
                    "{message}; its row (seq {seq}) is set aside in `conc_bus_jobs` (state 3)"
                )))
            }
            other => other,
        };
        self.conn.prepare_cached("RELEASE request")?.execute([])?;
        Ok(result)
    }
}

/// Where a request's answer goes.
type Answer<T> = oneshot::Sender<Result<T, QueueError>>;

/// One call: its arguments, where the answer goes, and the answer once run.
pub(super) struct Call<A, T> {
    args: A,
    reply: Answer<T>,
    out: Option<Result<T, QueueError>>,
}

impl<A, T> Call<A, T> {
    pub(super) fn new(args: A, reply: Answer<T>) -> Self {
        Self { args, reply, out: None }
    }

    /// Runs `f` on the arguments in a savepoint, unless nobody waits for the answer.
    fn run(
        &mut self,
        tx: &Tx<'_>,
        f: impl FnOnce(&Tx<'_>, &mut A) -> Result<T, Failure>,
    ) -> rusqlite::Result<()> {
        if !self.reply.is_closed() {
            let result = tx.savepoint(|tx| f(tx, &mut self.args))?;
            self.out = Some(result.map_err(Failure::into_queue_error));
        }
        Ok(())
    }

    /// Sends the answer, or the batch's error when it did not commit. The
    /// value back when it committed but nobody took it.
    fn answer(self, committed: Result<(), &rusqlite::Error>) -> Option<T> {
        let result = match (committed, self.out) {
            (Err(error), _) => Err(QueueError::Backend(Box::new(copy(error)))),
            (Ok(()), Some(out)) => out,
            (Ok(()), None) => return None,
        };
        match self.reply.send(result) {
            Err(Ok(value)) => Some(value),
            _ => None,
        }
    }
}

/// A push: the jobs stay here until the answer, to be handed back on refusal.
pub(super) struct PushCall {
    jobs: Vec<Pushed>,
    reply: oneshot::Sender<Result<(), PushError>>,
    out: Option<Result<(), Failure>>,
}

impl PushCall {
    pub(super) fn new(jobs: Vec<Pushed>, reply: oneshot::Sender<Result<(), PushError>>) -> Self {
        Self { jobs, reply, out: None }
    }

    /// The jobs of a push that never reached the thread.
    pub(super) fn into_jobs(self) -> Vec<Pushed> {
        self.jobs
    }

    fn answer(self, committed: Result<(), &rusqlite::Error>) {
        let jobs = self.jobs;
        let result = match (committed, self.out) {
            (Err(error), _) => Err(PushError::Backend { error: Box::new(copy(error)), jobs }),
            (Ok(()), None) => return,
            (Ok(()), Some(Ok(()))) => Ok(()),
            (Ok(()), Some(Err(failure))) => Err(push_error(failure, jobs)),
        };
        let _ = self.reply.send(result);
    }
}

/// The refusal of a push whose savepoint was rolled back, `jobs` handed back.
pub(super) fn push_error(failure: Failure, jobs: Vec<Pushed>) -> PushError {
    match failure {
        Failure::Refused(Refusal::Full { queue, capacity }) => {
            PushError::Full { queue, capacity, jobs }
        }
        Failure::Refused(Refusal::Duplicate { id }) => PushError::Duplicate { id, jobs },
        Failure::Refused(Refusal::Locked { key, held_by }) => {
            PushError::Locked { key, held_by, jobs }
        }
        Failure::Refused(refusal @ (Refusal::NoBatch(_) | Refusal::Closed(..))) => {
            PushError::Backend { error: format!("unexpected refusal {refusal:?}").into(), jobs }
        }
        Failure::Config(error) => PushError::Invalid { error, jobs },
        Failure::Sql(error) => PushError::Backend { error: Box::new(error), jobs },
        Failure::Corrupt { message, .. } => PushError::Backend { error: message.into(), jobs },
    }
}

/// What a reservation asks for.
pub(super) struct ReserveArgs {
    pub(super) queues: Vec<String>,
    pub(super) max: usize,
    pub(super) lease_ms: Millis,
}

/// One operation for the connection thread.
pub(super) enum Request {
    Push(PushCall),
    Reserve(Call<ReserveArgs, Reservation>),
    Settle(Call<Vec<(Lease, Transition)>, Vec<Settled>>),
    /// Give back leases whose reservation reached nobody. No answer.
    Unclaim(Vec<(JobId, LeaseToken)>),
    Size(Call<String, QueueSize>),
    Peek(Call<(String, usize), Vec<Envelope>>),
    Clear(Call<String, u64>),
    SetPaused(Call<(String, bool), ()>),
    SetCapacity(Call<(String, Option<u64>), ()>),
    Queues(Call<(), Vec<String>>),
    Failed(Call<FailedQuery, Vec<FailedJob>>),
    FailedJob(Call<JobId, Option<FailedJob>>),
    FailedCount(Call<Option<String>, u64>),
    RetryFailed(Call<Selection, Vec<JobId>>),
    ForgetFailed(Call<Selection, u64>),
    Workflow(super::workflow::WorkflowCall),
    Batch(Call<BatchId, Option<BatchInfo>>),
    Batches(Call<usize, Vec<BatchInfo>>),
    ListBatches(Call<BatchQuery, Vec<BatchInfo>>),
    BatchMembers(Call<(BatchId, usize, usize), MemberRows>),
    CancelBatch(Call<BatchId, bool>),
    PruneBatches(Call<BatchPrune, u64>),
    ArchivedBatch(Call<BatchId, Option<ArchivedBatch>>),
    RecoverBatch(Call<BatchId, Result<u64, Unrecoverable>>),
    PausedQueues(Call<Vec<String>, Vec<bool>>),
    RecordWorker(Call<WorkerBeat, ()>),
    RemoveWorker(Call<String, bool>),
    Workers(Call<(), Vec<WorkerBeat>>),
}

impl Request {
    /// Whether it may write (its batch then takes the write lock at `BEGIN`).
    fn writes(&self) -> bool {
        !matches!(
            self,
            Self::Size(_)
                | Self::Peek(_)
                | Self::Queues(_)
                | Self::Failed(_)
                | Self::FailedJob(_)
                | Self::FailedCount(_)
                | Self::Batch(_)
                | Self::Batches(_)
                | Self::ListBatches(_)
                | Self::PausedQueues(_)
                | Self::BatchMembers(_)
                | Self::ArchivedBatch(_)
        )
    }

    /// Whether its commit is flushed under [`Synchronous::Balanced`]: it
    /// stores jobs or changes what the lease cycle will not redo by itself.
    fn flushed_when_balanced(&self) -> bool {
        matches!(
            self,
            Self::Push(_)
                | Self::Clear(_)
                | Self::SetPaused(_)
                | Self::SetCapacity(_)
                | Self::RetryFailed(_)
                | Self::ForgetFailed(_)
                | Self::Workflow(_)
                | Self::CancelBatch(_)
                | Self::PruneBatches(_)
                | Self::RecoverBatch(_)
        )
    }

    /// Runs the request inside the open transaction.
    fn run(&mut self, tx: &Tx<'_>) -> rusqlite::Result<()> {
        match self {
            Self::Push(call) => {
                if !call.reply.is_closed() {
                    call.out = Some(tx.savepoint(|tx| store::push(tx, &call.jobs))?);
                }
                Ok(())
            }
            Self::Reserve(call) => {
                call.run(tx, |tx, args| store::reserve(tx, &args.queues, args.max, args.lease_ms))
            }
            Self::Settle(call) => {
                call.run(tx, |tx, batch| store::settle(tx, std::mem::take(batch)))
            }
            Self::Unclaim(leases) => match tx.savepoint(|tx| store::unclaim(tx, leases))? {
                Ok(()) => Ok(()),
                Err(failure) => {
                    tracing::debug!(target: "conc_bus", ?failure, "giving back unclaimed leases failed");
                    Ok(())
                }
            },
            Self::Size(call) => call.run(tx, |tx, queue| admin::size(tx, queue)),
            Self::Peek(call) => call.run(tx, |tx, (queue, limit)| admin::peek(tx, queue, *limit)),
            Self::Clear(call) => call.run(tx, |tx, queue| admin::clear(tx, queue)),
            Self::SetPaused(call) => {
                call.run(tx, |tx, (queue, paused)| admin::set_paused(tx, queue, *paused))
            }
            Self::SetCapacity(call) => {
                call.run(tx, |tx, (queue, capacity)| admin::set_capacity(tx, queue, *capacity))
            }
            Self::Queues(call) => call.run(tx, |tx, ()| admin::queues(tx)),
            Self::Failed(call) => call.run(tx, |tx, query| admin::failed(tx, query)),
            Self::FailedJob(call) => call.run(tx, |tx, id| admin::failed_one(tx, *id)),
            Self::FailedCount(call) => {
                call.run(tx, |tx, queue| admin::failed_count(tx, queue.as_deref()))
            }
            Self::RetryFailed(call) => {
                call.run(tx, |tx, selection| admin::retry_failed(tx, selection))
            }
            Self::ForgetFailed(call) => {
                call.run(tx, |tx, selection| admin::forget_failed(tx, selection))
            }
            Self::Workflow(call) => call.run(tx),
            Self::Batch(call) => call.run(tx, |tx, id| flow::find(tx, *id)),
            Self::Batches(call) => call.run(tx, |tx, limit| flow::list(tx, *limit)),
            Self::ListBatches(call) => call.run(tx, |tx, query| listing::list(tx, query)),
            Self::BatchMembers(call) => {
                call.run(tx, |tx, (id, offset, limit)| flow::members(tx, *id, *offset, *limit))
            }
            Self::CancelBatch(call) => call.run(tx, |tx, id| flow::cancel(tx, *id)),
            Self::PruneBatches(call) => call.run(tx, |tx, prune| flow::prune(tx, *prune)),
            Self::ArchivedBatch(call) => call.run(tx, |tx, id| flow::archived(tx, *id)),
            Self::RecoverBatch(call) => call.run(tx, |tx, id| flow::recover(tx, *id)),
            Self::PausedQueues(call) => call.run(tx, |tx, queues| workers::paused(tx, queues)),
            Self::RecordWorker(call) => call.run(tx, |tx, beat| workers::record(tx, beat)),
            Self::RemoveWorker(call) => call.run(tx, |tx, id| workers::remove(tx, id)),
            Self::Workers(call) => call.run(tx, |tx, ()| workers::list(tx)),
        }
    }

    /// Sends the answer; a reservation that reached nobody is queued to be
    /// given back in `follow_up`.
    fn answer(self, committed: Result<(), &rusqlite::Error>, follow_up: &mut Vec<Request>) {
        match self {
            Self::Push(call) => call.answer(committed),
            Self::Reserve(call) => {
                if let Some(reservation) = call.answer(committed) {
                    let leases: Vec<(JobId, LeaseToken)> = reservation
                        .jobs
                        .iter()
                        .map(|job| (job.lease.job, job.lease.token))
                        .collect();
                    if !leases.is_empty() {
                        follow_up.push(Self::Unclaim(leases));
                    }
                }
            }
            Self::Settle(call) => drop(call.answer(committed)),
            Self::Unclaim(_) => {}
            Self::Size(call) => drop(call.answer(committed)),
            Self::Peek(call) => drop(call.answer(committed)),
            Self::Clear(call) => drop(call.answer(committed)),
            Self::SetPaused(call) => drop(call.answer(committed)),
            Self::SetCapacity(call) => drop(call.answer(committed)),
            Self::Queues(call) => drop(call.answer(committed)),
            Self::Failed(call) => drop(call.answer(committed)),
            Self::FailedJob(call) => drop(call.answer(committed)),
            Self::FailedCount(call) => drop(call.answer(committed)),
            Self::RetryFailed(call) => drop(call.answer(committed)),
            Self::ForgetFailed(call) => drop(call.answer(committed)),
            Self::Workflow(call) => call.answer(committed),
            Self::Batch(call) => drop(call.answer(committed)),
            Self::Batches(call) => drop(call.answer(committed)),
            Self::ListBatches(call) => drop(call.answer(committed)),
            Self::BatchMembers(call) => drop(call.answer(committed)),
            Self::CancelBatch(call) => drop(call.answer(committed)),
            Self::PruneBatches(call) => drop(call.answer(committed)),
            Self::ArchivedBatch(call) => drop(call.answer(committed)),
            Self::RecoverBatch(call) => drop(call.answer(committed)),
            Self::PausedQueues(call) => drop(call.answer(committed)),
            Self::RecordWorker(call) => drop(call.answer(committed)),
            Self::RemoveWorker(call) => drop(call.answer(committed)),
            Self::Workers(call) => drop(call.answer(committed)),
        }
    }
}

/// The connection and the `synchronous` level it commits with now.
struct Writer {
    connection: Connection,
    /// Whether commits flush to disk (`synchronous=FULL`, set at open) or
    /// not (`NORMAL`).
    flushing: bool,
}

impl Writer {
    fn flush(&mut self, flush: bool) -> rusqlite::Result<()> {
        if self.flushing != flush {
            let level = if flush { "FULL" } else { "NORMAL" };
            self.connection.pragma_update(None, "synchronous", level)?;
            self.flushing = flush;
        }
        Ok(())
    }
}

/// The thread's loop: runs until every handle is gone and nothing is queued,
/// then closes the connection (opened with `synchronous=FULL`).
pub(super) fn run(connection: Connection, requests: &Receiver<Request>, shared: &Arc<Shared>) {
    let mut writer = Writer { connection, flushing: true };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut follow_up = Vec::new();
    loop {
        batch.append(&mut follow_up);
        if batch.is_empty() {
            match requests.recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&mut writer, shared, &mut batch, &mut follow_up);
    }
    if let Err((_, error)) = writer.connection.close() {
        tracing::debug!(target: "conc_bus", %error, "closing the SQLite queue file failed");
    }
}

/// Runs `batch` in one transaction and answers every request once it has
/// committed (or failed as a whole).
fn run_batch(
    writer: &mut Writer,
    shared: &Shared,
    batch: &mut Vec<Request>,
    follow_up: &mut Vec<Request>,
) {
    let flush = match shared.settings.synchronous {
        Synchronous::Full => true,
        Synchronous::Normal => false,
        Synchronous::Balanced => batch.iter().any(Request::flushed_when_balanced),
    };
    let result = execute(writer, shared, batch, flush);
    let committed = result.as_ref().map(|_| ());
    for request in batch.drain(..) {
        request.answer(committed, follow_up);
    }
    if let Err(error) = &result {
        tracing::debug!(target: "conc_bus", %error, "a batch of SQLite queue requests failed");
    }
    if matches!(result, Ok(true)) {
        shared.wake.notify_waiters();
        shared.wake.notify_one();
    }
}

/// Runs every request of `batch` in one transaction and commits it; whether
/// a job may have become available.
fn execute(
    writer: &mut Writer,
    shared: &Shared,
    batch: &mut [Request],
    flush: bool,
) -> rusqlite::Result<bool> {
    writer.flush(flush)?;
    let connection = &writer.connection;
    let begin = if batch.iter().any(Request::writes) { "BEGIN IMMEDIATE" } else { "BEGIN" };
    connection.prepare_cached(begin)?.execute([])?;
    let tx = Tx {
        conn: connection,
        now: shared.clock.now(),
        settings: &shared.settings,
        woke: Cell::new(false),
        progress: RefCell::default(),
    };
    let result = batch
        .iter_mut()
        .try_for_each(|request| request.run(&tx))
        .and_then(|()| connection.prepare_cached("COMMIT")?.execute([]).map(drop));
    match result {
        Ok(()) => {
            for progress in tx.progress.take() {
                shared.progress.send(progress);
            }
            Ok(tx.woke.get())
        }
        Err(error) => {
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            Err(error)
        }
    }
}

/// A copy of `error` for each request of a batch that failed as a whole.
///
/// `rusqlite::Error` is not `Clone`; the errors `BEGIN`, `SAVEPOINT` or
/// `COMMIT` give are `SqliteFailure`s, which copy exactly. Anything else is
/// copied as a `SqliteFailure` carrying its message.
pub(super) fn copy(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}
