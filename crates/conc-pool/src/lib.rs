//! Worker pools for async and blocking work: priorities with aging, bounded
//! queues that hand rejected work back, panics as errors, graceful shutdown.
//!
//! # Overview
//!
//! Two pools with one API shape:
//!
//! | pool | runs | on |
//! |---|---|---|
//! | [`AsyncPool`] | futures | worker tasks on a tokio runtime |
//! | [`BlockingPool`] | closures | the pool's own OS threads |
//!
//! Both offer `submit(task) -> TaskHandle` (await or `join` the output, or
//! `cancel`), `try_submit` (a full queue hands the task straight back, with
//! no allocation), `submit_batch` (outputs in input order), `spawn` (fire and
//! forget), `submit_retry` (retries with a [`conc_core::backoff::Backoff`]),
//! `submit_with(TaskOptions)` (priority, deadline) and a typed processor
//! ([`Processor`], [`AsyncProcessor`]) built around one function.
//!
//! The queue is bounded or unbounded. On a full queue `submit` follows the
//! pool's [`Rejection`] policy: hand the task back, run it on the caller,
//! evict the oldest task (handing *that* one back), or wait with a timeout.
//! Higher priorities run first, FIFO within a priority, and aging bounds the
//! wait of a low priority: under a saturating stream of priority `high`, a
//! task of priority `low` starts after at most `(high − low) × aging_step`
//! dequeues, however long the high backlog. Until a pool sees another
//! priority than the default, tasks go through a lock-free injector and,
//! in the blocking pool, a work-stealing deque per worker: no lock per task,
//! and an idle worker takes the tasks queued behind a long one (FIFO per
//! worker, roughly FIFO across workers; `docs/pool.md` has the details).
//!
//! A panicking task becomes [`JoinError::Panicked`] in its handle and the
//! worker keeps serving. `shutdown(timeout)` stops accepting work, lets the
//! queue drain until the timeout, then hands back what never started in a
//! [`PoolShutdown`]; `shutdown_now()` hands the queue back at once. Nothing
//! accepted is lost.
//!
//! [`Concurrency`] runs batches of `conc_core::driver::Task`s on named
//! drivers ([`SyncDriver`], [`ThreadDriver`], or your own) with results in
//! input order, and defers batches to the background.
//!
//! Either pool can be dynamic: between `workers` and `max_workers`,
//! growing when a task would wait with no idle worker (before it queues) and
//! retiring workers idle past the keep-alive, or as a pluggable
//! [`ScalePolicy`] decides ([`QueueUtilisation`] scales on queue length and
//! utilisation); `scale_up`, `scale_down` and `resize` change the size by
//! hand. Idle workers sleep (after a bounded spin of a few microseconds) and
//! a submission wakes one only when a worker is idle: a busy pool pays no
//! wake-ups. A stuck worker is replaced with a fresh one, so a hung task
//! costs no capacity.
//!
//! Builders refuse a bad setting with [`conc_core::config::ConfigError`]
//! (naming the setting, its value and the rule; the blocking pool wraps it
//! in [`PoolBuildError`], whose other variant is the OS refusing a thread).
//! Both take the clock they read one way, `.clock(c)` (the coarse clock by
//! default), so queue waits, task durations and stuck-worker detection run on
//! a `ManualClock` in tests.
//!
//! Both pools (and the facade) are components: they implement
//! [`MetricsSource`](conc_core::metrics::MetricsSource) (`metrics()`: per-worker
//! counters, queue-wait percentiles, stuck workers) and
//! [`Lifecycle`](conc_core::lifecycle::Lifecycle), so
//! `Registry::shutdown_all(deadline)` stops them. They emit the
//! `conc.pool.*` metrics of [`conc_core::metrics`] (task wait and duration
//! included) through handles registered when the pool is built, labelled
//! `pool` with its name: install the recorder first.
//!
//! # Feature flags
//!
//! None. The crate always builds the same.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_pool::{BlockingPool, Rejection, SubmitError, TaskOptions};
//!
//! let pool = BlockingPool::builder()
//!     .name("resize")
//!     .workers(2)
//!     .queue_capacity(100)
//!     .rejection(Rejection::Block(Duration::from_millis(100)))
//!     .build()?;
//!
//! let batch = pool.submit_batch((1..=5).map(|n| move || n * 10)).unwrap();
//! let outputs: Vec<u32> = batch.join().into_iter().collect::<Result<_, _>>()?;
//! assert_eq!(outputs, [10, 20, 30, 40, 50]);
//!
//! let urgent = pool.submit_with(TaskOptions::new().priority(9), || "now").unwrap();
//! assert_eq!(urgent.join()?, "now");
//!
//! let report = pool.shutdown(Duration::from_secs(1));
//! assert!(report.is_clean());
//! assert!(matches!(pool.submit(|| 1), Err(SubmitError::Closed(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A pool registered with a [`Registry`](conc_core::lifecycle::Registry) stops
//! with the application:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use conc_core::lifecycle::Registry;
//! use conc_pool::AsyncPool;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let pool = Arc::new(AsyncPool::builder().name("fetch").workers(4).build()?);
//! let registry = Registry::new();
//! registry.register(pool.clone())?;
//! pool.spawn(async { /* … */ }).await.unwrap();
//! let report = registry.shutdown_all(Instant::now() + Duration::from_secs(30)).await;
//! assert!(report.is_clean());
//! assert!(pool.is_shut_down());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | CPU work off the async runtime | `rayon::spawn` (aborts the process on a panic), `threadpool` | [`BlockingPool`]: panics in the handle, bounded queue, priorities |
//! | a concurrency limit on async tasks | `JoinSet` + `Semaphore` | [`AsyncPool`] with N workers |
//! | Java's `ThreadPoolExecutor` rejection policies | hand-written | [`Rejection`] |
//! | priorities | several pools (ants, pond advice) | [`TaskOptions::priority`] with aging |
//! | Laravel's `Concurrency::run` / `defer` | – | [`Concurrency`] |
// The blocking pool's task allocation (`task`, `result_cell`) is the one
// place with `unsafe`; every other module stays without.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod asynchronous;
mod blocking;
mod builder;
mod concurrency;
mod core;
mod engine;
mod error;
mod front;
mod handle;
mod job;
mod loom;
mod metrics;
mod options;
mod processor;
mod queue;
mod result_cell;
mod scale;
mod shutdown;
mod task;

pub use asynchronous::{AsyncPool, AsyncPoolBuilder, UnstartedFuture};
pub use blocking::{BlockingPool, BlockingPoolBuilder, Unstarted};
pub use builder::{DEFAULT_AGING_STEP, DEFAULT_KEEP_ALIVE};
pub use concurrency::{
    Concurrency, ConcurrencyError, ConcurrencyMetrics, SyncDriver, ThreadDriver,
};
pub use error::{BatchError, JoinError, PoolBuildError, SubmitError};
pub use handle::{Batch, TaskHandle};
pub use job::CancelToken;
pub use metrics::{Health, PoolMetrics, StuckWorker};
pub use options::{Rejection, TaskOptions};
pub use processor::{AsyncProcessor, Processor};
pub use scale::{
    GrowWhenQueued, QueueUtilisation, ScaleDecision, ScalePolicy, ScaleSnapshot, ScaleTrigger,
};
pub use shutdown::PoolShutdown;

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/pool.md")]
struct PoolGuide;
