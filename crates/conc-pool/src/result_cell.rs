//! Where a blocking task's result goes: a small slot at the head of the
//! task's own allocation (see `crate::task`), which the worker fills and the
//! [`TaskHandle`](crate::TaskHandle) reads, in place of a channel. The job
//! in the queue and the handle both point at that one allocation; the last
//! of the two to let go frees it.
//!
//! The allocation starts with one word of state: the address of the task's
//! vtable (what to run, how to free it), with four flags in its low bits
//! (the vtable is aligned to 16): the job's reference, the handle's, a lock
//! bit and a closed bit. The lock guards the slot (held for a few
//! instructions, never across user code: a result is moved in or out, a
//! waker stored or taken); the closed bit lets a running closure see a
//! cancelled handle without taking it. The slot keeps one waker, the
//! handle's: a blocking task's sender needs none of its own, since it only
//! looks for cancellation between steps. The waker and the result share the
//! slot's storage (the one goes when the other comes), which is what keeps
//! a small task's state to 32 bytes.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll, Waker};

use crate::JoinError;
use crate::core::Outcome;
use crate::loom::cell::UnsafeCell;
use crate::loom::spin_round;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};

/// The job's reference to a task (the closure and the sender side).
pub(crate) const JOB: usize = 1;
/// The handle's reference to a task.
pub(crate) const HANDLE: usize = 1 << 1;
/// The slot's lock.
const LOCKED: usize = 1 << 2;
/// The handle was cancelled or dropped before a result came.
const CLOSED: usize = 1 << 3;
/// The flag bits of the state word; the others are the vtable's address.
const FLAGS: usize = 0b1111;

/// What one kind of task (one closure type) does with its allocation.
/// Aligned to 16, so the low four bits of its address are free for flags.
#[repr(align(16))]
pub(crate) struct VTable {
    /// Runs the task at `now` on the pool's timeline, giving up the job's
    /// reference.
    pub(crate) run: unsafe fn(NonNull<Header>, u64) -> Outcome,
    /// Drops the task unrun, giving up the job's reference; its handle
    /// learns `reason` (`None`: it resolves as cancelled).
    pub(crate) abandon: unsafe fn(NonNull<Header>, Option<JoinError>),
    /// Frees the allocation once no reference is left.
    pub(crate) free: unsafe fn(NonNull<Header>),
}

/// The first word of every task's allocation.
pub(crate) struct Header {
    /// The vtable's address, and the flags.
    state: AtomicUsize,
}

impl Header {
    /// A header for a task of `vtable` held by `refs` ([`JOB`], [`HANDLE`]).
    pub(crate) fn new(vtable: &'static VTable, refs: usize) -> Self {
        let address = ptr::from_ref(vtable).expose_provenance();
        debug_assert_eq!(address & FLAGS, 0, "a vtable is aligned to 16");
        Self { state: AtomicUsize::new(address | refs) }
    }

    /// The task's vtable.
    pub(crate) fn vtable(&self) -> &'static VTable {
        // The address bits are written once, by `new`, before the header is
        // shared; the flags around them change, the address never does.
        let address = self.state.load(Ordering::Relaxed) & !FLAGS;
        // SAFETY: `address` is that of the `&'static VTable` given to `new`,
        // whose provenance `new` exposed; a `'static` vtable lives for ever.
        unsafe { &*ptr::with_exposed_provenance::<VTable>(address) }
    }

    /// Takes the slot's lock: a short spin (the holder keeps it for a few
    /// instructions), then yields.
    fn lock(&self) -> Locked<'_> {
        let mut round = 0;
        loop {
            if self.state.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0 {
                return Locked { state: &self.state };
            }
            while self.state.load(Ordering::Relaxed) & LOCKED != 0 {
                spin_round(round);
                round = round.saturating_add(1);
            }
        }
    }
}

/// The slot's lock, released on drop.
struct Locked<'a> {
    state: &'a AtomicUsize,
}

impl Locked<'_> {
    /// Sets the closed bit (under the lock, so a reader of the slot agrees).
    fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::Release);
    }

    /// Unlocks and gives up `reference` in one step; whether it was the
    /// last reference (the caller then frees the allocation).
    fn release(self, reference: usize) -> bool {
        let state = ManuallyDrop::new(self).state;
        let before = state.fetch_and(!(LOCKED | reference), Ordering::AcqRel);
        before & (JOB | HANDLE) == reference
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.state.fetch_and(!LOCKED, Ordering::Release);
    }
}

