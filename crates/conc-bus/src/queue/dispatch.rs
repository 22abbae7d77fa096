//! [`PendingDispatch`]: one push with its options overridden, awaited to send
//! it; [`EnqueueError`]: a refused push, the job handed back.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::time::{Duration, SystemTime};

use conc_core::BoxError;
use conc_core::config::ConfigError;

use super::backend::QueueBackend;
use super::front::Queue;
use crate::id::JobId;
use crate::job::{DecodeError, Job, JobOptions};

/// Why a push was refused. The job (or jobs, for a bulk push) is handed back
/// in every case.
///
/// # Examples
///
/// ```
/// use conc_bus::{EnqueueError, Job, MemoryQueue, Queue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, PartialEq)]
/// struct Ping(u32);
/// impl Job for Ping { const NAME: &'static str = "ping"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let queue = Queue::new(MemoryQueue::new());
/// let err = queue.dispatch(Ping(7)).priority(200).await.unwrap_err();
/// assert!(matches!(err, EnqueueError::Invalid { .. }));
/// assert_eq!(err.into_job(), Ping(7));
/// # }
/// ```
#[non_exhaustive]
pub enum EnqueueError<T> {
    /// The queue is at its bound and refuses more.
    Full {
        /// What was pushed.
        job: T,
        /// The queue.
        queue: String,
        /// Its bound.
        capacity: u64,
    },
    /// A setting of the dispatch was refused.
    Invalid {
        /// What was pushed.
        job: T,
        /// What was wrong.
        error: ConfigError,
    },
    /// The job did not serialize.
    Encode {
        /// What was pushed.
        job: T,
        /// The serializer's complaint.
        error: DecodeError,
    },
    /// A job with this id is already stored.
    Duplicate {
        /// What was pushed.
        job: T,
        /// The id.
        id: JobId,
    },
    /// The job is unique and its key is held by another job.
    Locked {
        /// What was pushed.
        job: T,
        /// The admission key.
        key: String,
        /// The job that holds it.
        held_by: JobId,
    },
    /// The backend failed. If the failure came after the write landed, the
    /// job may be stored: pushing again with the same id is safe (a stored id
    /// is refused as a duplicate).
    Backend {
        /// What was pushed.
        job: T,
        /// The backend's error.
        error: BoxError,
    },
    /// The command bus it was dispatched on has no queue.
    NoQueue {
        /// What was pushed.
        job: T,
    },
}

impl<T> EnqueueError<T> {
    /// What was pushed, handed back.
    pub fn into_job(self) -> T {
        match self {
            Self::Full { job, .. }
            | Self::Invalid { job, .. }
            | Self::Encode { job, .. }
            | Self::Duplicate { job, .. }
            | Self::Locked { job, .. }
            | Self::Backend { job, .. }
            | Self::NoQueue { job } => job,
        }
    }

    /// The same error around another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> EnqueueError<U> {
        match self {
            Self::Full { job, queue, capacity } => {
                EnqueueError::Full { job: f(job), queue, capacity }
            }
            Self::Invalid { job, error } => EnqueueError::Invalid { job: f(job), error },
            Self::Encode { job, error } => EnqueueError::Encode { job: f(job), error },
            Self::Duplicate { job, id } => EnqueueError::Duplicate { job: f(job), id },
            Self::Locked { job, key, held_by } => {
                EnqueueError::Locked { job: f(job), key, held_by }
            }
            Self::Backend { job, error } => EnqueueError::Backend { job: f(job), error },
            Self::NoQueue { job } => EnqueueError::NoQueue { job: f(job) },
        }
    }
}

