//! [`RedisQueue`]: queues and a failed store in Redis, shared by the worker
//! processes of many machines.

mod admin;
mod batches;
mod builder;
mod cycle;
mod failed;
mod flow;
mod flow_lua;
mod keys;
mod reply;
mod scripts;
#[cfg(test)]
mod tests;
mod wait;
mod workers;
mod workflow;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{Script, ScriptInvocation, Value};

pub use builder::RedisQueueBuilder;
use reply::Reply;

use super::backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled,
};
use super::beat::WorkerBeat;
use super::error::{PushError, QueueError};
use super::lease::Lease;
use super::settle::Transition;
use crate::clock::WallClock;
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;

/// Queues and a failed store in Redis: every contract of [`QueueBackend`]
/// kept, shared by every process that reaches the server, on any number of
/// machines. Web processes push, worker processes on several hosts take, and
/// every reservation takes jobs no other holds.
///
/// Clones share the connections.
///
/// # How it works
///
/// Each queue's keys live under one hash tag, `conc:bus:{<queue>}:` by
/// default (the queue's name with `%`, `{` and `}` percent-escaped): one list
/// of ready job ids per priority, a sorted set of delayed jobs by when they
/// become available, a sorted set of leased jobs by when their lease
/// expires, a hash per job (envelope, attempts, lease token), the queue's
/// settings, a lease-token counter, the failed store and a wake-up list.
/// [`queue_keys`](Self::queue_keys) gives the common start of a queue's keys;
/// the crate guide lists them all.
///
/// Every operation is one Lua script run with `EVALSHA` (loaded on first
/// use and loaded again when the server answers `NOSCRIPT`, after a restart
/// or a `SCRIPT FLUSH`), so it is one round trip and atomic on the server:
///
/// - a push stores every job or none: a duplicate id (queued or failed) or a
///   bounded queue without room refuses the whole push, the jobs handed
///   back;
/// - a reservation first moves due delayed jobs and expired leases back to
///   the ready lists (at most 1,024 of each per call), then pops up to `max`
///   ids, highest priority first, counts each one's attempt and gives it a
///   token from the queue's counter; a job whose attempts are used up or
///   whose `retry_until` passed goes to the failed store instead;
/// - acknowledgements and extensions of a whole batch are one script that
///   checks each token against the job's and the lease's expiry against
///   the server's clock; a worker sends its acknowledgements and its next
///   reservation together, pipelined in that order on the connection, so
///   one round trip serves both;
/// - a retry, release, failure, progress report or checkpoint is decided by
///   the crate's one settle logic from a snapshot of the job read first,
///   then written by a script that checks the token and that the job was not
///   changed since the snapshot (a later write of the same holder is decided
///   again). So the Redis queue fails a job for the same reason, with the same
///   message, as every other backend.
///
/// Recovery rests on lease expiry alone: a worker that dies leaves its jobs
/// leased until their leases expire, then any reservation anywhere takes
/// them back. Workers' heartbeats (for listings, never for recovery) live
/// in two keys of their own, `<prefix>workers:{beats}` and its `:seen` set.
///
/// # Time
///
/// Every time is the server's: each script reads `TIME`, so clients'
/// clocks may disagree without harm. [`now`](QueueBackend::now) is the local
/// clock corrected by the offset the last reply showed, for the times the
/// front computes (a delay's availability). A clock given to
/// [`RedisQueueBuilder::clock`] replaces the server's: every script is then
/// handed that clock's time. That exists for tests, which move a
/// `ManualClock` to expire leases without waiting; processes sharing a
/// queue must all use the server's clock.
///
/// # Waiting, and workers on other hosts
///
/// A push, a retry that is available now, a release and a resume each add a
/// token to the queue's wake-up list (at most 64 are kept). An idle worker
/// waits in `BLPOP` on the wake-up lists of its queues over a dedicated
/// connection, whose response timeout exceeds the wait, so a push on one host
/// wakes an idle worker on another at once. A wait ends with the worker's
/// `poll_interval`, which is also when delayed jobs becoming due and expired
/// leases are noticed.
///
/// # Connections and failures
///
/// Commands go over one multiplexed connection (redis-rs's
/// [`ConnectionManager`]) that reconnects with backoff: the call that finds
/// the connection broken fails with [`QueueError::Backend`]; once the server
/// is back, calls succeed again through the same queue. A worker retries a
/// failed call with its own backoff and never stops for it. Every command has
/// a response timeout ([`RedisQueueBuilder::response_timeout`]), so a stalled
/// server makes calls fail rather than hang. A call that failed that way may
/// still have run: a push may have stored its jobs (pushing them again with
/// the same ids is refused as a duplicate), a reservation may have leased
/// jobs that then come back when the leases expire, attempts counted.
///
/// # Persistence
///
/// Redis keeps the queues in memory. What survives a crash of the server is
/// what its persistence wrote: with `appendonly yes` and `appendfsync
/// always`, every acknowledged push and acknowledgement; with `everysec`,
/// all but about the last second of writes (a lost push is a lost job, a lost
/// acknowledgement a job run again); with no persistence, nothing. Set
/// `maxmemory-policy noeviction`: an eviction policy deletes job keys
/// silently. The crate guide explains.
///
/// # Redis Cluster
///
/// Every script touches the keys of one queue, on one slot. A push whose
/// jobs go to several queues is one script over their keys too, atomic on one
/// server; on a cluster, push to one queue at a time. A worker of several
/// queues waits on all their wake-up lists in one `BLPOP`, which a cluster
/// refuses across slots: it then falls back to polling. The queue talks to
/// one server; [`ConnectionManager`] does not follow cluster redirections.
/// Workflows need one server: their scripts touch a batch's keys, its
/// members' queues and admission locks together, on several slots, which a
/// cluster refuses (plain jobs never touch those keys).
///
/// # Workflows
///
/// Batches, chains, unique and debounced jobs are kept
/// ([`WorkflowBackend`](crate::queue::WorkflowBackend)), each change in the
/// script that pushes, reserves or settles the job it goes with: a batch
/// member's outcome is set once in the batch's hash of outcomes, each
/// callback is claimed by a flag and stored by that same script (into its
/// own queue), a unique lock is released only by the job that holds it.
/// The decisions that need no atomicity (a settlement's effect, the next
/// link, the callback jobs) are made in Rust by the crate's one state
/// machine, from a read the script then checks. Progress subscriptions
/// ([`subscribe_batches`](crate::queue::WorkflowBackend::subscribe_batches))
/// hear the outcomes this process records.
///
/// ```no_run
/// use conc_bus::{Queue, RedisQueue};
/// use conc_bus::batch::PendingBatch;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
/// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
/// # #[derive(Serialize, Deserialize)] struct Publish;
/// # impl conc_bus::Job for Publish { const NAME: &'static str = "publish"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::new(RedisQueue::connect("redis://127.0.0.1:6379/").await?);
/// let batch = PendingBatch::new().add(Resize { page: 1 }).add(Resize { page: 2 }).then(Publish);
/// let id = queue.dispatch_batch(batch).await?;
/// assert_eq!(queue.batch(id).await?.map(|info| info.total), Some(2));
/// # Ok(()) }
/// ```
///
/// # The failed store
///
/// Each queue keeps its own failed jobs, with the bounds of
/// [`RedisQueueBuilder::failed_retention`] applied per queue (a cluster
/// cannot count across slots); reads over every queue merge the queues'
/// pages by id.
///
/// # Examples
///
/// ```no_run
/// use conc_bus::{JobHandlers, Job, JobContext, JobError, Queue, RedisQueue, Worker};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Invoice { order: u64 }
/// impl Job for Invoice { const NAME: &'static str = "invoice"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A web process pushes.
/// let queue = Queue::new(RedisQueue::connect("redis://127.0.0.1:6379/").await?);
/// queue.push(Invoice { order: 7 }).await?;
///
/// // Worker processes, on any host, take.
/// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
/// let handlers = JobHandlers::new().handle(|job: Invoice, _: JobContext| async move {
///     let _ = job.order;
///     Ok::<(), JobError>(())
/// });
/// Worker::builder(backend, handlers).build()?.run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

