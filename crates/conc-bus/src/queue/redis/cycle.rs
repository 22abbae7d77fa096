//! The lease cycle on Redis: push, reserve, settle, and giving leases back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::reply::{Reply, unexpected};
use super::scripts::{GIVE_BACK_SCRIPT, PUSH_SCRIPT, READ_SCRIPT, RESERVE_SCRIPT, SETTLE_SCRIPT};
use super::{Inner, failed, flow};
use crate::clock::{Millis, millis};
use crate::failed::{FailReason, FailedJob};
use crate::id::JobId;
use crate::job::{Envelope, MAX_PRIORITY, check_queue_name};
use crate::queue::backend::{Pushed, Reservation, ReserveRequest, Settled, Settlement};
use crate::queue::error::{LeaseLost, PushError, QueueError};
use crate::queue::lease::{Lease, LeaseToken, Reserved};
use crate::queue::settle::{self, Effect, Transition};

/// The most due delayed jobs, and the most expired leases, one reservation
/// moves back to a queue's ready lists; also the most jobs it sends to the
/// failed store.
pub(super) const RECOVERY_CHUNK: u64 = 1024;

/// How many times a settlement is decided again after its job's envelope
/// changed between the snapshot and the write (another settlement of the
/// same holder wrote in between).
const SETTLE_ROUNDS: usize = 16;

/// Stores `jobs`, all or none.
pub(super) async fn push(inner: &Inner, jobs: Vec<Pushed>) -> Result<(), PushError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut queues: Vec<&str> = Vec::new();
    let mut which = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let queue = job.envelope.queue.as_str();
        if let Err(error) = check_queue_name(queue) {
            return Err(PushError::Invalid { error, jobs });
        }
        let index = queues.iter().position(|known| *known == queue).unwrap_or_else(|| {
            queues.push(queue);
            queues.len() - 1
        });
        which.push(index + 1);
    }
    let mut invocation = inner.invocation(&PUSH_SCRIPT, &inner.base(queues[0]));
    for queue in &queues[1..] {
        invocation.key(inner.base(queue));
    }
    // The workflow keys the jobs name, after the queues' bases.
    let mut declared: Vec<String> = Vec::new();
    for job in &jobs {
        for key in flow::flow_keys(&inner.settings.prefix, &job.envelope) {
            if !declared.contains(&key) {
                invocation.key(&key);
                declared.push(key);
            }
        }
    }
    for (job, index) in jobs.iter().zip(which) {
        let envelope = &job.envelope;
        let text = match serde_json::to_string(envelope) {
            Ok(text) => text,
            Err(error) => {
                let error = format!("job {} cannot be stored: {error}", envelope.id).into();
                return Err(PushError::Backend { error, jobs });
            }
        };
        invocation
            .arg(index)
            .arg(envelope.id.to_string())
            .arg(envelope.priority.min(MAX_PRIORITY))
            .arg(job.available_at)
            .arg(envelope.max_attempts)
            .arg(envelope.retry_until.map_or_else(String::new, |until| until.to_string()))
            .arg(&envelope.name)
            .arg(text)
            .arg(flow::flow_record(&inner.settings.prefix, envelope));
    }
    let mut register = redis::cmd("SADD");
    register.arg(&*inner.settings.registry).arg(&queues);
    let mut connection = inner.manager.clone();
    let registered = register.query_async::<i64>(&mut connection);
    let (registered, pushed) = tokio::join!(registered, inner.call("push", &invocation));
    let outcome = registered.map_err(super::reply::backend).and(pushed);
    let (_, mut reply) = match outcome {
        Ok(reply) => reply,
        Err(error) => return Err(PushError::Backend { error: error.into(), jobs }),
    };
    let answer = match reply.text("status") {
        Ok(answer) => answer,
        Err(error) => return Err(PushError::Backend { error: error.into(), jobs }),
    };
    match answer.as_str() {
        "ok" => match flow::announce(inner, &mut reply) {
            Ok(()) => Ok(()),
            Err(error) => Err(PushError::Backend { error: error.into(), jobs }),
        },
        "locked" => {
            let (job, holder) = (reply.text("job"), reply.text("holder"));
            let held_by = holder.ok().and_then(|holder| holder.parse::<JobId>().ok());
            let ticket = job.ok().and_then(|job| {
                let job = jobs.iter().find(|j| j.envelope.id.to_string() == job)?;
                job.envelope.flow.as_deref()?.admission.clone()
            });
            match (ticket, held_by) {
                (Some(ticket), Some(held_by)) => {
                    Err(PushError::Locked { key: ticket.key, held_by, jobs })
                }
                _ => Err(PushError::Backend { error: unexpected("push", "locked").into(), jobs }),
            }
        }
        "dup" => match reply.text("id").ok().and_then(|id| id.parse::<JobId>().ok()) {
            Some(id) => Err(PushError::Duplicate { id, jobs }),
            None => Err(PushError::Backend { error: unexpected("push", "dup").into(), jobs }),
        },
        "full" => {
            let index = reply.uint("queue").ok().and_then(|i| usize::try_from(i).ok());
            let capacity = reply.uint("capacity").ok();
            match (index.and_then(|i| queues.get(i.wrapping_sub(1))), capacity) {
                (Some(queue), Some(capacity)) => {
                    Err(PushError::Full { queue: (*queue).to_owned(), capacity, jobs })
                }
                _ => Err(PushError::Backend { error: unexpected("push", "full").into(), jobs }),
            }
        }
        other => Err(PushError::Backend { error: unexpected("push", other).into(), jobs }),
    }
}

