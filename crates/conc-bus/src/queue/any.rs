//! [`AnyBackend`]: any queue backend behind one type, chosen at run time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::BoxFuture;

use super::backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled,
};
use super::beat::WorkerBeat;
use super::error::{PushError, QueueError};
use super::lease::Lease;
use super::settle::Transition;
use super::workflow::WorkflowBackend;
use crate::batch::model::MemberRows;
use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, BatchQuery, MemberOutcome,
    NewBatch, WorkflowError,
};
use crate::failed::{FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;

/// What [`QueueBackend::settle_and_reserve`] answers.
type SettledAndReserved = (Result<Vec<Settled>, QueueError>, Result<Reservation, QueueError>);

/// The object-safe face of a backend: every method returns a boxed future.
trait DynBackend: fmt::Debug + Send + Sync + 'static {
    fn push(&self, jobs: Vec<Pushed>) -> BoxFuture<'_, Result<(), PushError>>;
    fn reserve<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Reservation, QueueError>>;
    fn settle(
        &self,
        batch: Vec<(Lease, Transition)>,
    ) -> BoxFuture<'_, Result<Vec<Settled>, QueueError>>;
    fn settle_and_reserve<'a>(
        &'a self,
        batch: Vec<(Lease, Transition)>,
        queues: &'a [String],
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'a, SettledAndReserved>;
    fn size<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueSize, QueueError>>;
    fn peek<'a>(
        &'a self,
        queue: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, QueueError>>;
    fn clear<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueError>>;
    fn set_paused<'a>(
        &'a self,
        queue: &'a str,
        paused: bool,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    fn set_capacity<'a>(
        &'a self,
        queue: &'a str,
        capacity: Option<u64>,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    fn queues(&self) -> BoxFuture<'_, Result<Vec<String>, QueueError>>;
    fn wait<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()>;
    fn now(&self) -> u64;
    fn paused_queues<'a>(
        &'a self,
        queues: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<bool>, QueueError>>;
    fn record_worker<'a>(&'a self, beat: &'a WorkerBeat) -> BoxFuture<'a, Result<(), QueueError>>;
    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, QueueError>>;
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, QueueError>>;
    fn failed<'a>(
        &'a self,
        query: &'a FailedQuery,
    ) -> BoxFuture<'a, Result<Vec<FailedJob>, QueueError>>;
    fn failed_job(&self, id: JobId) -> BoxFuture<'_, Result<Option<FailedJob>, QueueError>>;
    fn failed_count<'a>(&'a self, queue: Option<&'a str>)
    -> BoxFuture<'a, Result<u64, QueueError>>;
    fn retry_failed<'a>(
        &'a self,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<Vec<JobId>, QueueError>>;
    fn forget_failed<'a>(
        &'a self,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<u64, QueueError>>;
}

