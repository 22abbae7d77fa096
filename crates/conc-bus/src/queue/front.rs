//! [`Queue`]: the typed front of any backend — push jobs, look at queues,
//! pause them, and work the failed store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{Pushed, QueueBackend, QueueSize};
use super::dispatch::{EnqueueError, PendingDispatch};
use super::error::{PushError, QueueError};
use crate::clock::millis;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::{Envelope, Job, JobOptions};

/// What a push does when its queue is at its bound.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::Overflow;
///
/// let block = Overflow::Block { timeout: Duration::from_secs(5) };
/// assert_ne!(block, Overflow::Reject);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the push at once, handing the job back ([`EnqueueError::Full`]).
    #[default]
    Reject,
    /// Wait for room, up to `timeout`, then refuse as [`Reject`](Self::Reject) does.
    Block {
        /// The longest wait.
        timeout: Duration,
    },
}

/// The typed front of a queue backend: pushes jobs (one, delayed, with a
/// priority, in bulk), reports and steers queues, and works the failed store.
///
/// Clones share the backend.
///
/// # Examples
///
/// ```
/// use conc_bus::{Job, MemoryQueue, Queue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome { user: u64 }
/// impl Job for Welcome { const NAME: &'static str = "welcome"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::new(MemoryQueue::new());
/// queue.push(Welcome { user: 1 }).await?;
/// queue.push_bulk(vec![Welcome { user: 2 }, Welcome { user: 3 }]).await?;
/// assert_eq!(queue.size("default").await?.ready, 3);
///
/// queue.pause("default").await?;
/// assert!(queue.size("default").await?.paused);
/// # Ok(()) }
/// ```
pub struct Queue<B> {
    backend: Arc<B>,
    overflow: Overflow,
    /// Seals the payloads of jobs marked encrypted (feature `encryption`).
    #[cfg(feature = "encryption")]
    keyring: Option<Arc<crate::encryption::Keyring>>,
}

impl<B> Clone for Queue<B> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            overflow: self.overflow,
            #[cfg(feature = "encryption")]
            keyring: self.keyring.clone(),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for Queue<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.backend)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

impl<B: QueueBackend> Queue<B> {
    /// A queue front over `backend`, refusing pushes past a bound.
    pub fn new(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A queue front over a shared backend.
    pub fn from_arc(backend: Arc<B>) -> Self {
        Self {
            backend,
            overflow: Overflow::Reject,
            #[cfg(feature = "encryption")]
            keyring: None,
        }
    }

    /// The same front, sealing the payloads of jobs marked
    /// [`encrypted`](JobOptions::encrypted) with `keyring`'s sealing key
    /// (feature `encryption`). Without a keyring such a push is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::encryption::Keyring;
    /// use conc_bus::{MemoryQueue, Queue};
    ///
    /// let keyring = Keyring::new("k1", [42; 32])?;
    /// let queue = Queue::new(MemoryQueue::new()).with_keyring(keyring);
    /// # let _ = queue;
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    #[cfg(feature = "encryption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
    #[must_use]
    pub fn with_keyring(mut self, keyring: impl Into<Arc<crate::encryption::Keyring>>) -> Self {
        self.keyring = Some(keyring.into());
        self
    }

    /// The same front, with pushes to a full queue handled by `overflow`.
    /// Defaults to [`Overflow::Reject`].
    #[must_use]
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Pushes `job` with its type's options; its id.
    pub async fn push<J: Job>(&self, job: J) -> Result<JobId, EnqueueError<J>> {
        self.dispatch(job).await
    }

    /// A push of `job` whose options can be overridden before it is awaited.
    pub fn dispatch<J: Job>(&self, job: J) -> PendingDispatch<'_, B, J> {
        PendingDispatch::new(self, job)
    }

