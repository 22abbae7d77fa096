//! [`AnyBackend`]: any queue backend behind one type, chosen at run time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use conc_core::BoxFuture;

use super::backend::{
    FailedStore, Pushed, QueueBackend, QueueSize, Reservation, ReserveRequest, Settled,
};
use super::error::{PushError, QueueError};
use super::lease::Lease;
use super::settle::Transition;
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
}

impl AnyBackend {
    /// `backend`, behind the common type.
    pub fn new<B: QueueBackend>(backend: B) -> Self {
        Self { inner: Arc::new(backend) }
    }

    /// A shared backend, behind the common type.
    pub fn from_arc<B: QueueBackend>(backend: Arc<B>) -> Self {
        Self { inner: backend }
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
