//! [`Tally`]: the acquisition and release counts of one store, kept per
//! thread so that counting costs no atomic read-modify-write.
//!
//! An uncontended acquire + release is a handful of atomic operations, and
//! each locked read-modify-write costs about as much as the rest of the path
//! together; a store-wide `fetch_add` for each of the two counts was a sixth
//! of the cycle. Instead each live thread owns an index (handed out here,
//! process-wide, and handed back when the thread exits) and, in every store,
//! the pair of counts at that index: only that thread writes them, with a
//! plain load and store. A snapshot sums the pairs. An index handed back is
//! reused by the next thread, which continues the counts where the last owner
//! left them (the hand-off goes through a mutex, so the new owner sees the
//! last owner's stores). Threads beyond the store's pairs, and code running
//! while its thread's locals are torn down, count in a shared pair with
//! `fetch_add`.

use std::sync::{Mutex, PoisonError};

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// One pair of counts (on its own cache lines, so that threads counting in
/// neighbouring pairs do not contend).
#[derive(Debug)]
#[repr(align(128))]
struct Pair {
    acquired: AtomicU64,
    released: AtomicU64,
}

impl Pair {
    fn new() -> Self {
        Self { acquired: AtomicU64::new(0), released: AtomicU64::new(0) }
    }

    /// Adds one to `count`, which only the calling thread writes.
    #[inline]
    fn bump_owned(count: &AtomicU64) {
        count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// Acquisitions and releases of one store, counted per thread.
#[derive(Debug)]
pub(crate) struct Tally {
    /// The pair of the thread holding index `i` is `owned[i]`.
    owned: Box<[Pair]>,
    /// For threads whose index is past `owned`, or that have none.
    shared: Pair,
}

/// Which count to add to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Acquired,
    Released,
}

impl Tally {
    /// A tally with pairs for the first `threads` indices.
    pub(crate) fn new(threads: usize) -> Self {
        Self { owned: (0..threads).map(|_| Pair::new()).collect(), shared: Pair::new() }
    }

    /// A tally sized for this machine: four pairs per core, at least 8, at
    /// most 64 (threads past those count through the shared pair, correct
    /// but slower).
    pub(crate) fn for_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, usize::from);
        Self::new((cores * 4).next_power_of_two().clamp(8, 64))
    }

    /// Adds one to `count` for the calling thread.
    #[inline]
    pub(crate) fn add(&self, count: Count) {
        self.add_at(thread_index(), count);
    }

    /// Adds one to `count` as the holder of `index` (`usize::MAX` for
    /// none). Only one thread at a time may hold an index.
    #[inline]
    pub(crate) fn add_at(&self, index: usize, count: Count) {
        match self.owned.get(index) {
            Some(pair) => Pair::bump_owned(pair.count(count)),
            None => {
                self.shared.count(count).fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The sums: `(acquired, released)`.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.owned.iter().chain([&self.shared]).fold((0, 0), |(acquired, released), pair| {
            (
                acquired.wrapping_add(pair.acquired.load(Ordering::Relaxed)),
                released.wrapping_add(pair.released.load(Ordering::Relaxed)),
            )
        })
    }
}

impl Pair {
    fn count(&self, count: Count) -> &AtomicU64 {
        match count {
            Count::Acquired => &self.acquired,
            Count::Released => &self.released,
        }
    }
}

/// The indices handed back by exited threads, and the next never used.
static INDICES: Mutex<Indices> = Mutex::new(Indices { free: Vec::new(), next: 0 });

struct Indices {
    free: Vec<usize>,
    next: usize,
}

/// The calling thread's index, handed back when the thread exits.
struct ThreadIndex(usize);

impl ThreadIndex {
    /// The smallest free index, so that the indices in use stay within the
    /// tallies' pairs.
    fn claim() -> Self {
        let mut indices = INDICES.lock().unwrap_or_else(PoisonError::into_inner);
        let smallest = indices.free.iter().enumerate().min_by_key(|&(_, &index)| index);
        if let Some((at, _)) = smallest {
            return Self(indices.free.swap_remove(at));
        }
        let index = indices.next;
        indices.next += 1;
        Self(index)
    }
}

impl Drop for ThreadIndex {
    fn drop(&mut self) {
        INDICES.lock().unwrap_or_else(PoisonError::into_inner).free.push(self.0);
    }
}

thread_local! {
    static INDEX: ThreadIndex = ThreadIndex::claim();
}

/// The calling thread's index; `usize::MAX` while its locals are torn down.
#[inline]
fn thread_index() -> usize {
    INDEX.try_with(|index| index.0).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