/// Leases up to `request.max` jobs. The script runs in a task of its own: a
/// caller that stops waiting after it ran gets nothing, so the task gives the
/// jobs back at once instead of leaving them leased to nobody.
pub(super) async fn reserve(
    inner: &Arc<Inner>,
    request: ReserveRequest<'_>,
) -> Result<Reservation, QueueError> {
    if request.max == 0 || request.queues.is_empty() {
        return Ok(Reservation::default());
    }
    for queue in request.queues {
        check_queue_name(queue)?;
    }
    flow::expire_before_reserving(inner).await;
    let (answer, receiver) = oneshot::channel();
    let task_inner = Arc::clone(inner);
    let queues = request.queues.to_vec();
    let (max, lease_ms) = (request.max, millis(request.lease));
    tokio::spawn(async move {
        let result = reserve_queues(&task_inner, &queues, max, lease_ms).await;
        if let Err(Ok(reservation)) = answer.send(result) {
            let _ = give_back(&task_inner, &reservation.jobs).await;
        }
    });
    receiver
        .await
        .map_err(|_| QueueError::Backend("the reservation task ended without an answer".into()))?
}

/// Settles `batch`, then leases up to `request.max` jobs, the two sent
/// together: the settlement's script goes first on the connection, so the
/// reservation sees what it changed, without waiting for its answer. That
/// holds when the settlement's scripts are sent at once (acknowledgements
/// and extensions: no snapshot is read first) and known to the server
/// (after `NOSCRIPT` a script is loaded and run again, after the
/// reservation). Like [`reserve`], it runs in a task of its own and gives
/// back jobs nobody waits for.
pub(super) async fn settle_and_reserve(
    inner: &Arc<Inner>,
    batch: Vec<(Lease, Transition)>,
    request: ReserveRequest<'_>,
) -> (Result<Vec<Settled>, QueueError>, Result<Reservation, QueueError>) {
    if request.max == 0 || request.queues.is_empty() {
        return (settle(inner, batch).await, Ok(Reservation::default()));
    }
    if let Some(error) = request.queues.iter().find_map(|queue| check_queue_name(queue).err()) {
        return (settle(inner, batch).await, Err(error.into()));
    }
    flow::expire_before_reserving(inner).await;
    let (answer, receiver) = oneshot::channel();
    let task_inner = Arc::clone(inner);
    let queues = request.queues.to_vec();
    let (max, lease_ms) = (request.max, millis(request.lease));
    tokio::spawn(async move {
        // The settlement's first poll puts its script on the connection; the
        // reservation's goes after it.
        let mut settling = std::pin::pin!(settle(&task_inner, batch));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(settling.as_mut(), cx))
        })
        .await;
        let reserving = reserve_queues(&task_inner, &queues, max, lease_ms);
        let both = match first {
            std::task::Poll::Ready(settled) => (settled, reserving.await),
            std::task::Poll::Pending => tokio::join!(settling, reserving),
        };
        if let Err((_, Ok(reservation))) = answer.send(both) {
            let _ = give_back(&task_inner, &reservation.jobs).await;
        }
    });
    if let Ok(both) = receiver.await {
        both
    } else {
        let gone =
            || QueueError::Backend("the settle-and-reserve task ended without an answer".into());
        (Err(gone()), Err(gone()))
    }
}

