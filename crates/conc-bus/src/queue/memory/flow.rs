//! The memory backend's workflows: batches as sets of member outcomes, the
//! chain hand-off, cancellation — each applied under the one lock, in the
//! step that settles the job it comes from.

use std::collections::BTreeMap;

use super::state::{Place, State};
use crate::admission::machine::Step;
use crate::batch::machine::{self, Fire, Unrecoverable};
use crate::batch::model::{BatchRecord, Counts, MemberOutcome};
use crate::batch::progress::BatchProgress;
use crate::batch::{ArchivedBatch, BatchId, BatchInfo, BatchPrune, MAX_FAILED_JOBS};
use crate::chain::{chain_catch, next_link};
use crate::clock::Millis;
use crate::id::JobId;
use crate::job::{BatchMember, Envelope};
use crate::queue::backend::{Pushed, Settlement};
use crate::queue::settle::Effect;

/// One batch: its record and the set of members with their outcomes.
#[derive(Debug)]
pub(super) struct MemBatch {
    pub(super) record: BatchRecord,
    pub(super) members: BTreeMap<JobId, Option<MemberOutcome>>,
    /// Failed members, in the order they failed.
    pub(super) failed: Vec<JobId>,
    /// Taken from `members` as outcomes are set (each member once).
    pub(super) counts: Counts,
}

impl MemBatch {
    pub(super) fn info(&self) -> BatchInfo {
        BatchInfo::new(
            &self.record,
            self.counts,
            self.failed.iter().take(MAX_FAILED_JOBS).copied().collect(),
        )
    }
}

impl State {
    /// Whether the batch of `member` is cancelled.
    fn batch_cancelled(&self, member: Option<BatchMember>) -> bool {
        member
            .and_then(|m| self.batches.get(&m.batch))
            .is_some_and(|b| b.record.cancelled_at.is_some())
    }

    /// Carries the workflow of `envelope` on after `effect`: the effect to
    /// apply instead (when a cancelled batch drops the job), the settlement
    /// to report instead, and the jobs to push in `follow`.
    pub(super) fn flow_settled(
        &mut self,
        envelope: &Envelope,
        effect: Effect,
        now: Millis,
        follow: &mut Vec<Pushed>,
    ) -> (Effect, Option<Settlement>) {
        let (effect, instead) = self.flow_effects(envelope, effect, now, follow);
        let step = match effect {
            Effect::Delete | Effect::Dead { .. } => Some(Step::Finished),
            Effect::Requeue { .. } => Some(Step::Requeued),
            Effect::Extended { .. } | Effect::Kept => None,
        };
        if let Some(step) = step {
            self.admission_step(envelope, step);
        }
        (effect, instead)
    }

    fn flow_effects(
        &mut self,
        envelope: &Envelope,
        effect: Effect,
        now: Millis,
        follow: &mut Vec<Pushed>,
    ) -> (Effect, Option<Settlement>) {
        let Some(flow) = envelope.flow.as_deref() else { return (effect, None) };
        let cancelled = self.batch_cancelled(flow.batch);
        match &effect {
            Effect::Delete => {
                let next = if cancelled { None } else { next_link(envelope, now) };
                match next {
                    Some(next) => follow.push(next),
                    None => {
                        if let Some(member) = flow.batch {
                            let outcome = if flow.chain.is_empty() {
                                MemberOutcome::Succeeded
                            } else {
                                MemberOutcome::Cancelled
                            };
                            self.record(member, outcome, None, now, follow);
                        }
                    }
                }
                (effect, None)
            }
            Effect::Dead { error, .. } => {
                follow.extend(chain_catch(envelope, error, now));
                if let Some(member) = flow.batch {
                    self.record(member, MemberOutcome::Failed, Some(error), now, follow);
                }
                (effect, None)
            }
            Effect::Requeue { .. } if cancelled => {
                if let Some(member) = flow.batch {
                    self.record(member, MemberOutcome::Cancelled, None, now, follow);
                }
                (Effect::Delete, Some(Settlement::Skipped))
            }
            Effect::Extended { expires_at } if cancelled => {
                let expires_at = *expires_at;
                (effect, Some(Settlement::StopAsked { expires_at }))
            }
            _ => (effect, None),
        }
    }

