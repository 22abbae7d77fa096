//! [`OwnedStripes`]: a count each thread bumps on a stripe it alone writes,
//! with no atomic read-modify-write on the way.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// One stripe alone on its cache line (128 bytes: two lines, against the
/// adjacent-line prefetcher).
#[derive(Debug)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl Padded {
    fn zero() -> Self {
        Self(AtomicU64::new(0))
    }
}

/// Not claimed yet, or no longer claimable (the thread is exiting).
const UNCLAIMED: usize = usize::MAX;

/// The stripe numbers of the threads alive: a thread claims the lowest free
/// number when it first bumps an [`OwnedStripes`] count and gives it back
/// when it exits, so the numbers stay as few as the threads that count.
struct Numbers {
    free: BinaryHeap<Reverse<usize>>,
    next: usize,
}

static NUMBERS: Mutex<Numbers> = Mutex::new(Numbers { free: BinaryHeap::new(), next: 0 });

/// This thread's stripe number, given back when the thread exits.
struct Owned(Cell<usize>);

impl Drop for Owned {
    fn drop(&mut self) {
        let number = self.0.get();
        if number != UNCLAIMED {
            // The lock orders this thread's last writes to its stripes
            // before the writes of the next thread that claims the number.
            NUMBERS.lock().unwrap_or_else(PoisonError::into_inner).free.push(Reverse(number));
        }
    }
}

thread_local! {
    static OWNED: Owned = const { Owned(Cell::new(UNCLAIMED)) };
}

/// This thread's stripe number; [`UNCLAIMED`] while the thread exits.
#[cfg(not(all(test, conc_loom)))]
#[inline]
fn owned_number() -> usize {
    OWNED
        .try_with(|owned| match owned.0.get() {
            UNCLAIMED => claim(owned),
            number => number,
        })
        .unwrap_or(UNCLAIMED)
}

/// Claims the lowest free stripe number for this thread: once per thread.
#[cfg(not(all(test, conc_loom)))]
#[cold]
#[inline(never)]
fn claim(owned: &Owned) -> usize {
    let mut numbers = NUMBERS.lock().unwrap_or_else(PoisonError::into_inner);
    let number = if let Some(Reverse(number)) = numbers.free.pop() {
        number
    } else {
        numbers.next += 1;
        numbers.next - 1
    };
    drop(numbers);
    owned.0.set(number);
    number
}

/// Loom runs its threads on one OS thread (they would share a number): every
/// bump goes to the shared stripe.
#[cfg(all(test, conc_loom))]
#[inline]
fn owned_number() -> usize {
    UNCLAIMED
}

/// A monotonically increasing count for a hot path that every call bumps
/// once (a retry's runs): each of the first threads owns a stripe, the only
/// thread that writes it, and bumps it with a plain load and store (no
/// locked instruction); threads past the stripes (and threads exiting) add
/// to one shared stripe. Read by summing the stripes.
///
/// A thread keeps its stripe number until it exits; a thread started later
/// takes the number over, and its stripe with the count in it.
#[derive(Debug)]
pub(crate) struct OwnedStripes {
    stripes: Box<[Padded]>,
    shared: Padded,
    /// The raw sum at the last reset.
    base: AtomicU64,
}

impl OwnedStripes {
    /// A zero count with a stripe per available CPU and two more (the
    /// threads that count are usually the CPUs' workers and a few others),
    /// at least 4, at most 64 (128 bytes each).
    pub(crate) fn new() -> Self {
        let stripes = std::thread::available_parallelism()
            .map_or(4, |cpus| cpus.get().saturating_add(2))
            .clamp(4, 64);
        Self {
            stripes: (0..stripes).map(|_| Padded::zero()).collect(),
            shared: Padded::zero(),
            base: AtomicU64::new(0),
        }
    }

    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        match self.stripes.get(owned_number()) {
            // This thread is the only writer of its stripe: a load and a
            // store cannot lose another thread's bump.
            Some(stripe) => {
                stripe.0.store(stripe.0.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
            None => {
                self.shared.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The stripes summed, since the counter was made.
    fn raw(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .fold(self.shared.0.load(Ordering::Relaxed), u64::wrapping_add)
    }

    /// The count since the counter was made or last reset (each bump racing
    /// with the read is seen or not, never half of it).
    pub(crate) fn sum(&self) -> u64 {
        self.raw().wrapping_sub(self.base.load(Ordering::Relaxed))
    }

    /// Counts from zero again (bumps racing with the reset may count before
    /// it or after it). The stripes are not written: their owners do.
    pub(crate) fn reset(&self) {
        self.base.store(self.raw(), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(conc_loom)))]
mod tests {
    use super::OwnedStripes;

    #[test]
    fn counts_every_bump_of_threads_that_come_and_go() {
        let count = OwnedStripes::new();
        // More threads than stripes, in waves, so numbers are given back and
        // taken over with counts in their stripes.
        for _ in 0..4 {
            std::thread::scope(|scope| {
                for _ in 0..(count.stripes.len() + 3) {
                    scope.spawn(|| (0..1_000).for_each(|_| count.increment()));
                }
            });
        }
        assert_eq!(count.sum(), 4 * (count.stripes.len() as u64 + 3) * 1_000);
        count.reset();
        assert_eq!(count.sum(), 0);
        count.increment();
        assert_eq!(count.sum(), 1);
    }

    #[test]
    fn two_counts_share_a_threads_stripe_number_without_sharing_counts() {
        let (a, b) = (OwnedStripes::new(), OwnedStripes::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                a.increment();
                b.increment();
                b.increment();
            });
        });
        assert_eq!((a.sum(), b.sum()), (1, 2));
    }
}