impl<B: QueueBackend> DynBackend for B {
    fn push(&self, jobs: Vec<Pushed>) -> BoxFuture<'_, Result<(), PushError>> {
        Box::pin(QueueBackend::push(self, jobs))
    }
    fn reserve<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Reservation, QueueError>> {
        Box::pin(QueueBackend::reserve(self, ReserveRequest::new(queues, max, lease)))
    }
    fn settle(
        &self,
        batch: Vec<(Lease, Transition)>,
    ) -> BoxFuture<'_, Result<Vec<Settled>, QueueError>> {
        Box::pin(QueueBackend::settle(self, batch))
    }
    fn settle_and_reserve<'a>(
        &'a self,
        batch: Vec<(Lease, Transition)>,
        queues: &'a [String],
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'a, SettledAndReserved> {
        let request = ReserveRequest::new(queues, max, lease);
        Box::pin(QueueBackend::settle_and_reserve(self, batch, request))
    }
    fn size<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueSize, QueueError>> {
        Box::pin(QueueBackend::size(self, queue))
    }
    fn peek<'a>(
        &'a self,
        queue: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, QueueError>> {
        Box::pin(QueueBackend::peek(self, queue, limit))
    }
    fn clear<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueError>> {
        Box::pin(QueueBackend::clear(self, queue))
    }
    fn set_paused<'a>(
        &'a self,
        queue: &'a str,
        paused: bool,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(QueueBackend::set_paused(self, queue, paused))
    }
    fn set_capacity<'a>(
        &'a self,
        queue: &'a str,
        capacity: Option<u64>,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(QueueBackend::set_capacity(self, queue, capacity))
    }
    fn queues(&self) -> BoxFuture<'_, Result<Vec<String>, QueueError>> {
        Box::pin(QueueBackend::queues(self))
    }
    fn wait<'a>(&'a self, queues: &'a [String], timeout: Duration) -> BoxFuture<'a, ()> {
        Box::pin(QueueBackend::wait(self, queues, timeout))
    }
    fn now(&self) -> u64 {
        QueueBackend::now(self)
    }
    fn paused_queues<'a>(
        &'a self,
        queues: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<bool>, QueueError>> {
        Box::pin(QueueBackend::paused_queues(self, queues))
    }
    fn record_worker<'a>(&'a self, beat: &'a WorkerBeat) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(QueueBackend::record_worker(self, beat))
    }
    fn remove_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, QueueError>> {
        Box::pin(QueueBackend::remove_worker(self, id))
    }
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, QueueError>> {
        Box::pin(QueueBackend::workers(self))
    }
    fn failed<'a>(
        &'a self,
        query: &'a FailedQuery,
    ) -> BoxFuture<'a, Result<Vec<FailedJob>, QueueError>> {
        Box::pin(FailedStore::failed(self, query))
    }
    fn failed_job(&self, id: JobId) -> BoxFuture<'_, Result<Option<FailedJob>, QueueError>> {
        Box::pin(FailedStore::failed_job(self, id))
    }
    fn failed_count<'a>(
        &'a self,
        queue: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, QueueError>> {
        Box::pin(FailedStore::failed_count(self, queue))
    }
    fn retry_failed<'a>(
        &'a self,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<Vec<JobId>, QueueError>> {
        Box::pin(FailedStore::retry_failed(self, selection))
    }
    fn forget_failed<'a>(
        &'a self,
        selection: &'a Selection,
    ) -> BoxFuture<'a, Result<u64, QueueError>> {
        Box::pin(FailedStore::forget_failed(self, selection))
    }
}

/// Any queue backend behind one type: for code that picks its backend at run
/// time (from a URL, a setting) or holds queues of different backends in one
/// place, such as the command bus. Each call costs one boxed future more than
/// the backend itself.
///
/// # Examples
///
/// ```
/// use conc_bus::{AnyBackend, MemoryQueue, Queue};
///
/// let backend = AnyBackend::new(MemoryQueue::new());
/// let queue: Queue<AnyBackend> = Queue::new(backend);
/// # let _ = queue;
/// ```
#[derive(Debug, Clone)]
pub struct AnyBackend {
    inner: Arc<dyn DynBackend>,
    workflows: Option<Arc<dyn DynWorkflows>>,
}

impl AnyBackend {
    /// `backend`, behind the common type. Its workflows (batches, chains,
    /// admission) are not reachable: use
    /// [`with_workflows`](Self::with_workflows) for a backend that keeps them.
    pub fn new<B: QueueBackend>(backend: B) -> Self {
        Self { inner: Arc::new(backend), workflows: None }
    }

    /// A shared backend, behind the common type.
    pub fn from_arc<B: QueueBackend>(backend: Arc<B>) -> Self {
        Self { inner: backend, workflows: None }
    }

    /// `backend`, which keeps workflows, behind the common type with its
    /// batches reachable ([`WorkflowBackend`] on `AnyBackend`).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{AnyBackend, MemoryQueue, Queue};
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::new(AnyBackend::with_workflows(MemoryQueue::new()));
    /// let id = queue.dispatch_batch(PendingBatch::new().add(Ping)).await?;
    /// assert_eq!(queue.batches(10).await?[0].id, id);
    /// # Ok(()) }
    /// ```
    pub fn with_workflows<B: WorkflowBackend>(backend: B) -> Self {
        let backend = Arc::new(backend);
        Self { inner: backend.clone(), workflows: Some(backend) }
    }

