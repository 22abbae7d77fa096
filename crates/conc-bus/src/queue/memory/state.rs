//! The memory backend's state, behind one lock: jobs by id, each queue's ready
//! lists (one per priority), delayed and reserved sets ordered by time, and
//! the failed store.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Millis;
use crate::failed::FailedJob;
use crate::id::JobId;
use crate::job::{Envelope, MAX_PRIORITY};
use crate::queue::backend::{QueueSize, Settlement};
use crate::queue::lease::{Lease, LeaseToken, Reserved};
use crate::queue::settle::{self, Effect, Transition};

/// The most expired leases or due delayed jobs one reservation moves.
pub(super) const RECOVERY_CHUNK: usize = 1024;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Ready,
    Delayed(Millis),
    Reserved { token: LeaseToken, expires_at: Millis },
}

/// One stored job.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) envelope: Arc<Envelope>,
    pub(super) attempts: u32,
    pub(super) place: Place,
    /// When it last became ready (for the oldest wait).
    pub(super) ready_since: Millis,
}

/// One queue's indexes.
#[derive(Debug, Default)]
pub(super) struct QueueState {
    /// Ready job ids, one list per priority, each in the order they became ready.
    ready: [VecDeque<JobId>; MAX_PRIORITY as usize + 1],
    ready_len: u64,
    delayed: BTreeSet<(Millis, JobId)>,
    reserved: BTreeSet<(Millis, JobId)>,
    pub(super) paused: bool,
    pub(super) capacity: Option<u64>,
}

impl QueueState {
    /// Takes waiting job `id` (at `place`, of `priority`) out of the indexes.
    pub(super) fn forget(&mut self, id: JobId, place: Place, priority: u8) {
        match place {
            Place::Ready => {
                let list = &mut self.ready[usize::from(priority.min(MAX_PRIORITY))];
                if let Some(index) = list.iter().position(|x| *x == id) {
                    list.remove(index);
                    self.ready_len -= 1;
                }
            }
            Place::Delayed(at) => {
                self.delayed.remove(&(at, id));
            }
            Place::Reserved { expires_at, .. } => {
                self.reserved.remove(&(expires_at, id));
            }
        }
    }

    /// Jobs counted against the bounded depth: ready and delayed.
    pub(super) fn depth(&self) -> u64 {
        self.ready_len + self.delayed.len() as u64
    }
}

/// Failed jobs, by id and by failure time.
#[derive(Debug, Default)]
pub(super) struct FailedState {
    pub(super) by_id: BTreeMap<JobId, FailedJob>,
    by_time: BTreeSet<(Millis, JobId)>,
}

impl FailedState {
    pub(super) fn insert(&mut self, job: FailedJob) {
        self.by_time.insert((job.failed_at, job.envelope.id));
        if let Some(old) = self.by_id.insert(job.envelope.id, job) {
            self.by_time.remove(&(old.failed_at, old.envelope.id));
        }
    }

    pub(super) fn remove(&mut self, id: JobId) -> Option<FailedJob> {
        let job = self.by_id.remove(&id)?;
        self.by_time.remove(&(job.failed_at, id));
        Some(job)
    }

    /// Drops the oldest failures beyond `max_jobs` and those older than `min_failed_at`.
    pub(super) fn retain(&mut self, max_jobs: usize, min_failed_at: Millis) -> u64 {
        let mut dropped = 0;
        while let Some(&(at, id)) = self.by_time.first() {
            if self.by_id.len() > max_jobs || at < min_failed_at {
                self.remove(id);
                dropped += 1;
            } else {
                break;
            }
        }
        dropped
    }
}

