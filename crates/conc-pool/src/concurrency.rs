//! The `Concurrency` facade: run a batch of tasks on a named driver and get
//! the results in input order, or defer them to the background.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
// std, not the loom shim: these counters pair with tokio's `Notify`, which never runs under loom.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use conc_core::driver::{Driver, Task, TaskError as DriverError, TaskOutput};
use conc_core::lifecycle::Lifecycle;
use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use conc_core::{BoxError, BoxFuture};
use tokio::sync::Notify;

use crate::{BlockingPool, JoinError, PoolBuildError};

/// A [`Driver`] that runs tasks one after another on the caller: for tests
/// and for code that must not spawn. Same observable results as the others.
///
/// # Examples
///
/// ```
/// use conc_core::driver::{Driver, Task, downcast_output};
/// use conc_pool::SyncDriver;
///
/// # futures_lite_block_on(async {
/// let results = SyncDriver.run(vec![Task::new(|| 1), Task::new(|| 2)]).await;
/// let outputs: Vec<i32> = results.into_iter().map(|r| downcast_output(r.unwrap()).unwrap()).collect();
/// assert_eq!(outputs, [1, 2]);
/// # });
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncDriver;

impl Driver for SyncDriver {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, DriverError>>> {
        Box::pin(async move { tasks.into_iter().map(Task::run_local).collect() })
    }
}

/// A [`Driver`] that runs tasks on a [`BlockingPool`]: at most the pool's
/// worker count at once. Dropping the `run` future cancels the tasks that
/// have not started.
#[derive(Debug, Clone)]
pub struct ThreadDriver {
    pool: BlockingPool,
}

impl ThreadDriver {
    /// A driver over a pool of `workers` threads named `conc-thread-driver`.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError`] when `workers` is refused (0, or above
    /// [`BlockingPool::MAX_WORKERS`]) or a thread cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::ThreadDriver;
    ///
    /// assert!(ThreadDriver::new(2).is_ok());
    /// assert!(ThreadDriver::new(0).is_err());
    /// ```
    pub fn new(workers: usize) -> Result<Self, PoolBuildError> {
        Ok(Self {
            pool: BlockingPool::builder().name("conc-thread-driver").workers(workers).build()?,
        })
    }

    /// A driver over an existing pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_pool::{BlockingPool, ThreadDriver};
    ///
    /// let driver = ThreadDriver::with_pool(BlockingPool::builder().workers(1).build()?);
    /// # drop(driver);
    /// # Ok::<(), conc_pool::PoolBuildError>(())
    /// ```
    pub fn with_pool(pool: BlockingPool) -> Self {
        Self { pool }
    }
}

impl Driver for ThreadDriver {
    fn name(&self) -> &'static str {
        "thread"
    }

    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, DriverError>>> {
        let handles: Vec<_> = tasks
            .into_iter()
            .map(|task| {
                self.pool.submit(move || task.run_local()).map_err(|error| error.to_string())
            })
            .collect();
        Box::pin(async move {
            let mut results = Vec::with_capacity(handles.len());
            for handle in handles {
                results.push(match handle {
                    Ok(handle) => match handle.await {
                        Ok(result) => result,
                        Err(JoinError::Panicked { message }) => {
                            Err(DriverError::Panicked { message })
                        }
                        Err(_) => Err(DriverError::Cancelled),
                    },
                    Err(reason) => Err(DriverError::Unsupported {
                        driver: Cow::Borrowed("thread"),
                        reason: Cow::Owned(reason),
                    }),
                });
            }
            results
        })
    }
}

/// Why the facade refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConcurrencyError {
    /// No driver is registered under this name.
    #[error("invalid driver: no driver named `{name}` is registered")]
    UnknownDriver {
        /// The name asked for.
        name: String,
    },
    /// `defer` needs a tokio runtime to run the tasks in the background.
    #[error("invalid runtime: defer needs a running tokio runtime")]
    NoRuntime,
    /// The facade was stopped (through [`Lifecycle::stop`]); it defers no more work.
    #[error("concurrency facade is stopped and defers no more work")]
    Stopped,
}

