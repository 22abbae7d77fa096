//! [`Rejections`]: the count of refused calls, bumped by every thread a burst
//! of rejections comes from, without two busy threads writing one line.

use std::cell::Cell;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// One stripe alone on its cache line (128 bytes: two lines, against the
/// adjacent-line prefetcher).
#[derive(Debug)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// Hands each thread a first stripe number. Not part of any loom model: it
/// only spreads threads over stripes, any answer is correct.
static NEXT_STRIPE: StdAtomicUsize = StdAtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A count striped over padded atomics, one stripe per thread modulo the
/// stripe count, that moves a thread off a stripe another thread is bumping
/// (as Java's `LongAdder` does): threads numbered alike modulo the stripe
/// count would otherwise share one line for as long as they live, and every
/// rejection would write a line the other core holds.
#[derive(Debug)]
pub(crate) struct Rejections {
    stripes: Box<[Padded]>,
}

impl Rejections {
    /// A zero count with a stripe per available CPU (a power of two, at
    /// least two, at most 64).
    pub(crate) fn new() -> Self {
        let count = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .next_power_of_two()
            .clamp(2, 64);
        Self { stripes: (0..count).map(|_| Padded(AtomicU64::new(0))).collect() }
    }

    /// Adds one, on this thread's stripe; when another thread bumped that
    /// stripe between this thread's load and its write, this thread moves
    /// to the next stripe for good and adds there.
    #[inline]
    pub(crate) fn increment(&self) {
        let mask = self.stripes.len() - 1;
        STRIPE.with(|slot| {
            let mut index = slot.get();
            if index == usize::MAX {
                index = NEXT_STRIPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                slot.set(index);
            }
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
                slot.set(moved);
                self.stripes[moved & mask].0.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// The count: the stripes summed (a sum taken while others bump it sees
    /// each bump or not, never half of one).
    pub(crate) fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }

    /// Sets the count back to zero (bumps racing with the reset may survive
    /// it).
    pub(crate) fn reset(&self) {
        for stripe in &*self.stripes {
            stripe.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::Rejections;

    /// Every bump is counted, whichever stripes the threads end on (four
    /// threads on at least two stripes: some start on a shared stripe and
    /// move), and a reset clears them all.
    #[test]
    fn every_bump_counts_across_threads_and_moves() {
        let count = Rejections::new();
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
