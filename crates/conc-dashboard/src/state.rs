//! The dashboard's shared state: the admin operations, the workers attached in
//! this process, the recent attempts they reported and the metrics history the
//! sampler keeps; and the two background tasks that fill them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use axum::http::request::Parts;
use conc_bus::{
    BeatState, QueueBackend, Worker, WorkerBeat, WorkerEvent, WorkerHealth, WorkerMetrics,
    WorkerState,
};
use conc_bus_cli::{Admin, AdminError, BatchQuery, BatchState};
use conc_core::lifecycle::Lifecycle;
use conc_core::metrics::MetricsSource;
use tokio::sync::broadcast;

use crate::model::{
    JobOutcome, Overview, Page, QueueSample, RecentJob, Sample, Timing, WorkerReport,
};

/// How many of the newest batches the overview's card looks at.
pub const OVERVIEW_BATCHES: usize = 100;

/// How many queues (the first, by name) each metrics sample sizes, so that a
/// store with thousands of queues does not cost thousands of reads a sample.
pub const SAMPLED_QUEUES: usize = 200;

/// The access check an application adds (Horizon's `viewHorizon`).
pub(crate) type Gate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// A worker of any backend, as the dashboard reads it.
pub(crate) trait WorkerSource: Send + Sync {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn queues(&self) -> &[String];
    fn health(&self) -> WorkerHealth;
    fn metrics(&self) -> WorkerMetrics;
    fn subscribe(&self) -> broadcast::Receiver<WorkerEvent>;
}

impl<B: QueueBackend> WorkerSource for Worker<B> {
    fn id(&self) -> &str {
        Worker::id(self)
    }
    fn name(&self) -> &str {
        Lifecycle::name(self)
    }
    fn queues(&self) -> &[String] {
        Worker::queues(self)
    }
    fn health(&self) -> WorkerHealth {
        Worker::health(self)
    }
    fn metrics(&self) -> WorkerMetrics {
        MetricsSource::metrics(self)
    }
    fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        Worker::subscribe(self)
    }
}

/// What the builder settled.
pub(crate) struct Settings {
    pub(crate) gate: Option<Gate>,
    pub(crate) allow_remote: bool,
    pub(crate) trusted_origins: Vec<String>,
    pub(crate) page_size: usize,
    pub(crate) recent_capacity: usize,
    pub(crate) sample_every: Duration,
    pub(crate) history: usize,
    pub(crate) refresh: Duration,
    pub(crate) title: String,
}

pub(crate) struct Inner {
    pub(crate) admin: Admin,
    pub(crate) settings: Settings,
    pub(crate) csrf: String,
    workers: Vec<Arc<dyn WorkerSource>>,
    /// Receivers taken at build time, handed to the drain tasks when they start.
    receivers: Mutex<Vec<(String, broadcast::Receiver<WorkerEvent>)>>,
    recent: Mutex<VecDeque<RecentJob>>,
    samples: Mutex<VecDeque<Sample>>,
    started: OnceLock<()>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub(crate) fn new(
        admin: Admin,
        settings: Settings,
        csrf: String,
        workers: Vec<Arc<dyn WorkerSource>>,
    ) -> Self {
        let receivers =
            workers.iter().map(|worker| (worker.name().to_owned(), worker.subscribe())).collect();
        Self {
            admin,
            settings,
            csrf,
            workers,
            receivers: Mutex::new(receivers),
            recent: Mutex::new(VecDeque::new()),
            samples: Mutex::new(VecDeque::new()),
            started: OnceLock::new(),
        }
    }

