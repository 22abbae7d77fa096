//! The supervisor's vocabulary: restart policies, events, child states.

use std::time::Duration;

use crate::ExitStatus;

/// When a supervised process is started again after it ends.
///
/// # Examples
///
/// ```
/// use conc_process::{RestartPolicy, Supervisor};
///
/// assert_eq!(RestartPolicy::default(), RestartPolicy::OnFailure);
/// let supervisor = Supervisor::builder().restart(RestartPolicy::Always).build()?;
/// # drop(supervisor);
/// # Ok::<(), conc_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Never: the process runs once.
    Never,
    /// When it exits with a non-zero code, is killed by a signal, times out
    /// or cannot be started. The default.
    #[default]
    OnFailure,
    /// Whenever it ends, successfully or not.
    Always,
}

/// Why a supervisor stopped restarting a process.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::GiveUpReason;
///
/// let reason = GiveUpReason::Intensity { max_restarts: 5, period: Duration::from_secs(10) };
/// assert_ne!(reason, GiveUpReason::BackoffExhausted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// More restarts than the intensity limit allows within its period.
    Intensity {
        /// The limit: restarts allowed per period.
        max_restarts: u32,
        /// The period.
        period: Duration,
    },
    /// The backoff schedule ran out (its `max_retries`).
    BackoffExhausted,
}

/// What happened to a supervised process, from [`Supervisor::events`](super::Supervisor::events).
///
/// # Examples
///
/// ```
/// use conc_process::{Process, RestartPolicy, Supervisor, SupervisorEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder().restart(RestartPolicy::Never).build()?;
/// let mut events = supervisor.events();
/// supervisor.supervise("once", || Process::new("true"))?;
/// assert!(matches!(events.recv().await?, SupervisorEvent::Started { run: 1, .. }));
/// assert!(matches!(events.recv().await?, SupervisorEvent::Exited { .. }));
/// assert!(matches!(events.recv().await?, SupervisorEvent::Completed { .. }));
/// supervisor.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// The process was started (`run` counts from 1).
    Started {
        /// The supervised name.
        name: String,
        /// Its process id.
        pid: u32,
        /// Which run this is: 1 for the first start, 2 after one restart, …
        run: u32,
    },
    /// The process ended, or could not be started.
    Exited {
        /// The supervised name.
        name: String,
        /// How it ended, if it ran and exited.
        status: Option<ExitStatus>,
        /// The error, if it could not start or timed out.
        error: Option<String>,
        /// How long it ran, on the supervisor's clock.
        uptime: Duration,
    },
    /// It will be started again after `delay`.
    Restarting {
        /// The supervised name.
        name: String,
        /// The restart number, from 1.
        restart: u32,
        /// The backoff delay before the restart.
        delay: Duration,
    },
    /// It will not be restarted any more: it keeps failing.
    GaveUp {
        /// The supervised name.
        name: String,
        /// Restarts made before giving up.
        restarts: u32,
        /// Why.
        reason: GiveUpReason,
    },
    /// It ended and its policy does not restart it.
    Completed {
        /// The supervised name.
        name: String,
    },
    /// It was stopped by a shutdown or a lifecycle stop.
    Stopped {
        /// The supervised name.
        name: String,
    },
}

/// Where a supervised process is in its life.
///
/// # Examples
///
/// ```
/// use conc_process::{ChildState, Process, RestartPolicy, Supervisor, SupervisorEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder().restart(RestartPolicy::Never).build()?;
/// let mut events = supervisor.events();
/// supervisor.supervise("once", || Process::new("true"))?;
/// while !matches!(events.recv().await?, SupervisorEvent::Completed { .. }) {}
/// assert_eq!(supervisor.metrics().child("once").unwrap().state, ChildState::Completed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildState {
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Waiting out a backoff delay before a restart.
    Backoff,
    /// Ended; its policy does not restart it.
    Completed,
    /// Restarting stopped: it kept failing.
    GaveUp,
    /// Stopped by a shutdown or a lifecycle stop, or added to a stopped supervisor.
    Stopped,
}
