//! [`SqliteQueue`]: durable queues and a failed store in a SQLite file,
//! shared by the processes of one machine.

mod admin;
mod admit;
mod builder;
mod error;
mod flow;
mod listing;
mod row;
mod schema;
mod store;
mod within;
mod workers;
mod workflow;
mod writer;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

pub use builder::SqliteQueueBuilder;
use writer::{Call, PushCall, Request, ReserveArgs, Shared};

use super::backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled,
};
use super::beat::WorkerBeat;
use super::error::{PushError, QueueError};
use super::lease::Lease;
use super::settle::Transition;
use crate::clock::millis;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;

/// Which commits a [`SqliteQueue`] flushes to disk (SQLite's `synchronous`
/// setting, chosen per transaction).
///
/// In WAL mode every commit survives a crash of the process; a flushed
/// commit also survives a power cut or an operating-system crash, at the
/// cost of one `fsync` (shared by every request of the transaction).
///
/// # Examples
///
/// ```
/// use conc_bus::Synchronous;
///
/// assert_eq!(Synchronous::default(), Synchronous::Balanced);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is flushed (`synchronous=FULL`): nothing acknowledged is
    /// lost to a power cut.
    Full,
    /// Commits that store jobs or change them outside the lease cycle
    /// (pushes, retries and deletes of failed jobs, clear, pause, resume,
    /// bounds) are flushed; reservations and settlements are not. A power cut
    /// can then undo the last reservations and acknowledgements, which brings
    /// those jobs back to run again: at least once still holds, and no pushed
    /// job is lost. Lease tokens stay unique across the cut.
    #[default]
    Balanced,
    /// No commit is flushed (`synchronous=NORMAL`): a power cut can lose the
    /// last pushes too. The fastest.
    Normal,
}

/// Queues and a failed store in a SQLite file: every contract of
/// [`QueueBackend`] kept, and the jobs kept across restarts. Several
/// processes of one machine may share the file; each of their
/// reservations takes distinct jobs.
///
/// # How it works
///
/// Each job is a row of `conc_bus_jobs` (ready, delayed, leased), each
/// failed job one of `conc_bus_failed`; pauses and bounds are rows of
/// `conc_bus_queues`, so every process sharing the file sees them. A
/// reservation first moves due delayed jobs and expired leases back to ready
/// (at most 1,024 of each per queue), then claims up to `max` jobs of each
/// queue in turn with one `UPDATE … RETURNING`, highest priority first, then
/// by the time they became available, then in push order; each gets a lease
/// token from a counter in the file (unique for the job across restarts) and
/// its attempt counted. Every transition is checked against the token and the
/// lease's expiry in its `WHERE` clause. Recovery rests on lease expiry
/// alone: a process starting up never assumes that leased jobs are orphans,
/// since other processes may hold them.
///
/// # Connection and throughput
///
/// The queue owns one connection, used by one thread of its own; clones share
/// it. Async calls send their request to that thread and await the answer, so
/// they never block the runtime. The thread runs every request waiting when
/// it gets to work (up to 64) in **one transaction** — `BEGIN IMMEDIATE` when
/// any of them writes — each in a savepoint of its own, so concurrent callers
/// share a commit and its flush (group commit) and one refused request
/// leaves the others' work in place. Workers reserve and settle in batches,
/// so a busy worker costs a few transactions per batch of jobs, not per job.
/// Other processes' writes are waited for up to the busy timeout.
///
/// # Waiting
///
/// [`wait`](QueueBackend::wait) wakes at once when this queue (or a clone)
/// pushes, retries or releases a job, or resumes a queue. A push from another
/// process or another `SqliteQueue` is seen at the next poll: the worker's
/// `poll_interval`.
///
/// # Time
///
/// Stored times are Unix milliseconds from the queue's clock (by default
/// the system's time). Processes sharing the file must agree on it: they run
/// on one machine, which WAL mode needs anyway (not on a network file
/// system).
///
/// # Corrupt rows
///
/// A row that does not decode (edited by hand, written by a foreign tool) is
/// reported as [`QueueError::Corrupt`], never a panic. A queued job's row is
/// then set aside (state 3 in `conc_bus_jobs`, kept for inspection) so it
/// stops blocking its queue; the call that met it changed nothing else.
///
/// # Schema versions
///
/// The file records its schema version (`PRAGMA user_version`); opening
/// migrates an older file in one transaction and refuses a newer one with a
/// clear error rather than misreading it.
///
/// # Examples
///
/// ```
/// use conc_bus::{JobHandlers, Job, JobContext, JobError, Queue, SqliteQueue, Worker};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Invoice { order: u64 }
/// impl Job for Invoice { const NAME: &'static str = "invoice"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("jobs.db");
/// Queue::new(SqliteQueue::open(&path)?).push(Invoice { order: 7 }).await?;
///
/// // Another process (here, another handle) opening the file finds the job.
/// let backend = SqliteQueue::open(&path)?;
/// let handlers = JobHandlers::new().handle(|job: Invoice, _: JobContext| async move {
///     assert_eq!(job.order, 7);
///     Ok::<(), JobError>(())
/// });
/// Worker::builder(backend, handlers).stop_when_empty(true).build()?.run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteQueue {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    path: std::path::PathBuf,
    busy_timeout: Duration,
}

