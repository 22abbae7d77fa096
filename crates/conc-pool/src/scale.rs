//! Pluggable scaling: what a dynamic pool does when work queues or a worker
//! idles past the keep-alive.

use std::fmt;
use std::time::Duration;

use conc_core::config::{self, ConfigError};

use crate::core::Core;

/// What the pool looked like when a scaling decision was asked for.
///
/// # Examples
///
/// ```
/// use conc_pool::{GrowWhenQueued, ScaleDecision, ScalePolicy, ScaleSnapshot, ScaleTrigger};
///
/// let snapshot = ScaleSnapshot {
///     trigger: ScaleTrigger::Queued,
///     workers: 2,
///     min_workers: 1,
///     max_workers: 4,
///     busy: 2,
///     idle: 0,
///     queued: 1,
///     queue_wait_p99: std::time::Duration::ZERO,
/// };
/// assert_eq!(GrowWhenQueued.decide(&snapshot), ScaleDecision::Grow(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSnapshot {
    /// Why the policy is asked.
    pub trigger: ScaleTrigger,
    /// Workers alive.
    pub workers: usize,
    /// The pool's minimum size (`workers` on the builder).
    pub min_workers: usize,
    /// The pool's maximum size (`max_workers` on the builder).
    pub max_workers: usize,
    /// Workers running a task.
    pub busy: usize,
    /// Workers alive and not running a task.
    pub idle: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// 99th percentile of the time from submission to start so far.
    pub queue_wait_p99: Duration,
}

impl ScaleSnapshot {
    /// Busy workers over live workers, 0.0 to 1.0 (0.0 with no workers).
    pub fn utilisation(&self) -> f64 {
        if self.workers == 0 {
            0.0
        } else {
            f64::from(u32::try_from(self.busy).unwrap_or(u32::MAX))
                / f64::from(u32::try_from(self.workers).unwrap_or(u32::MAX))
        }
    }
}

/// Why a [`ScalePolicy`] is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScaleTrigger {
    /// A task was queued and no idle worker took it (the pool is below its
    /// maximum size).
    Queued,
    /// A worker has been idle for the keep-alive (the pool is above its
    /// minimum size). `Shrink(n)` retires this worker (and asks `n - 1`
    /// more to leave); `Hold` keeps it for another keep-alive.
    IdleTimeout,
}

/// A scaling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDecision {
    /// Start up to `n` workers (never above `max_workers`).
    Grow(usize),
    /// Retire up to `n` workers (never below `workers`).
    Shrink(usize),
    /// Change nothing.
    Hold,
}

/// Decides how a dynamic pool (`max_workers` above `workers`) grows and
/// shrinks. The pool clamps every decision to its bounds, applies it, counts
/// it in `metrics().scaled_up`/`scaled_down` and the scale-events metric,
/// logs it as a `conc_pool` tracing event and passes it to the builder's
/// `on_scale` callback.
///
/// The policy is asked only off the fast path: when a task queues with no
/// idle worker below the maximum size, and when a worker idles past the
/// keep-alive above the minimum size. Keep it cheap; it must not block.
///
/// # Examples
///
/// ```
/// use conc_pool::{AsyncPool, ScaleDecision, ScalePolicy, ScaleSnapshot, ScaleTrigger};
///
/// /// Grows two at a time, and never shrinks.
/// struct Eager;
///
/// impl ScalePolicy for Eager {
///     fn decide(&self, s: &ScaleSnapshot) -> ScaleDecision {
///         match s.trigger {
///             ScaleTrigger::Queued => ScaleDecision::Grow(2),
///             _ => ScaleDecision::Hold,
///         }
///     }
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let pool = AsyncPool::builder().workers(1).max_workers(8).scale_policy(Eager).build()?;
/// assert_eq!(pool.submit(async { 1 }).await.unwrap().await, Ok(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ScalePolicy: Send + Sync + 'static {
    /// The decision for this snapshot.
    fn decide(&self, snapshot: &ScaleSnapshot) -> ScaleDecision;
}

/// The default policy: grow by one whenever a task queues with no idle
/// worker; retire a worker idle for the keep-alive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrowWhenQueued;

impl ScalePolicy for GrowWhenQueued {
    fn decide(&self, snapshot: &ScaleSnapshot) -> ScaleDecision {
        match snapshot.trigger {
            ScaleTrigger::Queued => ScaleDecision::Grow(1),
            ScaleTrigger::IdleTimeout => ScaleDecision::Shrink(1),
        }
    }
}

