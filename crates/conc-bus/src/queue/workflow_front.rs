//! The workflow half of the [`Queue`] front: batches and chains, on backends
//! that keep them ([`WorkflowBackend`]).

use super::error::QueueError;
use super::front::Queue;
use super::workflow::WorkflowBackend;
use crate::batch::{BatchId, BatchInfo, BatchJobs, BatchPrune, PendingBatch, WorkflowError};
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
        let pushed = self.seal(jobs.into_pushed(id, None, None, self.backend().now())?)?;
        self.backend().add_to_batch(id, pushed).await
    }

    /// Adds `jobs` to the batch of the running member `ctx`, with ids derived
    /// from the member's: if the member runs again (its lease was lost, it
    /// failed and is retried) the same add adds nothing. The batch grows
    /// before the member counts, so it cannot finish in between.
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
        let pushed = jobs.into_pushed(id, None, Some(ctx.id()), self.backend().now())?;
        self.backend().add_to_batch(id, self.seal(pushed)?).await
    }

    /// Batch `id` as it stands, or `None` when there is no such batch.
    pub async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        self.backend().batch(id).await
    }

    /// Up to `limit` batches, newest first.
    pub async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        self.backend().batches(limit).await
    }

    /// Cancels batch `id` (see [`WorkflowBackend::cancel_batch`]); whether
    /// it was running.
    pub async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        self.backend().cancel_batch(id).await
    }

    /// Deletes the batches `prune` selects; how many.
    pub async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        self.backend().prune_batches(prune).await
    }
}
