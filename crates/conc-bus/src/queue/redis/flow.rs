//! Workflows on Redis, the lease cycle's side: the flow record a job keeps
//! in its hash, job specs, settling a job that has a workflow (decided in
//! Rust by the crate's state machine, applied by one script), batch
//! timeouts, and the member outcomes announced to subscribers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cycle::{fresh_version, read_held};
use super::flow_lua::{EXPIRE_SCRIPT, FLOW_SETTLE_SCRIPT, READ_FLOW_SCRIPT};
use super::reply::Reply;
use super::{Inner, failed};
use crate::admission::Release;
use crate::batch::machine::{self, Fire};
use crate::batch::model::{BatchRecord, MemberOutcome};
use crate::batch::{BatchId, BatchProgress};
use crate::chain::{chain_catch, next_link};
use crate::clock::Millis;
use crate::failed::FailedJob;
use crate::id::JobId;
use crate::job::{Envelope, MAX_PRIORITY};
use crate::queue::backend::{Pushed, Settled, Settlement};
use crate::queue::error::{LeaseLost, QueueError};
use crate::queue::lease::Lease;
use crate::queue::settle::{self, Effect, Transition};

/// How many times a workflow settlement is decided again when its job or
/// its batch changed between the read and the write.
const FLOW_ROUNDS: usize = 64;

/// The most batches one timeout check times out.
const EXPIRE_CHUNK: u64 = 64;

/// How often a process looks for batch deadlines set by other processes.
const DEADLINE_POLL: Duration = Duration::from_secs(1);

/// The key base of the workflow keys: `<prefix>wf:`.
pub(super) fn wf_base(prefix: &str) -> String {
    format!("{prefix}wf:")
}

/// The key of batch `id`.
pub(super) fn batch_key(prefix: &str, id: BatchId) -> String {
    format!("{prefix}wf:batch:{id}")
}

/// The flow record a job keeps in its hash (see
/// [`flow_lua`](super::flow_lua)), as JSON; empty when settling the job
/// needs no workflow (no batch, chain, chain catch or admission).
#[derive(Serialize)]
struct FlowRecord {
    b: String,
    m: String,
    k: String,
    r: &'static str,
    t: String,
    x: String,
}

pub(super) fn flow_record(prefix: &str, envelope: &Envelope) -> String {
    let Some(flow) = envelope.flow.as_deref().filter(|_| has_workflow(envelope)) else {
        return String::new();
    };
    let mut record = FlowRecord {
        b: String::new(),
        m: String::new(),
        k: String::new(),
        r: "",
        t: String::new(),
        x: String::new(),
    };
    if let Some(member) = flow.batch {
        record.b = batch_key(prefix, member.batch);
        record.m = member.member.to_string();
    }
    if let Some(ticket) = &flow.admission {
        let code = match ticket.release {
            Release::Processed => "P",
            Release::Processing => "G",
            Release::Debounce => "D",
            _ => "X",
        };
        let text = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        record.k = flow_keys(prefix, envelope).pop().unwrap_or_default();
        record.r = code;
        record.t = text(ticket.ttl_ms);
        record.x = text(ticket.max_wait_ms);
    }
    serde_json::to_string(&record).unwrap_or_default()
}

/// The workflow keys the flow record of `envelope` names (its batch, its
/// lock or debounce record), declared in a script's `KEYS` besides the
/// queues'.
pub(super) fn flow_keys(prefix: &str, envelope: &Envelope) -> Vec<String> {
    let mut keys = Vec::new();
    let Some(flow) = envelope.flow.as_deref() else { return keys };
    if let Some(member) = flow.batch {
        keys.push(batch_key(prefix, member.batch));
    }
    if let Some(ticket) = &flow.admission {
        let space = if ticket.release == Release::Debounce { "debounce" } else { "lock" };
        keys.push(format!("{prefix}wf:{space}:{}", ticket.key));
    }
    keys
}