/// Scales on queue length and utilisation: grows by enough workers to bring
/// the queue down to `tasks_per_worker` waiting tasks per worker; retires an
/// idle worker only while utilisation is below `shrink_below`.
///
/// # Examples
///
/// ```
/// use conc_pool::{QueueUtilisation, ScaleDecision, ScalePolicy, ScaleSnapshot, ScaleTrigger};
///
/// let policy = QueueUtilisation::new(2, 0.5)?;
/// let mut s = ScaleSnapshot {
///     trigger: ScaleTrigger::Queued,
///     workers: 2,
///     min_workers: 1,
///     max_workers: 16,
///     busy: 2,
///     idle: 0,
///     queued: 9,
///     queue_wait_p99: std::time::Duration::ZERO,
/// };
/// // 9 queued, 2 per worker allowed: 5 workers wanted, 3 more.
/// assert_eq!(policy.decide(&s), ScaleDecision::Grow(3));
/// s.queued = 3;
/// assert_eq!(policy.decide(&s), ScaleDecision::Hold);
///
/// assert!(QueueUtilisation::new(0, 0.5).is_err());
/// assert!(QueueUtilisation::new(2, f64::NAN).is_err());
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueUtilisation {
    tasks_per_worker: usize,
    shrink_below: f64,
}

impl QueueUtilisation {
    /// A policy allowing `tasks_per_worker` queued tasks per worker and
    /// retiring idle workers only while utilisation is below `shrink_below`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `tasks_per_worker` is 0 or `shrink_below` is not
    /// between 0.0 and 1.0 (NaN included).
    pub fn new(tasks_per_worker: usize, shrink_below: f64) -> Result<Self, ConfigError> {
        Ok(Self {
            tasks_per_worker: config::at_least("tasks_per_worker", tasks_per_worker, 1)?,
            shrink_below: config::between("shrink_below", shrink_below, 0.0, 1.0)?,
        })
    }
}

impl ScalePolicy for QueueUtilisation {
    fn decide(&self, s: &ScaleSnapshot) -> ScaleDecision {
        match s.trigger {
            ScaleTrigger::Queued => {
                let wanted = s.queued.div_ceil(self.tasks_per_worker);
                if wanted > s.workers {
                    ScaleDecision::Grow(wanted - s.workers)
                } else {
                    ScaleDecision::Hold
                }
            }
            ScaleTrigger::IdleTimeout => {
                if s.utilisation() < self.shrink_below {
                    ScaleDecision::Shrink(1)
                } else {
                    ScaleDecision::Hold
                }
            }
        }
    }
}

/// The callback told of every scaling decision the policy made.
pub(crate) type ScaleHook = Box<dyn Fn(&ScaleSnapshot, ScaleDecision) + Send + Sync>;

pub(crate) struct Scaling {
    pub(crate) policy: Box<dyn ScalePolicy>,
    pub(crate) hook: Option<ScaleHook>,
}

impl Scaling {
    pub(crate) fn new() -> Self {
        Self { policy: Box::new(GrowWhenQueued), hook: None }
    }

    /// Asks the policy, reports the decision (tracing event, callback) and
    /// returns it.
    pub(crate) fn decide<J>(
        &self,
        core: &Core<J>,
        trigger: ScaleTrigger,
        workers: usize,
        min_workers: usize,
        max_workers: usize,
    ) -> ScaleDecision {
        let metrics = core.metrics();
        let snapshot = ScaleSnapshot {
            trigger,
            workers,
            min_workers,
            max_workers,
            busy: metrics.busy,
            idle: metrics.idle,
            queued: metrics.queued,
            queue_wait_p99: metrics.wait_p99,
        };
        let decision = self.policy.decide(&snapshot);
        tracing::debug!(
            target: "conc_pool",
            pool = %core.name,
            ?trigger,
            ?decision,
            workers,
            busy = snapshot.busy,
            queued = snapshot.queued,
            "scale decision"
        );
        if let Some(hook) = &self.hook {
            hook(&snapshot, decision);
        }
        decision
    }
}

impl fmt::Debug for Scaling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scaling").field("hook", &self.hook.is_some()).finish_non_exhaustive()
    }
}
