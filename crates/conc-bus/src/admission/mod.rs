//! Admission: unique jobs and debounced jobs, one state machine for both.
//!
//! An [`Admission`] given to a dispatch puts a [`Ticket`] in the job's
//! envelope. The backend admits or refuses the job **in the step that
//! pushes it**, and releases the lock in the step that reserves or settles
//! the job, as the ticket's [`Release`] says — so a push that fails holds no
//! lock, and the lock is owned by the dispatched job (its id): a retry of an
//! older job never releases a lock a newer dispatch holds.
//!
//! | admission | lock taken | released |
//! |---|---|---|
//! | [`Admission::unique`] | at dispatch, if free | when the job succeeds or fails for good (or is dropped by its cancelled batch), never when it is released or retried |
//! | [`unique(..).until_processing()`](Admission::until_processing) | at dispatch, if free | when the job is reserved to run, or dropped before it ever was |
//! | [`Admission::unique_for`] | at dispatch, if free | only when the duration is over |
//! | [`Admission::debounce`] | every dispatch supersedes the waiting one | the job waits out the window after the last dispatch (at most `max_wait` after the first) |
//!
//! A unique lock may be given a [`ttl`](Admission::ttl): past it the lock is
//! free even if the job never finished (a safety net against a job lost with
//! its lock, as Sidekiq requires one).
//!
//! # Examples
//!
//! ```
//! use conc_bus::{EnqueueError, MemoryQueue, Queue};
//! use conc_bus::admission::Admission;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] struct Invoice { id: u64 }
//! # impl conc_bus::Job for Invoice { const NAME: &'static str = "invoice"; }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::new(MemoryQueue::new());
//! let first = queue.dispatch(Invoice { id: 7 }).admission(Admission::unique("invoice:7")).await?;
//! let again = queue.dispatch(Invoice { id: 7 }).admission(Admission::unique("invoice:7")).await;
//! assert!(matches!(again, Err(EnqueueError::Locked { held_by, .. }) if held_by == first));
//! # Ok(()) }
//! ```

pub(crate) mod machine;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::millis;

/// When a job's admission lock is released.
///
/// # Examples
///
/// ```
/// use conc_bus::admission::Release;
///
/// assert_ne!(Release::Processed, Release::Processing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Release {
    /// When the job succeeds or fails for good.
    Processed,
    /// When the job is reserved to run.
    Processing,
    /// Only when the lock expires.
    Expiry,
    /// A debounced job: superseded while it waits, done once reserved.
    Debounce,
}

/// The admission a job carries: its key, when its lock is released, how
/// long the lock lives (for a debounced job: the window) and, for a
/// debounced job, the longest wait.
///
/// # Examples
///
/// ```
/// use conc_bus::admission::{Release, Ticket};
///
/// let ticket = Ticket::new("invoice:42", Release::Processed);
/// assert_eq!(ticket.key, "invoice:42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ticket {
    /// The lock's key.
    pub key: String,
    /// When it is released.
    pub release: Release,
    /// How long the lock lives, in milliseconds (a debounced job's window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// A debounced job's longest wait after the first dispatch, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
}

impl Ticket {
    /// A ticket for `key`, released as `release` says, without expiry.
    pub fn new(key: impl Into<String>, release: Release) -> Self {
        Self { key: key.into(), release, ttl_ms: None, max_wait_ms: None }
    }
}

/// How a dispatch is admitted: unique (one job per key at a time) or
/// debounced (the last of several dispatches runs). Give it to
/// [`PendingDispatch::admission`](crate::PendingDispatch::admission).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::admission::Admission;
///
/// let unique = Admission::unique("report:9").until_processing().ttl(Duration::from_secs(3600));
/// let debounced = Admission::debounce("search-index", Duration::from_secs(5))
///     .max_wait(Duration::from_secs(60));
/// # let _ = (unique, debounced);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Admission {
    ticket: Ticket,
}

impl Admission {
    /// One job per `key` until it is processed: a dispatch while one is
    /// waiting or running is refused
    /// ([`EnqueueError::Locked`](crate::EnqueueError::Locked), the job
    /// handed back).
    pub fn unique(key: impl Into<String>) -> Self {
        Self { ticket: Ticket::new(key, Release::Processed) }
    }

    /// One job per `key` for `duration` from its dispatch, whatever the job
    /// does meanwhile.
    pub fn unique_for(key: impl Into<String>, duration: Duration) -> Self {
        let mut ticket = Ticket::new(key, Release::Expiry);
        ticket.ttl_ms = Some(millis(duration).max(1));
        Self { ticket }
    }

    /// A unique job whose lock is released when it is reserved to run, so
    /// another may be dispatched while it runs.
    pub fn until_processing(mut self) -> Self {
        if self.ticket.release == Release::Processed {
            self.ticket.release = Release::Processing;
        }
        self
    }

    /// A unique lock that lapses after `ttl` even if its job never finished.
    /// Defaults to none (for [`unique_for`](Self::unique_for): its duration).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        if matches!(self.ticket.release, Release::Processed | Release::Processing | Release::Expiry)
        {
            self.ticket.ttl_ms = Some(millis(ttl).max(1));
        }
        self
    }

    /// Debounces dispatches of `key`: each one replaces the job still
    /// waiting (which is deleted, and its chain with it) and the job runs
    /// once no dispatch came for `window`.
    pub fn debounce(key: impl Into<String>, window: Duration) -> Self {
        let mut ticket = Ticket::new(key, Release::Debounce);
        ticket.ttl_ms = Some(millis(window));
        Self { ticket }
    }

    /// A debounced job runs at the latest `max_wait` after the first of the
    /// dispatches it replaced, however often they come. Defaults to none.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        if self.ticket.release == Release::Debounce {
            self.ticket.max_wait_ms = Some(millis(max_wait));
        }
        self
    }

    /// The ticket a job carries.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// The ticket, taken.
    pub fn into_ticket(self) -> Ticket {
        self.ticket
    }
}
