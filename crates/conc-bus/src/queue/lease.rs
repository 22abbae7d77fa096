//! Leases: a reserved job's claim ticket, carried by every transition.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::JobId;
use crate::job::Envelope;

/// The owner token of one reservation of a job. Every reservation of a job
/// gets a token no earlier reservation of it had, so a transition carrying an
/// older token is refused; handlers may also use it as a fencing token for
/// their side effects.
///
/// # Examples
///
/// ```
/// use conc_bus::LeaseToken;
///
/// assert!(LeaseToken::new(2) > LeaseToken::new(1));
/// assert_eq!(LeaseToken::new(7).get(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseToken(u64);

impl LeaseToken {
    /// The token with this number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A worker's claim on a reserved job: the job, the queue, the token of this
/// reservation, and when the claim runs out unless extended (Unix ms).
///
/// # Examples
///
/// ```
/// use conc_bus::{JobId, Lease, LeaseToken};
///
/// let lease = Lease::new(JobId::new(), "mail", LeaseToken::new(1), 1_700_000_030_000);
/// assert_eq!(lease.queue, "mail");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// Its queue.
    pub queue: String,
    /// This reservation's token.
    pub token: LeaseToken,
    /// When the claim lapses unless extended, in Unix milliseconds.
    pub expires_at: u64,
}

impl Lease {
    /// A lease on `job` of `queue` with `token`, lapsing at `expires_at`.
    pub fn new(job: JobId, queue: impl Into<String>, token: LeaseToken, expires_at: u64) -> Self {
        Self { job, queue: queue.into(), token, expires_at }
    }
}

/// A job leased to a worker: its envelope, which attempt this is (1 for the
/// first), and the lease every transition must carry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reserved {
    /// The job as stored, checkpoint and history included.
    pub envelope: Arc<Envelope>,
    /// The attempt this reservation starts, counted at reservation.
    pub attempt: u32,
    /// The claim.
    pub lease: Lease,
    /// How long the job had been available before this reservation.
    pub waited: std::time::Duration,
}

impl Reserved {
    /// `envelope`, leased as attempt `attempt` under `lease` after waiting
    /// `waited` since it became available.
    pub fn new(
        envelope: Arc<Envelope>,
        attempt: u32,
        lease: Lease,
        waited: std::time::Duration,
    ) -> Self {
        Self { envelope, attempt, lease, waited }
    }
}
