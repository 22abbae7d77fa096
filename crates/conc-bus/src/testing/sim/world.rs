//! The simulated world: one memory backend shared by every worker, each
//! worker reaching it through its own [`ChaosBackend`] that injects the faults
//! aimed at it, and the ledger of what really happened to every job (runs,
//! acknowledgements, failures) that the report is made from.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant as TokioInstant;

use super::plan::{Fault, FaultKind};
use super::report::{FaultRecord, LostJob, LostState};
use crate::clock::millis;
use crate::failed::{FailReason, FailedJob, FailedQuery, Selection};
use crate::id::JobId;
use crate::job::Envelope;
use crate::queue::{
    FailedStore, Lease, LeaseToken, MemoryQueue, PushError, Pushed, QueueBackend, QueueError,
    QueueSize, Reservation, ReserveRequest, Settled, Settlement, Transition,
};

/// Where a job is, as far as the queue is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Ready or delayed.
    Waiting,
    /// Leased to a worker.
    Held,
    /// Acknowledged: done.
    Acked,
    /// In the failed store; `by_attempt` when an attempt's own outcome sent
    /// it there (an error, a panic, a timeout, a payload that does not decode).
    Failed { reason: FailReason, by_attempt: bool },
}

/// One job's history.
#[derive(Debug)]
struct Ledger {
    name: String,
    runs: u64,
    /// Whether its last attempt asked to run again (a retryable failure or a release).
    rerun_asked: bool,
    place: Place,
}

/// One worker's life, from its start to its kill (or the end).
#[derive(Debug)]
struct Incarnation {
    name: String,
    /// Its worker index.
    slot: usize,
    dead: bool,
    /// The leases it holds, by job.
    held: BTreeMap<JobId, LeaseToken>,
    /// Leases whose renewals are dropped until the instant.
    refused: BTreeMap<JobId, (LeaseToken, TokioInstant)>,
}

/// A worker index: the incarnation running it and the faults armed on it.
#[derive(Debug, Default)]
struct Slot {
    current: usize,
    armed: VecDeque<Fault>,
}

#[derive(Debug)]
pub(super) struct State {
    jobs: BTreeMap<JobId, Ledger>,
    incarnations: Vec<Incarnation>,
    slots: Vec<Slot>,
    fired: Vec<FaultRecord>,
    runs: u64,
    duplicates: u64,
    retries: u64,
    resolved: u64,
    /// Reservations per worker index.
    reservations: Vec<u64>,
}

/// What the simulation's tasks share.
pub(super) struct World {
    state: Mutex<State>,
    start: TokioInstant,
    /// Woken whenever a job is reserved or settled. (A `Notify` wakes its
    /// waiters in the order they came, so runs replay exactly.)
    changed: Notify,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("World")
            .field("jobs", &state.jobs.len())
            .field("workers", &state.incarnations.len())
            .field("runs", &state.runs)
            .field("resolved", &state.resolved)
            .finish_non_exhaustive()
    }
}

/// A transition's fate in a [`ChaosBackend::settle`] call.
enum Fate {
    Forward,
    Answer(Settled),
}

/// The totals a report is made of.
pub(super) struct Tally {
    pub(super) acked: u64,
    pub(super) failed: u64,
    pub(super) runs: u64,
    pub(super) duplicates: u64,
    pub(super) retries: u64,
    pub(super) faults: Vec<FaultRecord>,
    pub(super) lost: Vec<LostJob>,
}

