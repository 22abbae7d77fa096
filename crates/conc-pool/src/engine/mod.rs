//! The one pool core both front-ends run on: sizing, worker start and
//! leave, placement, refusal and caller-runs, scaling, eviction, stuck-worker
//! replacement, shared state and its drop.
//!
//! A front-end (the async pool, the blocking pool) supplies a [`Flavor`]:
//! what a queued job is, how a worker starts, how a job is handed back
//! unstarted. Everything else is decided here, once.

mod submit;
mod workers;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::JoinError;
use crate::builder::Settings;
use crate::core::Core;
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::metrics::PoolMetrics;
use crate::scale::Scaling;
pub(crate) use submit::{Admitted, Refusal, Room};

/// What differs between the async and the blocking pool.
pub(crate) trait Flavor: Sized + Send + Sync + 'static {
    /// A queued job.
    type Job: Send + 'static;
    /// A job handed back unstarted (by an eviction or a shutdown).
    type Unstarted;

    /// Why a worker could not start.
    type StartError: std::error::Error;

    /// Starts a worker on slot `index`. The worker runs until it leaves and
    /// then calls [`Engine::worker_left`].
    fn start_worker(engine: &Arc<Engine<Self>>, index: usize) -> Result<(), Self::StartError>;

    /// Wraps a job that will not run on the pool.
    fn hand_back(engine: &Engine<Self>, job: Self::Job, reason: JoinError) -> Self::Unstarted;

    /// A worker left; its slot is free again.
    fn worker_left(&self) {}
}

/// Called with each task the drop-oldest policy evicts.
pub(crate) type EvictHook<U> = Box<dyn Fn(U) + Send + Sync>;

/// One pool's state, shared by its handles and its workers.
pub(crate) struct Engine<F: Flavor> {
    pub(crate) core: Core<F::Job>,
    /// The fewest workers (the `workers` setting).
    pub(crate) min: usize,
    /// The most workers alive at once.
    pub(crate) max: usize,
    pub(crate) keep_alive: Duration,
    /// Workers counted alive (a stuck one stops counting when replaced).
    live: AtomicUsize,
    /// Workers asked to retire by a scale-down, not yet gone.
    retire: AtomicUsize,
    scaled_up: AtomicU64,
    scaled_down: AtomicU64,
    replaced: AtomicU64,
    scaling: Scaling,
    on_evict: Option<EvictHook<F::Unstarted>>,
    pub(crate) flavor: F,
}

impl<F: Flavor> fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.core.name)
            .field("min", &self.min)
            .field("max", &self.max)
            .field("live", &self.live.load(Ordering::Relaxed))
            .field("scaling", &self.scaling)
            .field("on_evict", &self.on_evict.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: Flavor> Engine<F> {
    /// Builds the engine and starts its `workers` workers. When one cannot
    /// start, the queue is closed (the started ones exit) and the slot index
    /// and the error come back.
    pub(crate) fn start(
        settings: Settings<F::Unstarted>,
        flavor: F,
    ) -> Result<Shared<F>, (usize, F::StartError)> {
        let engine = Arc::new(Self {
            core: Core::new(settings.core),
            min: settings.min,
            max: settings.max,
            keep_alive: settings.keep_alive,
            live: AtomicUsize::new(0),
            retire: AtomicUsize::new(0),
            scaled_up: AtomicU64::new(0),
            scaled_down: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            scaling: settings.scaling,
            on_evict: settings.on_evict,
            flavor,
        });
        let shared = Shared(engine);
        for _ in 0..shared.min {
            shared.spawn_worker(false)?;
        }
        Ok(shared)
    }

    /// Whether the pool can change size by itself.
    pub(crate) fn dynamic(&self) -> bool {
        self.max > self.min
    }

    /// Workers counted alive now.
    pub(crate) fn workers(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The pool's metrics now.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let mut metrics = self.core.metrics();
        metrics.scaled_up = self.scaled_up.load(Ordering::Relaxed);
        metrics.scaled_down = self.scaled_down.load(Ordering::Relaxed);
        metrics.replaced = self.replaced.load(Ordering::Relaxed);
        metrics
    }

    /// Resets the counters and the queue-wait histogram; gauges keep their values.
    pub(crate) fn reset_metrics(&self) {
        self.core.reset_metrics();
        for counter in [&self.scaled_up, &self.scaled_down, &self.replaced] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Room for one task if the queue has some, without the policy (for the
    /// `try_` forms): one atomic operation, no lock, no allocation.
    pub(crate) fn try_room(&self) -> Result<Room<'_, F::Job>, Refusal> {
        self.core.queue.try_reserve().map(Room::Reserved).ok_or(Refusal::Full)
    }

    /// Takes every queued job, handed back as not run, in the order they
    /// would have run.
    pub(crate) fn drain(&self) -> Vec<F::Unstarted> {
        let entries = self.core.queue.drain();
        self.core.instruments.depth.decrement(entries.len() as f64);
        entries.into_iter().map(|entry| F::hand_back(self, entry.job, JoinError::NotRun)).collect()
    }

    /// After a forced stop: frees the slots of workers that never left (cut
    /// off mid-task) and returns how many were running a task.
    pub(crate) fn release_cut_off(&self) -> usize {
        let mut still_running = 0;
        let owned: Vec<_> = self
            .core
            .slots
            .iter()
            .filter(|(_, slot)| slot.is_alive() || slot.is_abandoned())
            .map(|(index, slot)| (index, slot.running_since() != 0))
            .collect();
        for (index, running) in owned {
            if running {
                still_running += 1;
                self.core.instruments.abandoned_busy();
            }
            if self.core.slots.release(index) {
                self.core.instruments.workers.decrement(1.0);
            }
        }
        self.live.store(0, Ordering::Release);
        still_running
    }
}

/// The pool handles' share of an engine: when the last handle goes, the
/// queue closes and the workers finish what is queued, then exit.
#[derive(Debug)]
pub(crate) struct Shared<F: Flavor>(Arc<Engine<F>>);

impl<F: Flavor> Deref for Shared<F> {
    type Target = Arc<Engine<F>>;

    fn deref(&self) -> &Arc<Engine<F>> {
        &self.0
    }
}

impl<F: Flavor> Drop for Shared<F> {
    fn drop(&mut self) {
        self.0.core.queue.close();
    }
}