/// Whether settling `envelope` needs its workflow: it has a batch, a chain,
/// a chain's `catch` or an admission ticket (a callback's trigger alone
/// needs nothing).
pub(super) fn has_workflow(envelope: &Envelope) -> bool {
    envelope.flow.as_deref().is_some_and(|flow| {
        flow.batch.is_some()
            || !flow.chain.is_empty()
            || flow.chain_catch.is_some()
            || flow.admission.is_some()
    })
}

/// The envelope of `job` as stored.
pub(super) fn envelope_text(envelope: &Envelope) -> Result<String, QueueError> {
    serde_json::to_string(envelope).map_err(|error| {
        QueueError::Corrupt(format!("job {} cannot be stored: {error}", envelope.id))
    })
}

/// The nine fields a script stores `job` from.
pub(super) fn spec_fields(prefix: &str, job: &Pushed) -> Result<[String; 9], QueueError> {
    let envelope = &job.envelope;
    Ok([
        super::keys::base(prefix, &envelope.queue),
        envelope.id.to_string(),
        envelope.priority.min(MAX_PRIORITY).to_string(),
        job.available_at.to_string(),
        envelope.max_attempts.to_string(),
        envelope.retry_until.map_or_else(String::new, |until| until.to_string()),
        envelope.name.clone(),
        envelope_text(envelope)?,
        flow_record(prefix, envelope),
    ])
}

/// `job` as one spec argument (JSON).
pub(super) fn spec(prefix: &str, job: &Pushed) -> Result<String, QueueError> {
    let fields = spec_fields(prefix, job)?;
    serde_json::to_string(&fields)
        .map_err(|error| QueueError::Corrupt(format!("a job spec does not encode: {error}")))
}

/// The callback jobs `fires` of `record` at `now`, as specs (one argument,
/// empty for none).
pub(super) fn callback_spec(
    prefix: &str,
    record: &BatchRecord,
    fire: Fire,
    now: Millis,
) -> Result<String, QueueError> {
    match machine::callback_jobs(record, &[fire], now).first() {
        Some(job) => spec(prefix, job),
        None => Ok(String::new()),
    }
}

/// Reads the member outcomes a script recorded (a count, then eight fields
/// each) and announces them to this process's subscribers.
pub(super) fn announce(inner: &Inner, reply: &mut Reply) -> Result<(), QueueError> {
    let count = reply.uint("events")?;
    for _ in 0..count {
        let batch = reply.text("batch")?;
        let member = reply.text("member")?;
        let outcome = match reply.text("outcome")?.as_str() {
            "S" => MemberOutcome::Succeeded,
            "F" => MemberOutcome::Failed,
            _ => MemberOutcome::Cancelled,
        };
        let total = reply.uint("total")?;
        let succeeded = reply.uint("succeeded")?;
        let failed = reply.uint("failed")?;
        let cancelled = reply.uint("cancelled")?;
        let finished = reply.int("finished")? == 1;
        if outcome == MemberOutcome::Failed && !finished {
            // The failure may have cancelled the batch and left part of its
            // sweep pending: the next reservation goes on with it.
            inner.next_deadline.store(0, Ordering::Relaxed);
        }
        let (Ok(batch), Ok(member)) = (batch.parse::<BatchId>(), member.parse::<JobId>()) else {
            return Err(super::reply::unexpected("workflow", "an event without ids"));
        };
        inner.progress.send(BatchProgress {
            batch,
            member,
            outcome,
            total,
            pending: total.saturating_sub(succeeded + failed + cancelled),
            succeeded,
            failed,
            cancelled,
            finished,
        });
    }
    Ok(())
}

/// What decides a workflow job's settlement.
pub(super) enum Decide {
    /// A transition its holder sent.
    Transition(Transition),
    /// The reservation at this time refused this attempt (counted).
    Refused { attempt: u32, at: Millis },
}

/// What a settlement sends to the script besides the job.
struct Plan {
    op: &'static str,
    a: String,
    b: String,
    outcome: &'static str,
    progress: String,
    catch: String,
    follow: Vec<Pushed>,
    settlement: Settlement,
    failed: Option<FailedJob>,
}

/// The batch of a member as a settlement reads it.
struct MemberBatch {
    key: String,
    record: BatchRecord,
    cancelled: bool,
}

