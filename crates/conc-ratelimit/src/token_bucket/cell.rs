//! The token bucket's state in one atomic word.
//!
//! The bucket is kept as `drawn`: tokens taken, counted on an absolute scale
//! where `supply(tick) = capacity + refill × tick` tokens have been made
//! available by refill tick `tick`. The level is
//! `supply − max(drawn, supply − capacity)`, so refills past the capacity are
//! lost and one `u64` holds the whole state.

use crate::loom::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct TokenCell {
    drawn: AtomicU64,
}

impl TokenCell {
    pub(crate) fn new(drawn: u64) -> Self {
        Self { drawn: AtomicU64::new(drawn) }
    }

    /// Takes `n` tokens when `supply` are available on the absolute scale:
    /// `Ok(level after)`, or `Err(tokens missing)` without writing.
    #[inline]
    pub(crate) fn take(&self, supply: u64, capacity: u64, n: u64) -> Result<u64, u64> {
        let floor = supply.saturating_sub(capacity);
        let mut current = self.drawn.load(Ordering::Relaxed);
        loop {
            let base = current.max(floor);
            let level = supply.saturating_sub(base);
            if level < n {
                return Err(n - level);
            }
            match self.drawn.compare_exchange_weak(
                current,
                base + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(level - n),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes every available token up to `max` (at least one): `Ok(taken)`,
    /// or `Err(1)` when the bucket is empty.
    pub(crate) fn take_up_to(&self, supply: u64, capacity: u64, max: u64) -> Result<u64, u64> {
        let floor = supply.saturating_sub(capacity);
        let mut current = self.drawn.load(Ordering::Relaxed);
        loop {
            let base = current.max(floor);
            let taken = supply.saturating_sub(base).min(max);
            if taken == 0 {
                return Err(1);
            }
            match self.drawn.compare_exchange_weak(
                current,
                base + taken,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(taken),
                Err(actual) => current = actual,
            }
        }
    }

    /// Tokens in the bucket when `supply` are available.
    pub(crate) fn level(&self, supply: u64, capacity: u64) -> u64 {
        supply.saturating_sub(self.drawn().max(supply.saturating_sub(capacity)))
    }

    pub(crate) fn drawn(&self) -> u64 {
        self.drawn.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, drawn: u64) {
        self.drawn.store(drawn, Ordering::Relaxed);
    }
}
