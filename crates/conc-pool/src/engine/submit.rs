//! Taking work in: room in the queue, the rejection policy, placement,
//! eviction and refusal.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, Flavor};
use crate::queue::{PushError, Reservation};
use crate::{JoinError, Rejection, SubmitError};

/// Where a task goes once admitted.
#[derive(Debug)]
pub(crate) enum Room<'a, J> {
    /// Room reserved in the queue.
    Reserved(Reservation<'a, J>),
    /// A full queue under the drop-oldest policy: the task takes the place
    /// of the oldest task of the lowest priority.
    Evict,
}

/// Why a task was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
    Timeout,
}

/// How a submission goes on.
#[derive(Debug)]
pub(crate) enum Admitted<'a, J> {
    /// Into the queue.
    Queue(Room<'a, J>),
    /// Run by the caller (the caller-runs policy on a full queue).
    RunHere,
    /// Wait up to this long for room (the block policy on a full queue).
    Wait(Duration),
}

impl<F: Flavor> Engine<F> {
    /// Admits one task under the pool's policy (`honour_policy: false`, for
    /// the `try_` forms, refuses a full queue outright). One atomic operation
    /// when there is room; no lock, no allocation.
    pub(crate) fn admit(&self, honour_policy: bool) -> Result<Admitted<'_, F::Job>, Refusal> {
        if let Some(reservation) = self.core.queue.try_reserve() {
            return Ok(Admitted::Queue(Room::Reserved(reservation)));
        }
        if !honour_policy {
            return Err(Refusal::Full);
        }
        match self.core.rejection {
            Rejection::Reject => Err(Refusal::Full),
            Rejection::CallerRuns if self.core.queue.is_closed() => Err(Refusal::Closed),
            Rejection::CallerRuns => {
                self.core.count_caller_ran();
                Ok(Admitted::RunHere)
            }
            Rejection::DropOldest => Ok(Admitted::Queue(Room::Evict)),
            Rejection::Block(timeout) => Ok(Admitted::Wait(timeout)),
        }
    }

    /// Puts `item` into `room`, turned into a job by `into_job` only once the
    /// push is sure to succeed, so a refused item comes back as it was given.
    pub(crate) fn place<I>(
        self: &Arc<Self>,
        room: Room<'_, F::Job>,
        item: I,
        priority: i32,
        into_job: impl FnOnce(I) -> F::Job,
    ) -> Result<(), (Refusal, I)> {
        let core = &self.core;
        let now = core.now();
        let pushed = match room {
            Room::Reserved(reservation) => {
                core.queue.push(reservation, item, into_job, priority, now).map(|woke| {
                    core.instruments.depth.increment(1.0);
                    if !woke {
                        self.queued_without_idle_worker(now);
                    }
                })
            }
            Room::Evict => core.queue.push_evicting(item, into_job, priority, now).map(|evicted| {
                core.count_evicted();
                let unstarted = F::hand_back(self, evicted.job, JoinError::Evicted);
                if let Some(hook) = &self.on_evict {
                    hook(unstarted);
                }
            }),
        };
        match pushed {
            Ok(()) => {
                core.instruments.submitted.increment(1);
                Ok(())
            }
            Err(PushError::Full(item)) => Err((Refusal::Full, item)),
            Err(PushError::Closed(item)) => Err((Refusal::Closed, item)),
        }
    }

    /// Turns a refusal into the error handed to the caller, counting it.
    pub(crate) fn refuse<I>(&self, refusal: Refusal, item: I) -> SubmitError<I> {
        self.core.count_rejected();
        match refusal {
            Refusal::Full => SubmitError::Full(item),
            Refusal::Closed => SubmitError::Closed(item),
            Refusal::Timeout => SubmitError::Timeout(item),
        }
    }
}