impl SqliteQueue {
    /// Opens (creating when missing) the queue file at `path` with the
    /// default settings; see [`builder`](Self::builder) for the others.
    ///
    /// # Errors
    ///
    /// As [`SqliteQueueBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{Queue, SqliteQueue};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let queue = Queue::new(SqliteQueue::open(dir.path().join("jobs.db"))?);
    /// # let _ = queue;
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, QueueError> {
        Self::builder(path).open()
    }

    /// Settings for a queue on the file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::SqliteQueue;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteQueue::builder(dir.path().join("jobs.db"))
    ///     .busy_timeout(Duration::from_millis(500))
    ///     .open()?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> SqliteQueueBuilder {
        SqliteQueueBuilder::new(path.as_ref().to_path_buf())
    }

    /// The path of the file, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::SqliteQueue;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteQueue::open(dir.path().join("jobs.db"))?;
    /// assert!(backend.path().ends_with("jobs.db"));
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How long a transaction waits for another process's write.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::SqliteQueue;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteQueue::open(dir.path().join("jobs.db"))?;
    /// assert_eq!(backend.busy_timeout(), Duration::from_secs(5), "the default");
    /// # Ok(()) }
    /// ```
    pub fn busy_timeout(&self) -> Duration {
        self.inner.busy_timeout
    }

    /// Which commits are flushed to disk.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{SqliteQueue, Synchronous};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let backend = SqliteQueue::open(dir.path().join("jobs.db"))?;
    /// assert_eq!(backend.synchronous(), Synchronous::Balanced);
    /// # Ok(()) }
    /// ```
    pub fn synchronous(&self) -> Synchronous {
        self.inner.shared.settings.synchronous
    }

    /// Sends a request to the connection thread and waits for its answer.
    async fn call<A, T>(
        &self,
        args: A,
        request: fn(Call<A, T>) -> Request,
    ) -> Result<T, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.inner.requests.send(request(Call::new(args, reply))).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The answer to a reservation on its way. A caller that stops waiting
/// after the thread answered gives the jobs back at once: a reservation never
/// leaves jobs leased to nobody until their leases expire.
struct Receiving<'a> {
    answer: oneshot::Receiver<Result<Reservation, QueueError>>,
    requests: &'a mpsc::Sender<Request>,
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        if let Ok(Ok(reservation)) = self.answer.try_recv() {
            let leases: Vec<_> =
                reservation.jobs.iter().map(|job| (job.lease.job, job.lease.token)).collect();
            if !leases.is_empty() {
                let _ = self.requests.send(Request::Unclaim(leases));
            }
        }
    }
}

/// The connection thread is gone (it panicked); no operation can run.
fn stopped() -> QueueError {
    QueueError::Backend("the SQLite queue file's connection thread has stopped".into())
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.inner.path)
            .field("busy_timeout", &self.inner.busy_timeout)
            .field("synchronous", &self.inner.shared.settings.synchronous)
            .finish_non_exhaustive()
    }
}

impl QueueBackend for SqliteQueue {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::SendError(request)) =
            self.inner.requests.send(Request::Push(PushCall::new(jobs, reply)))
        {
            let jobs = match request {
                Request::Push(call) => call.into_jobs(),
                _ => Vec::new(),
            };
            return Err(PushError::Backend { error: stopped().into(), jobs });
        }
        // The thread answers every push it takes, jobs included, before it
        // drops the reply.
        answer.await.unwrap_or_else(|_| {
            Err(PushError::Backend { error: stopped().into(), jobs: Vec::new() })
        })
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        if request.max == 0 || request.queues.is_empty() {
            return Ok(Reservation::default());
        }
        let args = ReserveArgs {
            queues: request.queues.to_vec(),
            max: request.max,
            lease_ms: millis(request.lease),
        };
        let (reply, answer) = oneshot::channel();
        let request = Request::Reserve(Call::new(args, reply));
        self.inner.requests.send(request).map_err(|_| stopped())?;
        let mut receiving = Receiving { answer, requests: &self.inner.requests };
        (&mut receiving.answer).await.map_err(|_| stopped())?
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.call(batch, Request::Settle).await
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        self.call(queue.to_owned(), Request::Size).await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        self.call((queue.to_owned(), limit), Request::Peek).await
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.call(queue.to_owned(), Request::Clear).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.call((queue.to_owned(), paused), Request::SetPaused).await
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.call((queue.to_owned(), capacity), Request::SetCapacity).await
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.call((), Request::Queues).await
    }

    async fn wait(&self, _queues: &[String], timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.shared.wake.notified()).await;
    }

    fn now(&self) -> u64 {
        self.inner.shared.clock.now()
    }

    async fn paused_queues(&self, queues: &[String]) -> Result<Vec<bool>, QueueError> {
        self.call(queues.to_vec(), Request::PausedQueues).await
    }

    async fn record_worker(&self, beat: &WorkerBeat) -> Result<(), QueueError> {
        self.call(beat.clone(), Request::RecordWorker).await
    }

    async fn remove_worker(&self, id: &str) -> Result<bool, QueueError> {
        self.call(id.to_owned(), Request::RemoveWorker).await
    }

    async fn workers(&self) -> Result<Vec<WorkerBeat>, QueueError> {
        self.call((), Request::Workers).await
    }
}

impl FailedStore for SqliteQueue {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.call(query.clone(), Request::Failed).await
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.call(id, Request::FailedJob).await
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        self.call(queue.map(str::to_owned), Request::FailedCount).await
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.call(selection.clone(), Request::RetryFailed).await
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        self.call(selection.clone(), Request::ForgetFailed).await
    }
}
