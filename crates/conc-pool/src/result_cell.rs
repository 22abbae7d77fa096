//! Where a task's result goes, in either pool: a small slot at the head of
//! the task's own allocation (see `crate::task` and `crate::task::future`),
//! which the worker fills and the [`TaskHandle`](crate::TaskHandle) reads,
//! in place of a channel. The job in the queue and the handle both point at
//! that one allocation; the last of the two to let go frees it.
//!
//! The allocation starts with one word of state: the address of the task's
//! vtable (how to drop and free it; how to run it is the job's to know),
//! with seven bits below it (the vtable is aligned to 128): the job's
//! reference, the handle's, a lock bit, a closed bit, and what the slot
//! holds. The lock guards the slot (held for a few instructions, never
//! across the task's code or a drop of user data: a result is moved in or
//! out, a waker stored or taken; the one foreign call under it is cloning a
//! waker, made before anything is changed, so a clone that panics leaves
//! the slot as it was); the closed bit lets a running closure, or a future
//! about to be polled, see a cancelled handle without taking it. The slot
//! keeps one waker, the handle's: a blocking task's sender needs none of
//! its own, since it only looks for cancellation between steps. A future's
//! task keeps the waker of the worker polling it after the slot, under the
//! same lock, and its vtable says how to take it (`VTable::runner`): a
//! closing handle wakes that worker, and the job lets go of it with its
//! reference. The handle's waker, the value and the (boxed, rare) error
//! share the slot's storage, and what it holds is in the state word, which
//! keeps a small task's state to 24 bytes.
#![allow(unsafe_code)]

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::{self, NonNull};
use std::task::{Context, Poll, Waker};

use crate::JoinError;
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
/// What the slot holds: three bits.
const SLOT: usize = 0b111 << 4;
/// No result yet, no waker.
const EMPTY: usize = 0;
/// No result yet; the storage holds the handle's waker.
const WAITING: usize = 1 << 4;
/// The storage holds the task's value, not yet taken.
const VALUE: usize = 2 << 4;
/// The storage holds the task's (boxed) error, not yet taken.
const ERROR: usize = 3 << 4;
/// The handle was cancelled or dropped: no result is wanted.
const CANCELLED: usize = 4 << 4;
/// Nothing more will come: the result was taken, or the sender was dropped
/// without one.
const DONE: usize = 5 << 4;
/// The flag bits of the state word; the others are the vtable's address.
const FLAGS: usize = 0b111_1111;

/// What one kind of task (one closure or future type) does with its
/// allocation, whichever pool runs it. How it runs is the job's to know (a
/// closure's `run`, a future's `poll`: see `crate::task`), so one header and
/// one slot serve both pools. Aligned to 128, so the low seven bits of its
/// address are free for flags.
#[repr(align(128))]
pub(crate) struct VTable {
    /// Drops the task (unrun, or part-run: a future is dropped where it
    /// stopped), giving up the job's reference; its handle learns `reason`
    /// (`None`: it resolves as cancelled, unless a result came first).
    pub(crate) abandon: unsafe fn(NonNull<Header>, Option<JoinError>),
    /// Frees the allocation once no reference is left.
    pub(crate) free: unsafe fn(NonNull<Header>),
    /// A future's task: takes the waker of the worker polling it, if one is
    /// stored (called under the slot's lock, to wake the worker when the
    /// handle closes, or to drop the waker when the job lets go). `None` for
    /// a closure, which looks for the close itself between steps.
    pub(crate) runner: Option<unsafe fn(NonNull<Header>) -> Option<Waker>>,
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
        debug_assert_eq!(address & FLAGS, 0, "a vtable is aligned to 128");
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

    /// The waker of the worker polling a future's task, taken out.
    ///
    /// # Safety
    ///
    /// The caller holds a reference to the task and its slot's lock, which
    /// guards the stored waker.
    unsafe fn take_runner(this: NonNull<Self>) -> Option<Waker> {
        // SAFETY: the caller holds a reference (the allocation is alive).
        let take = unsafe { this.as_ref() }.vtable().runner?;
        // SAFETY: the lock is held (the caller's), which guards the stored waker.
        unsafe { take(this) }
    }

