//! [`JobFlow`]: what a job carries of the workflow it belongs to — its batch,
//! the rest of its chain, the callback it is, its admission ticket — so that
//! the backend can carry the workflow on in the same step that settles the
//! job.

use serde::{Deserialize, Serialize};

use super::Envelope;
use crate::admission::Ticket;
use crate::batch::BatchId;
use crate::id::JobId;

/// The workflow state a job carries in its [`Envelope`]: written by
/// [`PendingBatch`](crate::batch::PendingBatch), [`Chain`](crate::chain::Chain) and
/// [`Admission`](crate::admission::Admission), read by the backend when it
/// settles the job. Empty parts are not stored.
///
/// # Examples
///
/// ```
/// use conc_bus::job::JobFlow;
///
/// let flow = JobFlow::default();
/// assert!(flow.batch.is_none() && flow.chain.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobFlow {
    /// The batch the job counts for, and as which member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchMember>,
    /// The links of its chain that run after it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<Envelope>,
    /// The job dispatched once if a link of its chain fails for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_catch: Option<Box<Envelope>>,
    /// What made the backend dispatch this job, when it is a callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// The unique or debounce lock the job holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Ticket>,
}

impl JobFlow {
    /// Whether nothing of a workflow is set.
    pub fn is_empty(&self) -> bool {
        self.batch.is_none()
            && self.chain.is_empty()
            && self.chain_catch.is_none()
            && self.trigger.is_none()
            && self.admission.is_none()
    }
}

/// A job's place in a batch: the batch, and the member it counts as (its own
/// id, or for a link of a chain the id of the chain's first job).
///
/// # Examples
///
/// ```
/// use conc_bus::JobId;
/// use conc_bus::batch::BatchId;
/// use conc_bus::job::BatchMember;
///
/// let member = BatchMember::new(BatchId::new(), JobId::new());
/// # let _ = member;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchMember {
    /// The batch.
    pub batch: BatchId,
    /// The member this job settles.
    pub member: JobId,
}

impl BatchMember {
    /// Member `member` of `batch`.
    pub fn new(batch: BatchId, member: JobId) -> Self {
        Self { batch, member }
    }
}

/// Which callback a job is.
///
/// # Examples
///
/// ```
/// use conc_bus::job::TriggerKind;
///
/// assert_ne!(TriggerKind::Then, TriggerKind::Finally);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TriggerKind {
    /// Every member of the batch succeeded.
    Then,
    /// The first member of the batch failed for good.
    Catch,
    /// Every member of the batch has an outcome.
    Finally,
    /// One member of the batch got its outcome.
    Progress,
    /// A link of the chain failed for good.
    ChainCatch,
}

/// What made the backend dispatch a callback job: which callback, of which
/// batch, for which job, with which error. Read it in the handler with
/// [`JobContext::trigger`](crate::JobContext::trigger).
///
/// # Examples
///
/// ```
/// use conc_bus::job::{Trigger, TriggerKind};
///
/// let trigger = Trigger::new(TriggerKind::ChainCatch);
/// assert!(trigger.error.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trigger {
    /// Which callback.
    pub kind: TriggerKind,
    /// The batch, for batch callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchId>,
    /// The member (progress, catch) or the link (chain catch) it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    /// The error of the job that failed (catch, chain catch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Trigger {
    /// A trigger of `kind` with nothing else set.
    pub fn new(kind: TriggerKind) -> Self {
        Self { kind, batch: None, job: None, error: None }
    }
}

/// An id derived from `base` and `salt`: the same pair always gives the same
/// id, so a step the backend or a job may take twice stores its job once.
pub(crate) fn derived_id(base: JobId, salt: u128) -> JobId {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let raw = base.as_u128() ^ salt.rotate_left(17);
    let high = mix((raw >> 64) as u64 ^ mix(raw as u64));
    let low = mix(raw as u64 ^ high.rotate_left(23) ^ (salt as u64));
    JobId::from_parts(base.millis(), (u128::from(high) << 64) | u128::from(low))
}
