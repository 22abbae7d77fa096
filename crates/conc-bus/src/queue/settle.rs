//! Transitions of a leased job, and the one decision every backend applies
//! for them: what a failed attempt, a release or a reservation does to a job
//! given its limits. Written once here so that every backend fails a job for
//! the same reason with the same message.

use std::time::Duration;

use crate::clock::{Millis, millis};
use crate::failed::{FailReason, FailedJob};
use crate::job::{AttemptRecord, Envelope};

/// What a worker (or a handler, through its context) does to a leased job.
/// Every transition carries the lease; a stale one is refused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_bus::Transition;
///
/// let retry = Transition::Retry { delay: Duration::from_secs(5), error: "timeout talking to smtp".into(), timed_out: false };
/// assert!(matches!(retry, Transition::Retry { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// The job succeeded: it is deleted.
    Ack,
    /// The attempt failed: the job is retried after `delay` while its limits
    /// allow, else stored as failed saying which limit tripped.
    Retry {
        /// The backoff before the next attempt.
        delay: Duration,
        /// The error, with its chain.
        error: String,
        /// Whether the attempt ran out of time.
        timed_out: bool,
    },
    /// Not a failure: the job goes back, available after `delay`. The attempt
    /// still counts against `max_attempts`.
    Release {
        /// When it becomes available again.
        delay: Duration,
    },
    /// The job is stored as failed now.
    Fail {
        /// Why.
        reason: FailReason,
        /// The error, with its chain.
        error: String,
    },
    /// The lease is renewed to last `lease` from now.
    Extend {
        /// The new lease length.
        lease: Duration,
    },
    /// The job reports its progress, 0 to 100.
    Progress(u8),
    /// The job saves a checkpoint (JSON) that its next attempt resumes from.
    Checkpoint(String),
    /// The job succeeded and changed the rest of its chain: `prepend` runs
    /// next, then the links it had, then `append`.
    AckChain {
        /// Links to run first, in order.
        prepend: Vec<Envelope>,
        /// Links to run last, in order.
        append: Vec<Envelope>,
    },
}

/// What a backend does with a job after a transition; the envelope has been
/// updated already. [`Effect::settlement`] is what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Delete it.
    Delete,
    /// Put it back, available at this Unix millisecond; its lease ends.
    Requeue { available_at: Millis },
    /// Store it as failed.
    Dead { reason: FailReason, error: String },
    /// Keep it leased, the lease now lapsing at this Unix millisecond.
    Extended { expires_at: Millis },
    /// Keep it leased as it is (progress or checkpoint saved).
    Kept,
}

impl Effect {
    /// What the caller is told the transition did.
    pub(crate) fn settlement(&self) -> super::backend::Settlement {
        use super::backend::Settlement;
        match self {
            Self::Delete => Settlement::Acked,
            Self::Requeue { available_at } => Settlement::Requeued { available_at: *available_at },
            Self::Dead { reason, .. } => Settlement::Dead(*reason),
            Self::Extended { expires_at } => Settlement::Extended { expires_at: *expires_at },
            Self::Kept => Settlement::Saved,
        }
    }
}

/// The effect of a transition that neither reads nor changes the job (an
/// ack, an extension) at `now`, so that a backend can apply it without
/// loading the envelope; `None` for the others, which need [`apply`].
pub(crate) fn apply_blind(transition: &Transition, now: Millis) -> Option<Effect> {
    match transition {
        Transition::Ack => Some(Effect::Delete),
        Transition::Extend { lease } => {
            Some(Effect::Extended { expires_at: now.saturating_add(millis(*lease)) })
        }
        _ => None,
    }
}

