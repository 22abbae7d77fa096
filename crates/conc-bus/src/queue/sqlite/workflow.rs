//! [`WorkflowBackend`] for [`SqliteQueue`]: each operation one request of
//! the connection thread, in its transaction.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::row::{Failure, Refusal};
use super::writer::{Request, Tx, copy};
use super::{SqliteQueue, flow, stopped};
use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, BatchQuery, MemberOutcome,
    NewBatch, WorkflowError,
};
use crate::id::JobId;
use crate::queue::backend::Pushed;
use crate::queue::error::{PushError, QueueError};
use crate::queue::workflow::WorkflowBackend;

/// What a workflow call stores.
pub(super) enum WorkflowOp {
    Create(Box<NewBatch>),
    Add(BatchId, Vec<Pushed>),
}

impl WorkflowOp {
    fn into_jobs(self) -> Vec<Pushed> {
        match self {
            Self::Create(batch) => batch.members,
            Self::Add(_, jobs) => jobs,
        }
    }
}

/// A call that pushes jobs of a batch: the jobs stay here until the answer,
/// to be handed back on refusal.
pub(super) struct WorkflowCall {
    op: WorkflowOp,
    reply: oneshot::Sender<Result<u64, WorkflowError>>,
    out: Option<Result<u64, Failure>>,
}

impl WorkflowCall {
    pub(super) fn run(&mut self, tx: &Tx<'_>) -> rusqlite::Result<()> {
        if !self.reply.is_closed() {
            let op = &self.op;
            self.out = Some(tx.savepoint(|tx| match op {
                WorkflowOp::Create(batch) => flow::create(tx, &batch.record, &batch.members),
                WorkflowOp::Add(id, jobs) => flow::add(tx, *id, jobs),
            })?);
        }
        Ok(())
    }

    pub(super) fn answer(self, committed: Result<(), &rusqlite::Error>) {
        let jobs = self.op.into_jobs();
        let result = match (committed, self.out) {
            (Err(error), _) => {
                Err(PushError::Backend { error: Box::new(copy(error)), jobs }.into())
            }
            (Ok(()), None) => return,
            (Ok(()), Some(Ok(added))) => Ok(added),
            (Ok(()), Some(Err(failure))) => Err(match failure {
                Failure::Refused(Refusal::Full { queue, capacity }) => {
                    PushError::Full { queue, capacity, jobs }.into()
                }
                Failure::Refused(Refusal::Duplicate { id }) => {
                    PushError::Duplicate { id, jobs }.into()
                }
                Failure::Refused(Refusal::Locked { key, held_by }) => {
                    PushError::Locked { key, held_by, jobs }.into()
                }
                Failure::Refused(Refusal::NoBatch(id)) => WorkflowError::NotFound { id },
                Failure::Refused(Refusal::Closed(id, state)) => WorkflowError::Closed { id, state },
                Failure::Config(error) => PushError::Invalid { error, jobs }.into(),
                Failure::Sql(error) => PushError::Backend { error: Box::new(error), jobs }.into(),
                Failure::Corrupt { message, .. } => QueueError::Corrupt(message).into(),
            }),
        };
        let _ = self.reply.send(result);
    }
}

impl SqliteQueue {
    async fn workflow(&self, op: WorkflowOp) -> Result<u64, WorkflowError> {
        let (reply, answer) = oneshot::channel();
        let call = WorkflowCall { op, reply, out: None };
        if let Err(mpsc::SendError(request)) = self.inner.requests.send(Request::Workflow(call)) {
            let jobs = match request {
                Request::Workflow(call) => call.op.into_jobs(),
                _ => Vec::new(),
            };
            return Err(PushError::Backend { error: stopped().into(), jobs }.into());
        }
        answer.await.unwrap_or_else(|_| Err(stopped().into()))
    }
}

impl WorkflowBackend for SqliteQueue {
    async fn create_batch(&self, batch: NewBatch) -> Result<(), WorkflowError> {
        self.workflow(WorkflowOp::Create(Box::new(batch))).await.map(drop)
    }

    async fn add_to_batch(&self, id: BatchId, jobs: Vec<Pushed>) -> Result<u64, WorkflowError> {
        self.workflow(WorkflowOp::Add(id, jobs)).await
    }

    async fn batch(&self, id: BatchId) -> Result<Option<BatchInfo>, QueueError> {
        self.call(id, Request::Batch).await
    }

    async fn batches(&self, limit: usize) -> Result<Vec<BatchInfo>, QueueError> {
        self.call(limit, Request::Batches).await
    }

    async fn list_batches(&self, query: &BatchQuery) -> Result<Vec<BatchInfo>, QueueError> {
        self.call(query.clone(), Request::ListBatches).await
    }

    async fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError> {
        self.call((id, offset, limit), Request::BatchMembers).await
    }

    async fn cancel_batch(&self, id: BatchId) -> Result<bool, QueueError> {
        self.call(id, Request::CancelBatch).await
    }

    async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, QueueError> {
        self.call(prune, Request::PruneBatches).await
    }

    async fn recover_batch(&self, id: BatchId) -> Result<u64, WorkflowError> {
        self.call(id, Request::RecoverBatch).await?.map_err(|refusal| refusal.into_error(id))
    }

    async fn archived_batch(&self, id: BatchId) -> Result<Option<ArchivedBatch>, QueueError> {
        self.call(id, Request::ArchivedBatch).await
    }

    fn subscribe_batches(&self) -> tokio::sync::broadcast::Receiver<BatchProgress> {
        self.inner.shared.progress.subscribe()
    }
}