/// Settles the leased job `lease` names, which has a workflow: the job's
/// change, its chain's next link or `catch`, its batch outcome with the
/// callbacks that fires and its admission lock, in one script. Decided
/// again while the job or its batch change between the read and the write.
pub(super) async fn settle_one(
    inner: &Inner,
    lease: &Lease,
    decide: &Decide,
) -> Result<(Settled, Option<FailedJob>), QueueError> {
    let base = inner.base(&lease.queue);
    let prefix = &*inner.settings.prefix;
    for _ in 0..FLOW_ROUNDS {
        let mut invocation = inner.invocation(&READ_FLOW_SCRIPT, &base);
        invocation.arg(lease.job.to_string()).arg(crate::batch::MAX_FAILED_JOBS);
        let (now, mut reply) = inner.call("read flow", &invocation).await?;
        let held = read_held(&mut reply, lease.job)?;
        let read = super::batches::read_batch(&mut reply)?;
        let Some(state) = held.filter(|state| state.holds(lease, now)) else {
            return Ok((Err(LeaseLost::new(lease.job)), None));
        };
        let mut envelope = state.envelope.clone();
        let (effect, failed) = match decide {
            Decide::Transition(transition) => {
                (settle::apply(&mut envelope, state.attempts, now, transition.clone()), None)
            }
            Decide::Refused { attempt, at } => {
                let failed = failed::refused(envelope.clone(), *attempt, *at);
                let effect = Effect::Dead { reason: failed.reason, error: failed.error.clone() };
                (effect, Some(failed))
            }
        };
        let member = envelope.flow.as_deref().and_then(|flow| flow.batch);
        let batch = match (member, read) {
            (Some(member), Some((record, _, _))) => Some(MemberBatch {
                key: batch_key(prefix, member.batch),
                cancelled: record.cancelled_at.is_some(),
                record,
            }),
            _ => None,
        };
        // A process running a batch's members learns its deadline.
        if let Some(deadline) = batch.as_ref().and_then(|b| b.record.deadline) {
            note_deadline(inner, deadline);
        }
        let plan = plan(prefix, &envelope, effect, failed, state.attempts, batch.as_ref(), now)?;
        let mut invocation = inner.invocation(&FLOW_SETTLE_SCRIPT, &base);
        invocation.key(batch.as_ref().map_or_else(|| wf_base(prefix), |b| b.key.clone()));
        for job in &plan.follow {
            invocation.key(inner.base(&job.envelope.queue));
        }
        for key in flow_keys(prefix, &envelope) {
            invocation.key(key);
        }
        invocation
            .arg(lease.job.to_string())
            .arg(lease.token.get())
            .arg(&state.version)
            .arg(fresh_version())
            .arg(plan.op)
            .arg(&plan.a)
            .arg(&plan.b)
            .arg(batch.as_ref().map_or("", |b| if b.cancelled { "1" } else { "0" }))
            .arg(member.map_or_else(String::new, |m| m.member.to_string()))
            .arg(if batch.is_some() { plan.outcome } else { "" })
            .arg(&plan.progress)
            .arg(&plan.catch)
            .arg(inner.settings.failed_max_age_ms)
            .arg(inner.settings.failed_max_jobs);
        for job in &plan.follow {
            invocation.arg(spec(prefix, job)?);
        }
        super::register(inner, plan.follow.iter().map(|job| job.envelope.queue.as_str())).await?;
        let (_, mut reply) = inner.call("flow settle", &invocation).await?;
        let answer = reply.int("answer")?;
        match answer {
            0 => return Ok((Err(LeaseLost::new(lease.job)), None)),
            -1 => continue,
            _ => {}
        }
        announce(inner, &mut reply)?;
        let settlement = match plan.settlement {
            Settlement::Extended { .. } | Settlement::StopAsked { .. } => {
                let expires_at = u64::try_from(answer).unwrap_or(0);
                if batch.as_ref().is_some_and(|b| b.cancelled) {
                    Settlement::StopAsked { expires_at }
                } else {
                    Settlement::Extended { expires_at }
                }
            }
            other => other,
        };
        return Ok((Ok(settlement), plan.failed));
    }
    Err(QueueError::Backend("a job or its batch kept changing while it was settled".into()))
}

