//! The batch state machine, written once for every backend: given the set
//! of member outcomes (as counts taken from it) and the record's claimed
//! callbacks, what one new outcome, a cancellation or a creation fires.
//!
//! A backend calls it inside the atomic step (lock, transaction, script)
//! that records the outcome and pushes the callback jobs it returns, so a
//! callback is claimed (its flag flipped) exactly when its job is stored.

use super::model::{BatchRecord, Counts, MemberOutcome};
use crate::clock::Millis;
use crate::id::JobId;
use crate::job::{Trigger, TriggerKind, derived_id};
use crate::queue::Pushed;

/// One callback to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fire {
    Then,
    /// `job` is `None` when the batch timed out.
    Catch {
        job: Option<JobId>,
        error: String,
    },
    Finally,
    Progress {
        job: JobId,
    },
}

/// What a new outcome does to the batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The callbacks claimed now.
    pub(crate) fire: Vec<Fire>,
    /// Whether the batch is cancelled now (a failure without `allow_failures`).
    pub(crate) cancel: bool,
}

/// Member `member` got `outcome` (with `error` when it failed); `counts`
/// include it. Claims the callbacks it fires and marks the batch cancelled
/// or finished in `record`.
pub(crate) fn on_outcome(
    record: &mut BatchRecord,
    counts: Counts,
    member: JobId,
    outcome: MemberOutcome,
    error: Option<&str>,
    now: Millis,
) -> Decision {
    let mut decision = Decision::default();
    if outcome != MemberOutcome::Cancelled && record.callbacks.progress.is_some() {
        decision.fire.push(Fire::Progress { job: member });
    }
    if outcome == MemberOutcome::Failed {
        if !record.fired.catch {
            record.fired.catch = true;
            if record.callbacks.catch.is_some() {
                let error = error.unwrap_or_default().to_owned();
                decision.fire.push(Fire::Catch { job: Some(member), error });
            }
        }
        if !record.allow_failures && record.cancelled_at.is_none() {
            record.cancelled_at = Some(now);
            decision.cancel = true;
        }
    }
    decision.fire.extend(on_settled(record, counts, now));
    decision
}

/// The batch's members as `counts` say: marks it finished when nothing is
/// pending and claims `then` (every member succeeded, never cancelled) and
/// `finally`, once each.
pub(crate) fn on_settled(record: &mut BatchRecord, counts: Counts, now: Millis) -> Vec<Fire> {
    let mut fire = Vec::new();
    if counts.pending() > 0 || record.finished_at.is_some() {
        return fire;
    }
    record.finished_at = Some(now);
    let all_succeeded = counts.succeeded == counts.total && record.cancelled_at.is_none();
    if all_succeeded && !record.fired.then {
        record.fired.then = true;
        if record.callbacks.then.is_some() {
            fire.push(Fire::Then);
        }
    }
    if !record.fired.finally {
        record.fired.finally = true;
        if record.callbacks.finally.is_some() {
            fire.push(Fire::Finally);
        }
    }
    fire
}

/// The error a timed-out batch's `catch` reads.
pub(crate) const TIMED_OUT: &str = "batch timed out";

/// Times the batch out if its deadline has passed at `now` and it has not
/// finished: marks it timed out and cancelled, and claims `catch` unless a
/// failure claimed it before. `None` when it does not time out now. The
/// backend then gives every member without an outcome the outcome
/// `Cancelled` (which fires `finally` with the last of them).
pub(crate) fn time_out(record: &mut BatchRecord, now: Millis) -> Option<Vec<Fire>> {
    let deadline = record.deadline?;
    if deadline > now || record.finished_at.is_some() || record.timed_out_at.is_some() {
        return None;
    }
    record.timed_out_at = Some(now);
    record.cancelled_at.get_or_insert(now);
    let mut fire = Vec::new();
    if !record.fired.catch {
        record.fired.catch = true;
        if record.callbacks.catch.is_some() {
            fire.push(Fire::Catch { job: None, error: TIMED_OUT.to_owned() });
        }
    }
    Some(fire)
}

/// Why a batch cannot take its failed members back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unrecoverable {
    NotFound,
    Refused(&'static str),
}

impl Unrecoverable {
    pub(crate) fn into_error(self, id: super::BatchId) -> super::WorkflowError {
        match self {
            Self::NotFound => super::WorkflowError::NotFound { id },
            Self::Refused(reason) => super::WorkflowError::NotRecoverable { id, reason },
        }
    }
}