/// Applies `transition` to `envelope`, reserved `attempts` times, at `now`.
pub(crate) fn apply(
    envelope: &mut Envelope,
    attempts: u32,
    now: Millis,
    transition: Transition,
) -> Effect {
    let transition = match apply_blind(&transition, now) {
        Some(effect) => return effect,
        None => transition,
    };
    match transition {
        // Applied blind above.
        Transition::Ack | Transition::Extend { .. } => Effect::Kept,
        Transition::Retry { delay, error, timed_out } => {
            envelope.exceptions = envelope.exceptions.saturating_add(1);
            envelope.record(AttemptRecord { attempt: attempts, at: now, error: error.clone() });
            let available_at = now.saturating_add(millis(delay));
            let reason = if timed_out && envelope.fail_on_timeout {
                Some(FailReason::TimedOut)
            } else if attempts >= envelope.max_attempts {
                Some(FailReason::AttemptsExhausted)
            } else if envelope.max_exceptions.is_some_and(|max| envelope.exceptions >= max) {
                Some(FailReason::TooManyExceptions)
            } else if envelope.retry_until.is_some_and(|deadline| available_at > deadline) {
                Some(FailReason::DeadlinePassed)
            } else {
                None
            };
            match reason {
                Some(reason) => Effect::Dead { reason, error },
                None => Effect::Requeue { available_at },
            }
        }
        Transition::Release { delay } => {
            let available_at = now.saturating_add(millis(delay));
            if attempts >= envelope.max_attempts {
                let error = format!(
                    "released after attempt {attempts} of {} (max_attempts)",
                    envelope.max_attempts
                );
                Effect::Dead { reason: FailReason::ReleasedOut, error }
            } else if envelope.retry_until.is_some_and(|deadline| available_at > deadline) {
                let error = "released past its retry deadline".to_owned();
                Effect::Dead { reason: FailReason::DeadlinePassed, error }
            } else {
                Effect::Requeue { available_at }
            }
        }
        Transition::Fail { reason, error } => {
            if reason != FailReason::Undecodable {
                envelope.exceptions = envelope.exceptions.saturating_add(1);
            }
            envelope.record(AttemptRecord { attempt: attempts, at: now, error: error.clone() });
            Effect::Dead { reason, error }
        }
        Transition::Progress(percent) => {
            envelope.progress = Some(percent.min(100));
            Effect::Kept
        }
        Transition::Checkpoint(state) => {
            envelope.checkpoint = Some(state);
            Effect::Kept
        }
        Transition::AckChain { mut prepend, append } => {
            let flow = envelope.flow_mut();
            prepend.append(&mut flow.chain);
            prepend.extend(append);
            flow.chain = prepend;
            Effect::Delete
        }
    }
}

/// Whether a job being reserved for attempt `attempt` (counted already) at
/// `now` must go to the failed store instead: why, and the message.
pub(crate) fn refuse_reservation(
    envelope: &Envelope,
    attempt: u32,
    now: Millis,
) -> Option<(FailReason, String)> {
    if attempt > envelope.max_attempts {
        let error = format!(
            "attempt {attempt} would exceed max_attempts ({}): the earlier attempts never \
             reported back (their worker crashed, was killed or lost its lease)",
            envelope.max_attempts
        );
        Some((FailReason::Abandoned, error))
    } else if envelope.retry_until.is_some_and(|deadline| now > deadline) {
        Some((FailReason::DeadlinePassed, "its retry deadline passed before this attempt".into()))
    } else {
        None
    }
}

