//! The loop's calls to the backend: reservations, settlements, and both at
//! once.

use std::sync::Arc;

use tokio::time::Instant as TokioInstant;

use super::{Counters, Pending, Runner, SETTLE_BATCH};
use crate::queue::{QueueBackend, QueueError, Reservation, ReserveRequest, Settled, Transition};
use crate::worker::event::WorkerEvent;

impl<B: QueueBackend> Runner<B> {
    /// Whether the backend may be called (not backing off after a failure).
    pub(super) fn backend_up(&self) -> bool {
        self.backend_down_until.is_none_or(|until| TokioInstant::now() >= until)
    }

    /// Whether the next batch of transitions is acknowledgements only.
    pub(super) fn acks_first(&self) -> bool {
        !self.pending.is_empty()
            && self
                .pending
                .iter()
                .take(SETTLE_BATCH)
                .all(|p| matches!(p.transition, Transition::Ack))
    }

    /// Sends the next batch of transitions (acknowledgements) and the
    /// reservation for the free slots together; whether the reservation
    /// reached the backend.
    pub(super) async fn ack_and_fill(&mut self) -> bool {
        let batch = self.take_batch();
        let transitions = batch.iter().map(|p| (p.lease.clone(), p.transition.clone())).collect();
        let shared = Arc::clone(&self.shared);
        let want = self.free();
        let request = ReserveRequest::new(&shared.config.queues, want, shared.config.lease);
        let (settled, reserved) = shared.backend.settle_and_reserve(transitions, request).await;
        // A failure is taken in last, so that the other call's success does
        // not end the backoff it starts; one failure of both backs off once.
        let reached = match (settled, reserved) {
            (settled @ Ok(_), reserved) => {
                self.apply_settled(batch, settled);
                self.apply_reservation(want, reserved)
            }
            (settled @ Err(_), reserved @ Ok(_)) => {
                let reached = self.apply_reservation(want, reserved);
                self.apply_settled(batch, settled);
                reached
            }
            (settled @ Err(_), Err(_)) => {
                self.apply_settled(batch, settled);
                false
            }
        };
        // A backend may have run the reservation before the
        // acknowledgements (Redis, when it had to load a script first), so
        // a short answer is not taken for an empty queue: the next round
        // asks again on its own.
        self.more_available = true;
        reached
    }

    /// Reserves jobs for the free slots; whether the call reached the backend.
    pub(super) async fn fill(&mut self) -> bool {
        let config = &self.shared.config;
        let want = self.free();
        let request = ReserveRequest::new(&config.queues, want, config.lease);
        let result = self.shared.backend.reserve(request).await;
        self.apply_reservation(want, result)
    }

    /// Takes the reservation of `want` jobs in; whether it reached the backend.
    fn apply_reservation(&mut self, want: usize, result: Result<Reservation, QueueError>) -> bool {
        match result {
            Ok(reservation) => {
                self.backend_ok();
                self.more_available = reservation.jobs.len() >= want;
                for dead in reservation.dead {
                    self.count(&dead.envelope.queue, |m| &m.dead, |c| &c.dead);
                    self.emit(|| WorkerEvent::FoundDead {
                        id: dead.envelope.id,
                        name: dead.envelope.name.clone(),
                        queue: dead.envelope.queue.clone(),
                        reason: dead.reason,
                    });
                }
                Counters::add(&self.shared.counters.prefetched, reservation.jobs.len() as u64);
                self.buffer.extend(reservation.jobs);
                true
            }
            Err(error) => {
                self.backend_failed(&error);
                false
            }
        }
    }

    /// Sends the waiting transitions, a batch at a time.
    pub(super) async fn flush(&mut self) {
        while !self.pending.is_empty() {
            let batch = self.take_batch();
            let transitions =
                batch.iter().map(|p| (p.lease.clone(), p.transition.clone())).collect();
            let result = self.shared.backend.settle(transitions).await;
            if !self.apply_settled(batch, result) {
                return;
            }
        }
    }

    /// The next batch of waiting transitions, taken off the queue.
    fn take_batch(&mut self) -> Vec<Pending> {
        let n = self.pending.len().min(SETTLE_BATCH);
        self.pending.drain(..n).collect()
    }

    /// Takes the backend's answer to `batch` in; on a failure the batch goes
    /// back to the front of the waiting transitions (`false`).
    fn apply_settled(
        &mut self,
        batch: Vec<Pending>,
        result: Result<Vec<Settled>, QueueError>,
    ) -> bool {
        match result {
            Ok(results) => {
                self.backend_ok();
                for (pending, settled) in batch.into_iter().zip(results) {
                    self.settled(pending, settled);
                }
                true
            }
            Err(error) => {
                for pending in batch.into_iter().rev() {
                    self.pending.push_front(pending);
                }
                self.backend_failed(&error);
                false
            }
        }
    }
}