/// Whether a batch with `record` and `counts` may take its failed members
/// back: only a finished one, not timed out, none of whose members was
/// cancelled (a cancelled member's job is gone, so its batch could never
/// succeed).
pub(crate) fn check_recover(record: &BatchRecord, counts: Counts) -> Result<(), Unrecoverable> {
    let refuse = |reason| Err(Unrecoverable::Refused(reason));
    if record.finished_at.is_none() {
        return refuse("it is not finished");
    }
    if record.timed_out_at.is_some() {
        return refuse("it timed out");
    }
    if counts.cancelled > 0 {
        return refuse("some of its members were cancelled");
    }
    Ok(())
}

/// Reopens a finished batch whose failed members were re-dispatched:
/// unfinished, not cancelled (a failure's cancellation had nothing left to
/// cancel), no deadline. The claimed flags stay: `catch` and `finally`,
/// claimed the first time, never fire again; `then` (never claimed, since a
/// member had failed) fires when every member has succeeded. `recovered`
/// failed members were re-dispatched.
pub(crate) fn reopen(record: &mut BatchRecord, recovered: u64) {
    record.recoveries = record.recoveries.saturating_add(1);
    record.recovered = record.recovered.saturating_add(recovered);
    record.finished_at = None;
    record.cancelled_at = None;
    record.deadline = None;
}

/// Marks the batch cancelled at `now`; whether it was not already.
pub(crate) fn cancel(record: &mut BatchRecord, now: Millis) -> bool {
    if record.cancelled_at.is_some() || record.finished_at.is_some() {
        return false;
    }
    record.cancelled_at = Some(now);
    true
}

