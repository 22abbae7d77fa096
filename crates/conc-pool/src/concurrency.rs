//! The `Concurrency` facade: run a batch of tasks on a named driver and get
//! the results in input order, or defer them to the background.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
// std, not the loom shim: this counter pairs with tokio's `Notify`, which never runs under loom.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_core::driver::{Driver, Task, TaskError as DriverError, TaskOutput};
use tokio::sync::Notify;

use crate::{BlockingPool, BuildError, TaskError};

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
    /// [`BuildError`] when `workers` is 0 or a thread cannot start.
    pub fn new(workers: usize) -> Result<Self, BuildError> {
        Ok(Self {
            pool: BlockingPool::builder().name("conc-thread-driver").workers(workers).build()?,
        })
    }

    /// A driver over an existing pool.
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
                        Err(TaskError::Panicked { message }) => {
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
}

#[derive(Debug, Default)]
struct Deferred {
    running: AtomicUsize,
    done: Notify,
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
            .finish()
    }
}

impl Concurrency {
    /// A manager with the `sync` and `thread` drivers; `thread` is the default.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the thread driver's pool cannot start.
    pub fn new() -> Result<Self, BuildError> {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let concurrency = Self {
            drivers: RwLock::new(HashMap::new()),
            default: RwLock::new("thread".to_owned()),
            deferred: Arc::new(Deferred::default()),
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
        Ok(driver.run(tasks).await)
    }

    /// Runs `tasks` on the default driver in the background, after the
    /// caller returns. Failures are logged through `tracing`. The tasks are
    /// tracked: [`wait_deferred`](Self::wait_deferred) waits for them.
    ///
    /// # Errors
    ///
    /// [`ConcurrencyError::NoRuntime`] outside a tokio runtime;
    /// [`ConcurrencyError::UnknownDriver`] if the default driver was removed.
    pub fn defer(&self, tasks: Vec<Task>) -> Result<(), ConcurrencyError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ConcurrencyError::NoRuntime)?;
        let driver = self.default_driver()?;
        let deferred = Arc::clone(&self.deferred);
        deferred.running.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            let results = driver.run(tasks).await;
            for (index, result) in results.iter().enumerate() {
                if let Err(error) = result {
                    tracing::warn!(target: "conc_pool", index, %error, "deferred task failed");
                }
            }
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

    /// Waits until every deferred batch finished, or until `timeout`;
    /// whether they all had.
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
