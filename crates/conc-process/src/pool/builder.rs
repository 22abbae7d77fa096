//! [`ProcessPoolBuilder`]: the settings of a [`ProcessPool`].

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use conc_core::config::{self, ConfigError};
use tokio::sync::watch;

use super::metrics::Counters;
use super::{Control, EventCallback, ProcessPool, ProcessPoolEvent, Shared};
use crate::{ProcessRunner, SystemRunner};

/// The name a pool has unless [`ProcessPoolBuilder::name`] sets one.
const DEFAULT_NAME: &str = "process-pool";

/// Builds a [`ProcessPool`].
///
/// # Examples
///
/// ```
/// use conc_process::ProcessPool;
///
/// let pool = ProcessPool::builder().name("checks").concurrency(4).fail_fast(true).build()?;
/// assert_eq!((pool.name(), pool.concurrency()), ("checks", 4));
///
/// let err = ProcessPool::builder().concurrency(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid `concurrency` 0: must be at least 1");
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProcessPoolBuilder {
    name: String,
    runner: Arc<dyn ProcessRunner>,
    concurrency: usize,
    fail_fast: bool,
    on_event: Option<EventCallback>,
}

impl ProcessPoolBuilder {
    pub(super) fn new() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            runner: Arc::new(SystemRunner),
            concurrency: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            fail_fast: false,
            on_event: None,
        }
    }

    /// The pool's name, under which a [`Registry`](conc_core::lifecycle::Registry)
    /// knows it. It must not be empty nor contain a NUL byte. Defaults to
    /// `"process-pool"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// At most this many processes run at once; at least 1. Defaults to the
    /// number of CPUs (`std::thread::available_parallelism`).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// On the first job that does not succeed, kill the running jobs and
    /// start no more; their results are [`ProcessError::Cancelled`](crate::ProcessError::Cancelled).
    /// Defaults to off.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Calls `callback` with each [`ProcessPoolEvent`], on the task awaiting
    /// [`ProcessPool::run`]. Defaults to none.
    pub fn on_event(
        mut self,
        callback: impl Fn(&ProcessPoolEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_event = Some(Arc::new(callback));
        self
    }

    /// Runs the jobs through `runner` (a [`FakeRunner`](crate::FakeRunner)
    /// in tests). Defaults to [`SystemRunner`].
    pub fn runner(mut self, runner: Arc<dyn ProcessRunner>) -> Self {
        self.runner = runner;
        self
    }

    /// Checks the settings and builds the pool.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `name` (empty, or with a NUL byte) or
    /// `concurrency` (zero).
    pub fn build(self) -> Result<ProcessPool, ConfigError> {
        config::name("name", &self.name)?;
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| ConfigError::below("concurrency", 0, 1))?;
        Ok(ProcessPool {
            shared: Arc::new(Shared {
                name: self.name,
                counters: Counters::default(),
                control: watch::Sender::new(Control::default()),
            }),
            runner: self.runner,
            concurrency,
            fail_fast: self.fail_fast,
            on_event: self.on_event,
        })
    }
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("name", &self.name)
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}