/// Runs batches of tasks on named drivers: `run` returns one result per task
/// in input order; `defer` runs them in the background, tracked so
/// [`wait_deferred`](Self::wait_deferred) can wait for them at shutdown.
///
/// Registered from the start: `sync` ([`SyncDriver`]) and `thread`
/// ([`ThreadDriver`], one thread per CPU, the default). Register more (a
/// process driver, a test fake) with [`register`](Self::register).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::driver::{Task, downcast_output};
/// use conc_pool::Concurrency;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let concurrency = Concurrency::new()?;
/// let tasks = vec![Task::new(|| "a"), Task::new(|| -> &str { panic!("b failed") }), Task::new(|| "c")];
/// let mut results = concurrency.run(tasks).await?.into_iter();
/// assert_eq!(downcast_output::<&str>(results.next().unwrap()?)?, "a");
/// assert!(results.next().unwrap().is_err()); // the panic, in its own slot
/// assert_eq!(downcast_output::<&str>(results.next().unwrap()?)?, "c");
///
/// concurrency.defer(vec![Task::new(|| { /* send the receipt email */ })])?;
/// assert!(concurrency.wait_deferred(Duration::from_secs(5)).await);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Concurrency {
    drivers: RwLock<HashMap<String, Arc<dyn Driver>>>,
    default: RwLock<String>,
    deferred: Arc<Deferred>,
    stopped: AtomicBool,
}

/// Deferred batches in flight, and the counts behind [`ConcurrencyMetrics`].
#[derive(Debug, Default)]
struct Deferred {
    running: AtomicUsize,
    done: Notify,
    batches: AtomicU64,
    tasks: AtomicU64,
    finished: AtomicU64,
    failed: AtomicU64,
}

impl Deferred {
    fn count_batch(&self, tasks: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.tasks.fetch_add(tasks as u64, Ordering::Relaxed);
    }
}

/// A snapshot of what a [`Concurrency`] facade ran.
///
/// # Examples
///
/// ```
/// use conc_core::driver::Task;
/// use conc_pool::Concurrency;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let concurrency = Concurrency::new()?;
/// let _ = concurrency.run_on("sync", vec![Task::new(|| 1), Task::new(|| 2)]).await?;
/// let m = concurrency.metrics();
/// assert_eq!((m.batches, m.tasks, m.deferred_pending), (1, 2, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a metrics snapshot does nothing unless read"]
pub struct ConcurrencyMetrics {
    /// Batches run (`run`, `run_on`, `defer`).
    pub batches: u64,
    /// Tasks in those batches.
    pub tasks: u64,
    /// Deferred batches still running.
    pub deferred_pending: usize,
    /// Deferred batches finished.
    pub deferred_done: u64,
    /// Tasks of deferred batches that failed (each logged through `tracing`).
    pub deferred_failed: u64,
}

impl MetricsSnapshot for ConcurrencyMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("batches", MetricValue::Count(self.batches)),
            MetricEntry::new("tasks", MetricValue::Count(self.tasks)),
            MetricEntry::new("deferred_pending", MetricValue::Gauge(self.deferred_pending as f64)),
            MetricEntry::new("deferred_done", MetricValue::Count(self.deferred_done)),
            MetricEntry::new("deferred_failed", MetricValue::Count(self.deferred_failed)),
        ]
    }
}

