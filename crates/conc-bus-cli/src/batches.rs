//! Batches as operators see them: [`BatchQuery`] to list them, [`BatchReport`]
//! for one in a list, [`BatchDetail`] for one with its members, and the
//! [`Admin`] operations over them.

use std::fmt;
use std::str::FromStr;

use conc_bus::JobId;
use conc_bus::batch::{BatchId, BatchInfo, BatchPrune, MemberOutcome};
use conc_bus::queue::WorkflowBackend;
use serde::Serialize;

use crate::{Admin, AdminError, FailedSummary};

/// How many of the newest batches [`Admin::batches`] looks through when it
/// filters by state or name.
pub const BATCH_SCAN: usize = 10_000;

/// Where a batch stands, as the listings filter it.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::BatchState;
///
/// assert_eq!("finished".parse::<BatchState>(), Ok(BatchState::Finished));
/// assert_eq!(BatchState::Cancelled.to_string(), "cancelled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BatchState {
    /// Some members have no outcome yet, and it was not cancelled.
    Pending,
    /// Every member has an outcome, and it was not cancelled.
    Finished,
    /// It was cancelled (by hand, or by a failure without `allow_failures`).
    Cancelled,
}

impl BatchState {
    /// The state of `info`.
    pub fn of(info: &BatchInfo) -> Self {
        if info.is_cancelled() {
            Self::Cancelled
        } else if info.is_finished() {
            Self::Finished
        } else {
            Self::Pending
        }
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        })
    }
}

impl FromStr for BatchState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            "finished" => Ok(Self::Finished),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(format!("`{other}` is not a batch state: pending, finished, cancelled")),
        }
    }
}

/// Which batches [`Admin::batches`] lists, newest first: by state, by name,
/// a page at a time.
///
/// # Examples
///
/// ```
/// use conc_bus_cli::{BatchQuery, BatchState};
///
/// let query = BatchQuery::new().state(BatchState::Pending).name("import").limit(20);
/// assert_eq!(query.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchQuery {
    /// Only batches in this state. Defaults to all.
    pub state: Option<BatchState>,
    /// Only batches whose name contains this. Defaults to all.
    pub name: Option<String>,
    /// Only batches older than this one (the last of the previous page).
    pub before: Option<BatchId>,
    /// The most batches to list. Defaults to 50.
    pub limit: usize,
}

impl Default for BatchQuery {
    fn default() -> Self {
        Self { state: None, name: None, before: None, limit: 50 }
    }
}

impl BatchQuery {
    /// Every batch, 50 at a time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only batches in `state`.
    #[must_use]
    pub fn state(mut self, state: BatchState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only batches whose name contains `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only batches older than `id`.
    #[must_use]
    pub fn before(mut self, id: BatchId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` batches.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `info` passes the state and name filters.
    fn selects(&self, info: &BatchInfo) -> bool {
        self.state.is_none_or(|state| BatchState::of(info) == state)
            && self
                .name
                .as_deref()
                .is_none_or(|name| info.name.as_deref().is_some_and(|have| have.contains(name)))
    }
}

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

    /// A page of batches, newest first. With a state or name filter it looks
    /// through the newest [`BATCH_SCAN`] batches.
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
        let filtered = query.state.is_some() || query.name.is_some() || query.before.is_some();
        let window = if filtered { BATCH_SCAN } else { query.limit };
        let mut all = backend.batches(window).await?;
        if let Some(before) = query.before {
            // After `before` in the backend's own order; by id when it is gone.
            match all.iter().position(|info| info.id == before) {
                Some(at) => drop(all.drain(..=at)),
                None => all.retain(|info| info.id < before),
            }
        }
        Ok(all
            .into_iter()
            .filter(|info| query.selects(info))
            .take(query.limit)
            .map(BatchReport::from)
            .collect())
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