    /// Pushes `jobs` with their type's options, all or none; their ids in order.
    pub async fn push_bulk<J: Job>(
        &self,
        jobs: Vec<J>,
    ) -> Result<Vec<JobId>, EnqueueError<Vec<J>>> {
        let options = J::options();
        if let Err(error) = options.check() {
            return Err(EnqueueError::Invalid { job: jobs, error });
        }
        let now = self.backend.now();
        let mut pushed = Vec::with_capacity(jobs.len());
        for job in &jobs {
            match Envelope::new(job, &options, now) {
                Ok(envelope) => pushed.push(Pushed::new(envelope, now + millis(options.delay))),
                Err(error) => return Err(EnqueueError::Encode { job: jobs, error }),
            }
        }
        let ids = pushed.iter().map(|p| p.envelope.id).collect();
        match self.push_envelopes(pushed).await {
            Ok(()) => Ok(ids),
            Err(error) => Err(typed(error, jobs)),
        }
    }

    /// Pushes one job with `options` (and `id` if given).
    pub(super) async fn push_one<J: Job>(
        &self,
        job: J,
        options: &JobOptions,
        id: Option<JobId>,
        admission: Option<crate::admission::Ticket>,
    ) -> Result<JobId, EnqueueError<J>> {
        let pushed = match self.prepare_one(&job, options, id, admission) {
            Ok(pushed) => pushed,
            Err(error) => return Err(error.map(|()| job)),
        };
        let id = pushed.envelope.id;
        match self.push_envelopes(vec![pushed]).await {
            Ok(()) => Ok(id),
            Err(error) => Err(typed(error, job)),
        }
    }

    /// The stored form of one job with `options` (and `id` and `admission`
    /// if given), checked; the error carries no job.
    pub(super) fn prepare_one<J: Job>(
        &self,
        job: &J,
        options: &JobOptions,
        id: Option<JobId>,
        admission: Option<crate::admission::Ticket>,
    ) -> Result<Pushed, EnqueueError<()>> {
        if let Err(error) = options.check() {
            return Err(EnqueueError::Invalid { job: (), error });
        }
        let now = self.backend.now();
        let mut envelope = match Envelope::new(job, options, now) {
            Ok(envelope) => envelope,
            Err(error) => return Err(EnqueueError::Encode { job: (), error }),
        };
        if let Some(id) = id {
            envelope.id = id;
        }
        if let Some(ticket) = admission {
            envelope.flow_mut().admission = Some(ticket);
        }
        let available_at = now.saturating_add(millis(options.delay));
        Ok(Pushed::new(envelope, available_at))
    }

    /// Pushes stored envelopes, applying the overflow policy.
    pub async fn push_envelopes(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        let jobs = self.seal(jobs)?;
        let count = jobs.len() as u64;
        let pushed = self.push_with_overflow(jobs).await;
        if pushed.is_ok() {
            // A static key: counting a push allocates nothing.
            metrics::counter!(conc_core::metrics::BUS_JOBS_PUSHED).increment(count);
        }
        pushed
    }

