//! What a batch is made of: its id, its stored record (settings, callbacks,
//! which callbacks fired), the outcome of each member, and the snapshot
//! [`BatchInfo`] users read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::id::{JobId, ParseIdError};
use crate::job::{Envelope, TriggerKind};

/// A batch's id: sortable by creation time, printed like a [`JobId`].
///
/// # Examples
///
/// ```
/// use conc_bus::batch::BatchId;
///
/// let id = BatchId::new();
/// assert_eq!(id.to_string().parse::<BatchId>()?, id);
/// # Ok::<(), conc_bus::ParseIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(JobId);

impl BatchId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(JobId::new())
    }

    /// The id as a [`JobId`] (the same 128 bits).
    pub fn as_job_id(self) -> JobId {
        self.0
    }

    /// The id with the bits of `id`.
    pub fn from_job_id(id: JobId) -> Self {
        Self(id)
    }
}

impl Default for BatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({})", self.0)
    }
}

impl FromStr for BatchId {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// How a member of a batch ended. Recorded once per member: a member that
/// runs twice (its lease was lost) keeps its first outcome.
///
/// # Examples
///
/// ```
/// use conc_bus::batch::MemberOutcome;
///
/// assert_ne!(MemberOutcome::Succeeded, MemberOutcome::Cancelled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MemberOutcome {
    /// It ran and succeeded (for a chain: its last link did).
    Succeeded,
    /// It failed for good (for a chain: one of its links did).
    Failed,
    /// The batch was cancelled before it ran (or before it ran again).
    Cancelled,
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code, reason = "SQL rows are the SQLite queue's"))]
impl MemberOutcome {
    /// Its number in SQL rows.
    pub(crate) fn code(self) -> i64 {
        match self {
            Self::Succeeded => 1,
            Self::Failed => 2,
            Self::Cancelled => 3,
        }
    }

    /// The outcome of a number in SQL rows.
    pub(crate) fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Succeeded),
            2 => Some(Self::Failed),
            3 => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// The callback jobs of a batch, as dispatched (their ids are made anew when
/// they fire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Callbacks {
    pub(crate) then: Option<Envelope>,
    pub(crate) catch: Option<Envelope>,
    pub(crate) finally: Option<Envelope>,
    pub(crate) progress: Option<Envelope>,
}

/// Which callbacks have been claimed: each flips once, from `false` to `true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fired {
    pub(crate) then: bool,
    pub(crate) catch: bool,
    pub(crate) finally: bool,
}

/// A batch as the backends store it, apart from its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchRecord {
    pub(crate) id: BatchId,
    pub(crate) name: Option<String>,
    pub(crate) queue: String,
    pub(crate) allow_failures: bool,
    pub(crate) created_at: Millis,
    pub(crate) cancelled_at: Option<Millis>,
    pub(crate) finished_at: Option<Millis>,
    pub(crate) callbacks: Callbacks,
    pub(crate) fired: Fired,
    /// The member counts, kept by backends that store the record apart from
    /// the member set (SQLite), moved only when a member's outcome is set
    /// (once, from none) or a member is added; `None` in records written
    /// before they were kept, which are counted from the set instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) counts: Option<Counts>,
    /// When it times out (Unix ms), if it has a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<Millis>,
    /// When it timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timed_out_at: Option<Millis>,
    /// How many times its failed members were recovered: part of each
    /// `progress` job's id, so a recovered member's new outcome makes a new
    /// progress job even while the first one is still queued or failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) recoveries: u32,
    /// How many failed members recoveries re-dispatched, over the batch's
    /// life: each had fired its `progress` once already, and fires it again
    /// with its new outcome.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub(crate) recovered: u64,
    /// The named middleware every member runs through
    /// ([`PendingBatch::through`](super::PendingBatch::through)), stamped on
    /// members added later too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) middleware: Vec<String>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(count: &u32) -> bool {
    *count == 0
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero_u64(count: &u64) -> bool {
    *count == 0
}

/// The members of a batch by outcome, counted from the set of members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
}

impl Counts {
    /// Members without an outcome yet.
    pub(crate) fn pending(&self) -> u64 {
        self.total.saturating_sub(self.succeeded + self.failed + self.cancelled)
    }

    /// Counts one more outcome.
    pub(crate) fn add(&mut self, outcome: MemberOutcome) {
        match outcome {
            MemberOutcome::Succeeded => self.succeeded += 1,
            MemberOutcome::Failed => self.failed += 1,
            MemberOutcome::Cancelled => self.cancelled += 1,
        }
    }
}

