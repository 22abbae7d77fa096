//! Many named processes under a concurrency limit.

mod builder;
mod lifecycle;
mod metrics;
mod results;

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use conc_core::config::ConfigError;
use conc_core::metrics as names;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;

pub use self::builder::ProcessPoolBuilder;
pub use self::metrics::ProcessPoolMetrics;
use self::metrics::{Counters, RunningGuard};
pub use self::results::{ProcessPoolEvent, ProcessPoolResults};
use crate::{Process, ProcessError, ProcessOutput, ProcessRunner};

type EventCallback = Arc<dyn Fn(&ProcessPoolEvent<'_>) + Send + Sync>;

/// Runs named processes with at most `concurrency` at a time (Laravel's
/// `Process::pool`, with the limit Laravel lacks), returning every result
/// keyed by name in the order the jobs were given.
///
/// Clones share the limit's settings, the counters and the lifecycle: a
/// [`stop`](conc_core::lifecycle::Lifecycle::stop) (or a registry's
/// `shutdown_all`) starts no more jobs in any run of any clone, lets the
/// running ones finish until the deadline and kills the rest; what never ran
/// or was killed is [`ProcessError::Cancelled`].
///
/// # Examples
///
/// ```
/// use conc_process::{Process, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = ProcessPool::builder().concurrency(2).build()?;
/// let results = pool
///     .run([
///         ("first", Process::new("echo").arg("1")),
///         ("second", Process::new("echo").arg("2")),
///         ("third", Process::new("false")),
///     ])
///     .await?;
/// assert_eq!(results.get("second").unwrap().as_ref().unwrap().stdout_str(), "2\n");
/// assert!(!results.successful());
/// let names: Vec<&str> = results.iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["first", "second", "third"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a ProcessPool does nothing until `run` is called"]
pub struct ProcessPool {
    shared: Arc<Shared>,
    runner: Arc<dyn ProcessRunner>,
    concurrency: NonZeroUsize,
    fail_fast: bool,
    on_event: Option<EventCallback>,
}

/// What every clone of a pool shares: its name, counters and lifecycle.
struct Shared {
    name: String,
    counters: Counters,
    control: watch::Sender<Control>,
}

/// The pool's lifecycle, watched by every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Control {
    state: State,
    /// Runs in progress, so a stop can wait for them.
    runs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Jobs start as usual.
    #[default]
    Open,
    /// Stopped: no job starts; running jobs are killed at `kill_at` (never
    /// when `None`).
    Stopping { kill_at: Option<Instant> },
}

/// Counts a run as in progress until it ends or is dropped.
struct RunGuard<'a>(&'a watch::Sender<Control>);

impl<'a> RunGuard<'a> {
    fn enter(control: &'a watch::Sender<Control>) -> Self {
        control.send_modify(|control| control.runs += 1);
        Self(control)
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|control| control.runs -= 1);
    }
}

impl ProcessPool {
    /// A builder with the defaults.
    ///
    /// ```
    /// use conc_process::ProcessPool;
    ///
    /// let pool = ProcessPool::builder().build()?;
    /// assert_eq!(pool.concurrency(), std::thread::available_parallelism()?.get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }

    /// The concurrency limit.
    pub fn concurrency(&self) -> usize {
        self.concurrency.get()
    }

    /// The pool's name (its [`Lifecycle`](conc_core::lifecycle::Lifecycle) name).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs the jobs, at most [`concurrency`](Self::concurrency) at a time,
    /// starting them in the order given, and returns every result in that
    /// order. A job that fails (non-zero exit, timeout, spawn error) does not
    /// stop the others unless fail-fast is on. Dropping the future kills
    /// every running job's process group.
    ///
    /// On a stopped pool nothing starts: every job is
    /// [`ProcessError::Cancelled`].
    ///
    /// # Errors
    ///
    /// [`ProcessError::Config`] naming `name`, before anything starts, if two
    /// jobs share a name.
    pub async fn run<I, N>(&self, jobs: I) -> Result<ProcessPoolResults, ProcessError>
    where
        I: IntoIterator<Item = (N, Process)>,
        N: Into<String>,
    {
        let jobs: Vec<(String, Process)> =
            jobs.into_iter().map(|(name, process)| (name.into(), process)).collect();
        let mut names = HashSet::with_capacity(jobs.len());
        if let Some((name, _)) = jobs.iter().find(|(name, _)| !names.insert(name.as_str())) {
            return Err(ConfigError::new(
                "name",
                name,
                "must be unique: two jobs of a run share it",
            )
            .into());
        }
        let total = jobs.len();
        let names: Vec<String> = jobs.iter().map(|(name, _)| name.clone()).collect();
        let mut slots: Vec<Option<Result<ProcessOutput, ProcessError>>> =
            std::iter::repeat_with(|| None).take(total).collect();
        let emit = |event: ProcessPoolEvent<'_>| {
            if let Some(callback) = &self.on_event {
                callback(&event);
            }
        };
        let counters = &self.shared.counters;
        let _run = RunGuard::enter(&self.shared.control);
        let mut control = self.shared.control.subscribe();

        let mut pending = jobs.into_iter().enumerate();
        let mut running = FuturesUnordered::new();
        let mut completed = 0;
        let mut stopped = false;
        loop {
            let kill_at = match control.borrow_and_update().state {
                State::Open => None,
                State::Stopping { kill_at } => {
                    stopped = true;
                    kill_at
                }
            };
            while !stopped && running.len() < self.concurrency.get() {
                let Some((index, (_, process))) = pending.next() else { break };
                emit(ProcessPoolEvent::Started { name: &names[index], running: running.len() + 1 });
                counters.started.fetch_add(1, Ordering::Relaxed);
                counters.running.fetch_add(1, Ordering::Relaxed);
                let guard = RunningGuard(counters);
                let runner = &self.runner;
                running.push(async move {
                    let result = runner.run(process).await;
                    drop(guard);
                    (index, result)
                });
            }
            if running.is_empty() {
                break;
            }
            let (index, result) = tokio::select! {
                biased;
                Some(done) = running.next() => done,
                changed = control.changed() => {
                    if changed.is_err() {
                        // Cannot happen while `self` holds the sender; never spin.
                        std::future::pending::<()>().await;
                    }
                    continue;
                }
                () = crate::running::sleep_until(kill_at) => {
                    // Dropping the runs kills their process groups.
                    running.clear();
                    continue;
                }
            };
            completed += 1;
            let successful = matches!(&result, Ok(output) if output.successful());
            emit(ProcessPoolEvent::Finished { name: &names[index], successful, completed, total });
            let outcome = if successful { &counters.succeeded } else { &counters.failed };
            outcome.fetch_add(1, Ordering::Relaxed);
            slots[index] = Some(result);
            if self.fail_fast && !successful {
                stopped = true;
                // Dropping the runs kills their process groups.
                running.clear();
            }
        }
        let entries = names
            .into_iter()
            .zip(slots)
            .map(|(name, slot)| {
                let result = slot.unwrap_or_else(|| {
                    emit(ProcessPoolEvent::Cancelled { name: &name });
                    counters.cancelled.fetch_add(1, Ordering::Relaxed);
                    ::metrics::counter!(names::PROCESS_CANCELLED).increment(1);
                    Err(ProcessError::Cancelled { name: name.clone() })
                });
                (name, result)
            })
            .collect();
        Ok(ProcessPoolResults { entries })
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("name", &self.shared.name)
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .field("on_event", &self.on_event.is_some())
            .field("control", &*self.shared.control.borrow())
            .finish_non_exhaustive()
    }
}
