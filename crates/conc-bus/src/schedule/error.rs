//! [`ScheduleError`]: what can go wrong around the scheduler.

use conc_core::BoxError;
use conc_core::config::ConfigError;

/// Why the scheduler refused a task or could not reach its store.
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::{ScheduleError, ScheduledTask, Scheduler};
///
/// let scheduler = Scheduler::builder().build()?;
/// let task = ScheduledTask::call("report", || async { Ok::<(), std::io::Error>(()) }).daily_at("25:00");
/// match scheduler.add(task) {
///     Err(ScheduleError::Config(error)) => assert_eq!(error.field, "daily_at"),
///     other => panic!("expected a refused time, got {other:?}"),
/// }
/// # Ok::<(), ScheduleError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A setting of the scheduler or of a task was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `run` or `start` was called while the scheduler's loop was going.
    #[error("the scheduler is already running")]
    AlreadyRunning,
    /// The scheduler stopped with runs still in progress at its deadline; they were cancelled.
    #[error("runs were still in progress at the deadline and were cancelled")]
    Unfinished,
    /// The schedule store (where the last tick of each task is kept) failed.
    #[error("the schedule store failed: {0}")]
    Store(#[source] BoxError),
}