    /// Takes the slot's lock: a short spin (the holder keeps it for a few
    /// instructions), then yields.
    fn lock(&self) -> Locked<'_> {
        let mut round = 0;
        loop {
            let before = self.state.fetch_or(LOCKED, Ordering::Acquire);
            if before & LOCKED == 0 {
                return Locked { state: &self.state, slot: before & SLOT, close: false };
            }
            while self.state.load(Ordering::Relaxed) & LOCKED != 0 {
                spin_round(round);
                round = round.saturating_add(1);
            }
        }
    }
}

/// The slot's lock, released on drop, with what the slot holds (written
/// back to the state word with the unlock).
struct Locked<'a> {
    state: &'a AtomicUsize,
    slot: usize,
    /// Set the closed bit with the unlock.
    close: bool,
}

impl Locked<'_> {
    /// Unlocks, writing back the slot's state (and the closed bit) and
    /// clearing `release`; the state before.
    fn unlock(&mut self, release: usize) -> usize {
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let mut next = (current & !(LOCKED | SLOT | release)) | self.slot;
            if self.close {
                next |= CLOSED;
            }
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(before) => return before,
                Err(actual) => current = actual,
            }
        }
    }

    /// Unlocks and gives up `reference` in one step; whether it was the
    /// last reference (the caller then frees the allocation).
    fn release(self, reference: usize) -> bool {
        let mut this = ManuallyDrop::new(self);
        this.unlock(reference) & (JOB | HANDLE) == reference
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.unlock(0);
    }
}

/// The slot's storage: one of these, as the state word says (all at offset 0).
#[repr(C)]
union Payload<T> {
    waker: ManuallyDrop<Waker>,
    value: ManuallyDrop<T>,
    error: ManuallyDrop<Box<JoinError>>,
}

/// The head of a task with a handle: its header and its result slot. A
/// task's allocation starts with this (`repr(C)`), whatever its closure, so
/// the handle reads it knowing the result type alone.
#[repr(C)]
pub(crate) struct Cell<T> {
    header: Header,
    storage: UnsafeCell<MaybeUninit<Payload<T>>>,
}

impl<T> Cell<T> {
    /// An empty slot, held by the job and the handle, of a task of `vtable`.
    pub(crate) fn new(vtable: &'static VTable) -> Self {
        Self {
            header: Header::new(vtable, JOB | HANDLE),
            storage: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Moves the waker out of the storage.
    ///
    /// # Safety
    ///
    /// The lock is held and the slot is [`WAITING`]; the caller changes
    /// the slot's state.
    unsafe fn take_waker(&self) -> Waker {
        // SAFETY: the lock is held (no other access), and the storage
        // holds a waker (the caller's contract).
        self.storage.with_mut(|payload| unsafe { ptr::read(payload.cast::<Waker>()) })
    }

    /// Moves `waker` into the storage.
    ///
    /// # Safety
    ///
    /// The lock is held and the storage holds nothing; the caller sets the
    /// slot to [`WAITING`].
    unsafe fn put_waker(&self, waker: Waker) {
        // SAFETY: as for `take_waker`; nothing is overwritten.
        self.storage.with_mut(|payload| unsafe { payload.cast::<Waker>().write(waker) });
    }

    /// Whether the stored waker would wake `waker`'s task.
    ///
    /// # Safety
    ///
    /// The lock is held and the slot is [`WAITING`].
    unsafe fn stored_will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: as for `take_waker`; only read.
        self.storage.with_mut(|payload| unsafe { &*payload.cast::<Waker>() }.will_wake(waker))
    }

    /// Moves `result` into the storage; the slot's new state.
    ///
    /// # Safety
    ///
    /// The lock is held and the storage holds nothing; the caller sets the
    /// slot to the state returned.
    unsafe fn put_result(&self, result: Result<T, Box<JoinError>>) -> usize {
        self.storage.with_mut(|payload| match result {
            Ok(value) => {
                // SAFETY: as for `put_waker`.
                unsafe { payload.cast::<T>().write(value) };
                VALUE
            }
            Err(error) => {
                // SAFETY: as for `put_waker`.
                unsafe { payload.cast::<Box<JoinError>>().write(error) };
                ERROR
            }
        })
    }

    /// Moves the result out of the storage.
    ///
    /// # Safety
    ///
    /// The lock is held and the slot is `slot`, [`VALUE`] or [`ERROR`];
    /// the caller changes the slot's state.
    unsafe fn take_result(&self, slot: usize) -> Result<T, JoinError> {
        self.storage.with_mut(|payload| {
            if slot == VALUE {
                // SAFETY: the storage holds a value (the caller's contract).
                Ok(unsafe { ptr::read(payload.cast::<T>()) })
            } else {
                // SAFETY: the storage holds an error (the caller's contract).
                Err(*unsafe { ptr::read(payload.cast::<Box<JoinError>>()) })
            }
        })
    }
}

impl<T> Drop for Cell<T> {
    fn drop(&mut self) {
        // Freed with no reference left: every path that lets go empties the
        // slot first, but whatever it still holds is dropped all the same.
        let slot = self.header.state.load(Ordering::Acquire) & SLOT;
        // SAFETY: `&mut self`: no other access; the state says what is stored.
        match slot {
            WAITING => drop(unsafe { self.take_waker() }),
            VALUE | ERROR => drop(unsafe { self.take_result(slot) }),
            _ => {}
        }
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
        this.put(result, JOB)
    }