impl fmt::Debug for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drivers = self.drivers.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<_> = drivers.keys().cloned().collect();
        names.sort();
        f.debug_struct("Concurrency")
            .field("drivers", &names)
            .field("default", &*self.default.read().unwrap_or_else(PoisonError::into_inner))
            .field("deferred", &self.deferred.running.load(Ordering::Relaxed))
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Concurrency {
    /// A manager with the `sync` and `thread` drivers; `thread` is the default.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError`] when the thread driver's pool cannot start.
    pub fn new() -> Result<Self, PoolBuildError> {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let concurrency = Self {
            drivers: RwLock::new(HashMap::new()),
            default: RwLock::new("thread".to_owned()),
            deferred: Arc::new(Deferred::default()),
            stopped: AtomicBool::new(false),
        };
        concurrency.register(Arc::new(SyncDriver));
        concurrency.register(Arc::new(ThreadDriver::new(workers)?));
        Ok(concurrency)
    }

    /// Registers `driver` under its name, replacing any driver of that name.
    pub fn register(&self, driver: Arc<dyn Driver>) {
        let name = driver.name().to_owned();
        self.drivers.write().unwrap_or_else(PoisonError::into_inner).insert(name, driver);
    }

    /// Makes the driver named `name` the default.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::UnknownDriver`] when no such driver is registered.
    pub fn set_default(&self, name: &str) -> Result<(), ConcurrencyError> {
        self.driver(name)?;
        name.clone_into(&mut self.default.write().unwrap_or_else(PoisonError::into_inner));
        Ok(())
    }

    /// The driver named `name`.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::UnknownDriver`] when no such driver is registered.
    pub fn driver(&self, name: &str) -> Result<Arc<dyn Driver>, ConcurrencyError> {
        self.drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| ConcurrencyError::UnknownDriver { name: name.to_owned() })
    }

    fn default_driver(&self) -> Result<Arc<dyn Driver>, ConcurrencyError> {
        let name = self.default.read().unwrap_or_else(PoisonError::into_inner).clone();
        self.driver(&name)
    }

    /// Runs `tasks` on the default driver; one result per task, in input order.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::UnknownDriver`] if the default driver was removed.
    pub async fn run(
        &self,
        tasks: Vec<Task>,
    ) -> Result<Vec<Result<TaskOutput, DriverError>>, ConcurrencyError> {
        let driver = self.default_driver()?;
        self.deferred.count_batch(tasks.len());
        Ok(driver.run(tasks).await)
    }

    /// Runs `tasks` on the driver named `name`.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::UnknownDriver`] when no such driver is registered.
    pub async fn run_on(
        &self,
        name: &str,
        tasks: Vec<Task>,
    ) -> Result<Vec<Result<TaskOutput, DriverError>>, ConcurrencyError> {
        let driver = self.driver(name)?;
        self.deferred.count_batch(tasks.len());
        Ok(driver.run(tasks).await)
    }

    /// Runs `tasks` on the default driver in the background, after the
    /// caller returns. Failures are logged through `tracing`. The tasks are
    /// tracked: [`wait_deferred`](Self::wait_deferred) waits for them.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::NoRuntime`] outside a tokio runtime;
    /// [`ConcurrencyError::UnknownDriver`] if the default driver was removed;
    /// [`ConcurrencyError::Stopped`] once the facade was stopped.
    pub fn defer(&self, tasks: Vec<Task>) -> Result<(), ConcurrencyError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ConcurrencyError::Stopped);
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ConcurrencyError::NoRuntime)?;
        let driver = self.default_driver()?;
        let deferred = Arc::clone(&self.deferred);
        deferred.count_batch(tasks.len());
        deferred.running.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            let results = driver.run(tasks).await;
            for (index, result) in results.iter().enumerate() {
                if let Err(error) = result {
                    deferred.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "conc_pool", index, %error, "deferred task failed");
                }
            }
            deferred.finished.fetch_add(1, Ordering::Relaxed);
            if deferred.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                deferred.done.notify_waiters();
            }
        });
        Ok(())
    }

    /// Deferred batches still running.
    pub fn deferred_pending(&self) -> usize {
        self.deferred.running.load(Ordering::SeqCst)
    }

    /// Waits until every deferred batch finished, or until `timeout`
    /// (`Duration::MAX`: no limit); whether they all had.
    #[must_use = "whether every deferred batch finished"]
    pub async fn wait_deferred(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let done = self.deferred.done.notified();
                if self.deferred.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

impl Concurrency {
    /// A snapshot of what the facade ran (see [`ConcurrencyMetrics`]).
    pub fn metrics(&self) -> ConcurrencyMetrics {
        let d = &self.deferred;
        ConcurrencyMetrics {
            batches: d.batches.load(Ordering::Relaxed),
            tasks: d.tasks.load(Ordering::Relaxed),
            deferred_pending: d.running.load(Ordering::SeqCst),
            deferred_done: d.finished.load(Ordering::Relaxed),
            deferred_failed: d.failed.load(Ordering::Relaxed),
        }
    }

    /// Resets the counts; the pending deferred batches keep counting.
    pub fn reset_metrics(&self) {
        let d = &self.deferred;
        for counter in [&d.batches, &d.tasks, &d.finished, &d.failed] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl MetricsSource for Concurrency {
    type Snapshot = ConcurrencyMetrics;

    fn metrics(&self) -> ConcurrencyMetrics {
        Concurrency::metrics(self)
    }

    fn reset_metrics(&self) {
        Concurrency::reset_metrics(self);
    }
}

/// Named `concurrency`. Running from `new()` until stopped; `stop` refuses
/// further `defer` calls and waits for the deferred batches until the
/// deadline, reporting an error if some are still running then.
impl Lifecycle for Concurrency {
    fn name(&self) -> &'static str {
        "concurrency"
    }

    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        self.stopped.store(false, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(())))
    }

    fn stop(&self, deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        self.stopped.store(true, Ordering::SeqCst);
        let timeout = deadline.saturating_duration_since(Instant::now());
        Box::pin(async move {
            // Deferred batches run on a tokio runtime; without one there is
            // nothing to wait with (and nothing could have been deferred).
            let finished = self.deferred_pending() == 0
                || (tokio::runtime::Handle::try_current().is_ok()
                    && self.wait_deferred(timeout).await);
            if finished {
                Ok(())
            } else {
                let pending = self.deferred_pending();
                Err(format!("{pending} deferred batches still running at the deadline").into())
            }
        })
    }

    fn is_running(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst)
    }
}
