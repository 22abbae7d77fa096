//! Keeping named processes running: restart policies, backoff, a restart
//! intensity limit, lifecycle events and graceful shutdown.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{self as names, MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{ExitStatus, Process, ProcessError};

/// When a supervised process is started again after it ends.
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

/// What happened to a supervised process, from [`Supervisor::events`].
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
        /// How long it ran.
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
    /// It was stopped by [`Supervisor::shutdown`].
    Stopped {
        /// The supervised name.
        name: String,
    },
}

/// Where a supervised process is in its life.
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
    /// Stopped by shutdown.
    Stopped,
}

/// A snapshot of one supervised process, from [`Supervisor::metrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildMetrics {
    /// The supervised name.
    pub name: String,
    /// Where it is.
    pub state: ChildState,
    /// Its process id while running.
    pub pid: Option<u32>,
    /// Restarts so far.
    pub restarts: u32,
    /// How long the current run has lasted, while running.
    pub uptime: Option<Duration>,
    /// User plus system CPU time of all finished runs, from the kernel's
    /// resource usage (Linux; zero elsewhere).
    pub cpu_time: Duration,
    /// The largest peak resident set size of any finished run, in bytes
    /// (Linux; zero elsewhere).
    pub max_rss_bytes: u64,
}

/// A snapshot of a [`Supervisor`]: one entry per supervised process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
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
                MetricValue::Duration(self.children.iter().map(|child| child.cpu_time).sum()),
            ),
        ]
    }
}

impl MetricsSource for Supervisor {
    type Snapshot = SupervisorMetrics;

    fn metrics(&self) -> SupervisorMetrics {
        Supervisor::metrics(self)
    }

    /// Restart counts and CPU totals are the children's history; nothing is reset.
    fn reset_metrics(&self) {}
}

/// Settings shared by the children of a supervisor.
#[derive(Debug, Clone)]
struct Config {
    policy: RestartPolicy,
    backoff: Backoff,
    max_restarts: u32,
    period: Duration,
    reset_after: Duration,
    shutdown_grace: Duration,
}

type Factory = Arc<dyn Fn() -> Process + Send + Sync>;

/// A supervised child: its name, its shared state, its loop task.
type Supervised = (String, Arc<Child>, JoinHandle<()>);

struct Child {
    metrics: Mutex<ChildMetrics>,
    started_at: Mutex<Option<Instant>>,
}

impl Child {
    fn metrics(&self) -> MutexGuard<'_, ChildMetrics> {
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps named processes running (supervisord, systemd's `Restart=`, OTP's
/// one-for-one), restarting them by a [`RestartPolicy`] after a
/// [`Backoff`] delay (jitter included, from `conc-core`), and giving up when
/// a process restarts more than `max_restarts` times within `period`.
///
/// Each child is made by a factory called for every start. Long-running
/// children should usually be [`quiet`](Process::quiet) or send their output
/// to a callback, since captured output is kept for the whole run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::backoff::Backoff;
/// use conc_process::{Process, RestartPolicy, Supervisor, SupervisorEvent};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let supervisor = Supervisor::builder()
///     .restart(RestartPolicy::OnFailure)
///     .backoff(Backoff::exponential(Duration::from_millis(10)).max_delay(Duration::from_secs(5)).build()?)
///     .intensity(3, Duration::from_secs(60))
///     .build()?;
/// let mut events = supervisor.events();
/// supervisor.supervise("flaky", || Process::new("false"))?;
/// loop {
///     if let SupervisorEvent::GaveUp { restarts, .. } = events.recv().await? {
///         assert_eq!(restarts, 3);
///         break;
///     }
/// }
/// supervisor.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Supervisor {
    config: Config,
    events: broadcast::Sender<SupervisorEvent>,
    shutdown: watch::Sender<bool>,
    children: Mutex<Vec<Supervised>>,
}

/// Builds a [`Supervisor`].
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct SupervisorBuilder {
    policy: RestartPolicy,
    backoff: Option<Backoff>,
    max_restarts: u32,
    period: Duration,
    reset_after: Duration,
    shutdown_grace: Duration,
    event_capacity: usize,
}

impl SupervisorBuilder {
    /// The restart policy. Defaults to [`RestartPolicy::OnFailure`].
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The delay before each restart. Defaults to exponential from 100 ms,
    /// doubling, capped at 30 s, with full jitter. A schedule with
    /// `max_retries` gives up when it runs out.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Gives up on a process restarted `max_restarts` times within `period`
    /// (systemd's `StartLimitBurst` per `StartLimitIntervalSec`, OTP's
    /// intensity). Defaults to 5 per 10 s.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// A run that lasted this long counts as healthy: the backoff schedule
    /// starts over after it. Defaults to 30 s.
    pub fn reset_after(mut self, uptime: Duration) -> Self {
        self.reset_after = uptime;
        self
    }