    /// Whether its batches are reachable: it was made with
    /// [`with_workflows`](Self::with_workflows).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{AnyBackend, MemoryQueue};
    ///
    /// assert!(AnyBackend::with_workflows(MemoryQueue::new()).keeps_workflows());
    /// assert!(!AnyBackend::new(MemoryQueue::new()).keeps_workflows());
    /// ```
    pub fn keeps_workflows(&self) -> bool {
        self.workflows.is_some()
    }

    fn workflows(&self) -> Result<&Arc<dyn DynWorkflows>, QueueError> {
        self.workflows.as_ref().ok_or_else(|| {
            QueueError::Backend(
                "this backend keeps no batches (see AnyBackend::with_workflows)".into(),
            )
        })
    }
}

/// The workflow half of a backend, as a trait object.
trait DynWorkflows: fmt::Debug + Send + Sync + 'static {
    fn create_batch(&self, batch: NewBatch) -> BoxFuture<'_, Result<(), WorkflowError>>;
    fn add_to_batch(
        &self,
        id: BatchId,
        jobs: Vec<Pushed>,
    ) -> BoxFuture<'_, Result<u64, WorkflowError>>;
    fn batch(&self, id: BatchId) -> BoxFuture<'_, Result<Option<BatchInfo>, QueueError>>;
    fn batches(&self, limit: usize) -> BoxFuture<'_, Result<Vec<BatchInfo>, QueueError>>;
    fn list_batches<'a>(
        &'a self,
        query: &'a BatchQuery,
    ) -> BoxFuture<'a, Result<Vec<BatchInfo>, QueueError>>;
    fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<MemberRows, QueueError>>;
    fn cancel_batch(&self, id: BatchId) -> BoxFuture<'_, Result<bool, QueueError>>;
    fn prune_batches(&self, prune: BatchPrune) -> BoxFuture<'_, Result<u64, QueueError>>;
    fn subscribe_batches(&self) -> tokio::sync::broadcast::Receiver<BatchProgress>;
    fn archived_batch(
        &self,
        id: BatchId,
    ) -> BoxFuture<'_, Result<Option<ArchivedBatch>, QueueError>>;
    fn recover_batch(&self, id: BatchId) -> BoxFuture<'_, Result<u64, WorkflowError>>;
}

impl<B: WorkflowBackend> DynWorkflows for B {
    fn create_batch(&self, batch: NewBatch) -> BoxFuture<'_, Result<(), WorkflowError>> {
        Box::pin(WorkflowBackend::create_batch(self, batch))
    }
    fn add_to_batch(
        &self,
        id: BatchId,
        jobs: Vec<Pushed>,
    ) -> BoxFuture<'_, Result<u64, WorkflowError>> {
        Box::pin(WorkflowBackend::add_to_batch(self, id, jobs))
    }
    fn batch(&self, id: BatchId) -> BoxFuture<'_, Result<Option<BatchInfo>, QueueError>> {
        Box::pin(WorkflowBackend::batch(self, id))
    }
    fn batches(&self, limit: usize) -> BoxFuture<'_, Result<Vec<BatchInfo>, QueueError>> {
        Box::pin(WorkflowBackend::batches(self, limit))
    }
    fn list_batches<'a>(
        &'a self,
        query: &'a BatchQuery,
    ) -> BoxFuture<'a, Result<Vec<BatchInfo>, QueueError>> {
        Box::pin(WorkflowBackend::list_batches(self, query))
    }
    fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<MemberRows, QueueError>> {
        Box::pin(WorkflowBackend::batch_members(self, id, offset, limit))
    }
    fn cancel_batch(&self, id: BatchId) -> BoxFuture<'_, Result<bool, QueueError>> {
        Box::pin(WorkflowBackend::cancel_batch(self, id))
    }
    fn prune_batches(&self, prune: BatchPrune) -> BoxFuture<'_, Result<u64, QueueError>> {
        Box::pin(WorkflowBackend::prune_batches(self, prune))
    }
    fn subscribe_batches(&self) -> tokio::sync::broadcast::Receiver<BatchProgress> {
        WorkflowBackend::subscribe_batches(self)
    }
    fn archived_batch(
        &self,
        id: BatchId,
    ) -> BoxFuture<'_, Result<Option<ArchivedBatch>, QueueError>> {
        Box::pin(WorkflowBackend::archived_batch(self, id))
    }
    fn recover_batch(&self, id: BatchId) -> BoxFuture<'_, Result<u64, WorkflowError>> {
        Box::pin(WorkflowBackend::recover_batch(self, id))
    }
}

