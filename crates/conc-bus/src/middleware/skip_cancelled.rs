//! [`SkipIfBatchCancelledLayer`]: a batch member whose batch was cancelled
//! does not run.

use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::BoxFuture;
use tower::{Layer, Service};

use super::JobRequest;
use crate::JobError;
use crate::queue::{Queue, WorkflowBackend};

/// Middleware that does not run a batch member whose batch was cancelled
/// (Laravel's `SkipIfBatchCancelled`).
///
/// Before the handler starts it reads the member's batch from the queue; when
/// the batch is cancelled (or the attempt's cancellation signal is already
/// set) the job is handed back at once without running, and the queue drops
/// it and counts it as cancelled in the batch. Jobs outside a batch, and a
/// batch's callbacks (`catch` and `finally` run after a cancel), run as
/// usual. A failure to read the batch fails the attempt (it is retried).
///
/// The queue already deletes waiting members when a batch is cancelled and
/// tells running ones to stop; this middleware closes the gap of a member
/// reserved just before the cancel.
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::SkipIfBatchCancelledLayer;
/// use conc_bus::{JobHandlers, MemoryQueue, Queue};
///
/// let queue = Queue::new(MemoryQueue::new());
/// let handlers = JobHandlers::new().layer(SkipIfBatchCancelledLayer::new(queue.clone()));
/// # let _ = handlers;
/// ```
pub struct SkipIfBatchCancelledLayer<B> {
    queue: Queue<B>,
}

impl<B> Clone for SkipIfBatchCancelledLayer<B> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<B> std::fmt::Debug for SkipIfBatchCancelledLayer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipIfBatchCancelledLayer").finish_non_exhaustive()
    }
}

impl<B: WorkflowBackend> SkipIfBatchCancelledLayer<B> {
    /// The middleware, reading batches from `queue`.
    pub fn new(queue: Queue<B>) -> Self {
        Self { queue }
    }
}

impl<B, S> Layer<S> for SkipIfBatchCancelledLayer<B> {
    type Service = SkipIfBatchCancelled<B, S>;

    fn layer(&self, inner: S) -> Self::Service {
        SkipIfBatchCancelled { inner, queue: self.queue.clone() }
    }
}

/// The service of [`SkipIfBatchCancelledLayer`].
///
/// # Examples
///
/// ```
/// use conc_bus::middleware::{SkipIfBatchCancelled, SkipIfBatchCancelledLayer};
/// use conc_bus::{MemoryQueue, Queue};
/// use tower::Layer;
///
/// let layer = SkipIfBatchCancelledLayer::new(Queue::new(MemoryQueue::new()));
/// let _service: SkipIfBatchCancelled<MemoryQueue, ()> = layer.layer(());
/// ```
pub struct SkipIfBatchCancelled<B, S> {
    inner: S,
    queue: Queue<B>,
}

impl<B, S: Clone> Clone for SkipIfBatchCancelled<B, S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), queue: self.queue.clone() }
    }
}

impl<B, S> std::fmt::Debug for SkipIfBatchCancelled<B, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipIfBatchCancelled").finish_non_exhaustive()
    }
}

impl<B, S> Service<JobRequest> for SkipIfBatchCancelled<B, S>
where
    B: WorkflowBackend,
    S: Service<JobRequest, Response = (), Error = JobError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = JobError;
    type Future = BoxFuture<'static, Result<(), JobError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: JobRequest) -> Self::Future {
        let member = request.envelope().flow.as_ref().and_then(|flow| flow.batch);
        let Some(member) = member else { return Box::pin(self.inner.call(request)) };
        // The inner service was made ready for this call: take it, leave a clone.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let queue = self.queue.clone();
        Box::pin(async move {
            if request.context().is_cancelled() {
                return Err(JobError::release(Duration::ZERO));
            }
            match queue.batch(member.batch).await {
                Ok(Some(batch)) if batch.is_cancelled() => {
                    tracing::debug!(target: "conc_bus", batch = %member.batch, job = request.name(), "batch cancelled: member skipped");
                    Err(JobError::release(Duration::ZERO))
                }
                Ok(_) => inner.call(request).await,
                Err(error) => Err(JobError::retry(error)),
            }
        })
    }
}