/// Reserves from `queues` in order until `max` jobs are leased. When a step
/// fails after some jobs were leased, they are given back before the error
/// is returned, as a failed transaction would leave them.
async fn reserve_queues(
    inner: &Inner,
    queues: &[String],
    max: usize,
    lease_ms: Millis,
) -> Result<Reservation, QueueError> {
    let mut reservation = Reservation::default();
    match reserve_into(inner, queues, max, lease_ms, &mut reservation).await {
        Ok(()) => Ok(reservation),
        Err(error) => {
            // Best effort: jobs it cannot give back come back with their lease.
            let _ = give_back(inner, &reservation.jobs).await;
            Err(error)
        }
    }
}

/// The steps of [`reserve_queues`], leasing into `reservation`.
async fn reserve_into(
    inner: &Inner,
    queues: &[String],
    max: usize,
    lease_ms: Millis,
    reservation: &mut Reservation,
) -> Result<(), QueueError> {
    for queue in queues {
        let want = max - reservation.jobs.len();
        if want == 0 {
            break;
        }
        let mut invocation = inner.invocation(&RESERVE_SCRIPT, &inner.base(queue));
        invocation
            .arg(want)
            .arg(lease_ms)
            .arg(RECOVERY_CHUNK)
            .arg(inner.settings.failed_max_age_ms)
            .arg(inner.settings.failed_max_jobs);
        let (now, reply) = inner.call("reserve", &invocation).await?;
        let (corrupt, doomed) = read_reservation(inner, reply, queue, now, lease_ms, reservation)?;
        for (lease, attempt) in doomed {
            let decide = flow::Decide::Refused { attempt, at: now };
            if let (Ok(_), Some(failed)) = flow::settle_one(inner, &lease, &decide).await? {
                reservation.dead.push(failed);
            }
        }
        if !corrupt.is_empty() {
            // The jobs that do not decode are set aside so they block
            // nothing; the caller gives the others back.
            let message = corrupt.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
            let mut invocation = inner.invocation(&GIVE_BACK_SCRIPT, &inner.base(queue));
            for (id, _) in &corrupt {
                invocation.arg(id).arg("corrupt");
            }
            inner.call("give back", &invocation).await?;
            return Err(QueueError::Corrupt(format!("{message} (set aside)")));
        }
    }
    Ok(())
}

/// The jobs of a reservation's reply that it could not hand out as they
/// are: those whose envelope does not decode (id, why), and the doomed
/// leases (refused jobs with a workflow) with their refused attempt.
type ReadReservation = (Vec<(String, String)>, Vec<(Lease, u32)>);

