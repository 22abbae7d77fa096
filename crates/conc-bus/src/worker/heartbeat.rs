//! The worker's heartbeat: a task that records a [`WorkerBeat`] in the
//! backend every interval (and at once when the worker starts stopping), and
//! deletes it when the worker stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Shared;
use super::metrics::WorkerState;
use crate::queue::{BeatState, QueueBackend, WorkerBeat};

/// How long a stopping worker waits for the backend to delete its beat.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The heartbeat task of a running worker. Dropping it stops the task
/// without deleting the beat, which then expires.
pub(super) struct Heartbeat<B: QueueBackend> {
    shared: Arc<Shared<B>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl<B: QueueBackend> Heartbeat<B> {
    /// Starts beating for the worker of `shared`, unless its heartbeats are off.
    pub(super) fn start(shared: &Arc<Shared<B>>) -> Option<Self> {
        let interval = shared.config.heartbeat?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(beat(Arc::clone(shared), interval, stopped));
        Some(Self { shared: Arc::clone(shared), stop: Some(stop), task: Some(task) })
    }

    /// Stops the task, then deletes the beat: a worker that stops gracefully
    /// leaves the list at once.
    pub(super) async fn finish(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let backend = &self.shared.backend;
        let removed = tokio::time::timeout(REMOVE_TIMEOUT, backend.remove_worker(&self.shared.id));
        match removed.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(target: "conc_bus", %error, "deleting the worker's heartbeat failed");
            }
            Err(_) => {
                tracing::debug!(target: "conc_bus", "deleting the worker's heartbeat timed out");
            }
        }
    }
}

impl<B: QueueBackend> Drop for Heartbeat<B> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Records a beat every `interval` and on every change of state, until
/// `stopped` fires (or its sender is dropped).
async fn beat<B: QueueBackend>(
    shared: Arc<Shared<B>>,
    interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut state = shared.state.subscribe();
    let started_at = shared.backend.now();
    let mut previous = (0, 0, 0);
    loop {
        let mut beat = snapshot(&shared, interval, started_at, previous);
        if beat.state == BeatState::Running
            && shared
                .backend
                .paused_queues(&shared.config.queues)
                .await
                .is_ok_and(|paused| paused.iter().all(|p| *p))
        {
            beat.state = BeatState::Paused;
        }
        match shared.backend.record_worker(&beat).await {
            Ok(()) => previous = (beat.beat_at, beat.processed, beat.failed),
            Err(error) => {
                tracing::debug!(target: "conc_bus", %error, "recording the worker's heartbeat failed");
            }
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(interval) => {}
            changed = state.changed() => if changed.is_err() { return },
        }
    }
}

/// The worker's beat now.
fn snapshot<B: QueueBackend>(
    shared: &Shared<B>,
    interval: Duration,
    started_at: u64,
    (previous_beat_at, previous_processed, previous_failed): (u64, u64, u64),
) -> WorkerBeat {
    let config = &shared.config;
    let counters = &shared.counters;
    let state = match *shared.state.borrow() {
        WorkerState::Stopping | WorkerState::Stopped(_) => BeatState::Stopping,
        WorkerState::Idle | WorkerState::Running => BeatState::Running,
    };
    WorkerBeat {
        id: shared.id.clone(),
        name: config.name.clone(),
        host: host_name().to_owned(),
        pid: std::process::id(),
        queues: config.queues.clone(),
        concurrency: config.concurrency as u64,
        state,
        started_at,
        beat_at: shared.backend.now(),
        interval_ms: crate::clock::millis(interval),
        processed: counters.processed.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        busy: counters.running.load(Ordering::Relaxed),
        previous_beat_at,
        previous_processed,
        previous_failed,
    }
}

/// This machine's host name: the kernel's (Linux), else `HOSTNAME` or
/// `COMPUTERNAME`, else `unknown`. Read once.
pub(crate) fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let from_file = |path: &str| std::fs::read_to_string(path).ok();
        from_file("/proc/sys/kernel/hostname")
            .or_else(|| from_file("/etc/hostname"))
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    })
}
