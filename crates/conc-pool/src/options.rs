//! Per-task options and the pool-wide rejection policy.

use std::time::Duration;

/// Options for one task: its priority and its deadline. Set them with the
/// consuming setters; read them back through the fields.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_pool::TaskOptions;
///
/// let urgent = TaskOptions::new().priority(10).timeout(Duration::from_secs(2));
/// assert_eq!(urgent.priority, 10);
/// assert_eq!(urgent.timeout, Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "task options do nothing until passed to a submit"]
pub struct TaskOptions {
    /// The task's priority (see [`priority`](Self::priority)).
    pub priority: i32,
    /// The task's deadline, counted from submission (see [`timeout`](Self::timeout)).
    pub timeout: Option<Duration>,
}

impl TaskOptions {
    /// Default options: priority 0, no deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The task's priority: higher runs first; equal priorities run in
    /// submission order. With aging on (the default) no priority starves: a
    /// task `n` levels below the highest priority waiting runs once
    /// `n × aging_step` tasks were dequeued after its submission, however
    /// many higher-priority tasks still wait. Any `i32` is accepted.
    /// Defaults to 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The task must finish within `timeout` of its submission. A task still
    /// queued at its deadline is not started; a running async task is dropped
    /// at its deadline; a running blocking closure cannot be preempted and
    /// only gets the deadline checked before it starts. The handle then
    /// resolves to [`JoinError::DeadlineExceeded`](crate::JoinError::DeadlineExceeded).
    /// A timeout too long to represent as a point in time (`Duration::MAX`)
    /// means no deadline. Defaults to no deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// What `submit` does when a bounded queue is full.
///
/// `try_submit` ignores the policy: on a full queue it always hands the task
/// straight back, without allocating or waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_pool::{BlockingPool, Rejection};
///
/// let pool = BlockingPool::builder()
///     .workers(2)
///     .queue_capacity(1_000)
///     .rejection(Rejection::Block(Duration::from_millis(50)))
///     .build()?;
/// assert_eq!(pool.submit(|| 7).unwrap().join()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Refuse the task and hand it back in [`SubmitError::Full`](crate::SubmitError::Full).
    /// The default.
    #[default]
    Reject,
    /// Run the task on the caller (the submitting thread, or the submitting
    /// async task): natural backpressure, and no deadlock when the caller is
    /// itself one of the pool's workers.
    CallerRuns,
    /// Evict the oldest task of the lowest priority level to make room. The
    /// evicted task goes to the `on_evict` callback when one is set (it can
    /// run it, re-submit it or drop it); otherwise its handle resolves to
    /// [`JoinError::Evicted`](crate::JoinError::Evicted). Never silent.
    DropOldest,
    /// Wait up to the given time for room, then hand the task back in
    /// [`SubmitError::Timeout`](crate::SubmitError::Timeout).
    Block(Duration),
}
