//! Batches: a group of jobs with callbacks when they are all done, when one
//! fails, when every one has an outcome, and after each one.
//!
//! A batch is stored by the backend ([`WorkflowBackend`](crate::queue::WorkflowBackend))
//! as a record and a **set** of members, each with its outcome (succeeded,
//! failed, cancelled) once it has one. Outcomes are recorded by the backend
//! in the step that settles the member's job, and a member keeps its first
//! outcome, so a member that runs twice (its lease was lost, the job came
//! back) counts once. Each callback is a job claimed by flipping a flag once
//! and pushed in that same step: it is dispatched exactly once, even when
//! workers die around it.
//!
//! | callback | dispatched when |
//! |---|---|
//! | `then` | every member succeeded (never after a cancellation) |
//! | `catch` | the first member failed for good |
//! | `finally` | every member has an outcome, whatever it is |
//! | `progress` | a member succeeded or failed (once per member) |
//!
//! Without [`allow_failures`](PendingBatch::allow_failures) the first failure
//! cancels the batch. A cancelled batch's waiting members are deleted and
//! count as cancelled; its running members are asked to stop (their
//! [`JobContext::cancelled`](crate::JobContext::cancelled) resolves at the
//! next lease renewal, within a third of the lease) and a member that then
//! fails or is released is dropped instead of going back.
//!
//! A batch may have a [timeout](PendingBatch::timeout): past its deadline
//! its unfinished members are cancelled and `catch` and `finally` fire once.
//! [`Queue::subscribe_batches`](crate::Queue::subscribe_batches) hears each
//! member outcome in this process ([`BatchProgress`]); a prune with
//! [`BatchPrune::archive`] keeps a finished batch's member outcomes
//! ([`ArchivedBatch`]); [`Queue::recover_batch`](crate::Queue::recover_batch)
//! re-dispatches a finished batch's failed members into it, each callback
//! still firing at most once in the batch's life.
//!
//! A member may [add](crate::Queue::add_to_batch_from) jobs to its batch:
//! they become members before the adding job counts, so the batch cannot
//! finish early; a finished or cancelled batch takes no new members, so a
//! `then` that adds does not start the batch over.
//!
//! # Examples
//!
//! ```
//! use conc_bus::{JobContext, JobError, JobHandlers, MemoryQueue, Queue, Worker};
//! use conc_bus::batch::PendingBatch;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { page: u32 }
//! impl conc_bus::Job for Resize { const NAME: &'static str = "resize"; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Publish;
//! impl conc_bus::Job for Publish { const NAME: &'static str = "publish"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = MemoryQueue::new();
//! let queue = Queue::new(backend.clone());
//! let batch = PendingBatch::new().name("book 7").add(Resize { page: 1 }).add(Resize { page: 2 }).then(Publish);
//! let id = queue.dispatch_batch(batch).await?;
//!
//! let handlers = JobHandlers::new()
//!     .handle(|_: Resize, _: JobContext| async { Ok::<(), JobError>(()) })
//!     .handle(|_: Publish, ctx: JobContext| async move {
//!         assert!(ctx.trigger().is_some());
//!         Ok::<(), JobError>(())
//!     });
//! Worker::builder(backend, handlers).stop_when_empty(true).build()?.run().await?;
//!
//! let info = queue.batch(id).await?.expect("stored");
//! assert_eq!((info.succeeded, info.progress(), info.is_finished()), (2, 100, true));
//! # Ok(()) }
//! ```

mod archive;
pub(crate) mod builder;
mod error;
pub(crate) mod machine;
pub(crate) mod model;
pub(crate) mod progress;
mod query;

pub use archive::ArchivedBatch;
pub(crate) use builder::set_middleware;
pub use builder::{BatchJobs, NewBatch, PendingBatch};
pub use error::WorkflowError;
pub use model::{BatchCallback, BatchId, BatchInfo, BatchPrune, MAX_FAILED_JOBS, MemberOutcome};
pub use progress::{BatchProgress, PROGRESS_CAPACITY};
pub use query::{BATCH_SCAN, BatchQuery, BatchState};
