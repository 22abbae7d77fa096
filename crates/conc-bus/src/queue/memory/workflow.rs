//! [`WorkflowBackend`] for [`MemoryQueue`]: every change under the one lock.

use super::{MemoryQueue, check_push};
use tokio::sync::broadcast;

use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, BatchQuery, MemberOutcome,
    NewBatch, WorkflowError,
};
use crate::id::JobId;
use crate::queue::backend::{Pushed, QueueBackend};
use crate::queue::error::{PushError, QueueError};
use crate::queue::workflow::WorkflowBackend;

impl WorkflowBackend for MemoryQueue {
    async fn create_batch(&self, batch: NewBatch) -> Result<(), WorkflowError> {
        let now = self.now();
        {
            let mut state = self.lock();
            if let Err(refusal) = check_push(&state, &batch.members) {
                return Err(refusal.into_error(batch.members).into());
            }
            if let Err((key, held_by)) = state.check_admission(&batch.members, now) {
                return Err(PushError::Locked { key, held_by, jobs: batch.members }.into());
            }
            state.create_batch(batch.record, batch.members, now);
        }
        self.inner.pushed.notify_waiters();
        self.inner.pushed.notify_one();
        Ok(())
    }

    async fn add_to_batch(&self, id: BatchId, jobs: Vec<Pushed>) -> Result<u64, WorkflowError> {
        let now = self.now();
        let added = {
            let mut state = self.lock();
            let Some(batch) = state.batches.get(&id) else {
                return Err(WorkflowError::NotFound { id });
            };
            if batch.record.cancelled_at.is_some() {
                return Err(WorkflowError::Closed { id, state: "cancelled" });
            }
            if batch.record.finished_at.is_some() {
                return Err(WorkflowError::Closed { id, state: "finished" });
            }
            let fresh: Vec<Pushed> = jobs
                .into_iter()
                .filter(|job| {
                    let member = job.envelope.flow.as_deref().and_then(|f| f.batch);
                    member.is_some_and(|m| !batch.members.contains_key(&m.member))
                })
                .collect();
            if let Err(refusal) = check_push(&state, &fresh) {
                return Err(refusal.into_error(fresh).into());
            }
            if let Err((key, held_by)) = state.check_admission(&fresh, now) {
                return Err(PushError::Locked { key, held_by, jobs: fresh }.into());
            }
            state.add_members(id, fresh, now)
        };
        if added > 0 {
            self.inner.pushed.notify_waiters();
        }
        Ok(added)
    }

    async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        Ok(self.lock().batches.get(&id).map(super::flow::MemBatch::info))
    }

    async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        let state = self.lock();
        Ok(state.batches.values().rev().take(limit).map(super::flow::MemBatch::info).collect())
    }

    async fn list_batches(&self, query: &BatchQuery) -> Result<Vec<BatchInfo>, QueueError> {
        let state = self.lock();
        let older = match query.before {
            Some(before) => state.batches.range(..before),
            None => state.batches.range(..),
        };
        Ok(older
            .rev()
            .map(|(_, batch)| batch.info())
            .filter(|info| query.matches(info))
            .take(query.limit)
            .collect())
    }

    async fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
        let state = self.lock();
        Ok(state.batches.get(&id).map_or_else(Vec::new, |batch| {
            batch.members.iter().skip(offset).take(limit).map(|(id, o)| (*id, *o)).collect()
        }))
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        let now = self.now();
        let cancelled = self.lock().cancel_batch(id, now);
        if cancelled {
            self.inner.pushed.notify_waiters();
        }
        Ok(cancelled)
    }

    async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        let now = self.now();
        Ok(self.lock().prune_batches(prune, now))
    }

    async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
        let now = self.now();
        let recovered = self.lock().recover_batch(id, now).map_err(|u| u.into_error(id))?;
        if recovered > 0 {
            self.inner.pushed.notify_waiters();
            self.inner.pushed.notify_one();
        }
        Ok(recovered)
    }

    async fn archived_batch(&self, id: BatchId) -> Result<Option<ArchivedBatch>, QueueError> {
        Ok(self.lock().archive.get(&id).cloned())
    }

    fn subscribe_batches(&self) -> broadcast::Receiver<BatchProgress> {
        self.lock().progress.subscribe()
    }
}
