//! Per-worker slots: each worker's counters and wait histogram on cache
//! lines of its own, in a table that grows as workers start and hands out a
//! free slot in constant time.

use std::sync::{Mutex, OnceLock, PoisonError};

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// Queue-wait histogram buckets: bucket `i` counts waits in `[2^i, 2^(i+1))` ns
/// (bucket 0 also holds zero waits); the last bucket holds everything longer.
pub(crate) const WAIT_BUCKETS: usize = 40;

/// How a task ended, as a worker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Panicked,
    Cancelled,
    TimedOut,
}

/// A slot's owner: none, a live worker, or a stuck worker that was replaced
/// and leaves when its task ends.
const FREE: u64 = 0;
const LIVE: u64 = 1;
const ABANDONED: u64 = 2;

/// One worker's counters, on its own cache lines. Only the worker writes
/// them (plain load + store, no locked instruction); readers sum the slots.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct WorkerSlot {
    pub(super) completed: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) timed_out: AtomicU64,
    /// Nanoseconds (on the pool's timeline, plus one) at which the running
    /// task started; 0 when the worker is idle.
    pub(super) running_since: AtomicU64,
    /// [`FREE`], [`LIVE`] or [`ABANDONED`].
    owner: AtomicU64,
    pub(super) waits: [AtomicU64; WAIT_BUCKETS],
}

