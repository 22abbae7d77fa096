//! The memory queue's admission: unique locks and debounce records under
//! the one lock, taken with the push and released with the reservation or
//! the settlement, as [`machine`] says.

use std::collections::HashMap;

use super::state::{Place, State};
use crate::admission::Ticket;
use crate::admission::machine::{self, Action, Step};
use crate::batch::model::MemberOutcome;
use crate::clock::Millis;
use crate::id::JobId;
use crate::job::Envelope;
use crate::queue::backend::Pushed;

fn ticket(envelope: &Envelope) -> Option<&Ticket> {
    envelope.flow.as_deref()?.admission.as_ref()
}

impl State {
    /// Whether `jobs` may be stored at `now`: the first unique key held by
    /// another job (or taken twice by `jobs`), with its holder, if not.
    pub(super) fn check_admission(
        &self,
        jobs: &[Pushed],
        now: Millis,
    ) -> Result<(), (String, JobId)> {
        let mut taken: HashMap<&str, JobId> = HashMap::new();
        for job in jobs {
            let Some(ticket) = ticket(&job.envelope).filter(|t| machine::is_unique(t)) else {
                continue;
            };
            if let Some(lock) = self.locks.get(&ticket.key)
                && lock.holds(now)
                && lock.owner != job.envelope.id
            {
                return Err((ticket.key.clone(), lock.owner));
            }
            if let Some(owner) = taken.insert(&ticket.key, job.envelope.id) {
                return Err((ticket.key.clone(), owner));
            }
        }
        Ok(())
    }

    /// Admits `job` (checked by [`check_admission`](Self::check_admission)):
    /// takes its lock, or supersedes the debounced job of its key still
    /// waiting. When it becomes available.
    pub(super) fn admit(&mut self, job: &Pushed, now: Millis) -> Millis {
        let Some(ticket) = ticket(&job.envelope) else { return job.available_at };
        let id = job.envelope.id;
        if machine::is_unique(ticket) {
            self.locks.insert(ticket.key.clone(), machine::lock_for(ticket, id, now));
            return job.available_at;
        }
        let first_at = match self.debounce.get(&ticket.key).copied() {
            Some((old, first_at)) if self.is_waiting(old) => {
                // Superseded: deleted with the chain it carries; a batch
                // member counts as cancelled (its batch would wait for it
                // forever otherwise).
                let member =
                    self.jobs.get(&old).and_then(|slot| slot.envelope.flow.as_deref()?.batch);
                self.remove_waiting(old);
                if let Some(member) = member {
                    let mut follow = Vec::new();
                    self.record(member, MemberOutcome::Cancelled, None, now, &mut follow);
                    self.insert_follow(follow, now);
                }
                first_at
            }
            _ => now,
        };
        self.debounce.insert(ticket.key.clone(), (id, first_at));
        machine::debounce_at(ticket, first_at, now).max(job.available_at)
    }

    fn is_waiting(&self, id: JobId) -> bool {
        self.jobs.get(&id).is_some_and(|slot| !matches!(slot.place, Place::Reserved { .. }))
    }

    /// Applies `step` of `envelope`'s life to its lock: released only when
    /// the job still owns it.
    pub(super) fn admission_step(&mut self, envelope: &Envelope, step: Step) {
        let Some(ticket) = ticket(envelope) else { return };
        match machine::on(ticket.release, step) {
            Action::Keep => {}
            Action::Release => {
                if self.locks.get(&ticket.key).is_some_and(|lock| lock.owner == envelope.id) {
                    self.locks.remove(&ticket.key);
                }
            }
            Action::EndDebounce => {
                if self.debounce.get(&ticket.key).is_some_and(|(job, _)| *job == envelope.id) {
                    self.debounce.remove(&ticket.key);
                }
            }
        }
    }
}