    /// How long [`Supervisor::shutdown`] lets a process handle `SIGTERM`
    /// before `SIGKILL`. Defaults to 10 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Events buffered per subscriber before a slow one starts missing the
    /// oldest. Defaults to 1024.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<Supervisor, ProcessError> {
        let invalid = |field, value: String, reason| {
            Err(ProcessError::InvalidConfig { field, value, reason })
        };
        if self.max_restarts == 0 {
            return invalid(
                "max_restarts",
                "0".into(),
                "must be at least 1; use RestartPolicy::Never for no restarts",
            );
        }
        if self.period.is_zero() {
            return invalid("period", "0ns".into(), "must be greater than zero");
        }
        if self.event_capacity == 0 {
            return invalid("event_capacity", "0".into(), "must be at least 1");
        }
        let backoff = match self.backoff {
            Some(backoff) => backoff,
            None => Backoff::exponential(Duration::from_millis(100))
                .max_delay(Duration::from_secs(30))
                .jitter(conc_core::backoff::Jitter::Full)
                .build()
                .map_err(|_| ProcessError::InvalidConfig {
                    field: "backoff",
                    value: "default".into(),
                    reason: "invalid",
                })?,
        };
        let (events, _) = broadcast::channel(self.event_capacity);
        let (shutdown, _) = watch::channel(false);
        Ok(Supervisor {
            config: Config {
                policy: self.policy,
                backoff,
                max_restarts: self.max_restarts,
                period: self.period,
                reset_after: self.reset_after,
                shutdown_grace: self.shutdown_grace,
            },
            events,
            shutdown,
            children: Mutex::new(Vec::new()),
        })
    }
}

impl Supervisor {
    /// A builder with the defaults.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            policy: RestartPolicy::OnFailure,
            backoff: None,
            max_restarts: 5,
            period: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }

    /// Subscribes to lifecycle events. Subscribe before
    /// [`supervise`](Self::supervise) to see a child's first start.
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.events.subscribe()
    }

    /// Starts keeping `name` running, calling `factory` for each start.
    /// Must be called within a tokio runtime. Fails if the name is taken.
    pub fn supervise(
        &self,
        name: impl Into<String>,
        factory: impl Fn() -> Process + Send + Sync + 'static,
    ) -> Result<(), ProcessError> {
        let name = name.into();
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if children.iter().any(|(existing, _, _)| *existing == name) {
            return Err(ProcessError::InvalidConfig {
                field: "name",
                value: format!("{name:?}"),
                reason: "already supervised",
            });
        }
        let child = Arc::new(Child {
            metrics: Mutex::new(ChildMetrics {
                name: name.clone(),
                state: ChildState::Starting,
                pid: None,
                restarts: 0,
                uptime: None,
                cpu_time: Duration::ZERO,
                max_rss_bytes: 0,
            }),
            started_at: Mutex::new(None),
        });
        let task = tokio::spawn(keep_running(
            name.clone(),
            Arc::new(factory),
            self.config.clone(),
            Arc::clone(&child),
            self.events.clone(),
            self.shutdown.subscribe(),
        ));
        children.push((name, child, task));
        Ok(())
    }

    /// A snapshot of every supervised process, in the order they were added.
    pub fn metrics(&self) -> SupervisorMetrics {
        let children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        SupervisorMetrics {
            children: children.iter().map(|(_, child, _)| snapshot(child)).collect(),
        }
    }

    /// Stops every process (`SIGTERM` to its group, `SIGKILL` after the
    /// shutdown grace), stops restarting them, and waits until all are down.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(PoisonError::into_inner));
        for (_, _, task) in children {
            let _ = task.await;
        }
    }
}

impl Drop for Supervisor {
    /// Dropping a supervisor shuts it down without waiting: each process is
    /// still stopped gracefully by its own task.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("config", &self.config)
            .field("children", &self.metrics())
            .finish_non_exhaustive()
    }
}

fn snapshot(child: &Child) -> ChildMetrics {
    let mut metrics = child.metrics().clone();
    if metrics.state == ChildState::Running {
        metrics.uptime =
            child.started_at.lock().unwrap_or_else(PoisonError::into_inner).map(|at| at.elapsed());
    }
    metrics
}

