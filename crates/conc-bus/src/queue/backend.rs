//! The contract every queue backend keeps: [`QueueBackend`] and its failed
//! store, [`FailedStore`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::beat::WorkerBeat;
use super::error::{PushError, QueueError};
use super::lease::{Lease, Reserved};
use super::settle::Transition;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;

/// A job handed to [`QueueBackend::push`]: its envelope and when it becomes
/// available (Unix ms; now or earlier for at once).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed {
    /// The job.
    pub envelope: Envelope,
    /// When it may first be reserved, in Unix milliseconds.
    pub available_at: u64,
}

impl Pushed {
    /// `envelope`, available at `available_at` (Unix ms).
    pub fn new(envelope: Envelope, available_at: u64) -> Self {
        Self { envelope, available_at }
    }
}

/// What one reservation call asks for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ReserveRequest<'a> {
    /// The queues to take from, in priority order: a job of an earlier queue
    /// is taken before any job of a later one.
    pub queues: &'a [String],
    /// The most jobs to take.
    pub max: usize,
    /// How long each lease lasts unless extended.
    pub lease: Duration,
}

impl<'a> ReserveRequest<'a> {
    /// Up to `max` jobs of `queues` (in priority order), leased for `lease`.
    pub fn new(queues: &'a [String], max: usize, lease: Duration) -> Self {
        Self { queues, max, lease }
    }
}

/// What one reservation call got: the jobs now leased to the caller, and the
/// jobs the backend moved to the failed store instead because they had used
/// up their attempts or passed their deadline.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Reservation {
    /// The jobs leased to the caller, in the order to run them.
    pub jobs: Vec<Reserved>,
    /// Jobs found dead at reservation, stored as failed.
    pub dead: Vec<FailedJob>,
}

/// How many jobs a queue holds, by state.
///
/// # Examples
///
/// ```
/// use conc_bus::QueueSize;
///
/// let mut size = QueueSize::default();
/// (size.ready, size.delayed, size.reserved) = (2, 1, 3);
/// assert_eq!(size.total(), 6);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueSize {
    /// Available now.
    pub ready: u64,
    /// Available later (delayed, or backing off before a retry).
    pub delayed: u64,
    /// Leased to a worker.
    pub reserved: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// How long the oldest ready job has waited, in milliseconds.
    pub oldest_wait_ms: u64,
}

impl QueueSize {
    /// Ready, delayed and reserved jobs together.
    pub fn total(&self) -> u64 {
        self.ready + self.delayed + self.reserved
    }
}

/// What a transition did to its job.
///
/// # Examples
///
/// ```
/// use conc_bus::{FailReason, Settlement};
///
/// let dead = Settlement::Dead(FailReason::AttemptsExhausted);
/// assert!(matches!(dead, Settlement::Dead(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The job was acknowledged and deleted.
    Acked,
    /// The job went back to its queue, available at this Unix millisecond.
    Requeued {
        /// When it becomes available.
        available_at: u64,
    },
    /// The job went to the failed store.
    Dead(crate::failed::FailReason),
    /// The lease now lapses at this Unix millisecond.
    Extended {
        /// The new expiry.
        expires_at: u64,
    },
    /// Progress or a checkpoint was saved; the lease is unchanged.
    Saved,
    /// The lease now lapses at this Unix millisecond, and the job is asked to
    /// stop: its batch was cancelled.
    StopAsked {
        /// The new expiry.
        expires_at: u64,
    },
    /// The job did not go back to its queue: its batch was cancelled, and it
    /// counts as cancelled.
    Skipped,
}

/// The result of one transition of a batch: what it did, or a refusal because
/// the lease it carried is no longer the job's.
pub type Settled = Result<Settlement, super::error::LeaseLost>;

