//! Workers coming and going: starting, leaving, scaling, replacing stuck ones.

use std::sync::Arc;

use super::{Engine, Flavor};
use crate::loom::sync::atomic::Ordering;
use crate::{ScaleDecision, ScaleTrigger};

impl<F: Flavor> Engine<F> {
    /// Asks the scale policy (reporting the decision) and returns its answer.
    fn decide(&self, trigger: ScaleTrigger) -> ScaleDecision {
        self.scaling.decide(&self.core, trigger, self.workers(), self.min, self.max)
    }

    /// Starts one worker on a free slot if fewer than `max` are alive;
    /// whether it started. `scaling` counts and reports it as scaling up.
    pub(crate) fn spawn_worker(
        self: &Arc<Self>,
        scaling: bool,
    ) -> Result<bool, (usize, F::StartError)> {
        let Ok(live) = self.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
            (live < self.max).then_some(live + 1)
        }) else {
            return Ok(false);
        };
        let Some(index) = self.core.slots.claim() else {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Ok(false);
        };
        if let Err(error) = self.launch(index) {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err((index, error));
        }
        if scaling {
            self.scaled_up.fetch_add(1, Ordering::Relaxed);
            self.core.instruments.scaled_up.increment(1);
            tracing::debug!(target: "conc_pool", pool = %self.core.name, workers = live + 1, "scaled up");
        }
        Ok(true)
    }

    /// Starts a worker on the claimed slot `index`; gives the slot back if
    /// it cannot start.
    fn launch(self: &Arc<Self>, index: usize) -> Result<(), F::StartError> {
        self.core.instruments.workers.increment(1.0);
        F::start_worker(self, index).inspect_err(|_| {
            self.core.slots.release(index);
            self.core.instruments.workers.decrement(1.0);
        })
    }

    /// Replaces workers stuck past the threshold (looked for at most every
    /// quarter threshold): a fresh worker takes each one's place, and the
    /// stuck one stops counting and leaves when its task ends, so capacity is
    /// kept. With no free slot left the stuck worker is only reported.
    pub(crate) fn replace_stuck(self: &Arc<Self>, now: u64) {
        for stuck in self.core.stuck(now) {
            let Some(fresh) = self.core.slots.claim() else { break };
            if !self.core.slot(stuck).abandon() {
                // Its task ended meanwhile.
                self.core.slots.release(fresh);
                continue;
            }
            self.core.instruments.workers.decrement(1.0);
            self.replaced.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "conc_pool", pool = %self.core.name, worker = stuck, "replacing a stuck worker");
            if let Err(error) = self.launch(fresh) {
                self.live.fetch_sub(1, Ordering::AcqRel);
                tracing::error!(target: "conc_pool", pool = %self.core.name, %error, "could not start a replacement worker");
            }
        }
    }

    /// Takes one worker off `live` if more than `floor` remain.
    fn try_leave(&self, floor: usize) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live > floor).then(|| live - 1)
            })
            .is_ok()
    }

    fn count_scaled_down(&self, worker: usize, why: &'static str) {
        self.scaled_down.fetch_add(1, Ordering::Relaxed);
        self.core.instruments.scaled_down.increment(1);
        tracing::debug!(target: "conc_pool", pool = %self.core.name, worker, why, "scaled down");
    }

    /// What worker `index` checks before it looks for its next task, at
    /// `now`: whether it must leave (it was replaced as stuck, or it takes a
    /// pending retirement request). Replaces stuck workers on the way.
    pub(crate) fn between_tasks(self: &Arc<Self>, index: usize, now: u64) -> bool {
        if self.core.slot(index).is_abandoned() {
            return true;
        }
        self.replace_stuck(now);
        if self.retire.load(Ordering::Acquire) > 0
            && self
                .retire
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            && self.try_leave(1)
        {
            self.count_scaled_down(index, "asked to retire");
            return true;
        }
        false
    }

    /// Whether a retirement request is pending (an idle worker stops waiting).
    pub(crate) fn retire_requested(&self) -> bool {
        self.retire.load(Ordering::Acquire) > 0
    }

    /// Worker `index` was idle for the keep-alive (and has left the idle
    /// list, with no task raced in): whether it retires. The policy decides;
    /// a `Shrink(n)` above one also asks `n - 1` others to retire.
    pub(crate) fn retire_idle(&self, index: usize) -> bool {
        if self.workers() <= self.min {
            return false;
        }
        let ScaleDecision::Shrink(n @ 1..) = self.decide(ScaleTrigger::IdleTimeout) else {
            return false;
        };
        let others = (n - 1)
            .min(self.workers().saturating_sub(self.min + 1 + self.retire.load(Ordering::Acquire)));
        if others > 0 {
            self.retire.fetch_add(others, Ordering::AcqRel);
            self.core.queue.wake_idle();
        }
        if self.try_leave(self.min) {
            self.count_scaled_down(index, "idle past the keep-alive");
            return true;
        }
        false
    }

    /// A worker leaves because the pool closed and its queue is empty.
    pub(crate) fn closed_leave(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Worker `index` has left: its slot is free again.
    pub(crate) fn worker_left(&self, index: usize) {
        if self.core.slots.release(index) {
            self.core.instruments.workers.decrement(1.0);
        }
        self.flavor.worker_left();
    }

    /// After a push no idle worker took: replace stuck workers, then let a
    /// dynamic pool below its maximum grow (before the task waits).
    /// `now` is the push's reading of the clock (one reading per push).
    pub(crate) fn queued_without_idle_worker(self: &Arc<Self>, now: u64) {
        self.replace_stuck(now);
        if self.dynamic() && self.workers() < self.max {
            match self.decide(ScaleTrigger::Queued) {
                ScaleDecision::Grow(n) => {
                    self.scale_up(n);
                }
                ScaleDecision::Shrink(n) => {
                    self.scale_down(n);
                }
                ScaleDecision::Hold => {}
            }
        }
    }

    /// Adds up to `n` workers, never above `max`; how many started.
    pub(crate) fn scale_up(self: &Arc<Self>, n: usize) -> usize {
        let mut started = 0;
        while started < n {
            match self.spawn_worker(true) {
                Ok(true) => started += 1,
                Ok(false) => break,
                Err((index, error)) => {
                    tracing::error!(target: "conc_pool", pool = %self.core.name, worker = index, %error, "could not start a worker");
                    break;
                }
            }
        }
        started
    }

    /// Asks up to `n` workers to retire, never below one; how many were asked.
    pub(crate) fn scale_down(&self, n: usize) -> usize {
        let pending = self.retire.load(Ordering::Acquire);
        let asked = n.min(self.workers().saturating_sub(1 + pending));
        self.retire.fetch_add(asked, Ordering::AcqRel);
        self.core.queue.wake_idle();
        asked
    }

    /// Scales towards `workers` workers (within one and `max`).
    pub(crate) fn resize(self: &Arc<Self>, workers: usize) {
        let live = self.workers();
        if workers > live {
            self.scale_up(workers - live);
        } else {
            self.scale_down(live - workers);
        }
    }
}