/// Everything the memory backend stores.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) jobs: HashMap<JobId, Slot>,
    pub(super) queues: BTreeMap<String, QueueState>,
    pub(super) failed: FailedState,
    pub(super) batches: BTreeMap<crate::batch::BatchId, super::flow::MemBatch>,
    /// Batch deadlines, soonest first (entries of finished or pruned
    /// batches are skipped when due).
    pub(super) deadlines: std::collections::BTreeSet<(Millis, crate::batch::BatchId)>,
    /// Finished batches moved out of `batches` by a prune.
    pub(super) archive: BTreeMap<crate::batch::BatchId, crate::batch::ArchivedBatch>,
    /// Where member outcomes are announced.
    pub(super) progress: crate::batch::progress::ProgressFeed,
    /// Unique locks by key.
    pub(super) locks: HashMap<String, crate::admission::machine::Lock>,
    /// Debounce records by key: the job waiting, and the first dispatch's time.
    pub(super) debounce: HashMap<String, (JobId, Millis)>,
    /// Whether the backend pushed jobs of its own (next links, callbacks)
    /// since the flag was last taken, so that waiting workers are woken.
    pub(super) follow_pushed: bool,
    next_token: u64,
}

impl State {
    pub(super) fn queue(&mut self, name: &str) -> &mut QueueState {
        if !self.queues.contains_key(name) {
            self.queues.insert(name.to_owned(), QueueState::default());
        }
        self.queues.get_mut(name).expect("inserted above")
    }

    /// Stores a new job, ready or delayed.
    pub(super) fn insert(&mut self, envelope: Envelope, available_at: Millis, now: Millis) {
        let id = envelope.id;
        let priority = usize::from(envelope.priority.min(MAX_PRIORITY));
        let queue = self.queue(&envelope.queue);
        let place = if available_at > now {
            queue.delayed.insert((available_at, id));
            Place::Delayed(available_at)
        } else {
            queue.ready[priority].push_back(id);
            queue.ready_len += 1;
            Place::Ready
        };
        let slot = Slot { envelope: Arc::new(envelope), attempts: 0, place, ready_since: now };
        self.jobs.insert(id, slot);
    }

    /// Moves due delayed jobs and expired leases of `queue` back to ready, at
    /// most [`RECOVERY_CHUNK`] of each.
    fn recover(&mut self, queue_name: &str, now: Millis) {
        let Some(queue) = self.queues.get_mut(queue_name) else { return };
        let mut moved = Vec::new();
        while moved.len() < RECOVERY_CHUNK {
            match queue.delayed.first() {
                Some(&(at, id)) if at <= now => {
                    queue.delayed.pop_first();
                    moved.push(id);
                }
                _ => break,
            }
        }
        let expired_from = moved.len();
        while moved.len() - expired_from < RECOVERY_CHUNK {
            match queue.reserved.first() {
                Some(&(at, id)) if at <= now => {
                    queue.reserved.pop_first();
                    moved.push(id);
                }
                _ => break,
            }
        }
        for id in moved {
            if let Some(slot) = self.jobs.get_mut(&id) {
                slot.place = Place::Ready;
                slot.ready_since = now;
                let priority = usize::from(slot.envelope.priority.min(MAX_PRIORITY));
                queue.ready[priority].push_back(id);
                queue.ready_len += 1;
            }
        }
    }

