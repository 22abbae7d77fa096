//! Many named processes under a concurrency limit.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::{Process, ProcessError, ProcessOutput, ProcessRunner, SystemRunner};

/// Progress of a pool run, passed to [`ProcessPoolBuilder::on_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent<'a> {
    /// A job's process is being started.
    Started {
        /// The job's name.
        name: &'a str,
        /// Jobs running now, this one included.
        running: usize,
    },
    /// A job ended: its process exited, timed out or failed to start.
    Finished {
        /// The job's name.
        name: &'a str,
        /// Whether it exited with code 0.
        successful: bool,
        /// Jobs finished so far, this one included.
        completed: usize,
        /// Jobs in the run.
        total: usize,
    },
    /// A job was cancelled by fail-fast: killed while running, or never started.
    Cancelled {
        /// The job's name.
        name: &'a str,
    },
}

type EventCallback = Arc<dyn Fn(&PoolEvent<'_>) + Send + Sync>;

/// Runs named processes with at most `concurrency` at a time (Laravel's
/// `Process::pool`, with the limit Laravel lacks), returning every result
/// keyed by name in the order the jobs were given.
///
/// # Examples
///
/// ```
/// use conc_process::{Process, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
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
pub struct ProcessPool {
    counters: Arc<Counters>,
    runner: Arc<dyn ProcessRunner>,
    concurrency: NonZeroUsize,
    fail_fast: bool,
    on_event: Option<EventCallback>,
}

/// Builds a [`ProcessPool`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProcessPoolBuilder {
    runner: Arc<dyn ProcessRunner>,
    concurrency: usize,
    fail_fast: bool,
    on_event: Option<EventCallback>,
}

impl ProcessPool {
    /// A builder with the defaults.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            runner: Arc::new(SystemRunner),
            concurrency: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            fail_fast: false,
            on_event: None,
        }
    }

    /// The concurrency limit.
    pub fn concurrency(&self) -> usize {
        self.concurrency.get()
    }

    /// Runs the jobs, at most [`concurrency`](Self::concurrency) at a time,
    /// starting them in the order given, and returns every result in that
    /// order. A job that fails (non-zero exit, timeout, spawn error) does not
    /// stop the others unless fail-fast is on. Dropping the future kills
    /// every running job's process group.
    ///
    /// Fails before starting anything if two jobs share a name.
    pub async fn run<I, N>(&self, jobs: I) -> Result<PoolResults, ProcessError>
    where
        I: IntoIterator<Item = (N, Process)>,
        N: Into<String>,
    {
        let jobs: Vec<(String, Process)> =
            jobs.into_iter().map(|(name, process)| (name.into(), process)).collect();
        let mut names = HashSet::with_capacity(jobs.len());
        if let Some((name, _)) = jobs.iter().find(|(name, _)| !names.insert(name.as_str())) {
            return Err(ProcessError::InvalidConfig {
                field: "name",
                value: format!("{name:?}"),
                reason: "two pool jobs share it",
            });
        }
        let total = jobs.len();
        let names: Vec<String> = jobs.iter().map(|(name, _)| name.clone()).collect();
        let mut slots: Vec<Option<Result<ProcessOutput, ProcessError>>> =
            std::iter::repeat_with(|| None).take(total).collect();
        let emit = |event: PoolEvent<'_>| {
            if let Some(callback) = &self.on_event {
                callback(&event);
            }
        };

        let mut pending = jobs.into_iter().enumerate();
        let mut running = FuturesUnordered::new();
        let mut completed = 0;
        let mut stopped = false;
        loop {
            while !stopped && running.len() < self.concurrency.get() {
                let Some((index, (_, process))) = pending.next() else { break };
                emit(PoolEvent::Started { name: &names[index], running: running.len() + 1 });
                self.counters.started.fetch_add(1, Ordering::Relaxed);
                self.counters.running.fetch_add(1, Ordering::Relaxed);
                let guard = RunningGuard(&self.counters);
                let runner = &self.runner;
                running.push(async move {
                    let result = runner.run(process).await;
                    drop(guard);
                    (index, result)
                });
            }
            let Some((index, result)) = running.next().await else { break };
            completed += 1;
            let successful = matches!(&result, Ok(output) if output.successful());
            emit(PoolEvent::Finished { name: &names[index], successful, completed, total });
            let outcome = if successful { &self.counters.succeeded } else { &self.counters.failed };
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
                    emit(PoolEvent::Cancelled { name: &name });
                    self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                    Err(ProcessError::Cancelled { name: name.clone() })
                });
                (name, result)
            })
            .collect();
        Ok(PoolResults { entries })
    }
}