/// What clones share.
struct Inner {
    manager: ConnectionManager,
    client: redis::Client,
    settings: Settings,
    time: Time,
    /// Connections for blocking waits, idle ones kept for the next wait.
    waiting: std::sync::Mutex<Vec<MultiplexedConnection>>,
    /// Where this process announces the batch member outcomes it records.
    progress: crate::batch::progress::ProgressFeed,
    /// The soonest batch deadline this process knows of (Unix ms).
    next_deadline: AtomicU64,
    /// When this process last looked for batch deadlines.
    deadlines_checked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A queue's settings, as built.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    prefix: Arc<str>,
    registry: Arc<str>,
    failed_max_jobs: u64,
    failed_max_age_ms: u64,
    connection_timeout: Duration,
    /// Members of a cancelled batch one script call sweeps at most.
    sweep_chunk: u64,
}

/// Where times come from.
enum Time {
    /// The server's `TIME`, read by every script; locally, the system's time
    /// corrected by the last offset seen in a reply.
    Server { local: WallClock, offset: AtomicI64 },
    /// A clock given to the builder (tests): scripts are handed its time.
    Client(WallClock),
}

impl Time {
    /// The server's time, estimated from a precise local clock: the
    /// process-wide coarse clock is refreshed by a thread of its own, which a
    /// loaded machine can hold back for milliseconds, and an estimate taken
    /// while it lagged would run ahead of the server once it caught up (a
    /// job pushed "now" would then wait as delayed).
    fn server() -> Self {
        let local = WallClock::new(Arc::new(conc_core::time::SystemClock));
        Self::Server { local, offset: AtomicI64::new(0) }
    }