    /// Leases up to `max` jobs of `queues` (in order) for `lease_ms`; jobs that
    /// are out of attempts or past their deadline go to `dead`.
    pub(super) fn reserve(
        &mut self,
        queues: &[String],
        max: usize,
        lease_ms: Millis,
        now: Millis,
        dead: &mut Vec<FailedJob>,
    ) -> Vec<Reserved> {
        self.expire_batches(now);
        let mut out = Vec::new();
        // Jobs found dead whose workflow carries on (chain catch, batch).
        let mut flowing: Vec<(Envelope, String)> = Vec::new();
        // Jobs reserved with an admission ticket.
        let mut admitted: Vec<Arc<Envelope>> = Vec::new();
        // Members of cancelled batches dropped instead of leased.
        let mut dropped: Vec<(Arc<Envelope>, crate::job::BatchMember)> = Vec::new();
        for name in queues {
            if out.len() >= max {
                break;
            }
            self.recover(name, now);
            let Some(queue) = self.queues.get_mut(name.as_str()) else { continue };
            if queue.paused {
                continue;
            }
            'priorities: for priority in (0..queue.ready.len()).rev() {
                while out.len() < max {
                    let Some(id) = queue.ready[priority].pop_front() else { continue 'priorities };
                    queue.ready_len -= 1;
                    let Some(slot) = self.jobs.get_mut(&id) else { continue };
                    // A member of a cancelled batch that came back (its
                    // worker died) is dropped, not run again.
                    if let Some(member) = slot.envelope.flow.as_deref().and_then(|f| f.batch)
                        && self
                            .batches
                            .get(&member.batch)
                            .is_some_and(|b| b.record.cancelled_at.is_some())
                    {
                        let slot = self.jobs.remove(&id).expect("present above");
                        dropped.push((slot.envelope, member));
                        continue;
                    }
                    slot.attempts += 1;
                    if let Some((reason, error)) =
                        settle::refuse_reservation(&slot.envelope, slot.attempts, now)
                    {
                        let slot = self.jobs.remove(&id).expect("present above");
                        let attempts = slot.attempts - 1;
                        let mut envelope = Arc::unwrap_or_clone(slot.envelope);
                        envelope.record(crate::job::AttemptRecord {
                            attempt: slot.attempts,
                            at: now,
                            error: error.clone(),
                        });
                        if envelope.flow.is_some() {
                            flowing.push((envelope.clone(), error.clone()));
                        }
                        dead.push(FailedJob::new(envelope, attempts, now, reason, error));
                        continue;
                    }
                    self.next_token += 1;
                    let token = LeaseToken::new(self.next_token);
                    let expires_at = now.saturating_add(lease_ms);
                    slot.place = Place::Reserved { token, expires_at };
                    queue.reserved.insert((expires_at, id));
                    if slot.envelope.flow.as_deref().is_some_and(|f| f.admission.is_some()) {
                        admitted.push(Arc::clone(&slot.envelope));
                    }
                    let lease = Lease::new(id, name.as_str(), token, expires_at);
                    let waited = Duration::from_millis(now.saturating_sub(slot.ready_since));
                    out.push(Reserved::new(
                        Arc::clone(&slot.envelope),
                        slot.attempts,
                        lease,
                        waited,
                    ));
                }
                break;
            }
        }
        let mut follow = Vec::new();
        for (envelope, member) in dropped {
            self.record(member, crate::batch::MemberOutcome::Cancelled, None, now, &mut follow);
            self.admission_step(&envelope, crate::admission::machine::Step::Finished);
        }
        for (envelope, error) in flowing {
            let effect = Effect::Dead { reason: crate::failed::FailReason::Abandoned, error };
            self.flow_settled(&envelope, effect, now, &mut follow);
        }
        self.insert_follow(follow, now);
        for envelope in admitted {
            self.admission_step(&envelope, crate::admission::machine::Step::Reserved);
        }
        out
    }

    /// Applies one transition; `Err` when the lease is not the job's.
    pub(super) fn settle(
        &mut self,
        lease: &Lease,
        transition: Transition,
        now: Millis,
        dead: &mut Vec<FailedJob>,
    ) -> Result<Settlement, ()> {
        let Some(slot) = self.jobs.get_mut(&lease.job) else { return Err(()) };
        let Place::Reserved { token, expires_at } = slot.place else { return Err(()) };
        if token != lease.token || expires_at <= now {
            return Err(());
        }
        let attempts = slot.attempts;
        let effect = settle::apply(Arc::make_mut(&mut slot.envelope), attempts, now, transition);
        let mut settlement = effect.settlement();
        let mut follow = Vec::new();
        let effect = if slot.envelope.flow.is_some() {
            let envelope = Arc::clone(&slot.envelope);
            let (effect, instead) = self.flow_settled(&envelope, effect, now, &mut follow);
            settlement = instead.unwrap_or(settlement);
            effect
        } else {
            effect
        };
        let slot = self.jobs.get_mut(&lease.job).expect("present above");
        let queue_name = slot.envelope.queue.clone();
        let queue = self.queues.get_mut(&queue_name).expect("a job's queue exists");
        match effect {
            Effect::Kept => {}
            Effect::Extended { expires_at: new_expiry } => {
                queue.reserved.remove(&(expires_at, lease.job));
                queue.reserved.insert((new_expiry, lease.job));
                slot.place = Place::Reserved { token, expires_at: new_expiry };
            }
            Effect::Requeue { available_at } => {
                queue.reserved.remove(&(expires_at, lease.job));
                if available_at > now {
                    queue.delayed.insert((available_at, lease.job));
                    slot.place = Place::Delayed(available_at);
                } else {
                    let priority = usize::from(slot.envelope.priority.min(MAX_PRIORITY));
                    queue.ready[priority].push_back(lease.job);
                    queue.ready_len += 1;
                    slot.place = Place::Ready;
                    slot.ready_since = now;
                }
            }
            Effect::Delete => {
                queue.reserved.remove(&(expires_at, lease.job));
                self.jobs.remove(&lease.job);
            }
            Effect::Dead { reason, error } => {
                queue.reserved.remove(&(expires_at, lease.job));
                let slot = self.jobs.remove(&lease.job).expect("present above");
                let envelope = Arc::unwrap_or_clone(slot.envelope);
                dead.push(FailedJob::new(envelope, attempts, now, reason, error));
            }
        }
        self.insert_follow(follow, now);
        Ok(settlement)
    }