/// What settling `envelope` with `effect` does to its workflow (as the
/// memory backend's `flow_effects` does it under its lock).
fn plan(
    prefix: &str,
    envelope: &Envelope,
    effect: Effect,
    refused: Option<FailedJob>,
    attempts: u32,
    batch: Option<&MemberBatch>,
    now: Millis,
) -> Result<Plan, QueueError> {
    let cancelled = batch.is_some_and(|b| b.cancelled);
    let chain_left = envelope.flow.as_deref().is_some_and(|flow| !flow.chain.is_empty());
    let member = envelope.flow.as_deref().and_then(|flow| flow.batch).map(|m| m.member);
    let mut plan = Plan {
        op: "K",
        a: String::new(),
        b: String::new(),
        outcome: "",
        progress: String::new(),
        catch: String::new(),
        follow: Vec::new(),
        settlement: effect.settlement(),
        failed: None,
    };
    let mut error_text = None;
    match effect {
        Effect::Delete => {
            plan.op = "A";
            let next = if cancelled { None } else { next_link(envelope, now) };
            match next {
                Some(next) => plan.follow.push(next),
                None => plan.outcome = if chain_left { "C" } else { "S" },
            }
        }
        Effect::Dead { reason, error } => {
            plan.op = "D";
            plan.follow.extend(chain_catch(envelope, &error, now));
            plan.outcome = "F";
            let failed = refused.unwrap_or_else(|| {
                FailedJob::new(envelope.clone(), attempts, now, reason, error.clone())
            });
            plan.a = failed::record(&failed)?;
            plan.b = now.to_string();
            plan.failed = Some(failed);
            error_text = Some(error);
        }
        Effect::Requeue { .. } if cancelled => {
            plan.op = "S";
            plan.outcome = "C";
            plan.settlement = Settlement::Skipped;
        }
        Effect::Requeue { available_at } => {
            plan.op = "Q";
            plan.a = envelope_text(envelope)?;
            plan.b = available_at.to_string();
        }
        Effect::Extended { expires_at } => {
            plan.op = "E";
            plan.a = expires_at.saturating_sub(now).to_string();
        }
        Effect::Kept => plan.a = envelope_text(envelope)?,
    }
    if let (Some(batch), Some(member)) = (batch, member) {
        if matches!(plan.outcome, "S" | "F") {
            plan.progress =
                callback_spec(prefix, &batch.record, Fire::Progress { job: member }, now)?;
        }
        if let Some(error) = error_text {
            let fire = Fire::Catch { job: Some(member), error };
            plan.catch = callback_spec(prefix, &batch.record, fire, now)?;
        }
    }
    Ok(plan)
}

/// Settles the transitions of `batch` that need their workflow: each job's
/// in order, different jobs at once (their scripts share the connection's
/// pipeline).
pub(super) async fn settle_flows(
    inner: &Inner,
    batch: &[(Lease, Transition)],
    indices: impl Iterator<Item = usize>,
) -> Result<Vec<(usize, Settled)>, QueueError> {
    let mut by_job: Vec<(JobId, Vec<usize>)> = Vec::new();
    for index in indices {
        let job = batch[index].0.job;
        match by_job.iter_mut().find(|(known, _)| *known == job) {
            Some((_, indices)) => indices.push(index),
            None => by_job.push((job, vec![index])),
        }
    }
    let settled = futures::future::try_join_all(by_job.iter().map(|(_, indices)| async move {
        let mut out = Vec::with_capacity(indices.len());
        for &index in indices {
            let (lease, transition) = &batch[index];
            let decide = Decide::Transition(transition.clone());
            out.push((index, settle_one(inner, lease, &decide).await?.0));
        }
        Ok::<_, QueueError>(out)
    }))
    .await?;
    Ok(settled.into_iter().flatten().collect())
}

