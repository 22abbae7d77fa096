//! Nanoseconds elapsed since a clock's origin, in one atomic word.
//!
//! Both the coarse and the manual clock keep their reading here; the loom
//! models in `tests/loom_cell.rs` check its concurrent behaviour.

use std::time::Duration;

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// The largest elapsed time a cell can hold: `u64::MAX` nanoseconds, about 584 years.
pub(crate) const MAX_ELAPSED: Duration = Duration::from_nanos(u64::MAX);

/// Elapsed nanoseconds since an origin, shared between threads.
#[derive(Debug)]
pub(crate) struct ElapsedCell {
    nanos: AtomicU64,
}

impl ElapsedCell {
    pub(crate) fn new(nanos: u64) -> Self {
        Self { nanos: AtomicU64::new(nanos) }
    }

    /// The current reading. `Acquire` pairs with the writers' `Release`, so a
    /// reader that sees a time also sees what was written before it.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }

    /// Moves the reading forward to `nanos`; never moves it back, whatever
    /// order concurrent writers arrive in.
    #[inline]
    pub(crate) fn advance_to(&self, nanos: u64) {
        self.nanos.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Replaces the reading with `f(reading)` atomically, retrying when
    /// another writer got in first; `f` returning `None` leaves it unchanged.
    /// Returns the previous reading: `Ok` when replaced, `Err` when refused.
    pub(crate) fn update(&self, f: impl FnMut(u64) -> Option<u64>) -> Result<u64, u64> {
        self.nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
    }

    /// Sets the reading to exactly `nanos`.
    pub(crate) fn set(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::Release);
    }
}

/// Whole nanoseconds in `duration`, or `None` past [`MAX_ELAPSED`].
pub(crate) fn nanos_of(duration: Duration) -> Option<u64> {
    u64::try_from(duration.as_nanos()).ok()
}