fn bump(counter: &AtomicU64) {
    // Single writer: no read-modify-write instruction needed.
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl WorkerSlot {
    pub(crate) fn new() -> Self {
        Self {
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
            owner: AtomicU64::new(FREE),
            waits: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Whether a live (not replaced) worker owns the slot.
    pub(crate) fn is_alive(&self) -> bool {
        self.owner.load(Ordering::Acquire) == LIVE
    }

    /// Whether this slot's worker was replaced as stuck and must leave once
    /// its task ends.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.owner.load(Ordering::Acquire) == ABANDONED
    }

    /// Marks a live, stuck worker as replaced; whether this call did.
    pub(crate) fn abandon(&self) -> bool {
        self.owner.compare_exchange(LIVE, ABANDONED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The start time (plus one) of the running task, 0 when idle.
    pub(crate) fn running_since(&self) -> u64 {
        self.running_since.load(Ordering::Relaxed)
    }

    /// Tasks this worker completed.
    #[cfg(all(test, conc_loom))]
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether the worker is running a task now.
    #[cfg(all(test, conc_loom))]
    pub(crate) fn is_busy(&self) -> bool {
        self.running_since.load(Ordering::Relaxed) != 0
    }

    /// Records the start of a task queued at `enqueued`, at `now`; the wait.
    pub(crate) fn start(&self, enqueued: u64, now: u64) -> u64 {
        let wait = now.saturating_sub(enqueued);
        let bucket = if wait == 0 { 0 } else { wait.ilog2() as usize };
        bump(&self.waits[bucket.min(WAIT_BUCKETS - 1)]);
        self.running_since.store(now.saturating_add(1), Ordering::Relaxed);
        wait
    }

    /// Records the end of the running task.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.running_since.store(0, Ordering::Relaxed);
        bump(self.counter(outcome));
    }

    pub(super) fn counter(&self, outcome: Outcome) -> &AtomicU64 {
        match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Panicked => &self.panicked,
            Outcome::Cancelled => &self.cancelled,
            Outcome::TimedOut => &self.timed_out,
        }
    }
}

/// Chunk `k` of the table holds slots `2^k - 1 ..= 2^(k+1) - 2`.
const CHUNKS: usize = usize::BITS as usize;

/// The worker slots of one pool: allocated a chunk at a time as workers
/// start (a pool that may grow to a million workers but runs eight holds
/// fifteen slots), and a free list, so starting a worker takes a free slot
/// in constant time. Only starting and leaving workers touch the free list.
#[derive(Debug)]
pub(crate) struct SlotTable {
    chunks: Box<[OnceLock<Box<[WorkerSlot]>>]>,
    /// Slots that may ever be handed out.
    capacity: usize,
    free: Mutex<FreeSlots>,
    /// Outcomes counted outside the workers (caller-runs, tasks run from a
    /// handed-back `Unstarted`), written with atomic adds.
    pub(crate) shared: WorkerSlot,
}

#[derive(Debug, Default)]
struct FreeSlots {
    /// Slots below this index have been handed out at least once.
    next: usize,
    /// Slots handed out and given back.
    released: Vec<usize>,
}

/// The chunk holding slot `index` and the slot's place in it.
fn locate(index: usize) -> (usize, usize) {
    let n = index + 1;
    let chunk = n.ilog2() as usize;
    (chunk, n - (1 << chunk))
}

impl SlotTable {
    /// A table handing out at most `capacity` slots.
    pub(crate) fn new(capacity: usize) -> Self {
        let chunks = if capacity == 0 { 0 } else { locate(capacity - 1).0 + 1 };
        Self {
            chunks: (0..chunks.min(CHUNKS)).map(|_| OnceLock::new()).collect(),
            capacity,
            free: Mutex::new(FreeSlots::default()),
            shared: WorkerSlot::new(),
        }
    }

    /// Slot `index`, which must have been claimed once.
    pub(crate) fn get(&self, index: usize) -> &WorkerSlot {
        let (chunk, offset) = locate(index);
        &self.chunks[chunk].get().expect("a claimed slot's chunk is allocated")[offset]
    }

    /// Claims a free slot for a new worker (marked live); `None` when every
    /// slot is taken.
    pub(crate) fn claim(&self) -> Option<usize> {
        let index = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            match free.released.pop() {
                Some(index) => index,
                None if free.next < self.capacity => {
                    free.next += 1;
                    free.next - 1
                }
                None => return None,
            }
        };
        let (chunk, offset) = locate(index);
        let first = (1 << chunk) - 1;
        let len = (1_usize << chunk).min(self.capacity - first);
        let slots =
            self.chunks[chunk].get_or_init(|| (0..len).map(|_| WorkerSlot::new()).collect());
        slots[offset].owner.store(LIVE, Ordering::Release);
        Some(index)
    }

    /// Frees slot `index`; whether its worker was still counted live (not
    /// replaced). Freeing a free slot does nothing.
    pub(crate) fn release(&self, index: usize) -> bool {
        let slot = self.get(index);
        let previous = slot.owner.swap(FREE, Ordering::AcqRel);
        slot.running_since.store(0, Ordering::Relaxed);
        if previous != FREE {
            self.free.lock().unwrap_or_else(PoisonError::into_inner).released.push(index);
        }
        previous == LIVE
    }

    /// Every slot handed out so far, with its index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &WorkerSlot)> {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(chunk, slots)| slots.get().map(|s| (chunk, s)))
            .flat_map(|(chunk, slots)| {
                slots
                    .iter()
                    .enumerate()
                    .map(move |(offset, slot)| ((1 << chunk) - 1 + offset, slot))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::SlotTable;

    #[test]
    fn slots_are_claimed_in_order_reused_when_freed_and_bounded() {
        let table = SlotTable::new(5);
        let claimed: Vec<_> = (0..5).map(|_| table.claim().unwrap()).collect();
        assert_eq!(claimed, [0, 1, 2, 3, 4]);
        assert_eq!(table.claim(), None);
        assert!(table.release(3));
        assert!(!table.release(3), "a second release finds the slot free");
        assert_eq!(table.claim(), Some(3));
        assert_eq!(table.iter().map(|(i, _)| i).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert!(table.get(4).abandon());
        assert!(!table.release(4), "a replaced worker was no longer counted live");
    }

    #[test]
    fn a_large_table_allocates_only_what_is_claimed() {
        let table = SlotTable::new(2 << 20);
        for _ in 0..9 {
            table.claim().unwrap();
        }
        // Chunks of 1, 2, 4 and 8 slots.
        assert_eq!(table.iter().count(), 15);
    }
}
