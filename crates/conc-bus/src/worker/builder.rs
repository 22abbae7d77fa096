//! [`WorkerBuilder`]: a worker's queues, concurrency, leases and stop
//! conditions, checked by `build`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::backoff::{Backoff, Jitter};
use conc_core::config::{self, ConfigError};

use super::Worker;
use crate::job::{JobHandlers, check_queue_name};
use crate::queue::QueueBackend;

/// The most jobs one worker may run at once (or hold prefetched).
pub const MAX_CONCURRENCY: usize = 65_536;

/// The shortest lease: one second (renewed every third of it).
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// The longest lease, poll interval or grace: one day.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The default heartbeat interval: five seconds.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The shortest heartbeat interval: 10 ms.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// A worker's settings, as built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) prefetch: usize,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) grace: Duration,
    pub(crate) max_jobs: Option<u64>,
    pub(crate) max_time: Option<Duration>,
    pub(crate) stop_when_empty: bool,
    pub(crate) backend_retry: Backoff,
    pub(crate) long_waits: HashMap<String, Duration>,
    pub(crate) event_capacity: usize,
    pub(crate) heartbeat: Option<Duration>,
}

/// Configures a [`Worker`]; settings are checked by [`build`](Self::build).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::{JobHandlers, MemoryQueue, Worker};
///
/// let worker = Worker::builder(MemoryQueue::new(), JobHandlers::new())
///     .queues(["urgent", "default"])
///     .concurrency(16)
///     .prefetch(4)
///     .lease(Duration::from_secs(60))
///     .grace(Duration::from_secs(30))
///     .max_jobs(10_000)
///     .build()?;
/// assert_eq!(worker.queues(), ["urgent", "default"]);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerBuilder<B> {
    backend: Arc<B>,
    handlers: JobHandlers,
    config: Config,
}

impl<B> fmt::Debug for WorkerBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<B: QueueBackend> WorkerBuilder<B> {
    pub(super) fn new(backend: Arc<B>, handlers: JobHandlers) -> Self {
        let backend_retry = Backoff::exponential(Duration::from_millis(100))
            .jitter(Jitter::Equal)
            .max_delay(Duration::from_secs(30))
            .build()
            .expect("the default reconnect backoff is valid");
        let config = Config {
            name: format!("bus-worker-{:08x}", crate::id::JobId::new().as_u128() as u32),
            queues: vec![crate::DEFAULT_QUEUE.to_owned()],
            concurrency: 8,
            prefetch: 0,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            max_jobs: None,
            max_time: None,
            stop_when_empty: false,
            backend_retry,
            long_waits: HashMap::new(),
            event_capacity: 1024,
            heartbeat: Some(DEFAULT_HEARTBEAT),
        };
        Self { backend, handlers, config }
    }