    /// Seals the payloads of the jobs marked encrypted (and of the links of
    /// their chains); refused when there is no keyring to seal them with.
    #[cfg_attr(
        not(feature = "encryption"),
        allow(
            clippy::unused_self,
            reason = "without the `encryption` feature there is nothing to seal"
        )
    )]
    pub(super) fn seal(&self, jobs: Vec<Pushed>) -> Result<Vec<Pushed>, PushError> {
        let Some(name) = jobs.iter().find_map(|job| job.envelope.unsealed()) else {
            return Ok(jobs);
        };
        #[cfg(feature = "encryption")]
        if let Some(keyring) = &self.keyring {
            let mut jobs = jobs;
            for index in 0..jobs.len() {
                if let Err(error) = keyring.seal_flow(&mut jobs[index].envelope) {
                    let error = conc_core::config::ConfigError::new(
                        "keyring",
                        keyring.sealing_key_id(),
                        format!("must seal the payload: {error}"),
                    );
                    return Err(PushError::Invalid { error, jobs });
                }
            }
            return Ok(jobs);
        }
        let error = conc_core::config::ConfigError::new(
            "keyring",
            name,
            "must be set on the queue (Queue::with_keyring, feature `encryption`) to push a job marked encrypted",
        );
        Err(PushError::Invalid { error, jobs })
    }

    async fn push_with_overflow(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        let Overflow::Block { timeout } = self.overflow else {
            return self.backend.push(jobs).await;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let mut jobs = jobs;
        loop {
            match self.backend.push(jobs).await {
                Err(PushError::Full { jobs: back, queue, capacity }) => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(PushError::Full { queue, capacity, jobs: back });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                    jobs = back;
                }
                other => return other,
            }
        }
    }

    /// The jobs of `queue`, by state. Also sets the queue's depth gauge
    /// (ready and delayed jobs) in the `metrics` facade.
    pub async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        let size = self.backend.size(queue).await?;
        let depth = (size.ready + size.delayed) as f64;
        metrics::gauge!(conc_core::metrics::BUS_QUEUE_DEPTH, "queue" => queue.to_owned())
            .set(depth);
        Ok(size)
    }

    /// Up to `limit` ready jobs of `queue`, in the order they would run.
    pub async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        self.backend.peek(queue, limit).await
    }

    /// Deletes the ready and delayed jobs of `queue`; how many.
    pub async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.backend.clear(queue).await
    }

    /// Stops workers from taking jobs of `queue` (jobs already taken finish).
    pub async fn pause(&self, queue: &str) -> Result<(), QueueError> {
        self.backend.set_paused(queue, true).await
    }

    /// Lets workers take jobs of `queue` again.
    pub async fn resume(&self, queue: &str) -> Result<(), QueueError> {
        self.backend.set_paused(queue, false).await
    }

    /// Bounds the ready and delayed jobs of `queue` (`None`: no bound).
    pub async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.backend.set_capacity(queue, capacity).await
    }

    /// The queues the backend knows.
    pub async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.backend.queues().await
    }

    /// A page of failed jobs.
    pub async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.backend.failed(query).await
    }

    /// The failed job `id`.
    pub async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.backend.failed_job(id).await
    }

    /// How many failed jobs are stored (of `queue` when given). Also sets the
    /// failed store's size gauge in the `metrics` facade (labelled with the
    /// queue, or `all`).
    pub async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        let count = self.backend.failed_count(queue).await?;
        let label = queue.unwrap_or("all").to_owned();
        metrics::gauge!(conc_core::metrics::BUS_FAILED_SIZE, "queue" => label).set(count as f64);
        Ok(count)
    }

    /// Puts the selected failed jobs back on their queues (ids, histories and
    /// errors kept; attempts reset); the ids retried.
    pub async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.backend.retry_failed(selection).await
    }

    /// Deletes the failed job `id`; whether it was there.
    pub async fn forget(&self, id: JobId) -> Result<bool, QueueError> {
        Ok(self.backend.forget_failed(&Selection::Ids(vec![id])).await? > 0)
    }

    /// Deletes every failed job; how many.
    pub async fn flush_failed(&self) -> Result<u64, QueueError> {
        self.backend.forget_failed(&Selection::All).await
    }

    /// Deletes the failed jobs that failed more than `age` ago; how many.
    pub async fn prune_failed(&self, age: Duration) -> Result<u64, QueueError> {
        let cutoff = self.backend.now().saturating_sub(millis(age));
        self.backend.forget_failed(&Selection::FailedBefore(cutoff)).await
    }
}

/// A backend's refusal with the typed job handed back in place of its envelopes.
pub(super) fn typed<T>(error: PushError, job: T) -> EnqueueError<T> {
    match error {
        PushError::Full { queue, capacity, .. } => EnqueueError::Full { job, queue, capacity },
        PushError::Duplicate { id, .. } => EnqueueError::Duplicate { job, id },
        PushError::Locked { key, held_by, .. } => EnqueueError::Locked { job, key, held_by },
        PushError::Invalid { error, .. } => EnqueueError::Invalid { job, error },
        PushError::Backend { error, .. } => EnqueueError::Backend { job, error },
    }
}