/// The state of one result.
enum Slot<T> {
    /// No result yet; the handle's waker once it has waited.
    Empty(Option<Waker>),
    /// The task's result, not yet taken.
    Full(Result<T, JoinError>),
    /// The handle was cancelled or dropped: no result is wanted.
    Cancelled,
    /// Nothing more will come: the result was taken, or the sender was
    /// dropped without one.
    Done,
}

/// The head of a task with a handle: its header and its result slot. A
/// task's allocation starts with this (`repr(C)`), whatever its closure, so
/// the handle reads it knowing the result type alone.
#[repr(C)]
pub(crate) struct Cell<T> {
    header: Header,
    slot: UnsafeCell<Slot<T>>,
}

impl<T> Cell<T> {
    /// An empty slot, held by the job and the handle, of a task of `vtable`.
    pub(crate) fn new(vtable: &'static VTable) -> Self {
        Self { header: Header::new(vtable, JOB | HANDLE), slot: UnsafeCell::new(Slot::Empty(None)) }
    }

    /// Runs `f` on the slot under the lock; the lock, still held, with its
    /// result (to drop, or to end with a release).
    fn locked<R>(&self, f: impl FnOnce(&mut Slot<T>) -> R) -> (R, Locked<'_>) {
        let locked = self.header.lock();
        // SAFETY: the lock is held, and every access to the slot holds it:
        // this is the only one under way.
        let result = self.slot.with_mut(|slot| f(unsafe { &mut *slot }));
        (result, locked)
    }
}

/// Frees the allocation of `cell`, whose last reference is gone.
///
/// # Safety
///
/// `cell` points at a live task allocation that no one references any more.
unsafe fn free<T>(cell: NonNull<Cell<T>>) {
    let header = cell.cast::<Header>();
    // SAFETY: the allocation is live (the caller's contract), so its header is.
    let free = unsafe { header.as_ref() }.vtable().free;
    // SAFETY: no reference is left: the vtable's `free` may release it.
    unsafe { free(header) }
}

/// The task's side: holds the job's reference. Dropped without
/// [`send`](Self::send), the handle resolves as cancelled.
pub(crate) struct CellSender<T> {
    cell: NonNull<Cell<T>>,
}

// SAFETY: the sender moves a `T` into the slot (so `T: Send`) and otherwise
// touches the shared allocation only under its lock or through atomics.
unsafe impl<T: Send> Send for CellSender<T> {}

impl<T> CellSender<T> {
    /// The sender of the task at `cell`.
    ///
    /// # Safety
    ///
    /// `cell` points at a live task allocation with a result slot of `T`,
    /// whose job reference the caller holds and hands over.
    pub(crate) unsafe fn from_raw(cell: NonNull<Cell<T>>) -> Self {
        Self { cell }
    }

    fn cell(&self) -> &Cell<T> {
        // SAFETY: the job's reference keeps the allocation alive.
        unsafe { self.cell.as_ref() }
    }