    /// Starts the sampler and the event drains on the current tokio runtime,
    /// once; does nothing outside a runtime (the first request starts them).
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if self.started.get().is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.started.set(()).is_err() {
            return;
        }
        for (worker, receiver) in lock(&self.receivers).drain(..) {
            tokio::spawn(drain(Arc::downgrade(self), worker, receiver));
        }
        if !self.settings.sample_every.is_zero() {
            tokio::spawn(sample_loop(Arc::downgrade(self), self.settings.sample_every));
        }
    }

    fn record(&self, worker: &str, event: WorkerEvent) {
        let at = self.admin.now();
        let mut job = RecentJob { at, worker: worker.to_owned(), ..RecentJob::default() };
        match event {
            WorkerEvent::Processed { id, name, queue, runtime } => {
                job.id = id;
                job.name = name;
                job.queue = queue;
                job.runtime_ms = Some(u64::try_from(runtime.as_millis()).unwrap_or(u64::MAX));
            }
            WorkerEvent::Failed { id, name, queue, attempt, error, dead } => {
                job.id = id;
                job.name = name;
                job.queue = queue;
                job.attempt = Some(attempt);
                job.outcome = if dead.is_some() { JobOutcome::Dead } else { JobOutcome::Failed };
                job.error = Some(match dead {
                    Some(reason) => format!("{error} ({reason})"),
                    None => error,
                });
            }
            WorkerEvent::FoundDead { id, name, queue, reason } => {
                job.id = id;
                job.name = name;
                job.queue = queue;
                job.outcome = JobOutcome::Dead;
                job.error = Some(reason.to_string());
            }
            WorkerEvent::Released { id, queue, .. } => {
                job.id = id;
                job.queue = queue;
                job.outcome = JobOutcome::Released;
            }
            WorkerEvent::LeaseLost { id, queue } => {
                job.id = id;
                job.queue = queue;
                job.outcome = JobOutcome::LeaseLost;
            }
            _ => return,
        }
        let mut recent = lock(&self.recent);
        if recent.len() == self.settings.recent_capacity {
            recent.pop_front();
        }
        recent.push_back(job);
    }

    /// Page `page` of the recent attempts, newest first.
    pub(crate) fn recent(&self, page: usize) -> Page<RecentJob> {
        let all: Vec<RecentJob> = lock(&self.recent).iter().rev().cloned().collect();
        Page::of(all, page, self.settings.page_size)
    }

    pub(crate) fn has_workers(&self) -> bool {
        !self.workers.is_empty()
    }

    /// The workers of every process that records heartbeats, merged with
    /// the attached ones (by heartbeat id), with the attached ones' metrics:
    /// heartbeat order (host, pid, name), then attached workers without a
    /// beat.
    pub(crate) async fn workers(
        &self,
    ) -> Result<Vec<(WorkerReport, Option<WorkerMetrics>)>, AdminError> {
        let beats = self.admin.workers().await?;
        let now = self.admin.now();
        let mut out = Vec::with_capacity(beats.len() + self.workers.len());
        for beat in &beats {
            let attached = self.workers.iter().find(|worker| worker.id() == beat.id);
            let (mut report, metrics) = match attached {
                Some(worker) => {
                    let (report, metrics) = attached_report(worker.as_ref());
                    (report, Some(metrics))
                }
                None => (beat_report(beat, now), None),
            };
            if beat.state == BeatState::Paused && report.state == "running" {
                "paused".clone_into(&mut report.state);
            }
            report.id.clone_from(&beat.id);
            report.host.clone_from(&beat.host);
            report.pid = beat.pid;
            report.concurrency = beat.concurrency;
            out.push((report, metrics));
        }
        for worker in &self.workers {
            if !beats.iter().any(|beat| beat.id == worker.id()) {
                let (report, metrics) = attached_report(worker.as_ref());
                out.push((report, Some(metrics)));
            }
        }
        Ok(out)
    }

    pub(crate) async fn overview(&self) -> Result<Overview, AdminError> {
        let size = self.settings.page_size;
        let (queues, queue_total) = self.admin.queues_page(0, size).await?;
        let failed_total = self.admin.failed_count(None).await?;
        let workers = self.workers().await?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut runtimes = Vec::new();
        let mut waits = Vec::new();
        for (report, metrics) in workers.iter().filter_map(|(r, m)| Some((r, m.as_ref()?))) {
            let timing = |stats: &conc_bus::JobStats| Timing {
                worker: report.name.clone(),
                key: stats.key.clone(),
                count: stats.count,
                p50_ms: ms(stats.p50),
                p99_ms: ms(stats.p99),
            };
            runtimes.extend(metrics.runtimes.iter().map(timing));
            waits.extend(metrics.waits.iter().map(timing));
        }
        let (processed, failed) = if workers.is_empty() {
            (None, None)
        } else {
            let sum = |f: fn(&WorkerReport) -> u64| Some(workers.iter().map(|(r, _)| f(r)).sum());
            (sum(|r| r.processed_last_minute), sum(|r| r.failed_last_minute))
        };
        let (batches_pending, batches_seen) = if self.admin.backend().keeps_workflows() {
            let newest = self.admin.batches(&BatchQuery::new().limit(OVERVIEW_BATCHES)).await?;
            let pending = newest.iter().filter(|b| b.state == BatchState::Pending).count();
            (Some(pending as u64), newest.len() as u64)
        } else {
            (None, 0)
        };
        let more = (queues.len() as u64) < queue_total;
        Ok(Overview {
            batches_pending,
            batches_seen,
            now: self.admin.now(),
            processed_per_minute: processed,
            failed_per_minute: failed,
            failed_total,
            queues: Page::new(queues, queue_total, more.then(|| "1".to_owned())),
            workers: Page::of(workers.into_iter().map(|(report, _)| report).collect(), 0, size),
            runtimes,
            waits,
            csrf_token: self.csrf.clone(),
        })
    }

    /// Takes one sample now and keeps it.
    pub(crate) async fn sample(&self) -> Result<(), AdminError> {
        let (queues, _) = self.admin.queues_page(0, SAMPLED_QUEUES).await?;
        let failed_total = self.admin.failed_count(None).await?;
        let workers = self.workers().await?;
        let sample = Sample {
            at: self.admin.now(),
            processed_per_minute: workers.iter().map(|(r, _)| r.processed_last_minute).sum(),
            failed_per_minute: workers.iter().map(|(r, _)| r.failed_last_minute).sum(),
            failed_total,
            queues: queues
                .into_iter()
                .map(|q| QueueSample {
                    name: q.name,
                    ready: q.ready,
                    delayed: q.delayed,
                    reserved: q.reserved,
                    wait_ms: q.wait_ms,
                })
                .collect(),
        };
        let mut samples = lock(&self.samples);
        if samples.len() >= self.settings.history {
            samples.pop_front();
        }
        samples.push_back(sample);
        Ok(())
    }

    pub(crate) fn samples(&self) -> Vec<Sample> {
        lock(&self.samples).iter().cloned().collect()
    }
}

