//! The contract of backends that keep workflows: [`WorkflowBackend`].

use std::future::Future;

use super::backend::{Pushed, QueueBackend};
use super::error::QueueError;
use tokio::sync::broadcast;

use crate::batch::{
    ArchivedBatch, BatchId, BatchInfo, BatchProgress, BatchPrune, BatchQuery, MemberOutcome,
    NewBatch, WorkflowError,
};
use crate::id::JobId;

/// A [`QueueBackend`] that also keeps batches, chains and admission locks,
/// each change in the same atomic step (lock, transaction) as the queue
/// change it goes with:
///
/// - a batch is stored with its members pushed, all or nothing;
/// - when a job settles, the backend reads the workflow its envelope carries
///   ([`JobFlow`](crate::job::JobFlow)): an acknowledged link pushes the next
///   one; a failed one pushes its chain's `catch`; a batch member's outcome
///   goes into the batch's *set* of member outcomes (a member seen twice
///   counts once) and every callback it fires is claimed (a flag flipped
///   once) and pushed as a job in that same step;
/// - a job that goes back to its queue after its batch was cancelled is
///   dropped and counts as cancelled; a renewal of such a job's lease
///   answers [`Settlement::StopAsked`](crate::Settlement::StopAsked), which
///   the worker passes to the handler as its cancellation signal.
///
/// [`MemoryQueue`](crate::MemoryQueue), `SqliteQueue` and `RedisQueue`
/// implement it (Redis on one server: a cluster refuses the scripts that
/// keep a batch, whose keys are on several slots).
pub trait WorkflowBackend: QueueBackend {
    /// Stores `batch` and pushes its members, all or nothing.
    fn create_batch(
        &self,
        batch: NewBatch,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// Adds `jobs` to batch `id` and pushes them, in one step; jobs whose ids
    /// are members already are skipped (an add repeated by a member that ran
    /// twice adds nothing). How many were added. Refused when the batch is
    /// finished or cancelled.
    fn add_to_batch(
        &self,
        id: BatchId,
        jobs: Vec<Pushed>,
    ) -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// Batch `id` as it stands.
    fn batch(
        &self,
        id: BatchId,
    ) -> impl Future<Output = Result<Option<BatchInfo>, QueueError>> + Send;

    /// Up to `limit` batches, newest first.
    fn batches(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<BatchInfo>, QueueError>> + Send;

    /// The batches `query` selects, newest first: by state, by name, after a
    /// cursor, at most `query.limit`.
    ///
    /// The default filters [`batches`](Self::batches) in memory over the
    /// newest [`BATCH_SCAN`](crate::batch::BATCH_SCAN) when the query
    /// filters or pages; the memory and SQLite queues filter and page in
    /// their store instead (SQLite by an index on the batch's state), so a
    /// deep page or a rare state costs about what the first page does.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::batch::{BatchQuery, BatchState, PendingBatch};
    /// use conc_bus::queue::WorkflowBackend;
    /// use conc_bus::{MemoryQueue, Queue};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = MemoryQueue::new();
    /// let queue = Queue::new(backend.clone());
    /// let import = queue.dispatch_batch(PendingBatch::new().name("import").add(Ping)).await?;
    /// let export = queue.dispatch_batch(PendingBatch::new().name("export").add(Ping)).await?;
    /// queue.cancel_batch(export).await?;
    /// let pending = backend.list_batches(&BatchQuery::new().state(BatchState::Pending)).await?;
    /// assert_eq!(pending.iter().map(|b| b.id).collect::<Vec<_>>(), [import]);
    /// let named = backend.list_batches(&BatchQuery::new().name("port")).await?;
    /// assert_eq!(named.len(), 2);
    /// let after = backend.list_batches(&BatchQuery::new().before(export)).await?;
    /// assert_eq!(after.iter().map(|b| b.id).collect::<Vec<_>>(), [import]);
    /// # Ok(()) }
    /// ```
    fn list_batches(
        &self,
        query: &BatchQuery,
    ) -> impl Future<Output = Result<Vec<BatchInfo>, QueueError>> + Send {
        async move {
            let window = if query.narrows() { crate::batch::BATCH_SCAN } else { query.limit };
            Ok(query.apply(self.batches(window).await?))
        }
    }

    /// Members of batch `id` with their outcome (`None` while pending), in
    /// id order: `limit` of them after skipping `offset`. Empty when there
    /// is no such batch.
    fn batch_members(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(JobId, Option<MemberOutcome>)>, QueueError>> + Send;

    /// Cancels batch `id`: its members waiting in a queue are deleted and
    /// count as cancelled; running ones are asked to stop at their next
    /// lease renewal. Whether it was running (not finished, not cancelled).
    ///
    /// A backend may delete the waiting members in several bounded steps
    /// (Redis: a chunk of members per script call, so that no call blocks
    /// the server for long); the batch is cancelled at the first, and the
    /// call returns when the last is done. Each member still counts as
    /// cancelled once and `finally` fires once, with the last.
    fn cancel_batch(&self, id: BatchId) -> impl Future<Output = Result<bool, QueueError>> + Send;

    /// Deletes the batches `prune` selects, with their member sets (moving
    /// the finished ones to the archive when it says
    /// [`archive`](BatchPrune::archive)), and the archives it drops; how
    /// many of both.
    fn prune_batches(
        &self,
        prune: BatchPrune,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send;

    /// Re-dispatches the failed members of finished batch `id` into it (see
    /// [`Queue::recover_batch`](crate::Queue::recover_batch)); how many.
    fn recover_batch(&self, id: BatchId)
    -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// The archive of batch `id` (see [`BatchPrune::archive`]), if a prune
    /// moved it there.
    fn archived_batch(
        &self,
        id: BatchId,
    ) -> impl Future<Output = Result<Option<ArchivedBatch>, QueueError>> + Send;

    /// A subscription to the member outcomes this backend records, every
    /// batch's, from now on (see [`BatchProgress`]). **Per process**: it
    /// hears the outcomes recorded through this backend value and its
    /// clones, not those recorded by other processes sharing the store (nor
    /// by another handle opened on the same SQLite file). A subscriber that
    /// falls more than [`PROGRESS_CAPACITY`](crate::batch::PROGRESS_CAPACITY)
    /// notifications behind misses the oldest.
    fn subscribe_batches(&self) -> broadcast::Receiver<BatchProgress>;
}