/// Reads one reservation script's reply into `reservation`; the ids of jobs
/// whose envelope does not decode, with why, and the leases of the jobs it
/// refused that have a workflow (doomed: to be failed with it), with their
/// refused attempt.
fn read_reservation(
    inner: &Inner,
    mut reply: Reply,
    queue: &str,
    now: Millis,
    lease_ms: Millis,
    reservation: &mut Reservation,
) -> Result<ReadReservation, QueueError> {
    let _paused = reply.int("paused")?;
    let leased = reply.uint("leased")?;
    let dead = reply.uint("dead")?;
    let doomed_count = reply.uint("doomed")?;
    let mut corrupt = Vec::new();
    let expires_at = now.saturating_add(lease_ms);
    for _ in 0..leased {
        let id_text = reply.text("id")?;
        let token = reply.uint("token")?;
        let attempt = u32::try_from(reply.uint("attempt")?).unwrap_or(u32::MAX);
        let since = reply.uint("ready since")?;
        let text = reply.text("envelope")?;
        match decode(&id_text, &text) {
            Ok(envelope) => {
                let id = envelope.id;
                let lease = Lease::new(id, queue, LeaseToken::new(token), expires_at);
                let waited = Duration::from_millis(now.saturating_sub(since));
                reservation.jobs.push(Reserved::new(Arc::new(envelope), attempt, lease, waited));
            }
            Err(message) => corrupt.push((id_text, message)),
        }
    }
    for _ in 0..dead {
        let id_text = reply.text("id")?;
        let attempt = u32::try_from(reply.uint("attempt")?).unwrap_or(u32::MAX);
        let text = reply.text("envelope")?;
        match decode(&id_text, &text) {
            Ok(envelope) => reservation.dead.push(failed::refused(envelope, attempt, now)),
            Err(message) => tracing::warn!(
                target: "conc_bus",
                queue,
                %message,
                "a job refused at reservation went to the failed store without a readable envelope"
            ),
        }
    }
    let mut doomed = Vec::new();
    for _ in 0..doomed_count {
        let id_text = reply.text("id")?;
        let token = reply.uint("token")?;
        let attempt = u32::try_from(reply.uint("attempt")?).unwrap_or(u32::MAX);
        let text = reply.text("envelope")?;
        match decode(&id_text, &text) {
            Ok(envelope) => {
                let lease = Lease::new(envelope.id, queue, LeaseToken::new(token), expires_at);
                doomed.push((lease, attempt));
            }
            Err(message) => corrupt.push((id_text, message)),
        }
    }
    flow::announce(inner, &mut reply)?;
    Ok((corrupt, doomed))
}

/// The envelope stored as `text` for job `id`, or why it is corrupt.
pub(super) fn decode(id: &str, text: &str) -> Result<Envelope, String> {
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|error| format!("the stored envelope of job {id} does not decode: {error}"))?;
    if envelope.id.to_string() != id {
        return Err(format!("the stored envelope of job {id} carries another id, {}", envelope.id));
    }
    Ok(envelope)
}

/// Gives leases back that nobody will use: the jobs are ready again at the
/// head of their lists, the reservations uncounted.
async fn give_back(inner: &Inner, jobs: &[Reserved]) -> Result<(), QueueError> {
    let mut by_queue: Vec<(&str, Vec<&Lease>)> = Vec::new();
    for job in jobs {
        let lease = &job.lease;
        match by_queue.iter_mut().find(|(queue, _)| *queue == lease.queue) {
            Some((_, leases)) => leases.push(lease),
            None => by_queue.push((&lease.queue, vec![lease])),
        }
    }
    for (queue, leases) in by_queue {
        let mut invocation = inner.invocation(&GIVE_BACK_SCRIPT, &inner.base(queue));
        for lease in leases {
            invocation.arg(lease.job.to_string()).arg(lease.token.get());
        }
        inner.call("give back", &invocation).await?;
    }
    Ok(())
}

/// Applies each transition to the job its lease names, in order.
pub(super) async fn settle(
    inner: &Inner,
    batch: Vec<(Lease, Transition)>,
) -> Result<Vec<Settled>, QueueError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (index, (lease, _)) in batch.iter().enumerate() {
        match groups.iter_mut().find(|(queue, _)| *queue == lease.queue) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((&lease.queue, vec![index])),
        }
    }
    // One script per queue; concurrent calls share the connection's pipeline.
    let answers = futures::future::try_join_all(
        groups.iter().map(|(queue, indices)| settle_queue(inner, queue, &batch, indices)),
    )
    .await?;
    let mut out: Vec<Option<Settled>> = vec![None; batch.len()];
    for ((_, indices), answer) in groups.iter().zip(answers) {
        for (&index, settled) in indices.iter().zip(answer) {
            out[index] = Some(settled);
        }
    }
    Ok(out
        .into_iter()
        .zip(&batch)
        .map(|(settled, (lease, _))| settled.unwrap_or(Err(LeaseLost::new(lease.job))))
        .collect())
}