    /// Delivers the result as [`send`](Self::send) does, keeping the job's
    /// reference (a future's task lets go only when its job is dropped,
    /// since the future lives in the allocation); whether it was delivered.
    pub(crate) fn deliver(&self, result: Result<T, JoinError>) -> bool {
        self.put(result, 0)
    }

    /// Puts the result in the slot, giving up `release` (the job's
    /// reference, or none) with the unlock.
    fn put(&self, result: Result<T, JoinError>, release: usize) -> bool {
        // An error is boxed before the lock: nothing under it allocates.
        let result = result.map_err(Box::new);
        let cell = self.cell();
        let mut locked = cell.header.lock();
        let (waker, refused) = match locked.slot {
            EMPTY | WAITING => {
                // SAFETY: the lock is held; the slot says what is stored.
                let waker = (locked.slot == WAITING).then(|| unsafe { cell.take_waker() });
                // SAFETY: the lock is held; the storage is empty now.
                locked.slot = unsafe { cell.put_result(result) };
                (waker, None)
            }
            CANCELLED => {
                if release != 0 {
                    locked.slot = DONE;
                }
                (None, Some(result))
            }
            _ => (None, Some(result)),
        };
        let mut runner = None;
        if release == 0 {
            drop(locked);
        } else {
            // A future's task lets go of its worker's waker with the job.
            // SAFETY: this side's reference and the lock are held.
            runner = unsafe { Header::take_runner(self.cell.cast::<Header>()) };
            if locked.release(release) {
                // SAFETY: the handle let go before; this was the last reference.
                unsafe { free(self.cell) };
            }
        }
        // Woken before the runner's waker is dropped: a drop that panics
        // cannot cost the handle its wake-up.
        if let Some(waker) = waker {
            waker.wake();
        }
        drop(runner);
        refused.is_none()
    }