    /// The worker's name, unique within a lifecycle registry. Defaults to
    /// `bus-worker-` and eight random hex digits.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// The queues to take jobs from, in priority order: a job of an earlier
    /// queue is taken before any job of a later one. Defaults to `["default"]`.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// How many jobs run at once. Defaults to 8; 1 to [`MAX_CONCURRENCY`].
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency;
        self
    }

    /// How many jobs the worker reserves ahead of free slots (held, leased,
    /// not started). Defaults to 0, so idle workers elsewhere get the work;
    /// raise it when the backend's round trip dominates short jobs. At most
    /// [`MAX_CONCURRENCY`].
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.config.prefetch = prefetch;
        self
    }

    /// How long a reservation lasts unless renewed; the worker renews every
    /// lease it holds every third of it while the job runs. A worker that
    /// dies gives its jobs back within a lease. Defaults to 30 s; between
    /// [`MIN_LEASE`] and [`MAX_WAIT`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How long an idle worker waits before asking the backend again when
    /// nothing wakes it (delayed jobs becoming due, another process's
    /// pushes). Defaults to 1 s; between 1 ms and [`MAX_WAIT`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How long running jobs may take to finish once the worker is stopping;
    /// then their cancellation is signalled, their leases released at once
    /// (so another worker takes them without waiting for expiry) and their
    /// tasks dropped. Defaults to 10 s; at most [`MAX_WAIT`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// Stops after finishing this many jobs (succeeded or not). Defaults to none.
    pub fn max_jobs(mut self, jobs: u64) -> Self {
        self.config.max_jobs = Some(jobs);
        self
    }

    /// Stops after running this long. Defaults to none.
    pub fn max_time(mut self, time: Duration) -> Self {
        self.config.max_time = Some(time);
        self
    }

    /// Stops once its queues have nothing available and it runs nothing.
    /// Defaults to false.
    pub fn stop_when_empty(mut self, stop: bool) -> Self {
        self.config.stop_when_empty = stop;
        self
    }

    /// How the worker waits between tries while the backend fails (it never
    /// gives up). Defaults to exponential from 100 ms, equal jitter, capped at 30 s.
    pub fn backend_retry(mut self, backoff: Backoff) -> Self {
        self.config.backend_retry = backoff;
        self
    }

    /// Emits [`WorkerEvent::LongWait`](crate::WorkerEvent::LongWait) when a
    /// job of `queue` waited longer than `threshold` before it started.
    /// Defaults to no threshold.
    pub fn long_wait(mut self, queue: impl Into<String>, threshold: Duration) -> Self {
        self.config.long_waits.insert(queue.into(), threshold);
        self
    }

    /// How many events a slow subscriber may fall behind before it misses
    /// some. Defaults to 1024; 1 to 65,536.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.config.event_capacity = capacity;
        self
    }

    /// How often the worker records its heartbeat in the backend
    /// ([`WorkerBeat`](crate::WorkerBeat): host, pid, queues, state, jobs
    /// processed and failed), so that admin commands and dashboards in other
    /// processes list it; it counts as gone after
    /// [`MISSED_BEATS`](crate::MISSED_BEATS) intervals without one, and a
    /// worker that stops gracefully deletes its beat. A beat is one small
    /// write, never on a job's path. Defaults to [`DEFAULT_HEARTBEAT`] (5 s);
    /// between [`MIN_HEARTBEAT`] and [`MAX_WAIT`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{JobHandlers, MemoryQueue, Worker};
    ///
    /// let worker = Worker::builder(MemoryQueue::new(), JobHandlers::new())
    ///     .heartbeat_interval(Duration::from_secs(2))
    ///     .build()?;
    /// # let _ = worker;
    /// # Ok::<(), conc_core::config::ConfigError>(())
    /// ```
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat = Some(interval);
        self
    }

    /// Whether the worker records heartbeats at all. Defaults to true; off,
    /// it is listed only by the process that runs it.
    pub fn heartbeats(mut self, on: bool) -> Self {
        if !on {
            self.config.heartbeat = None;
        } else if self.config.heartbeat.is_none() {
            self.config.heartbeat = Some(DEFAULT_HEARTBEAT);
        }
        self
    }

    /// The worker, not yet started.
    pub fn build(self) -> Result<Worker<B>, ConfigError> {
        let config = &self.config;
        config::name("name", &config.name)?;
        if config.queues.is_empty() {
            return Err(ConfigError::new("queues", &config.queues, "must name at least one queue"));
        }
        for queue in &config.queues {
            check_queue_name(queue)?;
        }
        config::between("concurrency", config.concurrency, 1, MAX_CONCURRENCY)?;
        config::at_most("prefetch", config.prefetch, MAX_CONCURRENCY)?;
        config::between("lease", config.lease, MIN_LEASE, MAX_WAIT)?;
        config::between("poll_interval", config.poll_interval, Duration::from_millis(1), MAX_WAIT)?;
        config::at_most("grace", config.grace, MAX_WAIT)?;
        if let Some(max_jobs) = config.max_jobs {
            config::at_least("max_jobs", max_jobs, 1)?;
        }
        if let Some(max_time) = config.max_time {
            config::positive("max_time", max_time)?;
        }
        for (queue, threshold) in &config.long_waits {
            check_queue_name(queue)?;
            config::positive("long_wait", *threshold)?;
        }
        config::between("event_capacity", config.event_capacity, 1, 65_536)?;
        if let Some(interval) = config.heartbeat {
            config::between("heartbeat_interval", interval, MIN_HEARTBEAT, MAX_WAIT)?;
        }
        Ok(Worker::from_parts(self.backend, self.handlers, self.config))
    }
}
