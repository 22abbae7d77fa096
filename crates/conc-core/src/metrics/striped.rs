//! [`StripedCounter`]: a count that many threads bump without contending.

use std::cell::Cell;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// One counter alone on its cache line (128 bytes: two lines, against the
/// adjacent-line prefetcher).
#[derive(Debug)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A monotonically increasing count striped over cache-line padded atomics,
/// one stripe per thread (modulo the stripe count), summed when read: for
/// counts bumped on a hot path by several threads at once (a limiter's
/// refusals, a breaker's rejections), where one shared atomic would bounce
/// its cache line between the cores at every bump.
///
/// Threads numbered alike modulo the stripe count would share a stripe for
/// as long as they live, so a bump that finds its stripe changed by another
/// thread between its load and its write moves the calling thread to the
/// next stripe for good (as Java's `LongAdder` does) and counts there.
///
/// # Examples
///
/// ```
/// use conc_core::metrics::StripedCounter;
///
/// let rejected = StripedCounter::new();
/// std::thread::scope(|scope| {
///     for _ in 0..4 {
///         scope.spawn(|| (0..1_000).for_each(|_| rejected.increment()));
///     }
/// });
/// assert_eq!(rejected.sum(), 4_000);
/// rejected.reset();
/// assert_eq!(rejected.sum(), 0);
/// ```
#[derive(Debug)]
pub struct StripedCounter {
    stripes: Box<[Padded]>,
}

/// Hands each thread a stripe number once. Not part of any loom model: it
/// only spreads threads over stripes, any answer is correct.
static NEXT_STRIPE: StdAtomicUsize = StdAtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe number (assigned on first use).
#[inline]
fn stripe() -> usize {
    STRIPE.with(|slot| {
        let mut index = slot.get();
        if index == usize::MAX {
            index = NEXT_STRIPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            slot.set(index);
        }
        index
    })
}

/// Stripes per counter: the CPUs available, as a power of two, at least
/// two (so a thread moved off a busy stripe has one to go to), at most 64.
fn stripe_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .next_power_of_two()
        .clamp(2, 64)
}

impl StripedCounter {
    /// A zero count with a stripe per available CPU (a power of two, at
    /// least two, at most 64; 128 bytes each).
    pub fn new() -> Self {
        Self { stripes: (0..stripe_count()).map(|_| Padded(AtomicU64::new(0))).collect() }
    }

    /// Adds one, on this thread's stripe; when another thread bumped that
    /// stripe between this thread's load and its write, this thread moves to
    /// the next stripe for good and adds there.
    #[inline]
    pub fn increment(&self) {
        let mask = self.stripes.len() - 1;
        let index = stripe();
        let stripe = &self.stripes[index & mask].0;
        let current = stripe.load(Ordering::Relaxed);
        if stripe
            .compare_exchange(
                current,
                current.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            let moved = index.wrapping_add(1);
            STRIPE.with(|slot| slot.set(moved));
            self.stripes[moved & mask].0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count: the stripes summed (a sum taken while others bump it sees
    /// each bump or not, never half of one).
    pub fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }

    /// Sets the count back to zero (bumps racing with the reset may survive
    /// it).
    pub fn reset(&self) {
        for stripe in &*self.stripes {
            stripe.0.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::StripedCounter;

    /// Every bump is counted, whichever stripes the threads end on (four
    /// threads on at least two stripes: some start on a shared stripe and
    /// move off it), and a reset clears them all.
    #[test]
    fn every_bump_counts_across_threads_that_move_stripes() {
        let count = StripedCounter::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        count.increment();
                    }
                });
            }
        });
        assert_eq!(count.sum(), 40_000);
        count.reset();
        assert_eq!(count.sum(), 0);
        count.increment();
        assert_eq!(count.sum(), 1);
    }
}
