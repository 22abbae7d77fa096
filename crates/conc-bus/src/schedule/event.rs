//! What a scheduler reports: [`ScheduleEvent`]s as they happen and a
//! [`ScheduleMetrics`] snapshot.

use std::time::{Duration, SystemTime};

use conc_core::metrics::{self as names, MetricEntry, MetricValue, MetricsSnapshot};

/// Why a tick did not run its task.
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::SkipReason;
///
/// assert_eq!(SkipReason::Overlapping.to_string(), "a run of the task still holds its lock");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// A `when`, `skip` or `between` filter said no.
    #[error("a filter said no")]
    Filtered,
    /// The task runs without overlapping and a run of it still holds its lock.
    #[error("a run of the task still holds its lock")]
    Overlapping,
    /// The task runs on one server and another scheduler took this tick.
    #[error("another scheduler took the tick")]
    OtherServer,
}

impl SkipReason {
    /// The reason as a metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Filtered => "filtered",
            Self::Overlapping => "overlapping",
            Self::OtherServer => "other_server",
        }
    }
}

/// Something a scheduler did, as it happens. Subscribe with
/// [`Scheduler::subscribe`](super::Scheduler::subscribe).
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use conc_bus::schedule::{ScheduleEvent, SkipReason};
///
/// let event = ScheduleEvent::Skipped { task: "report".into(), tick: SystemTime::UNIX_EPOCH, reason: SkipReason::Filtered };
/// assert_eq!(event.task(), "report");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleEvent {
    /// A run started for this tick.
    Started {
        /// The task.
        task: String,
        /// The tick it runs for.
        tick: SystemTime,
    },
    /// A run succeeded.
    Finished {
        /// The task.
        task: String,
        /// The tick it ran for.
        tick: SystemTime,
        /// How long it ran, on the scheduler's clock.
        runtime: Duration,
    },
    /// A run failed or panicked, or its locks could not be taken (the lock
    /// store failed: the tick is not run, so that it never runs twice).
    Failed {
        /// The task.
        task: String,
        /// The tick.
        tick: SystemTime,
        /// The error, with its chain.
        error: String,
    },
    /// A tick did not run.
    Skipped {
        /// The task.
        task: String,
        /// The tick.
        tick: SystemTime,
        /// Why.
        reason: SkipReason,
    },
    /// Ticks passed while no scheduler ran; `ran` of them were run as the
    /// policy said ([`MissedTicks`](super::MissedTicks)).
    Missed {
        /// The task.
        task: String,
        /// How many ticks were missed (counted up to 1,000 per check).
        ticks: u64,
        /// How many of them were run.
        ran: u64,
    },
}

impl ScheduleEvent {
    /// The task the event is about.
    pub fn task(&self) -> &str {
        match self {
            Self::Started { task, .. }
            | Self::Finished { task, .. }
            | Self::Failed { task, .. }
            | Self::Skipped { task, .. }
            | Self::Missed { task, .. } => task,
        }
    }
}

/// What a scheduler has done since it was built (or its metrics reset).
///
/// # Examples
///
/// ```
/// use conc_bus::schedule::Scheduler;
/// use conc_core::metrics::MetricsSource;
///
/// let scheduler = Scheduler::builder().build()?;
/// assert_eq!(scheduler.metrics().runs, 0);
/// # Ok::<(), conc_bus::schedule::ScheduleError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleMetrics {
    /// Runs started.
    pub runs: u64,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed or panicked, and ticks whose locks could not be taken.
    pub failed: u64,
    /// Ticks skipped (filters, overlapping, another server).
    pub skipped: u64,
    /// Ticks missed while no scheduler ran.
    pub missed: u64,
    /// Runs in progress now.
    pub running: u64,
    /// Tasks on the schedule.
    pub tasks: u64,
}

impl MetricsSnapshot for ScheduleMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new(names::BUS_SCHEDULE_RUNS, MetricValue::Count(self.runs)),
            MetricEntry::new("succeeded", MetricValue::Count(self.succeeded)),
            MetricEntry::new(names::BUS_SCHEDULE_FAILED, MetricValue::Count(self.failed)),
            MetricEntry::new(names::BUS_SCHEDULE_SKIPPED, MetricValue::Count(self.skipped)),
            MetricEntry::new(names::BUS_SCHEDULE_MISSED, MetricValue::Count(self.missed)),
            MetricEntry::new("running", MetricValue::Gauge(self.running as f64)),
            MetricEntry::new("tasks", MetricValue::Gauge(self.tasks as f64)),
        ]
    }
}
