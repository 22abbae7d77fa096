//! The memory backend: the conformance and workflow suites on a manual
//! clock, and the workflow suite through `AnyBackend`.

mod conformance;

use conc_bus::MemoryQueue;
use conc_core::time::ManualClock;

conformance::suite!(|clock: ManualClock| async move {
    let backend = MemoryQueue::builder().clock(clock).build().unwrap();
    Some((backend, Box::new(()) as conformance::KeepAlive))
});

mod workflows;

workflows::suite!(|clock: ManualClock| async move {
    let backend = MemoryQueue::builder().clock(clock).build().unwrap();
    Some((backend, Box::new(()) as workflows::KeepAlive))
});

/// The workflow suite again through [`conc_bus::AnyBackend::with_workflows`]:
/// every workflow call (timeouts, subscriptions, archive, recovery included)
/// reaches the backend behind it.
mod any_backend {
    use conc_bus::{AnyBackend, MemoryQueue};
    use conc_core::time::ManualClock;

    crate::workflows::suite!(|clock: ManualClock| async move {
        let backend = MemoryQueue::builder().clock(clock).build().unwrap();
        Some((AnyBackend::with_workflows(backend), Box::new(()) as crate::workflows::KeepAlive))
    });
}

/// A workflow backend that keeps `WorkflowBackend::list_batches`'s default
/// body (filtering `batches` in memory), as a backend without a store-side
/// listing does: it answers as the memory queue's own listing does.
mod default_listing {
    use std::sync::Arc;
    use std::time::Duration;

    use conc_bus::batch::{
        ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, MemberOutcome, NewBatch,
        WorkflowError,
    };
    use conc_bus::queue::WorkflowBackend;
    use conc_bus::{
        Envelope, FailedJob, FailedQuery, FailedStore, JobId, Lease, MemoryQueue, PushError,
        Pushed, QueueBackend, QueueError, QueueSize, Reservation, ReserveRequest, Selection,
        Settled, Transition,
    };
    use conc_core::time::ManualClock;

    #[derive(Debug)]
    struct Plain(MemoryQueue);

    impl QueueBackend for Plain {
        async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
            self.0.push(jobs).await
        }
        async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
            self.0.reserve(request).await
        }
        async fn settle(
            &self,
            batch: Vec<(Lease, Transition)>,
        ) -> Result<Vec<Settled>, QueueError> {
            self.0.settle(batch).await
        }
        async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
            self.0.size(queue).await
        }
        async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
            self.0.peek(queue, limit).await
        }
        async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
            self.0.clear(queue).await
        }
        async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
            self.0.set_paused(queue, paused).await
        }
        async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
            self.0.set_capacity(queue, capacity).await
        }
        async fn queues(&self) -> Result<Vec<String>, QueueError> {
            self.0.queues().await
        }
        async fn wait(&self, queues: &[String], timeout: Duration) {
            self.0.wait(queues, timeout).await;
        }
        fn now(&self) -> u64 {
            self.0.now()
        }
    }

    impl FailedStore for Plain {
        async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
            self.0.failed(query).await
        }
        async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
            self.0.failed_job(id).await
        }
        async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
            self.0.failed_count(queue).await
        }
        async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
            self.0.retry_failed(selection).await
        }
        async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
            self.0.forget_failed(selection).await
        }
    }

    impl WorkflowBackend for Plain {
        async fn create_batch(&self, batch: NewBatch) -> Result<(), WorkflowError> {
            self.0.create_batch(batch).await
        }
        async fn add_to_batch(&self, id: BatchId, jobs: Vec<Pushed>) -> Result<u64, WorkflowError> {
            self.0.add_to_batch(id, jobs).await
        }
        async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
            self.0.batch(id).await
        }
        async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
            self.0.batches(limit).await
        }
        async fn batch_members(
            &self,
            id: BatchId,
            offset: usize,
            limit: usize,
        ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
            self.0.batch_members(id, offset, limit).await
        }
        async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
            self.0.cancel_batch(id).await
        }
        async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
            self.0.prune_batches(prune).await
        }
        async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
            self.0.recover_batch(id).await
        }
        async fn archived_batch(&self, id: BatchId) -> Result<Option<ArchivedBatch>, QueueError> {
            self.0.archived_batch(id).await
        }
        fn subscribe_batches(&self) -> tokio::sync::broadcast::Receiver<BatchProgress> {
            self.0.subscribe_batches()
        }
    }

    #[tokio::test]
    async fn the_default_listing_filters_and_pages_like_the_stores() {
        let clock = ManualClock::new();
        let backend = Arc::new(Plain(MemoryQueue::builder().clock(clock.clone()).build().unwrap()));
        let queue = conc_bus::Queue::from_arc(Arc::clone(&backend));
        crate::workflows::batches_are_listed_by_state_name_and_cursor(crate::workflows::W {
            backend,
            queue,
            clock,
        })
        .await;
    }
}
