//! [`BatchProgress`]: a member's outcome as its batch recorded it, sent to
//! in-process subscribers ([`Queue::subscribe_batches`](crate::Queue::subscribe_batches)).

use tokio::sync::broadcast;

use super::BatchId;
use super::model::{BatchRecord, Counts, MemberOutcome};
use crate::id::JobId;

/// How many notifications a subscriber may fall behind by before it misses
/// some (it then reads [`RecvError::Lagged`](broadcast::error::RecvError::Lagged)).
pub const PROGRESS_CAPACITY: usize = 1024;

/// A batch member got its outcome: which member, which outcome, and the
/// batch's counts with it. Sent once per member outcome the backend records
/// (a member that runs twice is reported once), after the step that records
/// it is stored.
///
/// # Examples
///
/// ```
/// use conc_bus::batch::{BatchProgress, MemberOutcome};
///
/// fn line(p: &BatchProgress) -> String {
///     let done = if p.outcome == MemberOutcome::Succeeded { "done" } else { "not done" };
///     format!("{} {}: {}% ({} left)", p.batch, done, p.progress(), p.pending)
/// }
/// # let _ = line;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchProgress {
    /// The batch.
    pub batch: BatchId,
    /// The member (a job id; for a chain, its first link's).
    pub member: JobId,
    /// Its outcome.
    pub outcome: MemberOutcome,
    /// Members in the batch, added ones included.
    pub total: u64,
    /// Members without an outcome yet.
    pub pending: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members that failed for good.
    pub failed: u64,
    /// Members cancelled.
    pub cancelled: u64,
    /// Whether this outcome finished the batch.
    pub finished: bool,
}

impl BatchProgress {
    pub(crate) fn new(
        record: &BatchRecord,
        counts: Counts,
        member: JobId,
        outcome: MemberOutcome,
    ) -> Self {
        Self {
            batch: record.id,
            member,
            outcome,
            total: counts.total,
            pending: counts.pending(),
            succeeded: counts.succeeded,
            failed: counts.failed,
            cancelled: counts.cancelled,
            finished: record.finished_at.is_some(),
        }
    }

    /// Members with an outcome, in percent of all members.
    ///
    /// # Examples
    ///
    /// ```
    /// fn percent(p: &conc_bus::batch::BatchProgress) -> String {
    ///     format!("{}%", p.progress())
    /// }
    /// # let _ = percent;
    /// ```
    pub fn progress(&self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        u8::try_from((self.total - self.pending) * 100 / self.total).unwrap_or(100)
    }
}

/// Where a backend sends [`BatchProgress`]: a broadcast channel, created
/// with the backend.
#[derive(Debug, Clone)]
pub(crate) struct ProgressFeed(broadcast::Sender<BatchProgress>);

impl Default for ProgressFeed {
    fn default() -> Self {
        Self(broadcast::channel(PROGRESS_CAPACITY).0)
    }
}

impl ProgressFeed {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BatchProgress> {
        self.0.subscribe()
    }

    /// Sends `progress` to the current subscribers (none is fine).
    pub(crate) fn send(&self, progress: BatchProgress) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(progress);
        }
    }
}
