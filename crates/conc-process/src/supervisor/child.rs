//! One supervised child: its shared state and its supervision loop.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::metrics as names;
use conc_core::time::{Clock, Timeline, saturating_nanos};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::{
    ChildMetrics, ChildState, Config, GiveUpReason, Order, RestartPolicy, SupervisorEvent,
};
use crate::{Process, ProcessError, ProcessOutput};

/// Makes the process for each start of a child.
pub(super) type Factory = Arc<dyn Fn() -> Process + Send + Sync>;

/// What the supervisor and a child's loop share.
pub(super) struct Child {
    metrics: Mutex<ChildMetrics>,
    /// When the current run started, in nanoseconds on the supervisor's timeline.
    started_at: Mutex<Option<u64>>,
}

impl Child {
    pub(super) fn new(name: String, state: ChildState) -> Self {
        Self { metrics: Mutex::new(ChildMetrics::new(name, state)), started_at: Mutex::new(None) }
    }

    pub(super) fn metrics(&self) -> MutexGuard<'_, ChildMetrics> {
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn started_at(&self) -> MutexGuard<'_, Option<u64>> {
        self.started_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The child's metrics, with the uptime of a running child read now.
    pub(super) fn snapshot(&self, timeline: &Timeline<Arc<dyn Clock>>) -> ChildMetrics {
        let mut metrics = self.metrics().clone();
        if metrics.state == ChildState::Running {
            metrics.uptime =
                self.started_at().map(|at| Duration::from_nanos(timeline.now().saturating_sub(at)));
        }
        metrics
    }

    fn set_state(&self, state: ChildState, pid: Option<u32>) {
        let mut metrics = self.metrics();
        metrics.state = state;
        metrics.pid = pid;
        if state != ChildState::Running {
            metrics.uptime = None;
        }
    }

    /// Adds a finished run's CPU time and peak memory, when the kernel told them.
    fn record(&self, result: &Result<ProcessOutput, ProcessError>) {
        let output = result.as_ref().ok().or_else(|| result.as_ref().err()?.output());
        if let Some(usage) = output.and_then(ProcessOutput::usage) {
            let mut metrics = self.metrics();
            metrics.cpu_time =
                metrics.cpu_time.saturating_add(usage.user_cpu).saturating_add(usage.system_cpu);
            metrics.max_rss_bytes = metrics.max_rss_bytes.max(usage.max_rss_bytes);
        }
    }
}

/// Counts a supervision loop as alive until it ends (or its task is dropped).
pub(super) struct Live(Arc<watch::Sender<usize>>);

impl Live {
    pub(super) fn enter(live: Arc<watch::Sender<usize>>) -> Self {
        live.send_modify(|live| *live += 1);
        Self(live)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.send_modify(|live| *live -= 1);
    }
}

/// Waits for the order to stop; returns when to kill at the latest. A
/// closed channel (the supervisor is gone) is an order to stop.
async fn stop_ordered(order: &mut watch::Receiver<Order>) -> Option<Instant> {
    match order.wait_for(|order| *order != Order::Run).await.map(|order| *order) {
        Ok(Order::Stop { kill_at }) => kill_at,
        Ok(Order::Run) | Err(_) => None,
    }
}

/// The grace a stopping child gets: the configured one, cut short by `kill_at`.
fn grace(config: &Config, kill_at: Option<Instant>) -> Duration {
    match kill_at {
        Some(at) => config.shutdown_grace.min(at.saturating_duration_since(Instant::now())),
        None => config.shutdown_grace,
    }
}

/// One child's supervision loop.
#[allow(clippy::too_many_lines, reason = "the state machine reads best in one place")]
pub(super) async fn keep_running(
    name: String,
    factory: Factory,
    config: Arc<Config>,
    child: Arc<Child>,
    events: broadcast::Sender<SupervisorEvent>,
    mut order: watch::Receiver<Order>,
    _live: Live,
) {
    let emit = |event: SupervisorEvent| {
        tracing::debug!(?event, "supervisor");
        let _ = events.send(event);
    };
    let stopped = || {
        child.set_state(ChildState::Stopped, None);
        emit(SupervisorEvent::Stopped { name: name.clone() });
    };
    let timeline = &config.timeline;
    let period = saturating_nanos(config.period);
    let reset_after = saturating_nanos(config.reset_after);
    let mut delays = config.backoff.delays();
    // Restart times within the intensity period, at most `max_restarts` of them.
    let mut recent: VecDeque<u64> = VecDeque::new();
    let mut restarts = 0u32;
    loop {
        if *order.borrow_and_update() != Order::Run {
            stopped();
            return;
        }
        child.set_state(ChildState::Starting, None);
        let started = timeline.now();
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
                    *child.started_at() = Some(started);
                    child.set_state(ChildState::Running, Some(pid));
                    let run = restarts.saturating_add(1);
                    emit(SupervisorEvent::Started { name: name.clone(), pid, run });
                    let stop = tokio::select! {
                        _ = handle.wait_until(|_, _| false) => None,
                        kill_at = stop_ordered(&mut order) => Some(kill_at),
                    };
                    if let Some(kill_at) = stop {
                        child.record(&handle.stop(grace(&config, kill_at)).await);
                        stopped();
                        return;
                    }
                    handle.wait().await
                }
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let uptime = timeline.now().saturating_sub(started);
        child.record(&result);
        let (status, error) = match &result {
            Ok(output) => (Some(output.status()), None),
            Err(err) => (err.output().map(ProcessOutput::status), Some(err.to_string())),
        };
        let failed = !matches!(&result, Ok(output) if output.successful());
        emit(SupervisorEvent::Exited {
            name: name.clone(),
            status,
            error,
            uptime: Duration::from_nanos(uptime),
        });
        let restart = match config.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        };
        if !restart {
            child.set_state(ChildState::Completed, None);
            emit(SupervisorEvent::Completed { name: name.clone() });
            return;
        }
        if uptime >= reset_after {
            delays = config.backoff.delays();
        }
        let now = timeline.now();
        while recent.front().is_some_and(|at| now.saturating_sub(*at) >= period) {
            recent.pop_front();
        }
        let delay = if recent.len() >= config.max_restarts as usize {
            Err(GiveUpReason::Intensity {
                max_restarts: config.max_restarts,
                period: config.period,
            })
        } else {
            delays.next().ok_or(GiveUpReason::BackoffExhausted)
        };
        let delay = match delay {
            Ok(delay) => delay,
            Err(reason) => {
                child.set_state(ChildState::GaveUp, None);
                tracing::warn!(name, restarts, ?reason, "supervisor gave up");
                metrics::counter!(names::PROCESS_GAVE_UP).increment(1);
                emit(SupervisorEvent::GaveUp { name: name.clone(), restarts, reason });
                return;
            }
        };
        let next = restarts.saturating_add(1);
        child.set_state(ChildState::Backoff, None);
        emit(SupervisorEvent::Restarting { name: name.clone(), restart: next, delay });
        let stop = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            _ = stop_ordered(&mut order) => true,
        };
        if stop {
            stopped();
            return;
        }
        restarts = next;
        {
            let mut metrics = child.metrics();
            metrics.restarts = metrics.restarts.saturating_add(1);
        }
        recent.push_back(timeline.now());
        if recent.len() > config.max_restarts as usize {
            recent.pop_front();
        }
        metrics::counter!(names::PROCESS_RESTARTS).increment(1);
    }
}