    /// Runs `store` under the slot's lock, unless the handle was cancelled
    /// or dropped (then `false`, and `store` does not run). A future's task
    /// stores the waker of the worker polling it there, so a close wakes
    /// that worker (`VTable::runner` takes it back); what `store` returns
    /// (a waker it replaced) is dropped outside the lock.
    pub(crate) fn while_open(&self, store: impl FnOnce() -> Option<Waker>) -> bool {
        let locked = self.cell().header.lock();
        if locked.slot == CANCELLED {
            return false;
        }
        let replaced = store();
        drop(locked);
        drop(replaced);
        true
    }
}

impl<T> Drop for CellSender<T> {
    fn drop(&mut self) {
        let cell = self.cell();
        let mut locked = cell.header.lock();
        let waker = match locked.slot {
            EMPTY | CANCELLED => {
                locked.slot = DONE;
                None
            }
            WAITING => {
                locked.slot = DONE;
                // SAFETY: the lock is held; the slot holds a waker.
                Some(unsafe { cell.take_waker() })
            }
            _ => None,
        };
        // A future's task lets go of its worker's waker with the job.
        // SAFETY: the job's reference and the lock are held.
        let runner = unsafe { Header::take_runner(self.cell.cast::<Header>()) };
        if locked.release(JOB) {
            // SAFETY: the handle let go before; this was the last reference.
            unsafe { free(self.cell) };
        }
        // Woken first: a runner's waker whose drop panics cannot cost the
        // handle its wake-up.
        if let Some(waker) = waker {
            waker.wake();
        }
        drop(runner);
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
    /// Whether the task runs a future (on an async pool's worker) rather
    /// than a closure.
    pub(crate) fn runs_a_future(&self) -> bool {
        self.cell().header.vtable().runner.is_some()
    }

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
        let cell = self.cell();
        let mut locked = cell.header.lock();
        let mut replaced = None;
        let poll = match (locked.slot, waker) {
            (EMPTY, Some(waker)) => {
                // SAFETY: the lock is held; the storage is empty.
                unsafe { cell.put_waker(waker.clone()) };
                locked.slot = WAITING;
                Poll::Pending
            }
            // SAFETY: the lock is held; the slot holds a waker.
            (WAITING, Some(waker)) if !unsafe { cell.stored_will_wake(waker) } => {
                // Cloned before the stored waker is touched: a clone that
                // panics unwinds through the lock's drop with the slot as it
                // was (still holding the old waker).
                let new = waker.clone();
                // SAFETY: the lock is held; the slot holds a waker, and
                // holds the new one after (nothing between can unwind).
                unsafe {
                    replaced = Some(cell.take_waker());
                    cell.put_waker(new);
                }
                Poll::Pending
            }
            (EMPTY | WAITING, _) => Poll::Pending,
            (VALUE | ERROR, _) => {
                // SAFETY: the lock is held; the slot holds a result.
                let result = unsafe { cell.take_result(locked.slot) };
                locked.slot = DONE;
                Poll::Ready(Some(result))
            }
            _ => Poll::Ready(None),
        };
        drop(locked);
        // An old waker is dropped outside the lock.
        drop(replaced);
        poll
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

    /// Marks the slot cancelled if no result came (under `locked`): the
    /// waker it held, if any, and the waker of the worker polling a
    /// future's task, if one is stored (to be woken, so the worker drops the
    /// future at once).
    fn cancel_locked(&self, locked: &mut Locked<'_>) -> [Option<Waker>; 2] {
        let cell = self.cell();
        let waker = match locked.slot {
            // SAFETY: the lock is held; the slot holds a waker.
            WAITING => Some(unsafe { cell.take_waker() }),
            EMPTY => None,
            _ => return [None, None],
        };
        locked.slot = CANCELLED;
        locked.close = true;
        // SAFETY: the handle's reference and the lock are held.
        [waker, unsafe { Header::take_runner(self.cell.cast::<Header>()) }]
    }

    /// No result is wanted any more; one already delivered is kept.
    pub(crate) fn close(&self) {
        let mut locked = self.cell().header.lock();
        let [waker, runner] = self.cancel_locked(&mut locked);
        drop(locked);
        // Outside the lock, the runner woken before the registered waker is
        // dropped (a drop that panics cannot cost the worker its wake-up).
        if let Some(runner) = runner {
            runner.wake();
        }
        drop(waker);
    }

    /// Whether a result is waiting, or none will come.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.cell().header.lock().slot, VALUE | ERROR | DONE)
    }
}

impl<T> Drop for CellReceiver<T> {
    fn drop(&mut self) {
        let cell = self.cell();
        let mut locked = cell.header.lock();
        let [waker, runner] = self.cancel_locked(&mut locked);
        let unread = match locked.slot {
            VALUE | ERROR => {
                // SAFETY: the lock is held; the slot holds a result.
                let result = unsafe { cell.take_result(locked.slot) };
                locked.slot = DONE;
                Some(result)
            }
            _ => None,
        };
        if locked.release(HANDLE) {
            // SAFETY: the job let go before; this was the last reference.
            unsafe { free(self.cell) };
        }
        // Outside the lock: the runner woken first, then an unread result
        // (user data) and a waker dropped (a drop that panics cannot cost the
        // worker its wake-up).
        if let Some(runner) = runner {
            runner.wake();
        }
        drop(unread);
        drop(waker);
    }
}

#[cfg(test)]
mod tests;