/// The failed job a reservation makes of `envelope` when
/// [`refuse_reservation`] refuses attempt `attempt` (counted already) at
/// `now`: the refusal recorded in its history, its attempts counted without
/// the refused one. `None` when the reservation may go ahead.
#[cfg_attr(
    not(feature = "sqlite"),
    allow(dead_code, reason = "the memory backend does this bookkeeping in place")
)]
pub(crate) fn refused_job(envelope: &Envelope, attempt: u32, now: Millis) -> Option<FailedJob> {
    let (reason, error) = refuse_reservation(envelope, attempt, now)?;
    let mut envelope = envelope.clone();
    envelope.record(AttemptRecord { attempt, at: now, error: error.clone() });
    Some(FailedJob::new(envelope, attempt.saturating_sub(1), now, reason, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::JobId;
    use crate::job::JobOptions;

    fn envelope(options: &JobOptions) -> Envelope {
        Envelope::raw(JobId::from_u128(1), "t", 1, "null".into(), options, 0)
    }

    fn retry() -> Transition {
        Transition::Retry { delay: Duration::from_secs(1), error: "boom".into(), timed_out: false }
    }

    #[test]
    fn retries_until_the_attempts_run_out() {
        let mut job = envelope(&JobOptions::new().max_attempts(3));
        assert_eq!(apply(&mut job, 1, 1_000, retry()), Effect::Requeue { available_at: 2_000 });
        assert_eq!(apply(&mut job, 2, 5_000, retry()), Effect::Requeue { available_at: 6_000 });
        assert_eq!(
            apply(&mut job, 3, 9_000, retry()),
            Effect::Dead { reason: FailReason::AttemptsExhausted, error: "boom".into() }
        );
        assert_eq!(job.exceptions, 3);
        assert_eq!(job.history.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn releases_do_not_count_as_exceptions() {
        let mut job = envelope(&JobOptions::new().max_attempts(10).max_exceptions(2));
        let release = Transition::Release { delay: Duration::from_secs(1) };
        for attempt in 1..=5 {
            assert!(matches!(apply(&mut job, attempt, 0, release.clone()), Effect::Requeue { .. }));
        }
        assert!(matches!(apply(&mut job, 6, 0, retry()), Effect::Requeue { .. }));
        assert_eq!(
            apply(&mut job, 7, 0, retry()),
            Effect::Dead { reason: FailReason::TooManyExceptions, error: "boom".into() }
        );
    }

    #[test]
    fn a_deadline_ends_retries_and_reservations() {
        let until = std::time::UNIX_EPOCH + Duration::from_secs(10);
        let mut job = envelope(&JobOptions::new().max_attempts(10).retry_until(until));
        assert!(matches!(apply(&mut job, 1, 8_000, retry()), Effect::Requeue { .. }));
        assert!(matches!(
            apply(&mut job, 2, 9_500, retry()),
            Effect::Dead { reason: FailReason::DeadlinePassed, .. }
        ));
        assert_eq!(refuse_reservation(&job, 3, 10_000), None);
        assert_eq!(refuse_reservation(&job, 3, 10_001).unwrap().0, FailReason::DeadlinePassed);
    }

    #[test]
    fn timeouts_fail_at_once_only_when_asked() {
        let timed_out =
            Transition::Retry { delay: Duration::ZERO, error: "timed out".into(), timed_out: true };
        let mut job = envelope(&JobOptions::new());
        assert!(matches!(apply(&mut job, 1, 0, timed_out.clone()), Effect::Requeue { .. }));
        let mut job = envelope(&JobOptions::new().fail_on_timeout(true));
        assert!(matches!(
            apply(&mut job, 1, 0, timed_out),
            Effect::Dead { reason: FailReason::TimedOut, .. }
        ));
    }

    #[test]
    fn a_reservation_past_the_attempts_says_the_worker_may_have_crashed() {
        let job = envelope(&JobOptions::new().max_attempts(2));
        assert_eq!(refuse_reservation(&job, 2, 0), None);
        let (reason, error) = refuse_reservation(&job, 3, 0).unwrap();
        assert_eq!(reason, FailReason::Abandoned);
        assert!(error.contains("never reported back"), "{error}");
        let failed = refused_job(&job, 3, 7).unwrap();
        assert_eq!((failed.reason, failed.attempts, failed.failed_at), (reason, 2, 7));
        assert_eq!(failed.envelope.history.last().map(|r| r.attempt), Some(3));
        assert!(refused_job(&job, 2, 7).is_none());
    }

    #[test]
    fn acks_and_extensions_apply_without_the_job() {
        let extend = Transition::Extend { lease: Duration::from_secs(2) };
        assert_eq!(apply_blind(&Transition::Ack, 5), Some(Effect::Delete));
        assert_eq!(apply_blind(&extend, 5), Some(Effect::Extended { expires_at: 2_005 }));
        assert_eq!(apply_blind(&Transition::Progress(1), 5), None);
        let mut job = envelope(&JobOptions::new());
        assert_eq!(apply(&mut job, 1, 5, extend), Effect::Extended { expires_at: 2_005 });
    }
}
