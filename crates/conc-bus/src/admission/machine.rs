//! The admission state machine, written once: whether a lock is free, when
//! a debounced job becomes available, and what each step of a job's life
//! does to its lock. Backends keep the locks (a map, a table) and call these
//! inside the atomic step that pushes, reserves or settles the job.

use super::{Release, Ticket};
use crate::clock::Millis;
use crate::id::JobId;

/// A stored lock: its owner (the job that took it) and when it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lock {
    pub(crate) owner: JobId,
    pub(crate) expires_at: Option<Millis>,
}

impl Lock {
    /// Whether it still holds at `now`.
    pub(crate) fn holds(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The lock `job` takes with `ticket` at `now`.
pub(crate) fn lock_for(ticket: &Ticket, job: JobId, now: Millis) -> Lock {
    Lock { owner: job, expires_at: ticket.ttl_ms.map(|ttl| now.saturating_add(ttl)) }
}

/// Whether a ticket takes a lock at all (a debounced job does not).
pub(crate) fn is_unique(ticket: &Ticket) -> bool {
    ticket.release != Release::Debounce
}

/// A step of a job's life that may release its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Reserved to run (every reservation, retries included).
    Reserved,
    /// Done for good: succeeded, failed for good, dropped.
    Finished,
    /// Released or retried: back on its queue.
    Requeued,
}

/// What a step does to the ticket's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing.
    Keep,
    /// Release the unique lock if the job still owns it.
    Release,
    /// Forget the debounce record if it still names the job.
    EndDebounce,
}

/// The one table of release points.
pub(crate) fn on(release: Release, step: Step) -> Action {
    match (release, step) {
        // Until processing: freed when the job starts, and when it ends
        // without ever starting (cancelled, cleared, superseded, refused at
        // reservation); a release is a no-op once the job owns it no more.
        (Release::Processed, Step::Finished)
        | (Release::Processing, Step::Reserved | Step::Finished) => Action::Release,
        (Release::Debounce, Step::Reserved | Step::Finished) => Action::EndDebounce,
        _ => Action::Keep,
    }
}

/// When a debounced job dispatched at `now` becomes available, the first of
/// the dispatches it replaces having come at `first_at`.
pub(crate) fn debounce_at(ticket: &Ticket, first_at: Millis, now: Millis) -> Millis {
    let after_window = now.saturating_add(ticket.ttl_ms.unwrap_or(0));
    match ticket.max_wait_ms {
        Some(max_wait) => after_window.min(first_at.saturating_add(max_wait)).max(now),
        None => after_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_released_once_per_policy_and_never_on_requeue() {
        for release in [Release::Processed, Release::Processing, Release::Expiry] {
            let releases = [Step::Reserved, Step::Requeued, Step::Reserved, Step::Finished]
                .into_iter()
                .filter(|step| on(release, *step) == Action::Release)
                .count();
            let expected = match release {
                Release::Processed => 1,
                // Every reservation and the end try; only the owner's first
                // one frees it.
                Release::Processing => 3,
                _ => 0,
            };
            assert_eq!(releases, expected, "{release:?}");
            assert_eq!(on(release, Step::Requeued), Action::Keep);
        }
    }

    #[test]
    fn a_debounced_job_waits_its_window_but_never_past_max_wait() {
        let mut ticket = Ticket::new("k", Release::Debounce);
        ticket.ttl_ms = Some(1_000);
        assert_eq!(debounce_at(&ticket, 0, 500), 1_500);
        ticket.max_wait_ms = Some(1_200);
        assert_eq!(debounce_at(&ticket, 0, 500), 1_200);
        assert_eq!(debounce_at(&ticket, 0, 5_000), 5_000);
    }

    #[test]
    fn an_expired_lock_is_free() {
        let lock = Lock { owner: JobId::from_u128(1), expires_at: Some(10) };
        assert!(lock.holds(9) && !lock.holds(10));
        assert!(Lock { owner: JobId::from_u128(1), expires_at: None }.holds(u64::MAX));
    }
}