    fn now(&self) -> u64 {
        match self {
            Self::Server { local, offset } => {
                local.now().saturating_add_signed(offset.load(Ordering::Relaxed))
            }
            Self::Client(clock) => clock.now(),
        }
    }

    /// Keeps the offset of the server's clock seen in a reply.
    ///
    /// The estimate must never run ahead of the server: a job pushed "now"
    /// would otherwise be stored as delayed until the server catches up. The
    /// server's time was read before the reply arrived, which only makes the
    /// estimate earlier; both readings are whole milliseconds, which can put
    /// it up to one millisecond late or early, so one is taken off.
    fn observe(&self, server_now: u64) {
        if let Self::Server { local, offset } = self {
            let local = i64::try_from(local.now()).unwrap_or(i64::MAX);
            let server = i64::try_from(server_now).unwrap_or(i64::MAX);
            offset.store(server.saturating_sub(local).saturating_sub(1), Ordering::Relaxed);
        }
    }
}

impl RedisQueue {
    /// Connects to the server at `url` (`redis://[user:password@]host:port/[db]`
    /// or `redis+unix:///path/to/socket`) with the default settings of
    /// [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`QueueError::Backend`] when the URL does not parse or the server
    /// cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_bus::{Queue, RedisQueue};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let queue = Queue::new(RedisQueue::connect("redis://127.0.0.1:6379/").await?);
    /// # drop(queue);
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        Self::builder(url).connect().await
    }

    /// Settings for a queue on the server at `url`: key prefix, timeouts,
    /// reconnection, the failed store's bounds.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use conc_bus::RedisQueue;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::builder("redis://127.0.0.1:6379/")
    ///     .key_prefix("shop:jobs:")
    ///     .response_timeout(Duration::from_secs(2))
    ///     .connect()
    ///     .await?;
    /// assert_eq!(backend.key_prefix(), "shop:jobs:");
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisQueueBuilder {
        RedisQueueBuilder::new(url.into())
    }

    /// A queue over connections the application already has: `manager` for
    /// commands, `client` to open the dedicated connections idle workers
    /// block on. The key prefix is `conc:bus:` (see
    /// [`with_key_prefix`](Self::with_key_prefix)), the failed store's
    /// bounds the defaults; timeouts and reconnection are the manager's.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use conc_bus::RedisQueue;
    /// use redis::aio::ConnectionManager;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let manager = ConnectionManager::new(client.clone()).await?;
    /// // The application keeps `manager` for its own commands.
    /// let backend = RedisQueue::from_manager(client, manager.clone()).with_key_prefix("app:jobs:")?;
    /// # drop(backend);
    /// # Ok(()) }
    /// ```
    pub fn from_manager(client: redis::Client, manager: ConnectionManager) -> Self {
        let settings = builder::default_settings(keys::DEFAULT_PREFIX);
        Self::from_parts(client, manager, settings, Time::server())
    }

    /// The same queue with keys under `prefix` instead (see
    /// [`RedisQueueBuilder::key_prefix`]).
    ///
    /// # Errors
    ///
    /// [`QueueError::Config`] when `prefix` contains `{`, `}` or a NUL byte.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
    /// let tenant = backend.clone().with_key_prefix("tenant-7:jobs:")?;
    /// assert_eq!(tenant.key_prefix(), "tenant-7:jobs:");
    /// assert!(backend.with_key_prefix("{bad}").is_err());
    /// # Ok(()) }
    /// ```
    pub fn with_key_prefix(self, prefix: impl Into<String>) -> Result<Self, QueueError> {
        let prefix = prefix.into();
        builder::validate_prefix(&prefix)?;
        let mut settings = self.inner.settings.clone();
        settings.registry = keys::registry(&prefix).into();
        settings.prefix = prefix.into();
        let time = match &self.inner.time {
            Time::Server { local, offset } => Time::Server {
                local: local.clone(),
                offset: AtomicI64::new(offset.load(Ordering::Relaxed)),
            },
            Time::Client(clock) => Time::Client(clock.clone()),
        };
        let (client, manager) = (self.inner.client.clone(), self.inner.manager.clone());
        Ok(Self::from_parts(client, manager, settings, time))
    }

    fn from_parts(
        client: redis::Client,
        manager: ConnectionManager,
        settings: Settings,
        time: Time,
    ) -> Self {
        let inner = Inner {
            manager,
            client,
            settings,
            time,
            waiting: std::sync::Mutex::default(),
            progress: crate::batch::progress::ProgressFeed::default(),
            next_deadline: AtomicU64::new(u64::MAX),
            deadlines_checked: std::sync::Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The text every key of this queue backend starts with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(backend.key_prefix(), "conc:bus:");
    /// # Ok(()) }
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// The text every key of `queue` starts with: the prefix, then the hash
    /// tag (the queue's name with `%`, `{` and `}` percent-escaped, in
    /// braces), then `:`. Redis Cluster hashes only the tag, so all the
    /// queue's keys are on one slot.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(backend.queue_keys("mail"), "conc:bus:{mail}:");
    /// assert_eq!(backend.queue_keys("a{b}"), "conc:bus:{a%7Bb%7D}:");
    /// # Ok(()) }
    /// ```
    pub fn queue_keys(&self, queue: &str) -> String {
        keys::base(&self.inner.settings.prefix, queue)
    }

    /// Bounds how many jobs of `queue` are leased at once across every
    /// worker on every host: a reservation takes no more than `limit` minus
    /// the jobs leased now (the check is inside the reservation script, so
    /// concurrent workers cannot overshoot). `None` removes the bound (the
    /// default). The setting is stored with the queue, so every process sees
    /// it; leases of dead workers count until they expire.
    ///
    /// # Errors
    ///
    /// [`QueueError::Config`] for an invalid queue name or a limit of 0;
    /// [`QueueError::Backend`] when the server fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
    /// // At most 4 exports run at once, whatever the number of workers.
    /// backend.set_global_concurrency("exports", Some(4)).await?;
    /// assert_eq!(backend.global_concurrency("exports").await?, Some(4));
    /// # Ok(()) }
    /// ```
    pub async fn set_global_concurrency(
        &self,
        queue: &str,
        limit: Option<u32>,
    ) -> Result<(), QueueError> {
        admin::set_global_concurrency(&self.inner, queue, limit).await
    }

    /// The bound set by [`set_global_concurrency`](Self::set_global_concurrency).
    ///
    /// # Errors
    ///
    /// [`QueueError::Backend`] when the server fails, [`QueueError::Corrupt`]
    /// when the stored value is not a number.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use conc_bus::RedisQueue;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_bus::QueueError> {
    /// let backend = RedisQueue::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(backend.global_concurrency("never-set").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn global_concurrency(&self, queue: &str) -> Result<Option<u32>, QueueError> {
        admin::global_concurrency(&self.inner, queue).await
    }
}

