//! Command bus and durable job queues: typed jobs, leased queues in memory
//! and SQLite, workers, failed jobs, and testing support.
//!
//! # Overview
//!
//! - [`Bus`]: the in-process command bus. Typed [`Command`]s with one handler
//!   each, authorization and validation hooks, a tower stack around every
//!   dispatch; a command that is refused before its handler comes back in the
//!   error. `dispatch_to_queue` pushes jobs from the same value.
//! - [`Job`]: a serializable payload with a stable name, a version and
//!   default [`JobOptions`] (queue, delay, priority, attempts, backoff,
//!   exceptions, deadline, timeout). Its handler is an `async fn(job,
//!   JobContext) -> Result<(), JobError>` registered on [`JobHandlers`].
//! - [`Queue`]: the typed front of a [`QueueBackend`]: push now, later, with a
//!   priority, in bulk; sizes, pause, resume, clear, bounded depth; the failed
//!   store (list, retry, forget, flush, prune).
//! - [`Worker`]: runs jobs from its queues with leases renewed while they run,
//!   timeouts, caught panics, retries with backoff, stop conditions and a
//!   graceful stop; a [`Lifecycle`](conc_core::lifecycle::Lifecycle) and a
//!   [`MetricsSource`](conc_core::metrics::MetricsSource). Each records a
//!   heartbeat ([`WorkerBeat`]) in its backend every few seconds, so
//!   [`QueueBackend::workers`] lists the workers of every process.
//! - Backends: [`MemoryQueue`] (fast, not durable); a SQLite file (feature
//!   `sqlite`, durable, one machine); Redis (feature `redis`, shared by
//!   worker processes on many machines). Every backend passes one
//!   conformance suite.
//! - Workflows, on every queue ([`queue::WorkflowBackend`]):
//!   [`batch`]es with `then`, `catch`, `finally` and `progress` callback
//!   jobs dispatched exactly once and members counted once however often
//!   they run; [`chain`]s whose next link is pushed in the step that
//!   acknowledges the one before; [`admission`]: unique jobs (until
//!   processed, until processing, for a duration) and debounced jobs, one
//!   state machine with locks owned by the dispatched job.
//! - [`middleware`]: tower layers around every attempt of a job on the
//!   worker (`JobHandlers::layer`, `layer_for`): rate limits that release
//!   instead of failing, no overlapping per key, exception throttling,
//!   skipping members of cancelled batches, and your own.
//! - `encryption` (feature `encryption`): payloads sealed with
//!   XChaCha20-Poly1305 under a keyring that rotates keys without draining
//!   queues; the rest of the envelope stays readable for operations.
//! - [`testing`]: a bus fake with assertions and serialize-and-restore, a
//!   fake job context to unit-test a handler, and a seeded simulation of
//!   workers under faults with the "no job lost" and "duplicates within
//!   faults" checks, for your own handlers.
//! - Batch extras, on the memory and SQLite queues: timeouts, in-process
//!   progress subscriptions ([`Queue::subscribe_batches`]), an archive of
//!   finished batches ([`Queue::archived_batch`]) and recovery of failed
//!   members ([`Queue::recover_batch`]). On SQLite, jobs, batches and chains
//!   can be dispatched inside the application's own transaction
//!   (`PendingDispatch::within`, feature `sqlite`).
//!
//! Delivery is at least once: every transition of a leased job carries its
//! lease token and a stale one is refused ([`LeaseLost`]); attempts are
//! counted at reservation; a dead worker's jobs come back within one lease.
//! `docs/bus.md` is the guide; `docs/bus-workflows.md` covers batches, chains,
//! admission, job middleware and encryption, `docs/bus-operating.md` the
//! scheduler, the admin commands and the dashboard.
//!
//! # Feature flags
//!
//! - `sqlite`: a durable queue and failed store in a SQLite file
//!   (`SqliteQueue`).
//! - `redis`: a queue and failed store in Redis (`RedisQueue`), for workers
//!   on several hosts, with a per-queue global concurrency; its workflows
//!   need one server (not a cluster).
//! - `resilience`: the command bus's circuit breaker, retry and timeout
//!   (`BusBuilder::breaker`, `retry`, `timeout`) and the
//!   `ThrottlesExceptions` job middleware, from conc-resilience.
//! - `ratelimit`: the command bus's rate limits (`BusBuilder::rate_limit`,
//!   `rate_limit_by`) and the `RateLimited` job middleware, from
//!   conc-ratelimit (with `redis` too: limits shared in Redis).
//! - `lock`: the `WithoutOverlapping` job middleware, over conc-lock stores
//!   (memory, SQLite, Redis).
//! - `encryption`: sealed job payloads (`encryption::Keyring`,
//!   `JobOptions::encrypted`, `Queue::with_keyring`, `JobHandlers::keyring`).
//! - `schedule`: the `schedule` module: a scheduler of
//!   closures and jobs on cron patterns in time zones, without overlapping and
//!   on one server through conc-lock (`Scheduler`, `ScheduledTask`).
//!
//! # Examples
//!
//! ```
//! use conc_bus::{JobHandlers, Job, JobContext, JobError, MemoryQueue, Queue, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcome { user: u64 }
//! impl Job for SendWelcome { const NAME: &'static str = "send-welcome"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = MemoryQueue::new();
//! Queue::new(backend.clone()).push(SendWelcome { user: 42 }).await?;
//!
//! let handlers = JobHandlers::new().handle(|job: SendWelcome, ctx: JobContext| async move {
//!     assert_eq!((job.user, ctx.attempt()), (42, 1));
//!     Ok::<(), JobError>(())
//! });
//! let worker = Worker::builder(backend, handlers).stop_when_empty(true).build()?;
//! worker.run().await?;
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | background jobs | Laravel Queue, Sidekiq, BullMQ, apalis | [`Queue`], [`Worker`] |
//! | crash-safe delivery | Sidekiq Pro `super_fetch`, `BullMQ` locks | leases with owner tokens on every backend |
//! | failed jobs | Laravel `failed_jobs`, Sidekiq dead set | the failed store, with which limit tripped |
//! | payload evolution | hand-written migrations | versioned payloads with upcasters |
//! | batches and chains | Laravel `Bus::batch` and `Bus::chain`, Sidekiq Pro batches | [`batch::PendingBatch`], [`chain::Chain`] |
//! | enqueue with the database commit | Laravel `afterCommit`, Sidekiq `transactional_push!` | `PendingDispatch::within` (feature `sqlite`) |
//! | unique and debounced jobs | Laravel `ShouldBeUnique`, `DebounceFor`; Sidekiq Ent unique jobs | [`admission::Admission`] |
//! | job middleware | Laravel `RateLimited`, `WithoutOverlapping`, `ThrottlesExceptions`; apalis layers | [`middleware`] |
//! | encrypted jobs | Laravel `ShouldBeEncrypted` | `encryption::Keyring` (feature `encryption`) |
//! | scheduled tasks | Laravel's scheduler, cron, `tokio-cron-scheduler` | `schedule::Scheduler` (feature `schedule`) |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod admission;
pub mod batch;
pub mod bus;
pub mod chain;
mod clock;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub mod encryption;
pub mod failed;
mod id;
pub mod job;
pub mod middleware;
pub mod queue;
#[cfg(feature = "schedule")]
#[cfg_attr(docsrs, doc(cfg(feature = "schedule")))]
pub mod schedule;
pub mod testing;
pub mod worker;