fn set_state(child: &Child, state: ChildState, pid: Option<u32>) {
    let mut metrics = child.metrics();
    metrics.state = state;
    metrics.pid = pid;
    if state != ChildState::Running {
        metrics.uptime = None;
    }
}

/// One child's supervision loop.
#[allow(clippy::too_many_lines, reason = "the state machine reads best in one place")]
async fn keep_running(
    name: String,
    factory: Factory,
    config: Config,
    child: Arc<Child>,
    events: broadcast::Sender<SupervisorEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let emit = |event: SupervisorEvent| {
        tracing::debug!(?event, "supervisor");
        let _ = events.send(event);
    };
    let mut delays = config.backoff.delays();
    let mut recent_restarts: VecDeque<Instant> = VecDeque::new();
    let mut restarts = 0u32;
    loop {
        if *shutdown.borrow() {
            set_state(&child, ChildState::Stopped, None);
            emit(SupervisorEvent::Stopped { name: name.clone() });
            return;
        }
        set_state(&child, ChildState::Starting, None);
        let started = Instant::now();
        let process = catch_unwind(AssertUnwindSafe(|| factory())).map_err(|panic| {
            ProcessError::CallbackPanicked {
                program: name.clone(),
                message: conc_core::driver::panic_message(panic.as_ref()),
            }
        });
        let result = match process {
            Ok(process) => match process.start().await {
                Ok(mut handle) => {
                    let pid = handle.pid();
                    *child.started_at.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(started);
                    set_state(&child, ChildState::Running, Some(pid));
                    emit(SupervisorEvent::Started { name: name.clone(), pid, run: restarts + 1 });
                    let stop = tokio::select! {
                        _ = handle.wait_until(|_, _| false) => false,
                        _ = shutdown.wait_for(|stop| *stop) => true,
                    };
                    if stop {
                        let _ = handle.stop(config.shutdown_grace).await;
                        set_state(&child, ChildState::Stopped, None);
                        emit(SupervisorEvent::Stopped { name: name.clone() });
                        return;
                    }
                    handle.wait().await
                }
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let uptime = started.elapsed();
        let (status, error) = match &result {
            Ok(output) => (Some(output.status()), None),
            Err(err) => (err.output().map(crate::ProcessOutput::status), Some(err.to_string())),
        };
        if let Some(usage) = result
            .as_ref()
            .ok()
            .or_else(|| result.as_ref().err().and_then(ProcessError::output))
            .and_then(crate::ProcessOutput::usage)
        {
            let mut metrics = child.metrics();
            metrics.cpu_time += usage.user_cpu + usage.system_cpu;
            metrics.max_rss_bytes = metrics.max_rss_bytes.max(usage.max_rss_bytes);
        }
        let failed = !matches!(&result, Ok(output) if output.successful());
        emit(SupervisorEvent::Exited { name: name.clone(), status, error, uptime });
        let restart = match config.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        };
        if !restart {
            set_state(&child, ChildState::Completed, None);
            emit(SupervisorEvent::Completed { name: name.clone() });
            return;
        }
        if uptime >= config.reset_after {
            delays = config.backoff.delays();
        }
        let now = Instant::now();
        while recent_restarts.front().is_some_and(|at| now.duration_since(*at) >= config.period) {
            recent_restarts.pop_front();
        }
        let give_up = if recent_restarts.len() >= config.max_restarts as usize {
            Some(GiveUpReason::Intensity {
                max_restarts: config.max_restarts,
                period: config.period,
            })
        } else {
            None
        };
        let delay = match give_up {
            Some(reason) => Err(reason),
            None => delays.next().ok_or(GiveUpReason::BackoffExhausted),
        };
        let delay = match delay {
            Ok(delay) => delay,
            Err(reason) => {
                set_state(&child, ChildState::GaveUp, None);
                tracing::warn!(name, restarts, ?reason, "supervisor gave up");
                emit(SupervisorEvent::GaveUp { name: name.clone(), restarts, reason });
                return;
            }
        };
        restarts += 1;
        child.metrics().restarts = restarts;
        set_state(&child, ChildState::Backoff, None);
        emit(SupervisorEvent::Restarting { name: name.clone(), restart: restarts, delay });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
        recent_restarts.push_back(Instant::now());
        metrics::counter!(names::PROCESS_RESTARTS).increment(1);
    }
}