impl World {
    /// A world of `workers` worker indexes holding `jobs` (id and name), waiting.
    pub(super) fn new(workers: usize, jobs: impl IntoIterator<Item = (JobId, String)>) -> Self {
        let jobs = jobs
            .into_iter()
            .map(|(id, name)| {
                (id, Ledger { name, runs: 0, rerun_asked: false, place: Place::Waiting })
            })
            .collect();
        let state = State {
            jobs,
            incarnations: Vec::new(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
            fired: Vec::new(),
            runs: 0,
            duplicates: 0,
            retries: 0,
            resolved: 0,
            reservations: vec![0; workers],
        };
        Self { state: Mutex::new(state), start: TokioInstant::now(), changed: Notify::new() }
    }

    /// Waits until `done` holds.
    async fn wait_until(&self, done: impl Fn(&State) -> bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.lock()) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until `runs` handler runs have started.
    pub(super) async fn runs_reach(&self, runs: u64) {
        self.wait_until(|state| state.runs >= runs).await;
    }

    /// Waits until `jobs` jobs are acknowledged or failed.
    pub(super) async fn resolved_reach(&self, jobs: u64) {
        self.wait_until(|state| state.resolved >= jobs).await;
    }

    /// Waits until worker `slot` reserves again after its `seen`-th reservation.
    pub(super) async fn reserves_after(&self, slot: usize, seen: u64) {
        self.wait_until(|state| state.reservations[slot] > seen).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only this module's bookkeeping runs under the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long the simulation has run, on tokio's clock.
    pub(super) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Registers a new incarnation of worker `slot`, named `name`; its index.
    pub(super) fn born(&self, slot: usize, name: String) -> usize {
        let mut state = self.lock();
        let index = state.incarnations.len();
        state.incarnations.push(Incarnation {
            name,
            slot,
            dead: false,
            held: BTreeMap::new(),
            refused: BTreeMap::new(),
        });
        state.slots[slot].current = index;
        index
    }

    fn is_dead(&self, incarnation: usize) -> bool {
        self.lock().incarnations[incarnation].dead
    }

    /// Arms an acknowledgement or renewal fault on its worker.
    pub(super) fn arm(&self, fault: Fault) {
        self.lock().slots[fault.worker].armed.push_back(fault);
    }

    /// Kills worker `fault.worker` if it holds a job now: its incarnation's
    /// index; or, when it holds nothing, how many reservations it made so far.
    pub(super) fn kill(&self, fault: Fault) -> Result<usize, u64> {
        let at = self.elapsed();
        let mut state = self.lock();
        let index = state.slots[fault.worker].current;
        let reservations = state.reservations[fault.worker];
        let incarnation = &mut state.incarnations[index];
        if incarnation.held.is_empty() {
            return Err(reservations);
        }
        incarnation.dead = true;
        let hit = incarnation.held.keys().copied().collect();
        let worker = incarnation.name.clone();
        state.fired.push(FaultRecord { fault, at, worker, hit });
        Ok(index)
    }

    /// Books a reservation made by `incarnation`.
    fn reserved(&self, incarnation: usize, reservation: &Reservation) {
        {
            let mut state = self.lock();
            let state = &mut *state;
            for job in &reservation.jobs {
                let id = job.lease.job;
                state.runs += 1;
                if let Some(ledger) = state.jobs.get_mut(&id) {
                    ledger.runs += 1;
                    if ledger.runs > 1 {
                        state.duplicates += 1;
                        if ledger.rerun_asked {
                            state.retries += 1;
                        }
                    }
                    ledger.rerun_asked = false;
                    ledger.place = Place::Held;
                }
                state.incarnations[incarnation].held.insert(id, job.lease.token);
            }
            for dead in &reservation.dead {
                if let Some(ledger) = state.jobs.get_mut(&dead.envelope.id)
                    && resolve(ledger, Place::Failed { reason: dead.reason, by_attempt: false })
                {
                    state.resolved += 1;
                }
            }
            if !reservation.jobs.is_empty() {
                let slot = state.incarnations[incarnation].slot;
                state.reservations[slot] += 1;
            }
        }
        self.changed.notify_waiters();
    }

    /// Decides what happens to each transition of a settle call by
    /// `incarnation`, firing the faults armed on its worker; and how long to
    /// hold the call first.
    fn plan_settle(
        &self,
        incarnation: usize,
        batch: &[(Lease, Transition)],
        backend_now: u64,
    ) -> (Vec<Fate>, Option<Duration>) {
        let now = TokioInstant::now();
        let at = self.elapsed();
        let mut fates: Vec<Fate> = batch.iter().map(|_| Fate::Forward).collect();
        let mut hold = None;
        let mut state = self.lock();
        let state = &mut *state;
        let me = &mut state.incarnations[incarnation];
        let slot = &mut state.slots[me.slot];
        if slot.current != incarnation {
            return (fates, hold);
        }
        let extended = |lease: Duration| {
            Fate::Answer(Ok(Settlement::Extended {
                expires_at: backend_now.saturating_add(millis(lease)),
            }))
        };
        // An acknowledgement fault takes the first acknowledgement.
        if let Some(index) = batch.iter().position(|(_, t)| matches!(t, Transition::Ack))
            && let Some(armed) = slot
                .armed
                .iter()
                .position(|f| matches!(f.kind, FaultKind::DropAck | FaultKind::DelayAck { .. }))
            && let Some(fault) = slot.armed.remove(armed)
        {
            let job = batch[index].0.job;
            let hit = if let FaultKind::DelayAck { delay } = fault.kind {
                hold = Some(delay);
                me.held.keys().copied().collect()
            } else {
                fates[index] = Fate::Answer(Ok(Settlement::Acked));
                me.held.remove(&job);
                vec![job]
            };
            state.fired.push(FaultRecord { fault, at, worker: me.name.clone(), hit });
        }
        // Renewals of a lease whose renewals are refused are dropped.
        for (fate, (lease, transition)) in fates.iter_mut().zip(batch) {
            if let Transition::Extend { lease: length } = transition
                && me
                    .refused
                    .get(&lease.job)
                    .is_some_and(|(t, until)| *t == lease.token && now < *until)
            {
                *fate = extended(*length);
            }
        }
        // A lease-expiry fault takes the renewed lease of the smallest job id.
        let expiry = slot.armed.iter().enumerate().find_map(|(armed, fault)| match fault.kind {
            FaultKind::ExpireLease { window } => Some((armed, window)),
            _ => None,
        });
        if let Some((armed, window)) = expiry {
            let target = batch
                .iter()
                .zip(&fates)
                .enumerate()
                .filter(|(_, ((_, t), fate))| {
                    matches!(t, Transition::Extend { .. }) && matches!(fate, Fate::Forward)
                })
                .min_by_key(|(_, ((lease, _), _))| lease.job)
                .map(|(index, _)| index);
            if let Some(index) = target
                && let Some(fault) = slot.armed.remove(armed)
            {
                let (lease, transition) = &batch[index];
                me.refused.insert(lease.job, (lease.token, now + window));
                if let Transition::Extend { lease: length } = transition {
                    fates[index] = extended(*length);
                }
                let hit = vec![lease.job];
                state.fired.push(FaultRecord { fault, at, worker: me.name.clone(), hit });
            }
        }
        (fates, hold)
    }

    /// Books what the backend did with the transitions `incarnation` sent.
    fn settled(&self, incarnation: usize, sent: &[(Lease, Transition)], results: &[Settled]) {
        {
            let mut state = self.lock();
            let state = &mut *state;
            for ((lease, transition), result) in sent.iter().zip(results) {
                let terminal = !matches!(
                    transition,
                    Transition::Extend { .. } | Transition::Progress(_) | Transition::Checkpoint(_)
                );
                let me = &mut state.incarnations[incarnation];
                if (terminal || result.is_err()) && me.held.get(&lease.job) == Some(&lease.token) {
                    me.held.remove(&lease.job);
                }
                let Some(ledger) = state.jobs.get_mut(&lease.job) else { continue };
                let settled = match (transition, result) {
                    (Transition::Ack, Ok(Settlement::Acked)) => Some(Place::Acked),
                    (
                        Transition::Retry { .. } | Transition::Release { .. },
                        Ok(Settlement::Requeued { .. }),
                    ) => {
                        ledger.rerun_asked = true;
                        ledger.place = Place::Waiting;
                        None
                    }
                    (_, Ok(Settlement::Dead(reason))) => {
                        Some(Place::Failed { reason: *reason, by_attempt: true })
                    }
                    _ => None,
                };
                if let Some(place) = settled
                    && resolve(ledger, place)
                {
                    state.resolved += 1;
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// The totals, and the jobs neither acknowledged nor failed by an attempt.
    pub(super) fn tally(&self) -> Tally {
        let state = self.lock();
        let mut tally = Tally {
            acked: 0,
            failed: 0,
            runs: state.runs,
            duplicates: state.duplicates,
            retries: state.retries,
            faults: state.fired.clone(),
            lost: Vec::new(),
        };
        for (id, ledger) in &state.jobs {
            let lost = match ledger.place {
                Place::Acked => {
                    tally.acked += 1;
                    None
                }
                Place::Failed { by_attempt: true, .. } => {
                    tally.failed += 1;
                    None
                }
                Place::Failed { reason, by_attempt: false } => Some(LostState::Failed(reason)),
                Place::Waiting => Some(LostState::Waiting),
                Place::Held => Some(LostState::Held),
            };
            if let Some(state) = lost {
                tally.lost.push(LostJob { id: *id, name: ledger.name.clone(), state });
            }
        }
        tally
    }
}

/// Moves `ledger` to `place` if it is not resolved yet; whether it moved.
fn resolve(ledger: &mut Ledger, place: Place) -> bool {
    if matches!(ledger.place, Place::Acked | Place::Failed { .. }) {
        return false;
    }
    ledger.place = place;
    true
}

/// The error every call of a killed worker gets.
fn killed() -> QueueError {
    QueueError::Backend("the simulated worker was killed".into())
}

/// One worker's way to the shared memory backend, with the faults aimed at
/// it injected on the way.
pub(super) struct ChaosBackend {
    world: std::sync::Arc<World>,
    incarnation: usize,
    inner: MemoryQueue,
}

impl ChaosBackend {
    pub(super) fn new(
        world: std::sync::Arc<World>,
        incarnation: usize,
        inner: MemoryQueue,
    ) -> Self {
        Self { world, incarnation, inner }
    }
}

impl fmt::Debug for ChaosBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosBackend")
            .field("incarnation", &self.incarnation)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl QueueBackend for ChaosBackend {
    async fn push(&self, jobs: Vec<Pushed>) -> Result<(), PushError> {
        if self.world.is_dead(self.incarnation) {
            return Err(PushError::Backend { error: Box::new(killed()), jobs });
        }
        self.inner.push(jobs).await
    }

    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, QueueError> {
        if self.world.is_dead(self.incarnation) {
            return Err(killed());
        }
        let reservation = self.inner.reserve(request).await?;
        self.world.reserved(self.incarnation, &reservation);
        Ok(reservation)
    }

    async fn settle(&self, batch: Vec<(Lease, Transition)>) -> Result<Vec<Settled>, QueueError> {
        if self.world.is_dead(self.incarnation) {
            return Err(killed());
        }
        let (fates, hold) = self.world.plan_settle(self.incarnation, &batch, self.inner.now());
        if let Some(delay) = hold {
            tokio::time::sleep(delay).await;
            if self.world.is_dead(self.incarnation) {
                return Err(killed());
            }
        }
        let sent: Vec<(Lease, Transition)> = batch
            .into_iter()
            .zip(&fates)
            .filter(|(_, fate)| matches!(fate, Fate::Forward))
            .map(|(item, _)| item)
            .collect();
        let results =
            if sent.is_empty() { Vec::new() } else { self.inner.settle(sent.clone()).await? };
        self.world.settled(self.incarnation, &sent, &results);
        let mut results = results.into_iter();
        fates
            .into_iter()
            .map(|fate| match fate {
                Fate::Forward => results.next().ok_or_else(|| {
                    QueueError::Corrupt("the backend answered fewer transitions than sent".into())
                }),
                Fate::Answer(answer) => Ok(answer),
            })
            .collect()
    }

    async fn size(&self, queue: &str) -> Result<QueueSize, QueueError> {
        self.inner.size(queue).await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        self.inner.peek(queue, limit).await
    }

    async fn clear(&self, queue: &str) -> Result<u64, QueueError> {
        self.inner.clear(queue).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.inner.set_paused(queue, paused).await
    }

    async fn set_capacity(&self, queue: &str, capacity: Option<u64>) -> Result<(), QueueError> {
        self.inner.set_capacity(queue, capacity).await
    }

    async fn queues(&self) -> Result<Vec<String>, QueueError> {
        self.inner.queues().await
    }

    async fn wait(&self, queues: &[String], timeout: Duration) {
        if self.world.is_dead(self.incarnation) {
            tokio::time::sleep(timeout).await;
        } else {
            self.inner.wait(queues, timeout).await;
        }
    }

    fn now(&self) -> u64 {
        self.inner.now()
    }
}

impl FailedStore for ChaosBackend {
    async fn failed(&self, query: &FailedQuery) -> Result<Vec<FailedJob>, QueueError> {
        self.inner.failed(query).await
    }

    async fn failed_job(&self, id: JobId) -> Result<Option<FailedJob>, QueueError> {
        self.inner.failed_job(id).await
    }

    async fn failed_count(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        self.inner.failed_count(queue).await
    }

    async fn retry_failed(&self, selection: &Selection) -> Result<Vec<JobId>, QueueError> {
        self.inner.retry_failed(selection).await
    }

    async fn forget_failed(&self, selection: &Selection) -> Result<u64, QueueError> {
        self.inner.forget_failed(selection).await
    }
}