impl ProcessPoolBuilder {
    /// At most this many processes run at once. Defaults to the number of
    /// CPUs (`std::thread::available_parallelism`).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// On the first job that does not succeed, kill the running jobs and
    /// start no more; their results are [`ProcessError::Cancelled`].
    /// Defaults to off.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Calls `callback` with each [`PoolEvent`], on the task awaiting
    /// [`ProcessPool::run`].
    pub fn on_event(mut self, callback: impl Fn(&PoolEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(callback));
        self
    }

    /// Runs the jobs through `runner` (a [`FakeRunner`](crate::FakeRunner)
    /// in tests). Defaults to [`SystemRunner`].
    pub fn runner(mut self, runner: Arc<dyn ProcessRunner>) -> Self {
        self.runner = runner;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<ProcessPool, ProcessError> {
        let concurrency =
            NonZeroUsize::new(self.concurrency).ok_or(ProcessError::InvalidConfig {
                field: "concurrency",
                value: "0".into(),
                reason: "must be at least 1",
            })?;
        Ok(ProcessPool {
            counters: Arc::default(),
            runner: self.runner,
            concurrency,
            fail_fast: self.fail_fast,
            on_event: self.on_event,
        })
    }
}

/// The results of a pool run, keyed by job name, in the order the jobs were given.
#[derive(Debug)]
pub struct PoolResults {
    entries: Vec<(String, Result<ProcessOutput, ProcessError>)>,
}

impl PoolResults {
    /// The result of the job with this name.
    pub fn get(&self, name: &str) -> Option<&Result<ProcessOutput, ProcessError>> {
        self.entries.iter().find(|(job, _)| job == name).map(|(_, result)| result)
    }

    /// Every job's name and result, in the order the jobs were given.
    pub fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = (&str, &Result<ProcessOutput, ProcessError>)> {
        self.entries.iter().map(|(name, result)| (name.as_str(), result))
    }

    /// The number of jobs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the run had no jobs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether every job exited with code 0.
    pub fn successful(&self) -> bool {
        self.entries.iter().all(|(_, result)| matches!(result, Ok(output) if output.successful()))
    }

    /// The names of the jobs that did not succeed.
    pub fn failed(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, result)| !matches!(result, Ok(output) if output.successful()))
            .map(|(name, _)| name.as_str())
    }
}

impl IntoIterator for PoolResults {
    type Item = (String, Result<ProcessOutput, ProcessError>);
    type IntoIter = std::vec::IntoIter<Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

/// Counters of a pool, shared by its clones.
#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    running: AtomicU64,
}

/// Takes a job off the running gauge when its run ends or is dropped.
struct RunningGuard<'a>(&'a Counters);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of a [`ProcessPool`]'s counters, over every run of the pool
/// and its clones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Jobs started.
    pub started: u64,
    /// Jobs that exited with code 0.
    pub succeeded: u64,
    /// Jobs that failed: non-zero exit, signal, timeout, or a spawn error.
    pub failed: u64,
    /// Jobs cancelled by fail-fast.
    pub cancelled: u64,
    /// Jobs running now.
    pub running: u64,
}

impl MetricsSnapshot for PoolMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("started", MetricValue::Count(self.started)),
            MetricEntry::new("succeeded", MetricValue::Count(self.succeeded)),
            MetricEntry::new("failed", MetricValue::Count(self.failed)),
            MetricEntry::new("cancelled", MetricValue::Count(self.cancelled)),
            MetricEntry::new("running", MetricValue::Gauge(self.running as f64)),
        ]
    }
}

impl MetricsSource for ProcessPool {
    type Snapshot = PoolMetrics;

    /// ```
    /// use conc_core::metrics::MetricsSource;
    /// use conc_process::{Process, ProcessPool};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
    /// let pool = ProcessPool::builder().build()?;
    /// pool.run([("ok", Process::new("true")), ("bad", Process::new("false"))]).await?;
    /// let metrics = pool.metrics();
    /// assert_eq!((metrics.started, metrics.succeeded, metrics.failed, metrics.running), (2, 1, 1, 0));
    /// # Ok(()) }
    /// ```
    fn metrics(&self) -> PoolMetrics {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PoolMetrics {
            started: load(&self.counters.started),
            succeeded: load(&self.counters.succeeded),
            failed: load(&self.counters.failed),
            cancelled: load(&self.counters.cancelled),
            running: load(&self.counters.running),
        }
    }

    fn reset_metrics(&self) {
        for counter in [
            &self.counters.started,
            &self.counters.succeeded,
            &self.counters.failed,
            &self.counters.cancelled,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