pub use bus::{
    Bus, BusBuilder, Command, Dispatch, DispatchError, DispatchTrace, DispatchTraceLayer,
    HandlerPanicked, Refusal, Reply,
};
pub use failed::{FailReason, FailedJob, FailedQuery, Selection};
pub use id::{JobId, ParseIdError};
pub use job::{
    AttemptRecord, Cancelled, DEFAULT_QUEUE, DecodeError, Envelope, Job, JobBackoff, JobContext,
    JobError, JobHandlers, JobOptions, MAX_HISTORY, MAX_MIDDLEWARE_NAME, MAX_PRIORITY,
    MAX_QUEUE_NAME,
};
pub use queue::MISSED_BEATS;
pub use queue::{
    AnyBackend, BeatState, EnqueueError, FailedStore, Lease, LeaseLost, LeaseToken, MemoryQueue,
    MemoryQueueBuilder, Overflow, PendingDispatch, PushError, Pushed, Queue, QueueBackend,
    QueueError, QueueSize, Reservation, ReserveRequest, Reserved, Settled, Settlement, Transition,
    WorkerBeat,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use queue::{RedisQueue, RedisQueueBuilder};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use queue::{SqliteQueue, SqliteQueueBuilder, Synchronous};
/// The SQLite bindings this crate is built with, for the transactions of
/// [`PendingDispatch::within`] and [`SqliteQueue::push_in`].
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use rusqlite;
pub use worker::{
    AlreadyStarted, JobStats, Worker, WorkerBuilder, WorkerEvent, WorkerHealth, WorkerMetrics,
    WorkerState, WorkerStop,
};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/bus.md")]
struct BusGuide;

/// The workflows guide's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/bus-workflows.md")]
struct BusWorkflowsGuide;

/// The operating guide's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/bus-operating.md")]
struct BusOperatingGuide;
