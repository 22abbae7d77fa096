//! Settings both pool builders share: their defaults, their setters and
//! their validation.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use conc_core::time::{Clock, CoarseClock};

use crate::core::CoreSettings;
use crate::engine::EvictHook;
use crate::options::Rejection;
use crate::scale::Scaling;

/// The default aging step: a waiting task gains one priority level for every
/// 64 tasks dequeued before it.
///
/// # Examples
///
/// ```
/// assert_eq!(conc_pool::DEFAULT_AGING_STEP, 64);
/// ```
pub const DEFAULT_AGING_STEP: u64 = 64;

/// The default keep-alive of a dynamic pool: a worker above the minimum
/// retires after 10 s without work.
///
/// # Examples
///
/// ```
/// assert_eq!(conc_pool::DEFAULT_KEEP_ALIVE, std::time::Duration::from_secs(10));
/// ```
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The name a pool has unless given one.
pub(crate) const DEFAULT_NAME: &str = "conc-pool";

/// The raw values a builder was given, validated in `build()`; `U` is the
/// pool's handed-back task.
pub(crate) struct RawSettings<U> {
    pub(crate) workers: usize,
    pub(crate) max_workers: Option<usize>,
    pub(crate) capacity: Option<usize>,
    pub(crate) aging_step: Option<u64>,
    pub(crate) rejection: Rejection,
    pub(crate) name: String,
    pub(crate) stuck_after: Option<Duration>,
    pub(crate) keep_alive: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) scaling: Scaling,
    pub(crate) on_evict: Option<EvictHook<U>>,
}

impl<U> fmt::Debug for RawSettings<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSettings")
            .field("workers", &self.workers)
            .field("max_workers", &self.max_workers)
            .field("capacity", &self.capacity)
            .field("aging_step", &self.aging_step)
            .field("rejection", &self.rejection)
            .field("name", &self.name)
            .field("stuck_after", &self.stuck_after)
            .field("keep_alive", &self.keep_alive)
            .field("clock", &self.clock)
            .field("scaling", &self.scaling)
            .field("on_evict", &self.on_evict.is_some())
            .finish()
    }
}

/// Validated settings: what the engine is made from.
pub(crate) struct Settings<U> {
    pub(crate) core: CoreSettings,
    /// The fewest workers (the `workers` setting).
    pub(crate) min: usize,
    /// The most workers alive at once.
    pub(crate) max: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) scaling: Scaling,
    pub(crate) on_evict: Option<EvictHook<U>>,
}

impl<U> fmt::Debug for Settings<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings").field("core", &self.core).finish_non_exhaustive()
    }
}

impl<U> RawSettings<U> {
    pub(crate) fn new() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            max_workers: None,
            capacity: None,
            aging_step: Some(DEFAULT_AGING_STEP),
            rejection: Rejection::Reject,
            name: DEFAULT_NAME.to_owned(),
            stuck_after: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            clock: Arc::new(CoarseClock::global()),
            scaling: Scaling::new(),
            on_evict: None,
        }
    }

    /// Checks every setting against its rule; `limit` is the most workers the
    /// pool kind accepts.
    pub(crate) fn validate(self, limit: usize) -> Result<Settings<U>, ConfigError> {
        let min = config::at_least("workers", self.workers, 1)?;
        let min = config::at_most("workers", min, limit)?;
        let max = self.max_workers.unwrap_or(min);
        if max < min {
            return Err(ConfigError::new(
                "max_workers",
                max,
                format!("must be at least `workers` ({min})"),
            ));
        }
        let max = config::at_most("max_workers", max, limit)?;
        if let Some(capacity) = self.capacity {
            config::at_least("queue_capacity", capacity, 1)?;
        }
        if let Some(step) = self.aging_step {
            config::at_least("aging_step", step, 1)?;
        }
        config::name("name", &self.name)?;
        if let Some(threshold) = self.stuck_after {
            config::positive("stuck_after", threshold)?;
        }
        let keep_alive = config::positive("keep_alive", self.keep_alive)?;
        Ok(Settings {
            core: CoreSettings {
                capacity: self.capacity,
                aging_step: self.aging_step,
                rejection: self.rejection,
                name: self.name,
                stuck_after: self.stuck_after,
                clock: self.clock,
                // `max` live workers, as many replaced stuck ones still finishing.
                slots: 2 * max,
            },
            min,
            max,
            keep_alive,
            scaling: self.scaling,
            on_evict: self.on_evict,
        })
    }
}