    /// Records `outcome` for `member` unless it has one; claims and queues
    /// the callbacks it fires; cancels the batch when it says so.
    pub(super) fn record(
        &mut self,
        member: BatchMember,
        outcome: MemberOutcome,
        error: Option<&str>,
        now: Millis,
        follow: &mut Vec<Pushed>,
    ) {
        let Some(batch) = self.batches.get_mut(&member.batch) else { return };
        let Some(slot) = batch.members.get_mut(&member.member) else { return };
        if slot.is_some() {
            return;
        }
        *slot = Some(outcome);
        batch.counts.add(outcome);
        if outcome == MemberOutcome::Failed {
            batch.failed.push(member.member);
        }
        let decision = machine::on_outcome(
            &mut batch.record,
            batch.counts,
            member.member,
            outcome,
            error,
            now,
        );
        follow.extend(machine::callback_jobs(&batch.record, &decision.fire, now));
        let progress = BatchProgress::new(&batch.record, batch.counts, member.member, outcome);
        self.progress.send(progress);
        if decision.cancel {
            self.drop_waiting(member.batch, now, follow);
        }
    }

    /// Times out the batches whose deadline has passed at `now`: their
    /// unfinished members count as cancelled (waiting jobs deleted, running
    /// ones asked to stop), and `catch` and `finally` fire once.
    pub(super) fn expire_batches(&mut self, now: Millis) {
        let mut follow = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(batch) = self.batches.get_mut(&id) else { continue };
            let Some(fires) = machine::time_out(&mut batch.record, now) else { continue };
            follow.extend(machine::callback_jobs(&batch.record, &fires, now));
            self.drop_waiting(id, now, &mut follow);
            let running: Vec<JobId> = self.batches.get(&id).map_or_else(Vec::new, |batch| {
                batch.members.iter().filter(|(_, o)| o.is_none()).map(|(m, _)| *m).collect()
            });
            for member in running {
                let member = BatchMember::new(id, member);
                self.record(member, MemberOutcome::Cancelled, None, now, &mut follow);
            }
        }
        self.insert_follow(follow, now);
    }

    /// Deletes the waiting jobs of batch `id`, counts their members as
    /// cancelled and releases their unique locks.
    pub(super) fn drop_waiting(&mut self, id: BatchId, now: Millis, follow: &mut Vec<Pushed>) {
        let waiting: Vec<(JobId, BatchMember)> = self
            .jobs
            .iter()
            .filter(|(_, slot)| !matches!(slot.place, Place::Reserved { .. }))
            .filter_map(|(job, slot)| {
                let member = slot.envelope.flow.as_deref()?.batch?;
                (member.batch == id).then_some((*job, member))
            })
            .collect();
        for (job, member) in waiting {
            if let Some(slot) = self.jobs.get(&job) {
                let envelope = std::sync::Arc::clone(&slot.envelope);
                self.admission_step(&envelope, Step::Finished);
            }
            self.remove_waiting(job);
            self.record(member, MemberOutcome::Cancelled, None, now, follow);
        }
    }

    /// Stores jobs the backend pushes itself (next links, callbacks): never
    /// refused by a queue's bound, and skipped when their id is stored
    /// already (the same callback never makes two jobs).
    pub(super) fn insert_follow(&mut self, follow: Vec<Pushed>, now: Millis) {
        for job in follow {
            let id = job.envelope.id;
            if !self.jobs.contains_key(&id) && !self.failed.by_id.contains_key(&id) {
                self.insert(job.envelope, job.available_at, now);
                self.follow_pushed = true;
            }
        }
    }

    /// Stores a new batch with its members pushed (admitted, as a push
    /// admits: checked by the caller); fires its callbacks at once when it
    /// has no members.
    pub(super) fn create_batch(&mut self, record: BatchRecord, members: Vec<Pushed>, now: Millis) {
        let id = record.id;
        if let Some(deadline) = record.deadline {
            self.deadlines.insert((deadline, id));
        }
        let mut batch = MemBatch {
            record,
            members: BTreeMap::new(),
            failed: Vec::new(),
            counts: Counts::default(),
        };
        for job in &members {
            if let Some(member) = job.envelope.flow.as_deref().and_then(|f| f.batch) {
                batch.members.insert(member.member, None);
            }
        }
        batch.counts.total = batch.members.len() as u64;
        let fires: Vec<Fire> = machine::on_settled(&mut batch.record, batch.counts, now);
        let callbacks = machine::callback_jobs(&batch.record, &fires, now);
        self.batches.insert(id, batch);
        for job in members {
            let available_at = self.admit(&job, now);
            self.insert(job.envelope, available_at, now);
        }
        self.insert_follow(callbacks, now);
    }

    /// Adds the members of `jobs` not in batch `id` yet and pushes them
    /// (admitted, as a push admits: checked by the caller).
    pub(super) fn add_members(&mut self, id: BatchId, jobs: Vec<Pushed>, now: Millis) -> u64 {
        let Some(batch) = self.batches.get_mut(&id) else { return 0 };
        let mut fresh = Vec::new();
        for job in jobs {
            let Some(member) = job.envelope.flow.as_deref().and_then(|f| f.batch) else { continue };
            if batch.members.contains_key(&member.member) {
                continue;
            }
            batch.members.insert(member.member, None);
            fresh.push(job);
        }
        batch.counts.total += fresh.len() as u64;
        let added = fresh.len() as u64;
        for job in fresh {
            let available_at = self.admit(&job, now);
            self.insert(job.envelope, available_at, now);
        }
        added
    }

    /// Cancels batch `id`; whether it was running.
    pub(super) fn cancel_batch(&mut self, id: BatchId, now: Millis) -> bool {
        let Some(batch) = self.batches.get_mut(&id) else { return false };
        if !machine::cancel(&mut batch.record, now) {
            return false;
        }
        let mut follow = Vec::new();
        self.drop_waiting(id, now, &mut follow);
        // Nothing may have been waiting: the batch may be finished already.
        if let Some(batch) = self.batches.get_mut(&id) {
            let fires = machine::on_settled(&mut batch.record, batch.counts, now);
            follow.extend(machine::callback_jobs(&batch.record, &fires, now));
        }
        self.insert_follow(follow, now);
        true
    }

    /// Deletes (or archives) the batches `prune` selects at `now`, and the
    /// archives it drops; how many of both.
    pub(super) fn prune_batches(&mut self, prune: BatchPrune, now: Millis) -> u64 {
        let doomed: Vec<BatchId> = self
            .batches
            .iter()
            .filter(|(_, batch)| prune.selects(&batch.record, now))
            .map(|(id, _)| *id)
            .collect();
        for id in &doomed {
            let Some(batch) = self.batches.remove(id) else { continue };
            if prune.archive && batch.record.finished_at.is_some() {
                let members =
                    batch.members.iter().filter_map(|(job, o)| Some((*job, (*o)?))).collect();
                self.archive.insert(*id, ArchivedBatch::new(batch.info(), members, now));
            }
        }
        let archives = self.archive.len();
        self.archive.retain(|_, archived| !prune.drops_archive(archived.archived_at, now));
        (doomed.len() + archives - self.archive.len()) as u64
    }

    /// Re-dispatches the failed members of finished batch `id` whose jobs
    /// are in the failed store, and reopens it; how many.
    pub(super) fn recover_batch(&mut self, id: BatchId, now: Millis) -> Result<u64, Unrecoverable> {
        let Some(batch) = self.batches.get(&id) else { return Err(Unrecoverable::NotFound) };
        machine::check_recover(&batch.record, batch.counts)?;
        let mut recovered = Vec::new();
        for member in batch.failed.clone() {
            if self.jobs.contains_key(&member) {
                continue;
            }
            if let Some(job) = self.failed.remove(member) {
                self.revive(job, now);
                recovered.push(member);
            }
        }
        if recovered.is_empty() {
            return Ok(0);
        }
        let batch = self.batches.get_mut(&id).expect("found above");
        for member in &recovered {
            batch.members.insert(*member, None);
            batch.counts.failed = batch.counts.failed.saturating_sub(1);
        }
        batch.failed.retain(|member| !recovered.contains(member));
        machine::reopen(&mut batch.record, recovered.len() as u64);
        self.follow_pushed = true;
        Ok(recovered.len() as u64)
    }

    /// The waiting job `id` taken out of its queue.
    pub(super) fn remove_waiting(&mut self, id: JobId) {
        let Some(slot) = self.jobs.remove(&id) else { return };
        let Some(queue) = self.queues.get_mut(&slot.envelope.queue) else { return };
        queue.forget(id, slot.place, slot.envelope.priority);
    }
}