/// A job as the settle logic sees it while it decides a batch.
pub(super) struct Held {
    pub(super) envelope: Envelope,
    pub(super) attempts: u32,
    token: Option<String>,
    pub(super) version: String,
    /// The lease's expiry; `None` when not leased (or gone).
    expires_at: Option<Millis>,
}

impl Held {
    pub(super) fn holds(&self, lease: &Lease, now: Millis) -> bool {
        self.expires_at.is_some_and(|at| at > now)
            && self.token.as_deref() == Some(lease.token.to_string().as_str())
    }
}

/// What one transition was sent as, to read its answer.
enum Sent {
    Ack,
    Extend,
    Keep,
    Requeue(Millis),
    Dead(FailReason),
}

/// Settles the transitions `indices` of `batch`, all of queue `queue`.
async fn settle_queue(
    inner: &Inner,
    queue: &str,
    batch: &[(Lease, Transition)],
    indices: &[usize],
) -> Result<Vec<Settled>, QueueError> {
    let base = inner.base(queue);
    let mut decided: Vec<Option<Settled>> = vec![None; indices.len()];
    // Transitions of jobs with a workflow, settled after the others by the
    // workflow's own script, in order.
    let mut flowing = vec![false; indices.len()];
    let mut flow_jobs: Vec<JobId> = Vec::new();
    for _ in 0..SETTLE_ROUNDS {
        let open: Vec<usize> =
            (0..indices.len()).filter(|&k| decided[k].is_none() && !flowing[k]).collect();
        if open.is_empty() {
            break;
        }
        let mut wanted: Vec<JobId> = Vec::new();
        for &k in &open {
            let (lease, transition) = &batch[indices[k]];
            if settle::apply_blind(transition, 0).is_none() && !wanted.contains(&lease.job) {
                wanted.push(lease.job);
            }
        }
        let (now, mut held) = snapshot(inner, &base, &wanted).await?;
        let mut invocation = inner.invocation(&SETTLE_SCRIPT, &base);
        invocation.arg(inner.settings.failed_max_age_ms).arg(inner.settings.failed_max_jobs);
        let mut sent: Vec<(usize, Sent)> = Vec::with_capacity(open.len());
        for k in open {
            let (lease, transition) = &batch[indices[k]];
            let id = lease.job.to_string();
            let token = lease.token.get();
            if flow_jobs.contains(&lease.job) || matches!(transition, Transition::AckChain { .. }) {
                flowing[k] = true;
                flow_jobs.push(lease.job);
                continue;
            }
            if settle::apply_blind(transition, now).is_some() {
                let state = held.get_mut(&lease.job).filter(|state| state.holds(lease, now));
                if let Transition::Extend { lease: length } = transition {
                    let length = millis(*length);
                    invocation.arg("E").arg(&id).arg(token).arg("").arg("").arg(length);
                    invocation.arg("").arg("");
                    if let Some(state) = state {
                        state.expires_at = Some(now.saturating_add(length));
                    }
                    sent.push((k, Sent::Extend));
                } else {
                    invocation.arg("A").arg(&id).arg(token).arg("").arg("").arg("");
                    invocation.arg("").arg("");
                    if let Some(state) = state {
                        state.expires_at = None;
                    }
                    sent.push((k, Sent::Ack));
                }
                continue;
            }
            let Some(state) = held.get_mut(&lease.job).filter(|state| state.holds(lease, now))
            else {
                // Lost when read, so lost when written: a token never comes back.
                decided[k] = Some(Err(LeaseLost::new(lease.job)));
                continue;
            };
            if flow::has_workflow(&state.envelope) {
                flowing[k] = true;
                flow_jobs.push(lease.job);
                continue;
            }
            let mut envelope = state.envelope.clone();
            let effect = settle::apply(&mut envelope, state.attempts, now, transition.clone());
            let version = fresh_version();
            let expected = std::mem::replace(&mut state.version, version.clone());
            let text = serde_json::to_string(&envelope).map_err(|error| {
                QueueError::Corrupt(format!("job {id} cannot be stored: {error}"))
            })?;
            match effect {
                Effect::Kept | Effect::Extended { .. } | Effect::Delete => {
                    invocation.arg("K").arg(&id).arg(token).arg(expected).arg(version);
                    invocation.arg(text).arg("").arg("");
                    state.envelope = envelope;
                    sent.push((k, Sent::Keep));
                }
                Effect::Requeue { available_at } => {
                    invocation.arg("Q").arg(&id).arg(token).arg(expected).arg(version);
                    invocation.arg(text).arg(available_at).arg("");
                    state.expires_at = None;
                    sent.push((k, Sent::Requeue(available_at)));
                }
                Effect::Dead { reason, error } => {
                    let failed = FailedJob::new(envelope, state.attempts, now, reason, error);
                    invocation.arg("D").arg(&id).arg(token).arg(expected).arg(version);
                    invocation.arg(failed::record(&failed)?).arg(now).arg("");
                    state.expires_at = None;
                    sent.push((k, Sent::Dead(reason)));
                }
            }
        }
        if sent.is_empty() {
            continue;
        }
        let (_, mut reply) = inner.call("settle", &invocation).await?;
        for (k, how) in sent {
            let job = batch[indices[k]].0.job;
            let answer = reply.int("answer")?;
            decided[k] = match (answer, how) {
                (-1, _) => None,
                (-2, _) => {
                    flowing[k] = true;
                    flow_jobs.push(job);
                    None
                }
                (0, _) => Some(Err(LeaseLost::new(job))),
                (_, Sent::Ack) => Some(Ok(Settlement::Acked)),
                (at, Sent::Extend) => {
                    let expires_at = u64::try_from(at).unwrap_or(0);
                    Some(Ok(Settlement::Extended { expires_at }))
                }
                (_, Sent::Keep) => Some(Ok(Settlement::Saved)),
                (_, Sent::Requeue(available_at)) => Some(Ok(Settlement::Requeued { available_at })),
                (_, Sent::Dead(reason)) => Some(Ok(Settlement::Dead(reason))),
            };
        }
    }
    let flows = (0..indices.len()).filter(|&k| flowing[k] && decided[k].is_none());
    let flows: Vec<usize> = flows.collect();
    let settled = flow::settle_flows(inner, batch, flows.iter().map(|&k| indices[k])).await?;
    for (k, (_, settled)) in flows.into_iter().zip(settled) {
        decided[k] = Some(settled);
    }
    decided
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| QueueError::Backend("a job kept changing while it was settled".into()))
}

