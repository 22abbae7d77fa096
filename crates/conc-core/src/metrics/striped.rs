//! [`StripedCounter`]: a count that many threads bump without contending
//! and without a locked instruction.

use std::cell::Cell;
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

/// No stripe number: not claimed yet, or the thread is exiting.
const UNCLAIMED: usize = usize::MAX;

/// The stripe numbers of the live threads: a thread claims the lowest free
/// number when it first bumps a [`StripedCounter`] and gives it back when it
/// exits, so the numbers in use stay as few as the threads that count.
struct Numbers {
    free: Vec<usize>,
    next: usize,
}

static NUMBERS: Mutex<Numbers> = Mutex::new(Numbers { free: Vec::new(), next: 0 });

impl Numbers {
    fn claim(&mut self) -> usize {
        let lowest = self.free.iter().enumerate().min_by_key(|&(_, &number)| number);
        if let Some((at, _)) = lowest {
            return self.free.swap_remove(at);
        }
        self.next += 1;
        self.next - 1
    }
}

/// This thread's stripe number, given back when the thread exits.
struct Owned(Cell<usize>);

impl Drop for Owned {
    fn drop(&mut self) {
        let number = self.0.get();
        if number != UNCLAIMED {
            // The mutex orders this thread's last writes to its stripes
            // before the writes of the next thread that claims the number,
            // which continues from them.
            NUMBERS.lock().unwrap_or_else(PoisonError::into_inner).free.push(number);
        }
    }
}

thread_local! {
    static OWNED: Owned = const { Owned(Cell::new(UNCLAIMED)) };
}

/// The calling thread's stripe number (claimed on first use);
/// [`UNCLAIMED`] while the thread's locals are torn down.
#[inline]
fn owned_number() -> usize {
    OWNED
        .try_with(|owned| {
            let number = owned.0.get();
            if number == UNCLAIMED { claim(owned) } else { number }
        })
        .unwrap_or(UNCLAIMED)
}

/// The first bump of a thread: claims its number, out of the hot path.
#[cold]
#[inline(never)]
fn claim(owned: &Owned) -> usize {
    let number = NUMBERS.lock().unwrap_or_else(PoisonError::into_inner).claim();
    owned.0.set(number);
    number
}

/// Owned stripes per counter: two per available CPU (the threads that count
/// are usually a few more than the CPUs), at least 4, at most 128.
fn stripe_count() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |cpus| cpus.get().saturating_mul(2))
        .clamp(4, 128)
}

/// A monotonically increasing count for a hot path that several threads
/// bump at once (a limiter's admissions, a breaker's refusals, a lock's
/// acquisitions), summed when read.
///
/// One shared atomic would bounce its cache line between the cores at every
/// bump, and even alone a locked read-modify-write costs as much as the rest
/// of a short hot path. Instead each live thread owns a stripe number
/// (claimed process-wide on its first bump, the lowest free one, given back
/// when it exits) and, in every counter, the stripe at that number: the only
/// thread that writes it, so a bump is a plain load and store on a line no
/// other thread writes. Threads past the counter's stripes (more threads
/// counting than twice the CPUs) and code running while its thread exits add
/// to one shared stripe with `fetch_add`: correct, only slower. A number
/// given back is claimed by the next thread, which continues the stripe's
/// count where the last owner left it.
///
/// Memory: two stripes per CPU, at least 4 and at most 128, plus the shared
/// stripe, 128 bytes each (640 bytes on a 2-CPU machine).
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
    shared: Padded,
    /// The raw sum at the last reset (a reset cannot write stripes only
    /// their owners write, so reads subtract this instead).
    base: AtomicU64,
}

impl StripedCounter {
    /// A zero count with two stripes per available CPU (at least 4, at most
    /// 128) and the shared one; 128 bytes each.
    pub fn new() -> Self {
        Self::with_stripes(stripe_count())
    }

    /// A zero count with `stripes` owned stripes.
    fn with_stripes(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes).map(|_| Padded::zero()).collect(),
            shared: Padded::zero(),
            base: AtomicU64::new(0),
        }
    }

    /// Adds one: on the calling thread's own stripe with a plain load and
    /// store, or on the shared stripe when the thread has none.
    #[inline]
    pub fn increment(&self) {
        self.increment_as(owned_number());
    }

    /// Adds one as the owner of stripe `number` ([`UNCLAIMED`] or any number
    /// past the stripes: the shared stripe). At most one thread at a time
    /// may own a number.
    #[inline]
    fn increment_as(&self, number: usize) {
        match self.stripes.get(number) {
            // The calling thread is the only writer of its stripe: a load
            // and a store cannot lose another thread's bump.
            Some(stripe) => {
                stripe.0.store(stripe.0.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
            None => {
                self.shared.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every stripe summed, since the counter was made.
    fn raw(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .fold(self.shared.0.load(Ordering::Relaxed), u64::wrapping_add)
    }

    /// The count since the counter was made or last reset (a sum taken while
    /// others bump it sees each bump or not, never half of one).
    pub fn sum(&self) -> u64 {
        self.raw().wrapping_sub(self.base.load(Ordering::Relaxed))
    }

    /// Counts from zero again (bumps racing with the reset may count before
    /// it or after it).
    pub fn reset(&self) {
        self.base.store(self.raw(), Ordering::Relaxed);
    }
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
