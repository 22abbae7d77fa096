//! Batches as operators see them: [`BatchQuery`] to list them, [`BatchReport`]
//! for one in a list, [`BatchDetail`] for one with its members, and the
//! [`Admin`] operations over them.

use conc_bus::JobId;
use conc_bus::batch::{BatchId, BatchInfo, BatchPrune, MemberOutcome};
use conc_bus::queue::WorkflowBackend;
use serde::Serialize;

use crate::{Admin, AdminError, FailedSummary};

pub use conc_bus::batch::{BATCH_SCAN, BatchQuery, BatchState};

/// A batch in a list: its counts, its state and its progress in percent.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::BatchReport;
///
/// fn line(batch: &BatchReport) -> String {
///     format!("{} {} {}%", batch.info.id, batch.state, batch.progress)
/// }
/// # let _ = line;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchReport {
    /// The batch as the backend keeps it.
    #[serde(flatten)]
    pub info: BatchInfo,
    /// Where it stands.
    pub state: BatchState,
    /// Members with an outcome, in percent.
    pub progress: u8,
}

impl From<BatchInfo> for BatchReport {
    fn from(info: BatchInfo) -> Self {
        Self { state: BatchState::of(&info), progress: info.progress(), info }
    }
}

/// One member of a batch: its outcome (`None` while pending) and, when it
/// failed and is still in the failed store, the failed job.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::BatchMemberReport;
///
/// fn failed(member: &BatchMemberReport) -> bool {
///     member.failed.is_some()
/// }
/// # let _ = failed;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchMemberReport {
    /// The member's job id.
    pub id: JobId,
    /// How it ended, if it has.
    pub outcome: Option<MemberOutcome>,
    /// The failed job, for a failed member still in the failed store.
    pub failed: Option<FailedSummary>,
}

/// A batch with a page of its members, as [`Admin::batch`] answers.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::BatchDetail;
///
/// fn shown(detail: &BatchDetail) -> usize {
///     detail.members.len()
/// }
/// # let _ = shown;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchDetail {
    /// The batch, its counts and callbacks.
    #[serde(flatten)]
    pub batch: BatchReport,
    /// Its members from `members_offset` on, in id order.
    pub members: Vec<BatchMemberReport>,
    /// How many members were skipped before `members`.
    pub members_offset: usize,
}

/// The batch operations of [`Admin`], on a backend that keeps batches
/// ([`AnyBackend::with_workflows`](conc_bus::AnyBackend::with_workflows):
/// memory and SQLite; [`connect`](crate::connect) opens them so).
impl Admin {
    fn workflows(&self) -> Result<&conc_bus::AnyBackend, AdminError> {
        let backend = self.backend();
        if backend.keeps_workflows() { Ok(backend) } else { Err(AdminError::NoBatches) }
    }

    /// A page of batches, newest first, by state, name and cursor
    /// ([`WorkflowBackend::list_batches`]: the memory and SQLite queues
    /// filter and page in their store; another backend looks through its
    /// newest [`BATCH_SCAN`] batches).
    ///
    /// # Errors
    ///
    /// [`AdminError::NoBatches`] for a backend that keeps none.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_bus::Queue;
    /// use conc_bus::batch::PendingBatch;
    /// use conc_bus_cli::{Admin, BatchQuery, BatchState, connect};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl conc_bus::Job for Ping { const NAME: &'static str = "ping"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let admin = Admin::new(connect("memory:").await?);
    /// let queue = Queue::new(admin.backend().clone());
    /// queue.dispatch_batch(PendingBatch::new().name("import").add(Ping)).await?;
    /// let pending = admin.batches(&BatchQuery::new().state(BatchState::Pending)).await?;
    /// assert_eq!((pending.len(), pending[0].progress), (1, 0));
    /// # Ok(()) }
    /// ```
    pub async fn batches(&self, query: &BatchQuery) -> Result<Vec<BatchReport>, AdminError> {
        let backend = self.workflows()?;
        Ok(backend.list_batches(query).await?.into_iter().map(BatchReport::from).collect())
    }

    /// Batch `id` with `limit` of its members from `offset` on; a failed
    /// member comes with its failed job while the failed store has it.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchBatch`], [`AdminError::NoBatches`].
    pub async fn batch(
        &self,
        id: BatchId,
        offset: usize,
        limit: usize,
    ) -> Result<BatchDetail, AdminError> {
        let backend = self.workflows()?;
        let info = backend.batch(id).await?.ok_or(AdminError::NoSuchBatch(id))?;
        let mut members = Vec::new();
        for (job, outcome) in backend.batch_members(id, offset, limit).await? {
            let failed = if outcome == Some(MemberOutcome::Failed) {
                conc_bus::FailedStore::failed_job(backend, job)
                    .await?
                    .as_ref()
                    .map(FailedSummary::from)
            } else {
                None
            };
            members.push(BatchMemberReport { id: job, outcome, failed });
        }
        Ok(BatchDetail { batch: info.into(), members, members_offset: offset })
    }

    /// Cancels batch `id`: its waiting members are deleted, running ones
    /// asked to stop. Whether it was running (`false`: it was finished or
    /// cancelled already, and nothing changed).
    ///
    /// # Errors
    ///
    /// [`AdminError::NoSuchBatch`], [`AdminError::NoBatches`].
    pub async fn cancel_batch(&self, id: BatchId) -> Result<bool, AdminError> {
        let backend = self.workflows()?;
        if backend.batch(id).await?.is_none() {
            return Err(AdminError::NoSuchBatch(id));
        }
        Ok(backend.cancel_batch(id).await?)
    }

    /// Deletes the batches `prune` selects (finished, unfinished, cancelled,
    /// each by its own age); how many.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoBatches`].
    pub async fn prune_batches(&self, prune: BatchPrune) -> Result<u64, AdminError> {
        Ok(self.workflows()?.prune_batches(prune).await?)
    }
}