/// The jobs `ids` of the queue at `base` as stored now, and the time.
pub(super) async fn snapshot(
    inner: &Inner,
    base: &str,
    ids: &[JobId],
) -> Result<(Millis, HashMap<JobId, Held>), QueueError> {
    if ids.is_empty() {
        return Ok((inner.time.now(), HashMap::new()));
    }
    let mut invocation = inner.invocation(&READ_SCRIPT, base);
    for id in ids {
        invocation.arg(id.to_string());
    }
    let (now, mut reply) = inner.call("read", &invocation).await?;
    let mut held = HashMap::with_capacity(ids.len());
    for &id in ids {
        if let Some(state) = read_held(&mut reply, id)? {
            held.insert(id, state);
        }
    }
    Ok((now, held))
}

/// Reads job `id` as stored (envelope, attempts, token, version, lease
/// expiry) from `reply`; `None` when it is gone.
pub(super) fn read_held(reply: &mut Reply, id: JobId) -> Result<Option<Held>, QueueError> {
    let text = reply.maybe_text("envelope")?;
    let attempts = reply.maybe_int("attempts")?;
    let token = reply.maybe_text("token")?;
    let version = reply.maybe_text("version")?.unwrap_or_default();
    let expires_at = reply.maybe_int("expiry")?.and_then(|at| u64::try_from(at).ok());
    let Some(text) = text else { return Ok(None) };
    let envelope = decode(&id.to_string(), &text).map_err(QueueError::Corrupt)?;
    let attempts = attempts.and_then(|a| u32::try_from(a).ok()).unwrap_or(0);
    Ok(Some(Held { envelope, attempts, token, version, expires_at }))
}

/// A version no other write of a job's envelope has: the random bits of a
/// fresh id.
pub(super) fn fresh_version() -> String {
    format!("{:x}", JobId::new().as_u128() & u128::from(u64::MAX))
}