/// The jobs to push for `fires`, available at `now`. Each has an id derived
/// from the batch and the callback, so the same callback never makes two
/// jobs.
pub(crate) fn callback_jobs(record: &BatchRecord, fires: &[Fire], now: Millis) -> Vec<Pushed> {
    let batch = record.id.as_job_id();
    fires
        .iter()
        .filter_map(|fire| {
            let callbacks = &record.callbacks;
            let (template, kind, salt, job, error) = match fire {
                Fire::Then => (callbacks.then.as_ref(), TriggerKind::Then, 1, None, None),
                Fire::Catch { job, error } => {
                    (callbacks.catch.as_ref(), TriggerKind::Catch, 2, *job, Some(error.clone()))
                }
                Fire::Finally => (callbacks.finally.as_ref(), TriggerKind::Finally, 3, None, None),
                // Per member and per recovery: a recovered member's new
                // outcome is a new progress job.
                Fire::Progress { job } => (
                    callbacks.progress.as_ref(),
                    TriggerKind::Progress,
                    job.as_u128() ^ (4 << 120) ^ (u128::from(record.recoveries) << 96),
                    Some(*job),
                    None,
                ),
            };
            let mut envelope = template?.clone();
            envelope.id = derived_id(batch, salt);
            envelope.created_at = now;
            let mut trigger = Trigger::new(kind);
            trigger.batch = Some(record.id);
            trigger.job = job;
            trigger.error = error;
            envelope.flow_mut().trigger = Some(trigger);
            Some(Pushed::new(envelope, now))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchId;
    use crate::batch::model::{Callbacks, Fired};
    use crate::job::{Envelope, JobOptions};

    fn record(allow_failures: bool) -> BatchRecord {
        let template =
            Envelope::raw(JobId::from_u128(9), "cb", 1, "null".into(), &JobOptions::new(), 0);
        BatchRecord {
            id: BatchId::from_job_id(JobId::from_u128(1)),
            name: None,
            queue: "default".into(),
            allow_failures,
            created_at: 0,
            cancelled_at: None,
            finished_at: None,
            callbacks: Callbacks {
                then: Some(template.clone()),
                catch: Some(template.clone()),
                finally: Some(template.clone()),
                progress: None,
            },
            fired: Fired::default(),
            counts: None,
            deadline: Some(10),
            timed_out_at: None,
            recoveries: 0,
            recovered: 0,
            middleware: Vec::new(),
        }
    }

    fn counts(total: u64, succeeded: u64, failed: u64) -> Counts {
        Counts { total, succeeded, failed, cancelled: 0 }
    }

    #[test]
    fn then_and_finally_fire_once_when_all_succeed() {
        let mut batch = record(false);
        let a = JobId::from_u128(2);
        let first = on_outcome(&mut batch, counts(2, 1, 0), a, MemberOutcome::Succeeded, None, 5);
        assert!(first.fire.is_empty());
        let last = on_outcome(&mut batch, counts(2, 2, 0), a, MemberOutcome::Succeeded, None, 6);
        assert_eq!(last.fire, [Fire::Then, Fire::Finally]);
        assert_eq!(batch.finished_at, Some(6));
        assert!(on_settled(&mut batch, counts(2, 2, 0), 7).is_empty());
    }

    #[test]
    fn a_failure_catches_once_and_cancels_unless_allowed() {
        let a = JobId::from_u128(2);
        let mut batch = record(false);
        let failed =
            on_outcome(&mut batch, counts(3, 0, 1), a, MemberOutcome::Failed, Some("x"), 1);
        assert_eq!(failed.fire, [Fire::Catch { job: Some(a), error: "x".into() }]);
        assert!(failed.cancel);
        let again = on_outcome(&mut batch, counts(3, 0, 2), a, MemberOutcome::Failed, Some("y"), 2);
        assert!(again.fire.is_empty() && !again.cancel);

        let mut allowed = record(true);
        let failed = on_outcome(&mut allowed, counts(1, 0, 1), a, MemberOutcome::Failed, None, 1);
        assert!(!failed.cancel);
        assert_eq!(failed.fire.last(), Some(&Fire::Finally));
        assert!(!failed.fire.contains(&Fire::Then));
    }

    #[test]
    fn a_timeout_fires_catch_once_and_only_past_the_deadline() {
        let mut batch = record(true);
        assert_eq!(time_out(&mut batch, 9), None);
        let fired = time_out(&mut batch, 10).expect("due");
        assert_eq!(fired, [Fire::Catch { job: None, error: TIMED_OUT.into() }]);
        assert_eq!((batch.timed_out_at, batch.cancelled_at), (Some(10), Some(10)));
        assert_eq!(time_out(&mut batch, 11), None, "once");
        // The members' cancellations finish it; `then` never fires.
        assert_eq!(on_settled(&mut batch, counts(1, 0, 0), 11), [] as [Fire; 0]);
        let all = Counts { total: 1, cancelled: 1, ..Counts::default() };
        assert_eq!(on_settled(&mut batch, all, 11), [Fire::Finally]);

        // A failure's catch is not fired again; a finished batch never times out.
        let mut failed = record(true);
        failed.fired.catch = true;
        assert_eq!(time_out(&mut failed, 10), Some(Vec::new()));
        let mut done = record(true);
        done.finished_at = Some(5);
        assert_eq!(time_out(&mut done, 10), None);
    }

    #[test]
    fn a_recovered_batch_fires_then_once_and_never_catch_or_finally_again() {
        let a = JobId::from_u128(2);
        let mut batch = record(false);
        let failed = on_outcome(&mut batch, counts(1, 0, 1), a, MemberOutcome::Failed, None, 1);
        assert_eq!(
            failed.fire,
            [Fire::Catch { job: Some(a), error: String::new() }, Fire::Finally]
        );
        assert_eq!(check_recover(&batch, counts(1, 0, 1)), Ok(()));
        reopen(&mut batch, 1);
        assert!(batch.finished_at.is_none() && batch.cancelled_at.is_none());
        let again = on_outcome(&mut batch, counts(1, 1, 0), a, MemberOutcome::Succeeded, None, 2);
        assert_eq!(again.fire, [Fire::Then]);
        assert!(check_recover(&record(false), counts(1, 0, 0)).is_err(), "not finished");
        let cancelled = Counts { total: 2, failed: 1, cancelled: 1, ..Counts::default() };
        assert!(check_recover(&batch, cancelled).is_err());
    }

    #[test]
    fn callback_ids_are_derived_once_per_callback() {
        let batch = record(false);
        let one = callback_jobs(&batch, &[Fire::Then], 1);
        let two = callback_jobs(&batch, &[Fire::Then], 2);
        assert_eq!(one[0].envelope.id, two[0].envelope.id);
        let finally = callback_jobs(&batch, &[Fire::Finally], 1);
        assert_ne!(one[0].envelope.id, finally[0].envelope.id);
    }

    #[test]
    fn a_recovered_member_gets_a_new_progress_job() {
        let a = JobId::from_u128(2);
        let mut batch = record(false);
        batch.callbacks.progress = batch.callbacks.then.clone();
        let first = callback_jobs(&batch, &[Fire::Progress { job: a }], 1);
        assert_eq!(
            first[0].envelope.id,
            callback_jobs(&batch, &[Fire::Progress { job: a }], 2)[0].envelope.id
        );
        reopen(&mut batch, 1);
        let again = callback_jobs(&batch, &[Fire::Progress { job: a }], 3);
        assert_ne!(first[0].envelope.id, again[0].envelope.id);
        let b = callback_jobs(&batch, &[Fire::Progress { job: JobId::from_u128(3) }], 3);
        assert_ne!(again[0].envelope.id, b[0].envelope.id);
    }
}