/// Storage for queued jobs: where envelopes, their availability, leases and
/// attempt counts live. [`Queue`](crate::Queue) and the
/// [`Worker`](crate::Worker) put the user-facing API on top of any backend.
///
/// Every backend keeps the same contract, checked by the crate's conformance
/// suite (delivery is at least once):
///
/// - `push` stores every job or none; a refused push hands the jobs back.
/// - `reserve` first moves expired leases back to their queues (in bounded
///   chunks), then leases up to `max` available jobs of unpaused queues,
///   highest priority first, oldest first within a priority; each
///   reservation adds one to the job's attempts and gives a fresh
///   [`LeaseToken`](crate::LeaseToken). A job whose attempts are used up
///   (its last attempt never reported: the worker died) or whose
///   `retry_until` has passed goes to the failed store instead, saying which
///   limit tripped.
/// - Every transition ([`Transition`]) carries the lease; one whose token is
///   not the job's current one, or whose lease expired, is refused as
///   [`LeaseLost`](super::error::LeaseLost) and changes nothing.
/// - Times are the backend's own (Unix milliseconds from its clock).
///
/// Backends that also keep batches, chains and unique or debounced jobs
/// implement [`WorkflowBackend`](crate::queue::WorkflowBackend), whose
/// effects they apply inside `push`, `reserve` and `settle`.
pub trait QueueBackend: FailedStore + fmt::Debug + Send + Sync + 'static {
    /// Stores `jobs`, all or none.
    fn push(&self, jobs: Vec<Pushed>) -> impl Future<Output = Result<(), PushError>> + Send;

    /// Leases up to `request.max` available jobs.
    fn reserve(
        &self,
        request: ReserveRequest<'_>,
    ) -> impl Future<Output = Result<Reservation, QueueError>> + Send;

    /// Applies each transition to the job its lease names, in order; the
    /// answer has one entry per transition.
    fn settle(
        &self,
        batch: Vec<(Lease, Transition)>,
    ) -> impl Future<Output = Result<Vec<Settled>, QueueError>> + Send;

    /// Applies `batch` as [`settle`](Self::settle) does and reserves as
    /// [`reserve`](Self::reserve) does, the batch sent first so that the
    /// reservation sees what it changed (room freed under a global
    /// concurrency bound, for one). A worker sends its acknowledgements and
    /// its next reservation this way.
    ///
    /// The default runs one call after the other. A backend that can send
    /// both at once saves a round trip: Redis pipelines the two scripts on
    /// one connection, in order. Such a backend may, rarely, run the
    /// reservation before the batch took effect (Redis: when the server had
    /// to be sent a script first, or when the batch needed its jobs read
    /// first), so a short reservation from this call does not prove that
    /// nothing is available.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{Job, MemoryQueue, Queue, QueueBackend, ReserveRequest, Transition};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = MemoryQueue::new();
    /// Queue::new(backend.clone()).push_bulk(vec![Ping, Ping]).await?;
    /// let queues = ["default".to_owned()];
    /// let first = backend.reserve(ReserveRequest::new(&queues, 1, Duration::from_secs(30))).await?;
    /// let acks = first.jobs.into_iter().map(|job| (job.lease, Transition::Ack)).collect();
    /// let request = ReserveRequest::new(&queues, 1, Duration::from_secs(30));
    /// let (settled, next) = backend.settle_and_reserve(acks, request).await;
    /// assert!(settled?[0].is_ok());
    /// assert_eq!(next?.jobs.len(), 1);
    /// # Ok(()) }
    /// ```
    fn settle_and_reserve(
        &self,
        batch: Vec<(Lease, Transition)>,
        request: ReserveRequest<'_>,
    ) -> impl Future<Output = (Result<Vec<Settled>, QueueError>, Result<Reservation, QueueError>)> + Send
    {
        async move {
            let settled = self.settle(batch).await;
            let reserved = self.reserve(request).await;
            (settled, reserved)
        }
    }

    /// The jobs of `queue`, by state.
    fn size(&self, queue: &str) -> impl Future<Output = Result<QueueSize, QueueError>> + Send;

    /// Up to `limit` jobs of `queue` that are ready, in the order they would be
    /// reserved, without reserving them.
    fn peek(
        &self,
        queue: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Envelope>, QueueError>> + Send;

    /// Deletes the ready and delayed jobs of `queue` (not the reserved ones);
    /// the number deleted.
    fn clear(&self, queue: &str) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Stops (`true`) or restarts (`false`) reservations from `queue`.
    fn set_paused(
        &self,
        queue: &str,
        paused: bool,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Bounds the jobs `queue` holds ready or delayed (reserved ones aside):
    /// a push past the bound is refused as [`PushError::Full`] with the jobs
    /// handed back. `None` removes the bound (the default).
    fn set_capacity(
        &self,
        queue: &str,
        capacity: Option<u64>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The queues that hold or held jobs, or were paused, sorted by name.
    fn queues(&self) -> impl Future<Output = Result<Vec<String>, QueueError>> + Send;

    /// Waits until a job may have become available on one of `queues`, or
    /// `timeout` passed. Backends that cannot be told (another process pushed)
    /// just wait out the timeout, which is then the poll interval.
    fn wait(&self, queues: &[String], timeout: Duration) -> impl Future<Output = ()> + Send;

    /// The backend's clock, in Unix milliseconds.
    fn now(&self) -> u64;

    /// Whether each of `queues` is paused, in order (a queue the backend
    /// does not know is not). A worker asks at each heartbeat, to say it is
    /// paused when all its queues are.
    ///
    /// The default reads each queue's [`size`](Self::size); the backends of
    /// this crate read the flag alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{MemoryQueue, QueueBackend};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = MemoryQueue::new();
    /// backend.set_paused("mail", true).await?;
    /// let queues = ["mail".to_owned(), "default".to_owned()];
    /// assert_eq!(backend.paused_queues(&queues).await?, [true, false]);
    /// # Ok(()) }
    /// ```
    fn paused_queues(
        &self,
        queues: &[String],
    ) -> impl Future<Output = Result<Vec<bool>, QueueError>> + Send {
        async move {
            let mut out = Vec::with_capacity(queues.len());
            for queue in queues {
                out.push(self.size(queue).await?.paused);
            }
            Ok(out)
        }
    }

    /// Records `beat`, replacing the one of the same worker id, and deletes
    /// the beats of workers gone (see [`WorkerBeat::is_gone`]). Workers call
    /// it every heartbeat interval, off their hot path.
    ///
    /// The default stores nothing: a backend that cannot keep beats lists no
    /// workers. Every backend of this crate keeps them.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{MemoryQueue, QueueBackend, WorkerBeat};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = MemoryQueue::new();
    /// let mut beat = WorkerBeat::new("w-1", "mailer");
    /// (beat.beat_at, beat.interval_ms) = (backend.now(), 5_000);
    /// backend.record_worker(&beat).await?;
    /// assert_eq!(backend.workers().await?, vec![beat]);
    /// assert!(backend.remove_worker("w-1").await?);
    /// assert!(backend.workers().await?.is_empty());
    /// # Ok(()) }
    /// ```
    fn record_worker(
        &self,
        beat: &WorkerBeat,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        let _ = beat;
        async { Ok(()) }
    }

    /// Deletes the beat of worker `id` (a worker that stops gracefully calls
    /// it); whether there was one. The default has none to delete.
    fn remove_worker(&self, id: &str) -> impl Future<Output = Result<bool, QueueError>> + Send {
        let _ = id;
        async { Ok(false) }
    }

    /// The workers whose last beat is recent enough (not
    /// [gone](WorkerBeat::is_gone) at [`now`](Self::now)), of every process
    /// sharing the store, sorted by host, process id, name and id. The
    /// default lists none.
    fn workers(&self) -> impl Future<Output = Result<Vec<WorkerBeat>, QueueError>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// Where jobs that ran out of attempts (or failed for good) are kept, with
/// their errors, until retried or pruned.
pub trait FailedStore: Send + Sync + 'static {
    /// Failed jobs matching `query`, oldest first, a page at a time.
    fn failed(
        &self,
        query: &FailedQuery,
    ) -> impl Future<Output = Result<Vec<FailedJob>, QueueError>> + Send;

    /// The failed job `id`.
    fn failed_job(
        &self,
        id: JobId,
    ) -> impl Future<Output = Result<Option<FailedJob>, QueueError>> + Send;

    /// How many failed jobs are stored (of `queue` when given).
    fn failed_count(
        &self,
        queue: Option<&str>,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Puts the selected failed jobs back on their queues, available now, with
    /// their ids, histories and errors kept and their attempt and exception
    /// counts reset; the ids retried.
    fn retry_failed(
        &self,
        selection: &Selection,
    ) -> impl Future<Output = Result<Vec<JobId>, QueueError>> + Send;

    /// Deletes the selected failed jobs; how many.
    fn forget_failed(
        &self,
        selection: &Selection,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send;
}