/// Refused with a backend error when the backend was not made with
/// [`AnyBackend::with_workflows`].
impl WorkflowBackend for AnyBackend {
    async fn create_batch(&self, batch: NewBatch) -> Result<(), WorkflowError> {
        match self.workflows() {
            Ok(workflows) => workflows.create_batch(batch).await,
            Err(error) => {
                Err(PushError::Backend { error: error.into(), jobs: batch.members }.into())
            }
        }
    }
    async fn add_to_batch(&self, id: BatchId, jobs: Vec<Pushed>) -> Result<u64, WorkflowError> {
        match self.workflows() {
            Ok(workflows) => workflows.add_to_batch(id, jobs).await,
            Err(error) => Err(PushError::Backend { error: error.into(), jobs }.into()),
        }
    }
    async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        self.workflows()?.batch(id).await
    }
    async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        self.workflows()?.batches(limit).await
    }
    async fn list_batches(&self, query: &BatchQuery) -> Result<Vec<BatchInfo>, QueueError> {
        self.workflows()?.list_batches(query).await
    }
    async fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
        self.workflows()?.batch_members(id, offset, limit).await
    }
    async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        self.workflows()?.cancel_batch(id).await
    }
    async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        self.workflows()?.prune_batches(prune).await
    }
    async fn archived_batch(&self, id: BatchId) -> Result<Option<ArchivedBatch>, QueueError> {
        self.workflows()?.archived_batch(id).await
    }
    async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
        self.workflows()?.recover_batch(id).await
    }
    /// Without workflows, a subscription that is closed at once.
    fn subscribe_batches(&self) -> tokio::sync::broadcast::Receiver<BatchProgress> {
        match self.workflows() {
            Ok(workflows) => workflows.subscribe_batches(),
            Err(_) => crate::batch::progress::ProgressFeed::default().subscribe(),
        }
    }
}

impl QueueBackend for AnyBackend {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        self.inner.push(jobs).await
    }
    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        self.inner.reserve(request.queues, request.max, request.lease).await
    }
    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        self.inner.settle(batch).await
    }
    async fn settle_and_reserve(
        &self,
        batch: Vec<(Lease, Transition)>,
        request: ReserveRequest<'_>,
    ) -> SettledAndReserved {
        self.inner.settle_and_reserve(batch, request.queues, request.max, request.lease).await
    }
    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        self.inner.size(queue).await
    }
    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        self.inner.peek(queue, limit).await
    }
    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.inner.clear(queue).await
    }
    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.inner.set_paused(queue, paused).await
    }
    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.inner.set_capacity(queue, capacity).await
    }
    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.inner.queues().await
    }
    async fn wait(&self, queues: &[String], timeout: Duration) {
        self.inner.wait(queues, timeout).await;
    }
    fn now(&self) -> u64 {
        self.inner.now()
    }
    async fn paused_queues(&self, queues: &[String]) -> Result<Vec<bool>, QueueError> {
        self.inner.paused_queues(queues).await
    }
    async fn record_worker(&self, beat: &WorkerBeat) -> Result<(), QueueError> {
        self.inner.record_worker(beat).await
    }
    async fn remove_worker(&self, id: &str) -> Result<bool, QueueError> {
        self.inner.remove_worker(id).await
    }
    async fn workers(&self) -> Result<Vec<WorkerBeat>, QueueError> {
        self.inner.workers().await
    }
}

impl FailedStore for AnyBackend {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.inner.failed(query).await
    }
    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.inner.failed_job(id).await
    }
    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        self.inner.failed_count(queue).await
    }
    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.inner.retry_failed(selection).await
    }
    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        self.inner.forget_failed(selection).await
    }
}