async fn drain(inner: Weak<Inner>, worker: String, mut events: broadcast::Receiver<WorkerEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => match inner.upgrade() {
                Some(inner) => inner.record(&worker, event),
                None => return,
            },
            // Missed events are missing from the recent list, nothing more.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn sample_loop(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        // A failed sample leaves a gap in the charts.
        if let Err(error) = inner.sample().await {
            tracing::warn!(%error, "conc-dashboard: sampling the queues failed");
        }
    }
}

/// An attached worker's report and metrics, from the worker itself.
fn attached_report(worker: &dyn WorkerSource) -> (WorkerReport, WorkerMetrics) {
    let health = worker.health();
    let metrics = worker.metrics();
    let state = match health.state {
        WorkerState::Idle => "idle".to_owned(),
        WorkerState::Running => "running".to_owned(),
        WorkerState::Stopping => "stopping".to_owned(),
        WorkerState::Stopped(why) => format!("stopped: {why}"),
        _ => "unknown".to_owned(),
    };
    let report = WorkerReport {
        id: String::new(),
        name: worker.name().to_owned(),
        host: String::new(),
        pid: std::process::id(),
        queues: worker.queues().to_vec(),
        concurrency: 0,
        state,
        attached: true,
        backend_reachable: health.backend_reachable,
        since_last_contact_ms: health
            .since_last_contact
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        running: metrics.running,
        processed: metrics.processed,
        failed: metrics.failed,
        processed_last_minute: metrics.processed_last_minute,
        failed_last_minute: metrics.failed_last_minute,
        last_error: health.last_error,
    };
    (report, metrics)
}

/// Another process's worker, from its last heartbeat at `now`.
fn beat_report(beat: &WorkerBeat, now: u64) -> WorkerReport {
    let rate = |rate: Option<f64>| rate.map_or(0, |r| r.round() as u64);
    WorkerReport {
        id: beat.id.clone(),
        name: beat.name.clone(),
        host: beat.host.clone(),
        pid: beat.pid,
        queues: beat.queues.clone(),
        concurrency: beat.concurrency,
        state: beat.state.to_string(),
        attached: false,
        backend_reachable: true,
        since_last_contact_ms: Some(now.saturating_sub(beat.beat_at)),
        running: beat.busy,
        processed: beat.processed,
        failed: beat.failed,
        processed_last_minute: rate(beat.jobs_per_minute()),
        failed_last_minute: rate(beat.failed_per_minute()),
        last_error: None,
    }
}
