//! The state every handle and permit of one load shedder shares.

use std::time::Duration;

use conc_core::metrics::{SHED_LOAD, SHED_REJECTED};
use conc_core::time::{Timeline, saturating_nanos};

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::time::SharedClock;

pub(super) struct Shared {
    pub(super) load: AtomicU64,
    pub(super) cooldown_until: AtomicU64,
    pub(super) overloaded: AtomicU64,
    pub(super) cooling: AtomicU64,
    pub(super) queue_wait: AtomicU64,
    pub(super) admitted: AtomicU64,
    pub(super) max_load: u64,
    pub(super) cooldown: u64,
    pub(super) max_queue_wait: Option<Duration>,
    pub(super) clock: Timeline<SharedClock>,
    rejected_counter: metrics::Counter,
    load_gauge: metrics::Gauge,
    pub(super) name: String,
}

impl Shared {
    pub(super) fn new(
        max_load: u64,
        cooldown: Duration,
        max_queue_wait: Option<Duration>,
        clock: Timeline<SharedClock>,
        name: String,
    ) -> Self {
        Self {
            load: AtomicU64::new(0),
            cooldown_until: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            cooling: AtomicU64::new(0),
            queue_wait: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            max_load,
            cooldown: saturating_nanos(cooldown),
            max_queue_wait,
            clock,
            rejected_counter: metrics::counter!(SHED_REJECTED, "shedder" => name.clone()),
            load_gauge: metrics::gauge!(SHED_LOAD, "shedder" => name.clone()),
            name,
        }
    }

    pub(super) fn now(&self) -> u64 {
        self.clock.now()
    }

    pub(super) fn start_cooldown(&self) {
        if self.cooldown > 0 {
            self.cooldown_until
                .fetch_max(self.now().saturating_add(self.cooldown), Ordering::AcqRel);
        }
    }

    /// Counts a refusal in `counter` and in the `metrics` facade.
    pub(super) fn count_rejection(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.rejected_counter.increment(1);
    }

    /// Takes `units` of load, or says how much was in use.
    pub(super) fn take(&self, units: u64) -> Result<(), u64> {
        let mut load = self.load.load(Ordering::Acquire);
        loop {
            // Checked, not saturating: with a maximum of `u64::MAX` a sum that
            // saturated would pass the check and then overflow.
            let next = match load.checked_add(units) {
                Some(next) if next <= self.max_load => next,
                _ => return Err(load),
            };
            match self.load.compare_exchange_weak(load, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => load = seen,
            }
        }
        self.admitted.fetch_add(1, Ordering::Relaxed);
        self.load_gauge.increment(units as f64);
        Ok(())
    }

    /// Gives `units` of load back.
    pub(super) fn give_back(&self, units: u64) {
        self.load.fetch_sub(units, Ordering::AcqRel);
        self.load_gauge.decrement(units as f64);
    }
}