/// Times out the batches whose deadline has passed, when one may have: this
/// process knows the soonest deadline of the batches it created or settled
/// members of, and looks for those of other processes every second.
async fn expire_due(inner: &Inner) -> Result<(), QueueError> {
    let now = inner.time.now();
    let due = inner.next_deadline.load(Ordering::Relaxed) <= now;
    let stale = {
        let checked =
            inner.deadlines_checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        checked.is_none_or(|at| at.elapsed() >= DEADLINE_POLL)
    };
    if !due && !stale {
        return Ok(());
    }
    // Noted first: a check that fails is tried again a second later, not at
    // every reservation.
    *inner.deadlines_checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(Instant::now());
    let mut invocation = inner.invocation(&EXPIRE_SCRIPT, &wf_base(&inner.settings.prefix));
    invocation.arg(EXPIRE_CHUNK);
    let (_, mut reply) = inner.call("expire", &invocation).await?;
    let next = u64::try_from(reply.int("next deadline")?).unwrap_or(u64::MAX);
    inner.next_deadline.store(next, Ordering::Relaxed);
    announce(inner, &mut reply)
}

/// [`expire_due`] on the way to a reservation: a failure is logged, never
/// the reservation's (on Redis Cluster the workflow keys are on another
/// node, and plain jobs must still be served).
pub(super) async fn expire_before_reserving(inner: &Inner) {
    if let Err(error) = expire_due(inner).await {
        tracing::warn!(target: "conc_bus", %error, "batch deadlines could not be checked");
    }
}

/// Notes a deadline this process set.
pub(super) fn note_deadline(inner: &Inner, deadline: Millis) {
    inner.next_deadline.fetch_min(deadline, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Ticket;
    use crate::job::{BatchMember, JobOptions, Trigger, TriggerKind};

    fn envelope() -> Envelope {
        Envelope::raw(JobId::from_u128(7), "t", 1, "null".into(), &JobOptions::new(), 0)
    }

    #[test]
    fn only_jobs_whose_settlement_needs_their_workflow_keep_a_flow_record() {
        let plain = envelope();
        assert!(!has_workflow(&plain) && flow_record("p:", &plain).is_empty());
        // A callback carries its trigger only: acknowledged like a plain job.
        let mut callback = envelope();
        callback.flow_mut().trigger = Some(Trigger::new(TriggerKind::Then));
        assert!(!has_workflow(&callback) && flow_record("p:", &callback).is_empty());

        let batch = BatchId::from_job_id(JobId::from_u128(9));
        let mut member = envelope();
        member.flow_mut().batch = Some(BatchMember::new(batch, JobId::from_u128(8)));
        let mut ticket = Ticket::new("invoice:7", Release::Processing);
        ticket.ttl_ms = Some(5_000);
        member.flow_mut().admission = Some(ticket);
        let record: serde_json::Value =
            serde_json::from_str(&flow_record("p:", &member)).expect("json");
        assert_eq!(record["b"], format!("p:wf:batch:{batch}"));
        assert_eq!(record["m"], JobId::from_u128(8).to_string());
        assert_eq!(
            (record["k"].as_str(), record["r"].as_str()),
            (Some("p:wf:lock:invoice:7"), Some("G"))
        );
        assert_eq!((record["t"].as_str(), record["x"].as_str()), (Some("5000"), Some("")));
        assert_eq!(
            flow_keys("p:", &member),
            [format!("p:wf:batch:{batch}"), "p:wf:lock:invoice:7".into()]
        );

        let mut debounced = envelope();
        let mut ticket = Ticket::new("search", Release::Debounce);
        ticket.max_wait_ms = Some(8_000);
        debounced.flow_mut().admission = Some(ticket);
        let record: serde_json::Value =
            serde_json::from_str(&flow_record("p:", &debounced)).expect("json");
        assert_eq!(
            (record["k"].as_str(), record["r"].as_str()),
            (Some("p:wf:debounce:search"), Some("D"))
        );
        assert_eq!(record["x"], "8000");
        assert_eq!(record["b"], "", "no batch");
    }
}
