//! [`WorkflowBackend`] for [`RedisQueue`]: batches, chains and admission
//! kept by the scripts that push, reserve and settle the jobs.

use tokio::sync::broadcast;

use super::{RedisQueue, batches};
use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, MemberOutcome, NewBatch,
    WorkflowError,
};
use crate::id::JobId;
use crate::queue::backend::Pushed;
use crate::queue::error::QueueError;
use crate::queue::workflow::WorkflowBackend;

impl WorkflowBackend for RedisQueue {
    async fn create_batch(&self, batch: NewBatch) -> Result<(), WorkflowError> {
        batches::create(&self.inner, batch).await
    }

    async fn add_to_batch(&self, id: BatchId, jobs: Vec<Pushed>) -> Result<u64, WorkflowError> {
        batches::add(&self.inner, id, jobs).await
    }

    async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        Ok(batches::read_one(&self.inner, id).await?.as_ref().map(batches::info))
    }

    async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        batches::list(&self.inner, limit).await
    }

    async fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
        batches::members(&self.inner, id, offset, limit).await
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        batches::cancel(&self.inner, id).await
    }

    async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        batches::prune(&self.inner, prune).await
    }

    async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
        batches::recover(&self.inner, id).await
    }

    async fn archived_batch(&self, id: BatchId) -> Result<Option<ArchivedBatch>, QueueError> {
        batches::archived(&self.inner, id).await
    }

    fn subscribe_batches(&self) -> broadcast::Receiver<BatchProgress> {
        self.inner.progress.subscribe()
    }
}