impl Inner {
    /// An invocation of `script` on the queue whose keys start with `base`,
    /// with the time argument filled in.
    fn invocation<'a>(&self, script: &'a Script, base: &str) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(base);
        match &self.time {
            Time::Server { .. } => invocation.arg(""),
            Time::Client(clock) => invocation.arg(clock.now()),
        };
        invocation
    }

    /// Runs `invocation` (of the script named `name`) and reads the time its
    /// reply starts with.
    async fn call(
        &self,
        name: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<(u64, Reply), QueueError> {
        let value: Value =
            invocation.invoke_async(&mut self.manager.clone()).await.map_err(reply::backend)?;
        let mut reply = Reply::new(name, value)?;
        let now = reply.uint("time")?;
        self.time.observe(now);
        Ok((now, reply))
    }

    /// The key base of `queue`.
    fn base(&self, queue: &str) -> String {
        keys::base(&self.settings.prefix, queue)
    }
}

/// Notes `queues` in the set of every queue's name.
async fn register<'a>(
    inner: &Inner,
    queues: impl Iterator<Item = &'a str>,
) -> Result<(), QueueError> {
    let mut names: Vec<&str> = queues.collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(());
    }
    redis::cmd("SADD")
        .arg(&*inner.settings.registry)
        .arg(&names)
        .query_async::<i64>(&mut inner.manager.clone())
        .await
        .map_err(reply::backend)?;
    Ok(())
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = match self.inner.time {
            Time::Server { .. } => "server",
            Time::Client(_) => "client",
        };
        f.debug_struct("RedisQueue")
            .field("key_prefix", &self.inner.settings.prefix)
            .field("clock", &clock)
            .field("failed_max_jobs", &self.inner.settings.failed_max_jobs)
            .field("failed_max_age_ms", &self.inner.settings.failed_max_age_ms)
            .finish_non_exhaustive()
    }
}

