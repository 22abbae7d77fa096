//! The workflow half of the [`Queue`] front: batches and chains, on backends
//! that keep them ([`WorkflowBackend`]).

use super::error::QueueError;
use super::front::Queue;
use super::workflow::WorkflowBackend;
use crate::batch::{
    BatchId, BatchInfo, BatchJobs, BatchPrune, BatchQuery, MemberOutcome, PendingBatch,
    WorkflowError,
};
use crate::chain::Chain;
use crate::clock::millis;
use crate::id::JobId;
use crate::job::JobContext;
use crate::queue::Pushed;

impl<B: WorkflowBackend> Queue<B> {
    /// Stores `batch` and pushes its members, all or nothing; its id.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Encode`] or [`WorkflowError::Invalid`] for a job that
    /// does not serialize or has invalid options; [`WorkflowError::Push`]
    /// (the members handed back) when the backend refuses them.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{MemoryQueue, Queue};
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::new(MemoryQueue::new());
    /// let id = queue.dispatch_batch(PendingBatch::new().add(Ping).add(Ping)).await?;
    /// assert_eq!(queue.batch(id).await?.map(|b| b.pending), Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn dispatch_batch(&self, batch: PendingBatch) -> Result<BatchId, WorkflowError> {
        let mut new = batch.build(self.backend().now())?;
        new.members = self.seal(std::mem::take(&mut new.members))?;
        let id = new.id();
        self.backend().create_batch(new).await?;
        Ok(id)
    }

    /// Pushes the first link of `chain` (which carries the rest); its id.
    ///
    /// # Errors
    ///
    /// As [`dispatch_batch`](Self::dispatch_batch).
    pub async fn dispatch_chain(&self, chain: Chain) -> Result<JobId, WorkflowError> {
        let (mut head, delay) = chain.into_head()?;
        let now = self.backend().now();
        head.created_at = now;
        let id = head.id;
        self.push_envelopes(vec![Pushed::new(head, now.saturating_add(millis(delay)))]).await?;
        Ok(id)
    }

    /// Adds `jobs` to batch `id`; how many were added.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::NotFound`], [`WorkflowError::Closed`] when it is
    /// finished or cancelled, and those of [`dispatch_batch`](Self::dispatch_batch).
    pub async fn add_to_batch(&self, id: BatchId, jobs: BatchJobs) -> Result<u64, WorkflowError> {
        let middleware = self.batch_middleware(id).await?;
        let pushed =
            self.seal(jobs.into_pushed(id, None, &middleware, None, self.backend().now())?)?;
        self.backend().add_to_batch(id, pushed).await
    }

    /// Adds `jobs` to the batch of the running member `ctx`, with ids derived
    /// from the member's and from the number of this add in the attempt: if
    /// the member runs again (its lease was lost, it failed and is retried)
    /// and makes the same adds, they add nothing. The batch grows before the
    /// member counts, so it cannot finish in between.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::NotInBatch`] when the job is not a member, and those
    /// of [`add_to_batch`](Self::add_to_batch).
    pub async fn add_to_batch_from(
        &self,
        ctx: &JobContext,
        jobs: BatchJobs,
    ) -> Result<u64, WorkflowError> {
        let Some(id) = ctx.batch_id() else {
            return Err(WorkflowError::NotInBatch { job: ctx.id() });
        };
        let parent = crate::job::derived_id(ctx.id(), u128::from(ctx.next_add()) << 64);
        let middleware = self.batch_middleware(id).await?;
        let pushed = self.seal(jobs.into_pushed(
            id,
            None,
            &middleware,
            Some(parent),
            self.backend().now(),
        )?)?;
        self.backend().add_to_batch(id, pushed).await
    }

    /// The named middleware batch `id` stamps on its members.
    async fn batch_middleware(&self, id: BatchId) -> Result<Vec<String>, WorkflowError> {
        match self.backend().batch(id).await? {
            Some(info) => Ok(info.middleware),
            None => Err(WorkflowError::NotFound { id }),
        }
    }

    /// Batch `id` as it stands, or `None` when there is no such batch.
    pub async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        self.backend().batch(id).await
    }

    /// Up to `limit` batches, newest first.
    pub async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        self.backend().batches(limit).await
    }

    /// The batches `query` selects, newest first, by state, name and cursor
    /// ([`WorkflowBackend::list_batches`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::batch::{BatchQuery, BatchState, PendingBatch};
    /// use conc_bus::{MemoryQueue, Queue};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::new(MemoryQueue::new());
    /// queue.dispatch_batch(PendingBatch::new().name("import").add(Ping)).await?;
    /// let query = BatchQuery::new().state(BatchState::Pending).name("imp");
    /// assert_eq!(queue.list_batches(&query).await?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn list_batches(&self, query: &BatchQuery) -> Result<Vec<BatchInfo>, QueueError> {
        self.backend().list_batches(query).await
    }

    /// Members of batch `id` with their outcome (`None` while pending), in
    /// id order: `limit` of them after skipping `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{MemoryQueue, Queue};
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::new(MemoryQueue::new());
    /// let id = queue.dispatch_batch(PendingBatch::new().add(Ping).add(Ping)).await?;
    /// let members = queue.batch_members(id, 0, 10).await?;
    /// assert!(members.len() == 2 && members.iter().all(|(_, outcome)| outcome.is_none()));
    /// # Ok(()) }
    /// ```
    pub async fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
        self.backend().batch_members(id, offset, limit).await
    }

    /// Cancels batch `id` (see [`WorkflowBackend::cancel_batch`]); whether
    /// it was running.
    pub async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        self.backend().cancel_batch(id).await
    }

    /// Re-dispatches the failed members of finished batch `id` into the same
    /// batch (each taken out of the failed store and queued again, its
    /// exception count reset, as [`retry_failed`](Self::retry_failed) does)
    /// and reopens the batch; how many were re-dispatched (0 leaves the batch
    /// as it was).
    ///
    /// The callback rule: **each callback fires at most once in a batch's
    /// life.** `then`, which a failure kept from firing, fires when the
    /// recovered members (and so every member) have succeeded; `catch` and
    /// `finally`, which fired when the batch first finished, do not fire
    /// again; `progress` fires for each recovered member's new outcome.
    /// Without `allow_failures`, a recovered member that fails again cancels
    /// the batch as a first failure would.
    ///
    /// A failed member is recovered when its job is still in the failed store
    /// under the member's id: a single job, or a chain whose first link
    /// failed. A member whose job was forgotten, or a chain that failed at a
    /// later link, stays failed. A recovered batch has no deadline.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::NotFound`]; [`WorkflowError::NotRecoverable`] when the
    /// batch is not finished, timed out, or had members cancelled (their
    /// jobs are gone, so it could never succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
    /// use conc_bus::batch::PendingBatch;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Upload;
    /// # impl conc_bus::Job for Upload { const NAME: &'static str = "upload"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = MemoryQueue::new();
    /// let queue = Queue::new(backend.clone());
    /// let id = queue.dispatch_batch(PendingBatch::new().add(Upload)).await?;
    ///
    /// let healthy = Arc::new(AtomicBool::new(false));
    /// let run = |healthy: Arc<AtomicBool>| {
    ///     let handlers = JobHandlers::new().handle(move |_: Upload, _: JobContext| {
    ///         let up = healthy.load(Ordering::SeqCst);
    ///         async move { if up { Ok(()) } else { Err(JobError::fatal("server down")) } }
    ///     });
    ///     Worker::builder(backend.clone(), handlers).stop_when_empty(true).build()
    /// };
    /// run(Arc::clone(&healthy))?.run().await?;
    /// assert_eq!(queue.batch(id).await?.map(|b| b.failed), Some(1));
    ///
    /// healthy.store(true, Ordering::SeqCst); // the server is back
    /// assert_eq!(queue.recover_batch(id).await?, 1);
    /// run(healthy)?.run().await?;
    /// let info = queue.batch(id).await?.expect("stored");
    /// assert_eq!((info.succeeded, info.failed, info.is_finished()), (1, 0, true));
    /// # Ok(()) }
    /// ```
    pub async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
        self.backend().recover_batch(id).await
    }

    /// The archive of batch `id`: its last [`BatchInfo`] and every member's
    /// outcome, kept by a prune with [`BatchPrune::archive`] after the live
    /// batch was deleted. `None` when it was not archived (or the archive
    /// was dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::{MemoryQueue, Queue};
    /// use conc_bus::batch::{BatchPrune, PendingBatch};
    /// use conc_core::time::ManualClock;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = ManualClock::new();
    /// let queue = Queue::new(MemoryQueue::builder().clock(clock.clone()).build()?);
    /// let id = queue.dispatch_batch(PendingBatch::new()).await?; // empty: finished at once
    /// clock.advance(Duration::from_secs(60));
    /// queue.prune_batches(BatchPrune::finished(Duration::from_secs(1)).archive()).await?;
    /// assert!(queue.batch(id).await?.is_none());
    /// let archived = queue.archived_batch(id).await?.expect("archived");
    /// assert!(archived.info.is_finished() && archived.members.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn archived_batch(
        &self,
        id: BatchId,
    ) -> Result<Option<crate::batch::ArchivedBatch>, QueueError> {
        self.backend().archived_batch(id).await
    }

    /// Deletes the batches `prune` selects (archiving the finished ones when
    /// it says [`archive`](BatchPrune::archive)), and the archives it drops;
    /// how many of both.
    pub async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        self.backend().prune_batches(prune).await
    }

    /// A subscription to member outcomes, every batch's, from now on: one
    /// [`BatchProgress`](crate::batch::BatchProgress) per outcome the
    /// backend records. Per process (see
    /// [`WorkflowBackend::subscribe_batches`]); for a durable "after each
    /// member" hook that any worker runs, use the batch's `progress`
    /// callback job instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::{JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
    /// use conc_bus::batch::PendingBatch;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Resize { page: u32 }
    /// # impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = MemoryQueue::new();
    /// let queue = Queue::new(backend.clone());
    /// let mut progress = queue.subscribe_batches();
    /// let id = queue.dispatch_batch(PendingBatch::new().add(Resize { page: 1 }).add(Resize { page: 2 })).await?;
    ///
    /// let handlers = JobHandlers::new().handle(|_: Resize, _: JobContext| async { Ok::<(), JobError>(()) });
    /// Worker::builder(backend, handlers).stop_when_empty(true).build()?.run().await?;
    ///
    /// let first = progress.recv().await?;
    /// assert_eq!((first.batch, first.progress(), first.finished), (id, 50, false));
    /// let last = progress.recv().await?;
    /// assert_eq!((last.progress(), last.finished), (100, true));
    /// # Ok(()) }
    /// ```
    pub fn subscribe_batches(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::batch::BatchProgress> {
        self.backend().subscribe_batches()
    }
}
