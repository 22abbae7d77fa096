//! Shared pieces of the bus's behaviour tests: a backend wrapper that fails
//! on demand, and helpers.

#![allow(dead_code, reason = "each test binary uses the part it needs")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conc_bus::{
    FailedJob, FailedQuery, FailedStore, JobId, Lease, PushError, Pushed, QueueBackend, QueueError,
    QueueSize, Reservation, ReserveRequest, Selection, Settled, Transition, WorkerEvent,
};
use tokio::sync::broadcast;

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every event received so far.
pub fn events_of(events: &mut broadcast::Receiver<WorkerEvent>) -> Vec<WorkerEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

/// A backend that fails every call, or refuses lease extensions, on demand.
#[derive(Debug, Clone)]
pub struct Flaky<B> {
    inner: Arc<B>,
    fail: Arc<AtomicBool>,
    refuse_extends: Arc<AtomicBool>,
}

impl<B: QueueBackend> Flaky<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner: Arc::new(inner),
            fail: Arc::new(AtomicBool::new(false)),
            refuse_extends: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn fail_all(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn refuse_extends(&self, refuse: bool) {
        self.refuse_extends.store(refuse, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(QueueError::Backend("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

impl<B: QueueBackend> QueueBackend for Flaky<B> {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(PushError::Backend { error: "injected failure".into(), jobs });
        }
        self.inner.push(jobs).await
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        self.check()?;
        self.inner.reserve(request).await
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        self.check()?;
        if self.refuse_extends.load(Ordering::SeqCst)
            && batch.iter().any(|(_, t)| matches!(t, Transition::Extend { .. }))
        {
            return Err(QueueError::Backend("injected: extensions refused".into()));
        }
        self.inner.settle(batch).await
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        self.check()?;
        self.inner.size(queue).await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<conc_bus::Envelope>, QueueError> {
        self.check()?;
        self.inner.peek(queue, limit).await
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.check()?;
        self.inner.clear(queue).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.check()?;
        self.inner.set_paused(queue, paused).await
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.check()?;
        self.inner.set_capacity(queue, capacity).await
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.check()?;
        self.inner.queues().await
    }

    async fn wait(&self, queues: &[String], timeout: Duration) {
        self.inner.wait(queues, timeout).await;
    }

    fn now(&self) -> u64 {
        self.inner.now()
    }
}

impl<B: QueueBackend> FailedStore for Flaky<B> {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.check()?;
        self.inner.failed(query).await
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.check()?;
        self.inner.failed_job(id).await
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        self.check()?;
        self.inner.failed_count(queue).await
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.check()?;
        self.inner.retry_failed(selection).await
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        self.check()?;
        self.inner.forget_failed(selection).await
    }
}

/// Runs `worker` until `queue` holds nothing (ready, delayed or reserved) in
/// any of `queues`, polling every second of (paused) time, then stops it.
pub async fn drain<B: QueueBackend>(
    worker: &conc_bus::Worker<B>,
    queue: &conc_bus::Queue<B>,
    queues: &[&str],
) {
    worker.start().unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut total = 0;
        for name in queues {
            total += queue.size(name).await.unwrap().total();
        }
        if total == 0 && worker.metrics_running() == 0 {
            break;
        }
    }
    worker.stop(Duration::ZERO);
    worker.stopped().await;
}

/// The number of attempts a worker runs now.
pub trait RunningCount {
    fn metrics_running(&self) -> u64;
}

impl<B: QueueBackend> RunningCount for conc_bus::Worker<B> {
    fn metrics_running(&self) -> u64 {
        conc_core::metrics::MetricsSource::metrics(self).running
    }
}