impl QueueBackend for RedisQueue {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        cycle::push(&self.inner, jobs).await
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        cycle::reserve(&self.inner, request).await
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        cycle::settle(&self.inner, batch).await
    }

    async fn settle_and_reserve(
        &self,
        batch: Vec<(Lease, Transition)>,
        request: ReserveRequest<'_>,
    ) -> (Result<Vec<Settled>, QueueError>, Result<Reservation, QueueError>) {
        cycle::settle_and_reserve(&self.inner, batch, request).await
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        admin::size(&self.inner, queue).await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        admin::peek(&self.inner, queue, limit).await
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        admin::clear(&self.inner, queue).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        admin::set_paused(&self.inner, queue, paused).await
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        admin::set_capacity(&self.inner, queue, capacity).await
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        admin::queues(&self.inner).await
    }

    async fn wait(&self, queues: &[String], timeout: Duration) {
        wait::wait(&self.inner, queues, timeout).await;
    }

    fn now(&self) -> u64 {
        self.inner.time.now()
    }

    async fn paused_queues(&self, queues: &[String]) -> Result<Vec<bool>, QueueError> {
        workers::paused(&self.inner, queues).await
    }

    async fn record_worker(&self, beat: &WorkerBeat) -> Result<(), QueueError> {
        workers::record(&self.inner, beat).await
    }

    async fn remove_worker(&self, id: &str) -> Result<bool, QueueError> {
        workers::remove(&self.inner, id).await
    }

    async fn workers(&self) -> Result<Vec<WorkerBeat>, QueueError> {
        workers::list(&self.inner).await
    }
}

impl FailedStore for RedisQueue {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        failed::failed(&self.inner, query).await
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        failed::failed_job(&self.inner, id).await
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        failed::failed_count(&self.inner, queue).await
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        failed::retry_failed(&self.inner, selection).await
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        failed::forget_failed(&self.inner, selection).await
    }
}