/// The setters both builders share; `$pool` names the pool type (for its
/// worker limit) and `$unstarted` its handed-back task.
macro_rules! common_setters {
    ($pool:ident, $unstarted:ident) => {
        /// Worker count: the pool's concurrency (and the minimum of a dynamic
        /// pool). Must be at least 1 and at most
        #[doc = concat!("[`", stringify!($pool), "::MAX_WORKERS`](crate::", stringify!($pool), "::MAX_WORKERS).")]
        /// Defaults to the machine's available parallelism.
        pub fn workers(mut self, workers: usize) -> Self {
            self.raw.workers = workers;
            self
        }

        /// Makes the pool dynamic: it starts with `workers` workers (its
        /// minimum), adds one whenever a task is queued while no worker is
        /// idle (growth comes before queueing), up to `max`, and retires a
        /// worker idle for the keep-alive while more than the minimum remain.
        /// Must be at least `workers` and at most
        #[doc = concat!("[`", stringify!($pool), "::MAX_WORKERS`](crate::", stringify!($pool), "::MAX_WORKERS).")]
        /// Defaults to `workers` (a fixed pool).
        ///
        /// That is the default [`GrowWhenQueued`](crate::GrowWhenQueued) policy;
        /// [`scale_policy`](Self::scale_policy) replaces it.
        pub fn max_workers(mut self, max: usize) -> Self {
            self.raw.max_workers = Some(max);
            self
        }

        /// Bounds the queue to `capacity` waiting tasks (running tasks do not
        /// count). Must be at least 1; any larger value is accepted (no memory
        /// is reserved for it). Defaults to unbounded.
        pub fn queue_capacity(mut self, capacity: usize) -> Self {
            self.raw.capacity = Some(capacity);
            self
        }

        /// Makes the queue unbounded (the default).
        pub fn unbounded(mut self) -> Self {
            self.raw.capacity = None;
            self
        }

        /// What `submit` does on a full queue. Defaults to [`Rejection::Reject`](crate::Rejection::Reject).
        pub fn rejection(mut self, rejection: $crate::Rejection) -> Self {
            self.raw.rejection = rejection;
            self
        }

        /// Aging: a waiting task comes one priority level closer to the top
        /// per `step` tasks dequeued after its submission, and runs as soon
        /// as it reaches the highest priority waiting. Under a saturating
        /// stream of priority `high`, a task of priority `low` starts after at
        /// most `(high - low) × step` dequeues, however many high-priority
        /// tasks wait, queued before or after it (tasks of its own or lower
        /// priority that fell due earlier go first). Must be at least 1.
        /// Defaults to [`DEFAULT_AGING_STEP`](crate::DEFAULT_AGING_STEP) (64).
        pub fn aging_step(mut self, step: u64) -> Self {
            self.raw.aging_step = Some(step);
            self
        }

        /// Strict priorities without aging: a steady stream of high-priority
        /// work starves lower priorities. Defaults to aging on.
        pub fn strict_priorities(mut self) -> Self {
            self.raw.aging_step = None;
            self
        }

        /// The pool's name: in worker thread names, tracing spans, the `pool`
        /// label of its metrics and its [`Lifecycle`](conc_core::lifecycle::Lifecycle)
        /// name. Must not be empty or contain a NUL byte. Defaults to `conc-pool`.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.raw.name = name.into();
            self
        }

        /// A worker running one task for at least `threshold` is reported as
        /// stuck by `health()` and counted in `metrics().stuck`, and replaced
        /// by a fresh worker (counted in `metrics().replaced`) so capacity is
        /// kept. Read on the pool's [`clock`](Self::clock). Must be longer
        /// than zero. Defaults to no detection.
        pub fn stuck_after(mut self, threshold: std::time::Duration) -> Self {
            self.raw.stuck_after = Some(threshold);
            self
        }

        /// How long a worker above the minimum may stay idle before it
        /// retires (the async pool waits on tokio's clock, so a paused clock
        /// drives it in tests; the blocking pool on the system clock). Must be
        /// longer than zero; `Duration::MAX` means never. Defaults to
        /// [`DEFAULT_KEEP_ALIVE`](crate::DEFAULT_KEEP_ALIVE) (10 s).
        pub fn keep_alive(mut self, keep_alive: std::time::Duration) -> Self {
            self.raw.keep_alive = keep_alive;
            self
        }

        /// The clock the pool reads for queue waits, task durations and
        /// stuck-worker detection (and the blocking pool for task deadlines).
        /// Defaults to the process-wide coarse clock,
        /// [`CoarseClock::global`](conc_core::time::CoarseClock::global); a
        /// [`ManualClock`](conc_core::time::ManualClock) makes all of these
        /// deterministic in tests.
        pub fn clock(mut self, clock: impl conc_core::time::Clock + 'static) -> Self {
            self.raw.clock = std::sync::Arc::new(clock);
            self
        }

        /// How a dynamic pool decides to grow and shrink. Defaults to
        /// [`GrowWhenQueued`](crate::GrowWhenQueued); [`QueueUtilisation`](crate::QueueUtilisation)
        /// scales on queue length and utilisation.
        pub fn scale_policy(mut self, policy: impl $crate::ScalePolicy) -> Self {
            self.raw.scaling.policy = Box::new(policy);
            self
        }

        /// Called with each task the [`Rejection::DropOldest`](crate::Rejection::DropOldest)
        /// policy evicts, on the submitting task or thread; it may run it,
        /// re-submit it or drop it (its handle then resolves to
        /// [`JoinError::Evicted`](crate::JoinError::Evicted)). Without a
        /// callback the evicted task's handle resolves to `JoinError::Evicted`
        /// at once. Defaults to none.
        pub fn on_evict(mut self, callback: impl Fn($crate::$unstarted) + Send + Sync + 'static) -> Self {
            self.raw.on_evict = Some(Box::new(callback));
            self
        }

        /// Called with the snapshot and the decision each time the scale
        /// policy is consulted (every decision, `Hold` included), on the
        /// submitting or retiring task or thread. Keep it cheap. Defaults to none.
        pub fn on_scale(
            mut self,
            callback: impl Fn(&$crate::ScaleSnapshot, $crate::ScaleDecision) + Send + Sync + 'static,
        ) -> Self {
            self.raw.scaling.hook = Some(Box::new(callback));
            self
        }
    };
}

pub(crate) use common_setters;