impl<T> fmt::Debug for EnqueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { queue, capacity, .. } => {
                f.debug_struct("Full").field("queue", queue).field("capacity", capacity).finish()
            }
            Self::Invalid { error, .. } => f.debug_struct("Invalid").field("error", error).finish(),
            Self::Encode { error, .. } => f.debug_struct("Encode").field("error", error).finish(),
            Self::Duplicate { id, .. } => f.debug_struct("Duplicate").field("id", id).finish(),
            Self::Locked { key, held_by, .. } => {
                f.debug_struct("Locked").field("key", key).field("held_by", held_by).finish()
            }
            Self::Backend { error, .. } => f.debug_struct("Backend").field("error", error).finish(),
            Self::NoQueue { .. } => f.write_str("NoQueue"),
        }
    }
}

impl<T> fmt::Display for EnqueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { queue, capacity, .. } => {
                write!(f, "queue `{queue}` is full ({capacity} jobs); the job was handed back")
            }
            Self::Invalid { error, .. } => write!(f, "{error}; the job was handed back"),
            Self::Encode { error, .. } => write!(f, "{error}; the job was handed back"),
            Self::Duplicate { id, .. } => {
                write!(f, "job {id} is already stored; the job was handed back")
            }
            Self::Locked { key, held_by, .. } => {
                write!(f, "key `{key}` is held by job {held_by}; the job was handed back")
            }
            Self::Backend { error, .. } => {
                write!(f, "queue backend failed: {error}; the job was handed back")
            }
            Self::NoQueue { .. } => {
                f.write_str("the bus has no queue to push onto; the job was handed back")
            }
        }
    }
}

impl<T> std::error::Error for EnqueueError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid { error, .. } => Some(error),
            Self::Encode { error, .. } => Some(error),
            Self::Backend { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// A push of one job with options overridden for this dispatch; `.await` it
/// to push. Starts from the job type's [`Job::options`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{Job, MemoryQueue, Queue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Report { month: u8 }
/// impl Job for Report { const NAME: &'static str = "report"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::new(MemoryQueue::new());
/// let id = queue
///     .dispatch(Report { month: 3 })
///     .on_queue("reports")
///     .delay(Duration::from_secs(60))
///     .priority(2)
///     .await?;
/// assert_eq!(queue.size("reports").await?.delayed, 1);
/// # let _ = id; Ok(()) }
/// ```
#[must_use = "a dispatch does nothing until it is awaited"]
pub struct PendingDispatch<'a, B, J> {
    queue: &'a Queue<B>,
    job: J,
    options: JobOptions,
    id: Option<JobId>,
    admission: Option<crate::admission::Ticket>,
}

impl<B, J> fmt::Debug for PendingDispatch<'_, B, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingDispatch")
            .field("job", &std::any::type_name::<J>())
            .field("queue", &self.options.queue_name())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'a, B: QueueBackend, J: Job> PendingDispatch<'a, B, J> {
    pub(super) fn new(queue: &'a Queue<B>, job: J) -> Self {
        Self { queue, job, options: J::options(), id: None, admission: None }
    }

    /// Sends the job to `queue` instead of its type's queue.
    pub fn on_queue(mut self, queue: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.options = self.options.queue(queue);
        self
    }

    /// Makes the job available after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.options = self.options.delay(delay);
        self
    }

    /// Sets the job's priority, 0 to [`MAX_PRIORITY`](crate::MAX_PRIORITY).
    pub fn priority(mut self, priority: u8) -> Self {
        self.options = self.options.priority(priority);
        self
    }

    /// Sets how many attempts the job has, the first included.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.options = self.options.max_attempts(max_attempts);
        self
    }

    /// Sets how many failed attempts end the job (releases aside).
    pub fn max_exceptions(mut self, max_exceptions: u32) -> Self {
        self.options = self.options.max_exceptions(max_exceptions);
        self
    }

    /// Sets the retry delays, one per retry, the last repeating. (A backoff
    /// policy can be set on the job type; a dispatch stores a list.)
    pub fn backoff(mut self, delays: impl Into<Vec<Duration>>) -> Self {
        self.options = self.options.backoff(delays.into());
        self
    }

    /// Sets a deadline after which the job is not tried again.
    pub fn retry_until(mut self, deadline: SystemTime) -> Self {
        self.options = self.options.retry_until(deadline);
        self
    }

    /// Sets how long one attempt may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.timeout(timeout);
        self
    }

    /// Sets whether a timed-out attempt fails the job at once.
    pub fn fail_on_timeout(mut self, fail: bool) -> Self {
        self.options = self.options.fail_on_timeout(fail);
        self
    }

    /// Runs the job through the named middleware `name` too (see
    /// [`JobOptions::through`]).
    pub fn through(mut self, name: impl Into<String>) -> Self {
        self.options = self.options.through(name);
        self
    }

    /// Uses `id` as the job's id (a retried push with the same id is refused
    /// as a duplicate instead of queued twice). Defaults to a fresh id.
    pub fn id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// Dispatches it unique or debounced (see [`crate::admission`]): a unique
    /// job whose key is held is refused as [`EnqueueError::Locked`], the job
    /// handed back; a debounced one replaces the job of its key still
    /// waiting. Kept by the memory and SQLite queues.
    pub fn admission(mut self, admission: crate::admission::Admission) -> Self {
        self.admission = Some(admission.into_ticket());
        self
    }
}