/// A batch as it stands: its settings, how many members it has and how they
/// ended, and when it was created, cancelled and finished.
///
/// # Examples
///
/// ```
/// use conc_bus::batch::BatchInfo;
///
/// fn report(info: &BatchInfo) -> String {
///     format!("{}: {}% ({} failed)", info.id, info.progress(), info.failed)
/// }
/// # let _ = report;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchInfo {
    /// The batch.
    pub id: BatchId,
    /// Its name, if given.
    pub name: Option<String>,
    /// The queue its members and callbacks go to unless they say otherwise.
    pub queue: String,
    /// Whether a failed member leaves the others running.
    pub allow_failures: bool,
    /// How many members it has (jobs and chains), added ones included.
    pub total: u64,
    /// Members without an outcome yet.
    pub pending: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members that failed for good.
    pub failed: u64,
    /// Members that never ran because the batch was cancelled.
    pub cancelled: u64,
    /// The first [`MAX_FAILED_JOBS`] failed members' ids, oldest failure
    /// first ([`failed`](Self::failed) counts them all; a backend's
    /// `batch_members` pages through every member), so a batch with many
    /// failures stays small to list and to serialize.
    pub failed_jobs: Vec<JobId>,
    /// When it was created, in Unix milliseconds.
    pub created_at: u64,
    /// When it was cancelled, in Unix milliseconds.
    pub cancelled_at: Option<u64>,
    /// When its last member got its outcome, in Unix milliseconds.
    pub finished_at: Option<u64>,
    /// When it times out, in Unix milliseconds, if it has a
    /// [timeout](crate::batch::PendingBatch::timeout).
    pub deadline: Option<u64>,
    /// When it timed out (its unfinished members were cancelled), in Unix
    /// milliseconds.
    pub timed_out_at: Option<u64>,
    /// Its callbacks, in the order `then`, `catch`, `finally`, `progress`
    /// (only those it has), and how often each was dispatched.
    pub callbacks: Vec<BatchCallback>,
    /// The named middleware every member runs through
    /// ([`PendingBatch::through`](crate::batch::PendingBatch::through)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middleware: Vec<String>,
}

/// One callback of a batch, as [`BatchInfo::callbacks`] lists it: which one,
/// the job it dispatches, and how many times it was dispatched so far
/// (`then`, `catch` and `finally` at most once; `progress` once per member
/// that succeeded or failed).
///
/// # Examples
///
/// ```
/// use conc_bus::batch::BatchCallback;
///
/// fn fired(callback: &BatchCallback) -> bool {
///     callback.dispatched > 0
/// }
/// # let _ = fired;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchCallback {
    /// Which callback: `Then`, `Catch`, `Finally` or `Progress`.
    pub kind: TriggerKind,
    /// The name of the job it dispatches.
    pub job: String,
    /// How many times it was dispatched.
    pub dispatched: u64,
}

impl BatchCallback {
    /// The callbacks `record` has, with what fired of them given `counts`.
    fn of(record: &BatchRecord, counts: Counts) -> Vec<Self> {
        let callbacks = &record.callbacks;
        let fired = &record.fired;
        [
            (TriggerKind::Then, &callbacks.then, u64::from(fired.then)),
            (TriggerKind::Catch, &callbacks.catch, u64::from(fired.catch)),
            (TriggerKind::Finally, &callbacks.finally, u64::from(fired.finally)),
            (
                TriggerKind::Progress,
                &callbacks.progress,
                // Every outcome fired one, the outcomes recoveries cleared too.
                (counts.succeeded + counts.failed).saturating_add(record.recovered),
            ),
        ]
        .into_iter()
        .filter_map(|(kind, envelope, dispatched)| {
            envelope.as_ref().map(|envelope| Self { kind, job: envelope.name.clone(), dispatched })
        })
        .collect()
    }
}

/// The most failed members' ids a [`BatchInfo`] carries: 100.
pub const MAX_FAILED_JOBS: usize = 100;

