//! [`ArchivedBatch`]: a finished batch as [`prune_batches`](crate::Queue::prune_batches)
//! kept it, with every member's outcome, after its live state was deleted.

use serde::{Deserialize, Serialize};

use super::model::{BatchInfo, MemberOutcome};
use crate::id::JobId;

/// A finished batch moved to the archive by a prune with
/// [`BatchPrune::archive`](super::BatchPrune::archive): its last
/// [`BatchInfo`], each member's outcome, and when it was archived. Read it
/// with [`Queue::archived_batch`](crate::Queue::archived_batch).
///
/// # Examples
///
/// ```
/// use conc_bus::batch::{ArchivedBatch, MemberOutcome};
///
/// fn failed(archived: &ArchivedBatch) -> usize {
///     archived.members.iter().filter(|(_, outcome)| *outcome == MemberOutcome::Failed).count()
/// }
/// # let _ = failed;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArchivedBatch {
    /// The batch as it stood when archived.
    pub info: BatchInfo,
    /// Every member with its outcome, by member id (the order they were
    /// created in).
    pub members: Vec<(JobId, MemberOutcome)>,
    /// When it was archived, in Unix milliseconds.
    pub archived_at: u64,
}

impl ArchivedBatch {
    pub(crate) fn new(info: BatchInfo, members: Vec<(JobId, MemberOutcome)>, now: u64) -> Self {
        Self { info, members, archived_at: now }
    }

    /// The outcome of member `job`, if it is one.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn check(archived: &conc_bus::batch::ArchivedBatch) {
    /// for (job, outcome) in &archived.members {
    ///     assert_eq!(archived.outcome(*job), Some(*outcome));
    /// }
    /// # }
    /// # let _ = check;
    /// ```
    pub fn outcome(&self, job: JobId) -> Option<MemberOutcome> {
        self.members.iter().find(|(member, _)| *member == job).map(|(_, outcome)| *outcome)
    }
}