    /// The sizes of `name`.
    pub(super) fn size(&self, name: &str, now: Millis) -> QueueSize {
        let Some(queue) = self.queues.get(name) else { return QueueSize::default() };
        let due = queue.delayed.range(..=(now, JobId::from_u128(u128::MAX))).count() as u64;
        let expired = queue.reserved.range(..=(now, JobId::from_u128(u128::MAX))).count() as u64;
        let oldest = queue
            .ready
            .iter()
            .filter_map(|list| list.front())
            .filter_map(|id| self.jobs.get(id))
            .map(|slot| slot.ready_since)
            .min();
        let oldest_due = queue.delayed.first().filter(|(at, _)| *at <= now).map(|(at, _)| *at);
        let oldest = match (oldest, oldest_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        QueueSize {
            ready: queue.ready_len + due + expired,
            delayed: queue.delayed.len() as u64 - due,
            reserved: queue.reserved.len() as u64 - expired,
            paused: queue.paused,
            oldest_wait_ms: oldest.map_or(0, |since| now.saturating_sub(since)),
        }
    }

    /// The ready jobs of `name` in reservation order, at most `limit`.
    pub(super) fn peek(&self, name: &str, limit: usize) -> Vec<Envelope> {
        let Some(queue) = self.queues.get(name) else { return Vec::new() };
        queue
            .ready
            .iter()
            .rev()
            .flatten()
            .filter_map(|id| self.jobs.get(id))
            .take(limit)
            .map(|slot| (*slot.envelope).clone())
            .collect()
    }

    /// Deletes the ready and delayed jobs of `name`.
    pub(super) fn clear(&mut self, name: &str, now: Millis) -> u64 {
        let Some(queue) = self.queues.get_mut(name) else { return 0 };
        let mut removed = Vec::new();
        for list in &mut queue.ready {
            removed.extend(list.drain(..));
        }
        queue.ready_len = 0;
        removed.extend(std::mem::take(&mut queue.delayed).into_iter().map(|(_, id)| id));
        let mut cleared = 0;
        let mut follow = Vec::new();
        for id in removed {
            if let Some(slot) = self.jobs.remove(&id) {
                cleared += 1;
                // A cleared job is done: its unique lock goes with it, and
                // a batch member counts as cancelled.
                self.admission_step(&slot.envelope, crate::admission::machine::Step::Finished);
                if let Some(member) = slot.envelope.flow.as_deref().and_then(|f| f.batch) {
                    let cancelled = crate::batch::model::MemberOutcome::Cancelled;
                    self.record(member, cancelled, None, now, &mut follow);
                }
            }
        }
        self.insert_follow(follow, now);
        cleared
    }

    /// Puts a failed job back as a fresh job, available now.
    pub(super) fn revive(&mut self, failed: FailedJob, now: Millis) {
        let mut envelope = failed.envelope;
        envelope.exceptions = 0;
        self.insert(envelope, now, now);
    }
}