impl BatchInfo {
    pub(crate) fn new(record: &BatchRecord, counts: Counts, failed_jobs: Vec<JobId>) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            queue: record.queue.clone(),
            allow_failures: record.allow_failures,
            total: counts.total,
            pending: counts.pending(),
            succeeded: counts.succeeded,
            failed: counts.failed,
            cancelled: counts.cancelled,
            failed_jobs,
            created_at: record.created_at,
            cancelled_at: record.cancelled_at,
            finished_at: record.finished_at,
            callbacks: BatchCallback::of(record, counts),
            deadline: record.deadline,
            timed_out_at: record.timed_out_at,
            middleware: record.middleware.clone(),
        }
    }

    /// Members with an outcome, in percent of all members (100 for an
    /// empty batch).
    pub fn progress(&self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        // Saturating, and wide: a deserialized info may say anything.
        let done = u128::from(self.total.saturating_sub(self.pending));
        u8::try_from(done * 100 / u128::from(self.total)).unwrap_or(100)
    }

    /// Whether every member has an outcome.
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }

    /// Whether it passed its deadline before it finished (it is then
    /// cancelled too).
    pub fn is_timed_out(&self) -> bool {
        self.timed_out_at.is_some()
    }

    /// Whether it was cancelled (by [`cancel`](crate::Queue::cancel_batch),
    /// by a failure without `allow_failures`, or by its timeout).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled_at.is_some()
    }
}

/// Which batches [`prune_batches`](crate::Queue::prune_batches) deletes:
/// each kind older than its age, measured from its creation (unfinished,
/// cancelled) or its end (finished). A `None` age keeps that kind.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::batch::BatchPrune;
///
/// let day = Duration::from_secs(24 * 3600);
/// let prune = BatchPrune::finished(day).unfinished(3 * day).cancelled(3 * day);
/// assert_eq!(prune.finished_age, Some(day));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchPrune {
    /// Finished batches (not cancelled) whose end is older than this.
    pub finished_age: Option<std::time::Duration>,
    /// Unfinished batches (not cancelled) created longer ago than this.
    pub unfinished_age: Option<std::time::Duration>,
    /// Cancelled batches created longer ago than this.
    pub cancelled_age: Option<std::time::Duration>,
    /// Whether finished batches (cancelled ones included) that go are
    /// moved to the archive, with their member outcomes, instead of deleted.
    pub archive: bool,
    /// Archived batches archived longer ago than this.
    pub archived_age: Option<std::time::Duration>,
}

impl BatchPrune {
    /// Finished batches older than `age`.
    pub fn finished(age: std::time::Duration) -> Self {
        Self { finished_age: Some(age), ..Self::default() }
    }

    /// Also unfinished batches created longer than `age` ago.
    #[must_use]
    pub fn unfinished(mut self, age: std::time::Duration) -> Self {
        self.unfinished_age = Some(age);
        self
    }

    /// Also cancelled batches created longer than `age` ago.
    #[must_use]
    pub fn cancelled(mut self, age: std::time::Duration) -> Self {
        self.cancelled_age = Some(age);
        self
    }

    /// Moves the finished batches this prune takes to the archive
    /// ([`ArchivedBatch`](super::ArchivedBatch): their last
    /// [`BatchInfo`] and every member's outcome) instead of deleting them;
    /// unfinished ones are deleted all the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_bus::batch::BatchPrune;
    ///
    /// let day = Duration::from_secs(24 * 3600);
    /// let prune = BatchPrune::finished(day).archive().archived(90 * day);
    /// assert!(prune.archive);
    /// ```
    #[must_use]
    pub fn archive(mut self) -> Self {
        self.archive = true;
        self
    }

    /// Also deletes archived batches archived longer than `age` ago.
    #[must_use]
    pub fn archived(mut self, age: std::time::Duration) -> Self {
        self.archived_age = Some(age);
        self
    }

    /// Whether an archive made at `archived_at` goes, at `now`.
    pub(crate) fn drops_archive(&self, archived_at: Millis, now: Millis) -> bool {
        self.archived_age
            .is_some_and(|age| archived_at < now.saturating_sub(crate::clock::millis(age)))
    }

    /// Whether a batch with `record` goes, at `now`.
    pub(crate) fn selects(&self, record: &BatchRecord, now: Millis) -> bool {
        let older = |at: Millis, age: Option<std::time::Duration>| {
            age.is_some_and(|age| at < now.saturating_sub(crate::clock::millis(age)))
        };
        match (record.cancelled_at, record.finished_at) {
            (Some(_), _) => older(record.created_at, self.cancelled_age),
            (None, Some(finished)) => older(finished, self.finished_age),
            (None, None) => older(record.created_at, self.unfinished_age),
        }
    }
}

/// Members of a batch with their outcome (`None` while pending), as
/// [`WorkflowBackend::batch_members`](crate::queue::WorkflowBackend::batch_members) answers.
pub(crate) type MemberRows = Vec<(JobId, Option<MemberOutcome>)>;
