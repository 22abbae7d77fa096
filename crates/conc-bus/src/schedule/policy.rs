//! [`MissedTicks`]: what to do with ticks that passed while no scheduler ran.

/// What a scheduler does with the ticks of a task that passed while no
/// scheduler ran (the process was down, or stalled longer than the
/// scheduler's grace). It knows about them from its
/// [`ScheduleStore`](super::ScheduleStore), which keeps each task's last
/// tick: with the default in-memory store, only ticks missed while this
/// process was stalled are seen; a SQLite store sees those missed across
/// restarts too.
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::MissedTicks;
///
/// assert_eq!(MissedTicks::default(), MissedTicks::Skip);
/// let bounded = MissedTicks::RunAll { max: 24 };
/// assert_ne!(bounded, MissedTicks::RunOnce);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTicks {
    /// Skip them: the task runs again at its next tick (cron's behaviour,
    /// and Laravel's). Reported as one [`ScheduleEvent::Missed`](super::ScheduleEvent::Missed).
    #[default]
    Skip,
    /// Run the task once for all of them, as soon as the scheduler is back
    /// (anacron's and systemd's `Persistent=true`), unless a tick on time is
    /// due as well, which then stands for them.
    RunOnce,
    /// Run the task once per missed tick, the latest `max` of them, oldest
    /// first: for tasks whose runs each cover their own period.
    RunAll {
        /// The most missed ticks to run.
        max: u32,
    },
}