impl<'a, B: QueueBackend, J: Job> IntoFuture for PendingDispatch<'a, B, J> {
    type Output = Result<JobId, EnqueueError<J>>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Self { queue, job, options, id, admission } = self;
            queue.push_one(job, &options, id, admission).await
        })
    }
}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl<J: Job> PendingDispatch<'_, super::SqliteQueue, J> {
    /// Writes the job inside `tx`, the caller's own transaction on the
    /// queue's file, instead of awaiting a push: the job and its unique lock
    /// (see [`admission`](Self::admission)) are stored if and only if `tx`
    /// commits. A refusal hands the job back and leaves `tx` usable. The
    /// caller's connection, WAL and the schema check are described at
    /// [`SqliteQueue::push_in`](super::SqliteQueue::push_in); the queue's
    /// [`Overflow`](super::Overflow) policy does not apply here (a full queue
    /// refuses at once).
    ///
    /// # Errors
    ///
    /// As an awaited dispatch ([`EnqueueError`]), plus
    /// [`EnqueueError::Invalid`] (field `transaction`) when `tx` is on
    /// another file or on one at another schema version.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::rusqlite::{Connection, TransactionBehavior};
    /// use conc_bus::{Job, Queue, SqliteQueue};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Receipt { order: u64 }
    /// impl Job for Receipt { const NAME: &'static str = "receipt"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("shop.db");
    /// let queue = Queue::new(SqliteQueue::open(&path)?);
    ///
    /// let mut conn = Connection::open(&path)?;
    /// conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY)")?;
    /// let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    /// tx.execute("INSERT INTO orders (id) VALUES (7)", [])?;
    /// queue.dispatch(Receipt { order: 7 }).within(&tx)?;
    /// tx.commit()?; // the order and its job land together
    /// assert_eq!(queue.size("default").await?.ready, 1);
    /// # Ok(()) }
    /// ```
    pub fn within(self, tx: &rusqlite::Transaction<'_>) -> Result<JobId, EnqueueError<J>> {
        let Self { queue, job, options, id, admission } = self;
        let pushed = match queue.prepare_one(&job, &options, id, admission) {
            Ok(pushed) => pushed,
            Err(error) => return Err(error.map(|()| job)),
        };
        let id = pushed.envelope.id;
        // Sealed here as at any push: a job marked encrypted never reaches
        // the file in clear, in a transaction or not.
        let jobs = match queue.seal(vec![pushed]) {
            Ok(jobs) => jobs,
            Err(error) => return Err(super::front::typed(error, job)),
        };
        match queue.backend().push_in(tx, jobs) {
            Ok(()) => Ok(id),
            Err(error) => Err(super::front::typed(error, job)),
        }
    }
}
