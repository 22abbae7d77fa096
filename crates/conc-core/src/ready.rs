//! A readiness queue fed by per-slot wakers, for streams that poll many
//! futures or inputs.
//!
//! Each input (or in-flight future) sits in a numbered slot and is polled with
//! that slot's own waker. Waking it appends the slot number to a shared list
//! (once, however often it is woken) and wakes the owner that holds the slots,
//! which then polls only the slots on the list: O(1) per wake-up, never a scan
//! of every slot. Futures that finish on their first poll never touch the list.
//! `conc-fan`'s fan-in and `conc-pipeline`'s stage windows are built on it.
//!
//! The list is a `Mutex<Vec<usize>>`: it is locked once per wake-up and once
//! per drain, only while some future is pending.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::task::{Wake, Waker};
//! use conc_core::ready::ReadyQueue;
//!
//! struct Owner;
//! impl Wake for Owner {
//!     fn wake(self: Arc<Self>) {}
//! }
//! let owner = Waker::from(Arc::new(Owner));
//!
//! let queue = ReadyQueue::new();
//! let (first, second) = (queue.waker(0), queue.waker(1));
//! second.wake_by_ref();
//! second.wake_by_ref();
//! first.wake();
//!
//! let mut woken = Vec::new();
//! queue.drain(&mut woken, &owner);
//! assert_eq!(woken, [1, 0], "in wake-up order, each slot once");
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// Slots below this number keep their flag in a vector indexed by slot;
/// larger ones (any `usize` is accepted) in a set, so a huge slot number
/// costs one set entry, never a huge allocation.
const DENSE_SLOTS: usize = 1 << 16;

#[derive(Debug, Default)]
struct Inner {
    /// Slots woken since the owner last drained the list.
    woken: Vec<usize>,
    /// `queued[i]` is true while slot `i` (below [`DENSE_SLOTS`]) is on `woken`.
    queued: Vec<bool>,
    /// The slots at or above [`DENSE_SLOTS`] that are on `woken`.
    queued_sparse: std::collections::HashSet<usize>,
    /// The owner's waker, taken by the first wake-up after it registered.
    owner: Option<Waker>,
}

/// The shared half of a readiness queue: slot wakers push onto it, the owner
/// drains it (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct ReadyQueue {
    inner: Mutex<Inner>,
}

impl ReadyQueue {
    /// An empty queue, shared by the owner and the wakers it hands out.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing user-supplied runs under this lock, so poisoning cannot
        // leave the list half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A waker that queues `slot` when woken. Any slot number works; numbers
    /// below 65,536 are the cheapest.
    pub fn waker(self: &Arc<Self>, slot: usize) -> Waker {
        if slot < DENSE_SLOTS {
            let mut inner = self.lock();
            if inner.queued.len() <= slot {
                inner.queued.resize(slot + 1, false);
            }
        }
        Waker::from(Arc::new(SlotWaker { queue: Arc::clone(self), slot }))
    }

    fn wake(&self, slot: usize) {
        let owner = {
            let mut inner = self.lock();
            let newly_queued = if slot < DENSE_SLOTS {
                match inner.queued.get_mut(slot) {
                    Some(flag) if !*flag => {
                        *flag = true;
                        true
                    }
                    _ => false,
                }
            } else {
                inner.queued_sparse.insert(slot)
            };
            if !newly_queued {
                return;
            }
            inner.woken.push(slot);
            inner.owner.take()
        };
        if let Some(owner) = owner {
            owner.wake();
        }
    }

    /// Moves the woken slots into `into` (which must be empty) and clears
    /// their flags. When none were woken, stores `owner` to be woken by the
    /// next wake-up.
    pub fn drain(&self, into: &mut Vec<usize>, owner: &Waker) {
        let mut inner = self.lock();
        if inner.woken.is_empty() {
            match &inner.owner {
                Some(stored) if stored.will_wake(owner) => {}
                _ => inner.owner = Some(owner.clone()),
            }
            return;
        }
        std::mem::swap(into, &mut inner.woken);
        for &slot in into.iter() {
            if slot < DENSE_SLOTS {
                inner.queued[slot] = false;
            } else {
                inner.queued_sparse.remove(&slot);
            }
        }
    }
}

#[derive(Debug)]
struct SlotWaker {
    queue: Arc<ReadyQueue>,
    slot: usize,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.queue.wake(self.slot);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.wake(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_slot_is_queued_once_and_the_owner_woken_once() {
        let queue = ReadyQueue::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let owner = Waker::from(Arc::clone(&count));
        let a = queue.waker(0);
        let b = queue.waker(3);
        let mut woken = Vec::new();
        queue.drain(&mut woken, &owner);
        assert!(woken.is_empty());

        a.wake_by_ref();
        a.wake_by_ref();
        b.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        queue.drain(&mut woken, &owner);
        assert_eq!(woken, [0, 3]);

        woken.clear();
        a.wake();
        queue.drain(&mut woken, &owner);
        assert_eq!(woken, [0]);
    }

    #[test]
    fn any_slot_number_works_without_a_huge_allocation() {
        let queue = ReadyQueue::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let owner = Waker::from(Arc::clone(&count));
        let mut woken = Vec::new();
        queue.drain(&mut woken, &owner);
        for slot in [usize::MAX, usize::MAX - 1, DENSE_SLOTS, DENSE_SLOTS - 1] {
            let waker = queue.waker(slot);
            waker.wake_by_ref();
            waker.wake_by_ref();
        }
        queue.drain(&mut woken, &owner);
        assert_eq!(woken, [usize::MAX, usize::MAX - 1, DENSE_SLOTS, DENSE_SLOTS - 1]);
        assert_eq!(queue.lock().queued.len(), DENSE_SLOTS, "only the dense range is a vector");
        woken.clear();
        queue.waker(usize::MAX).wake();
        queue.drain(&mut woken, &owner);
        assert_eq!(woken, [usize::MAX], "a drained slot can be queued again");
    }
}