    /// Whether the handle was cancelled or dropped (no lock taken).
    pub(crate) fn is_closed(&self) -> bool {
        self.cell().header.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Delivers the result (dropped, outside the lock, if the handle no
    /// longer wants it) and gives up the job's reference; whether the
    /// result was delivered.
    pub(crate) fn send(self, result: Result<T, JoinError>) -> bool {
        let this = ManuallyDrop::new(self);
        let ((waker, refused), locked) = this.cell().locked(|slot| match slot {
            Slot::Empty(waker) => {
                let waker = waker.take();
                *slot = Slot::Full(result);
                (waker, None)
            }
            Slot::Cancelled => {
                *slot = Slot::Done;
                (None, Some(result))
            }
            Slot::Full(_) | Slot::Done => (None, Some(result)),
        });
        if locked.release(JOB) {
            // SAFETY: the handle let go before; this was the last reference.
            unsafe { free(this.cell) };
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        refused.is_none()
    }
}

impl<T> Drop for CellSender<T> {
    fn drop(&mut self) {
        let (waker, locked) = self.cell().locked(|slot| match slot {
            Slot::Empty(waker) => {
                let waker = waker.take();
                *slot = Slot::Done;
                waker
            }
            Slot::Cancelled => {
                *slot = Slot::Done;
                None
            }
            Slot::Full(_) | Slot::Done => None,
        });
        if locked.release(JOB) {
            // SAFETY: the handle let go before; this was the last reference.
            unsafe { free(self.cell) };
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The handle's side: holds the handle's reference. `None` from a read
/// means no result will come (the task was cancelled, or its sender dropped
/// without one).
pub(crate) struct CellReceiver<T> {
    cell: NonNull<Cell<T>>,
}

// SAFETY: the receiver moves a `T` out of the slot (so `T: Send`) and
// otherwise touches the shared allocation only under its lock or through
// atomics; the allocation is freed by whichever side lets go last.
unsafe impl<T: Send> Send for CellReceiver<T> {}
// SAFETY: as for `Send`: every method through `&self` takes the lock.
unsafe impl<T: Send> Sync for CellReceiver<T> {}

impl<T> CellReceiver<T> {
    /// The receiver of the task at `cell`.
    ///
    /// # Safety
    ///
    /// `cell` points at a live task allocation with a result slot of `T`,
    /// whose handle reference the caller holds and hands over.
    pub(crate) unsafe fn from_raw(cell: NonNull<Cell<T>>) -> Self {
        Self { cell }
    }

    fn cell(&self) -> &Cell<T> {
        // SAFETY: the handle's reference keeps the allocation alive.
        unsafe { self.cell.as_ref() }
    }

    /// Takes the result if it is there; otherwise registers `waker` (when
    /// given) to be woken when it comes.
    fn take_or_register(&self, waker: Option<&Waker>) -> Poll<Option<Result<T, JoinError>>> {
        self.cell()
            .locked(|slot| match slot {
                Slot::Empty(registered) => {
                    if let Some(waker) = waker {
                        match registered {
                            Some(old) if old.will_wake(waker) => {}
                            _ => *registered = Some(waker.clone()),
                        }
                    }
                    Poll::Pending
                }
                Slot::Full(_) => match std::mem::replace(slot, Slot::Done) {
                    Slot::Full(result) => Poll::Ready(Some(result)),
                    _ => unreachable!("the slot was full under the lock"),
                },
                Slot::Cancelled | Slot::Done => Poll::Ready(None),
            })
            .0
    }

    /// Polls for the result.
    pub(crate) fn poll(&self, cx: &Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.take_or_register(Some(cx.waker()))
    }

    /// Blocks the current thread until the result comes (or never will).
    pub(crate) fn wait(&self) -> Option<Result<T, JoinError>> {
        let (notify, waker) = crate::blocking::ThreadNotify::current();
        loop {
            if let Poll::Ready(result) = self.take_or_register(Some(&waker)) {
                return result;
            }
            notify.wait_until(None);
        }
    }

    /// No result is wanted any more; one already delivered is kept.
    pub(crate) fn close(&self) {
        let (waker, locked) = self.cell().locked(|slot| match slot {
            Slot::Empty(_) => Some(std::mem::replace(slot, Slot::Cancelled)),
            Slot::Full(_) | Slot::Cancelled | Slot::Done => None,
        });
        if waker.is_some() {
            locked.close();
        }
        drop(locked);
        // A registered waker is dropped outside the lock.
        drop(waker);
    }

    /// Whether a result is waiting, or none will come.
    pub(crate) fn is_finished(&self) -> bool {
        self.cell().locked(|slot| matches!(slot, Slot::Full(_) | Slot::Done)).0
    }
}

impl<T> Drop for CellReceiver<T> {
    fn drop(&mut self) {
        let (unread, locked) = self.cell().locked(|slot| match slot {
            Slot::Empty(_) => Some(std::mem::replace(slot, Slot::Cancelled)),
            Slot::Full(_) => Some(std::mem::replace(slot, Slot::Done)),
            Slot::Cancelled | Slot::Done => None,
        });
        if matches!(unread, Some(Slot::Empty(_))) {
            locked.close();
        }
        if locked.release(HANDLE) {
            // SAFETY: the job let go before; this was the last reference.
            unsafe { free(self.cell) };
        }
        // An unread result (user data) or a waker is dropped outside the lock.
        drop(unread);
    }
}

#[cfg(test)]
mod tests;
