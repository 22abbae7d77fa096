//! What a supervisor reports about its children.

use std::time::Duration;

use conc_core::metrics::{self as names, MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};

use super::{ChildState, Supervisor};

/// A snapshot of one supervised process, from [`Supervisor::metrics`].
///
/// # Examples
///
/// ```
/// use conc_process::{ChildState, Process, RestartPolicy, Supervisor, SupervisorEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder().restart(RestartPolicy::Never).build()?;
/// let mut events = supervisor.events();
/// supervisor.supervise("sleeper", || Process::new("sleep").arg("30").quiet())?;
/// let SupervisorEvent::Started { pid, .. } = events.recv().await? else { unreachable!() };
/// let child = supervisor.metrics().child("sleeper").cloned().unwrap();
/// assert_eq!((child.state, child.pid, child.restarts), (ChildState::Running, Some(pid), 0));
/// supervisor.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildMetrics {
    /// The supervised name.
    pub name: String,
    /// Where it is.
    pub state: ChildState,
    /// Its process id while running.
    pub pid: Option<u32>,
    /// Restarts so far (since the last [`reset_metrics`](MetricsSource::reset_metrics)).
    pub restarts: u32,
    /// How long the current run has lasted on the supervisor's clock, while running.
    pub uptime: Option<Duration>,
    /// User plus system CPU time of all finished runs, from the kernel's
    /// resource usage (Linux; zero elsewhere).
    pub cpu_time: Duration,
    /// The largest peak resident set size of any finished run, in bytes
    /// (Linux; zero elsewhere).
    pub max_rss_bytes: u64,
}

impl ChildMetrics {
    pub(super) fn new(name: String, state: ChildState) -> Self {
        Self {
            name,
            state,
            pid: None,
            restarts: 0,
            uptime: None,
            cpu_time: Duration::ZERO,
            max_rss_bytes: 0,
        }
    }
}

/// A snapshot of a [`Supervisor`]: one entry per supervised process.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::{MetricValue, MetricsSnapshot, PROCESS_RESTARTS};
/// use conc_process::Supervisor;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder().build()?;
/// let metrics = supervisor.metrics();
/// assert!(metrics.children.is_empty());
/// assert_eq!(metrics.entries()[0].name, PROCESS_RESTARTS);
/// assert_eq!(metrics.entries()[0].value, MetricValue::Count(0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
#[must_use]
pub struct SupervisorMetrics {
    /// Each supervised process, in the order it was added.
    pub children: Vec<ChildMetrics>,
}

impl SupervisorMetrics {
    /// The snapshot of the process supervised as `name`.
    pub fn child(&self, name: &str) -> Option<&ChildMetrics> {
        self.children.iter().find(|child| child.name == name)
    }
}

impl MetricsSnapshot for SupervisorMetrics {
    /// Totals over the children: restarts, running, gave up, CPU time.
    fn entries(&self) -> Vec<MetricEntry> {
        let count =
            |state| self.children.iter().filter(|child| child.state == state).count() as f64;
        vec![
            MetricEntry::new(
                names::PROCESS_RESTARTS,
                MetricValue::Count(
                    self.children.iter().map(|child| u64::from(child.restarts)).sum(),
                ),
            ),
            MetricEntry::new("running", MetricValue::Gauge(count(ChildState::Running))),
            MetricEntry::new("gave_up", MetricValue::Gauge(count(ChildState::GaveUp))),
            MetricEntry::new(
                "cpu_time",
                MetricValue::Duration(
                    self.children
                        .iter()
                        .map(|child| child.cpu_time)
                        .fold(Duration::ZERO, Duration::saturating_add),
                ),
            ),
        ]
    }
}

impl MetricsSource for Supervisor {
    type Snapshot = SupervisorMetrics;

    fn metrics(&self) -> SupervisorMetrics {
        Supervisor::metrics(self)
    }

    /// Zeroes each child's restart count, CPU time and peak memory; state,
    /// pid and uptime describe the present and keep their values. The
    /// supervision itself (backoff, intensity window, run numbers) is not
    /// touched.
    fn reset_metrics(&self) {
        for child in self.lock().children.iter().map(|entry| &entry.child) {
            let mut metrics = child.metrics();
            metrics.restarts = 0;
            metrics.cpu_time = Duration::ZERO;
            metrics.max_rss_bytes = 0;
        }
    }
}
