//! The blocking pool's queued jobs: two words in the queue, and at most
//! one allocation per task.
//!
//! A task with a handle is one allocation: the result slot the handle reads
//! (see `crate::result_cell`) at its head, then the closure and, only when
//! there is one, the boxed deadline and span. The queue's entry (a [`Job`])
//! and the handle both point at it, and the last to let go frees it. A
//! fire-and-forget closure of one word at most (an `Arc`, a reference, or
//! nothing) is stored in the job itself, with its vtable's address, and
//! costs no allocation; a wider one is one allocation: its vtable's
//! address, then the closure (and a span, when there is one). The vtables,
//! one per closure type, are what the handle type does not need to know.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};

use conc_core::driver::panic_message;

use crate::core::Outcome;
use crate::job::{CancelToken, log_panic};
use crate::result_cell::{Cell, CellReceiver, CellSender, Header, JOB, VTable};
use crate::{JoinError, TaskHandle};

/// A queued blocking task: runs once, or is abandoned (its handle learns
/// why), or, dropped, resolves its handle as cancelled.
///
/// Two words. A task in an allocation: the pointer to it, and its run
/// function. A small fire-and-forget closure (a word at most): its inline
/// vtable's address with the low bit set, and the closure itself.
pub(crate) struct Job {
    head: NonNull<()>,
    word: Word,
}

/// The second word of a [`Job`]: the closure itself (inline) or the run
/// function of the task the first word points at (heap), as the tag says.
#[derive(Clone, Copy)]
union Word {
    inline: MaybeUninit<*mut ()>,
    run: RunFn,
}

/// A closure task's run function: runs the task at `now` on the pool's
/// timeline, giving up the job's reference.
type RunFn = unsafe fn(NonNull<Header>, u64) -> Outcome;

// SAFETY: a job is made only from a closure, a result type and extras that
// are all `Send` (the bounds of `with_handle` and `spawn`); it holds the one
// job reference to its task, and its handle shares nothing but the slot,
// which is locked.
unsafe impl Send for Job {}

/// What a closure stored in the job itself does.
#[repr(align(16))]
struct InlineVTable {
    /// Runs the closure read out of the word.
    run: unsafe fn(MaybeUninit<*mut ()>) -> Outcome,
    /// Drops the closure read out of the word, logging `reason` if given.
    abandon: unsafe fn(MaybeUninit<*mut ()>, Option<JoinError>),
}

/// A job decoded.
enum Decoded {
    Heap(RunFn, NonNull<Header>),
    Inline(&'static InlineVTable, MaybeUninit<*mut ()>),
}

impl Job {
    fn heap(ptr: NonNull<Header>, run: RunFn) -> Self {
        Self { head: ptr.cast(), word: Word { run } }
    }

    /// The job taken apart (the caller takes over its task).
    fn into_raw(self) -> Decoded {
        let this = ManuallyDrop::new(self);
        if this.head.as_ptr().addr() & 1 == 0 {
            // SAFETY: an untagged job was made by `heap`, with a run function.
            Decoded::Heap(unsafe { this.word.run }, this.head.cast::<Header>())
        } else {
            let vtable = this.head.as_ptr().map_addr(|addr| addr & !1).cast::<InlineVTable>();
            // SAFETY: the address of a `&'static InlineVTable` with the tag bit set
            // (`inline`), cleared again; its job was made with the closure in
            // the word.
            Decoded::Inline(unsafe { &*vtable }, unsafe { this.word.inline })
        }
    }

    /// Runs the task at `now` on the pool's timeline (its deadline's).
    pub(crate) fn run(self, now: u64) -> Outcome {
        match self.into_raw() {
            // SAFETY: `ptr` is a task `run` was made for, with its job reference, handed over.
            Decoded::Heap(run, ptr) => unsafe { run(ptr, now) },
            // SAFETY: `word` holds the closure `vtable` was made for, handed over.
            Decoded::Inline(vtable, word) => unsafe { (vtable.run)(word) },
        }
    }

    /// Drops the task unrun; its handle resolves to `reason`.
    pub(crate) fn abandon(self, reason: JoinError) {
        self.abandon_with(Some(reason));
    }

    fn abandon_with(self, reason: Option<JoinError>) {
        match self.into_raw() {
            Decoded::Heap(_, ptr) => {
                // SAFETY: the job's reference keeps the allocation alive.
                let vtable = unsafe { ptr.as_ref() }.vtable();
                // SAFETY: as in `run`.
                unsafe { (vtable.abandon)(ptr, reason) }
            }
            // SAFETY: as in `run`.
            Decoded::Inline(vtable, word) => unsafe { (vtable.abandon)(word, reason) },
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let job = Job { head: self.head, word: self.word };
        job.abandon_with(None);
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Job")
    }
}

/// A fire-and-forget closure of a word at most, stored in the job itself.
struct InlineTask<F>(PhantomData<F>);

impl<F> InlineTask<F>
where
    F: FnOnce() + Send + 'static,
{
    const VTABLE: InlineVTable = InlineVTable { run: Self::run, abandon: Self::abandon };

    /// Whether `F` fits in the job's word.
    const FITS: bool =
        size_of::<F>() <= size_of::<*mut ()>() && align_of::<F>() <= align_of::<*mut ()>();

    fn create(f: F) -> Job {
        // Checked in release builds too: writing a wider `F` into the word
        // would be undefined behaviour. A constant, so it costs nothing.
        assert!(Self::FITS, "an inline closure fits in one word");
        let mut word = MaybeUninit::<*mut ()>::uninit();
        // SAFETY: `F` fits in the word, in size and alignment (`FITS`).
        unsafe { word.as_mut_ptr().cast::<F>().write(f) };
        let head = NonNull::from(&Self::VTABLE).cast::<()>();
        // The vtable is aligned to 16: the low bit is free for the tag.
        Job { head: head.map_addr(|addr| addr | 1), word: Word { inline: word } }
    }

    /// # Safety
    ///
    /// `word` holds an `F` written by `create`, handed over.
    unsafe fn take(word: MaybeUninit<*mut ()>) -> F {
        // SAFETY: the caller's contract.
        unsafe { word.as_ptr().cast::<F>().read() }
    }

    unsafe fn run(word: MaybeUninit<*mut ()>) -> Outcome {
        // SAFETY: the caller's contract.
        let f = unsafe { Self::take(word) };
        run_spawned(f)
    }

    unsafe fn abandon(word: MaybeUninit<*mut ()>, reason: Option<JoinError>) {
        // SAFETY: the caller's contract.
        drop(unsafe { Self::take(word) });
        if let Some(reason) = reason {
            tracing::warn!(target: "conc_pool", %reason, "spawned task dropped unstarted");
        }
    }
}

/// Runs a fire-and-forget closure, catching and logging a panic.
fn run_spawned(f: impl FnOnce()) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => Outcome::Completed,
        Err(payload) => {
            log_panic(&panic_message(payload.as_ref()));
            Outcome::Panicked
        }
    }
}

/// The deadline of a task that has none: no time on the pool's timeline
/// reaches it (deadlines that would are dropped when submitted).
const NO_DEADLINE: u64 = u64::MAX;

/// What only some tasks carry: a deadline (on the pool's timeline) and the
/// submitter's span.
pub(crate) trait Extras: Send + 'static {
    /// The deadline, [`NO_DEADLINE`] for none.
    fn deadline(&self) -> u64;
    /// Enters the span, if any, until the guard drops.
    fn enter(&self) -> Option<tracing::span::Entered<'_>>;
}

/// Neither deadline nor span: no bytes at all.
struct NoExtras;

impl Extras for NoExtras {
    fn deadline(&self) -> u64 {
        NO_DEADLINE
    }

    fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        None
    }
}

/// A deadline, a span or both, boxed together (8 bytes in the task).
pub(crate) struct TaskExtras(Box<(u64, Option<tracing::Span>)>);

impl TaskExtras {
    /// `deadline` and the current span; `None` when there is neither.
    pub(crate) fn new(deadline: Option<u64>) -> Option<Self> {
        let span = tracing::Span::current();
        let span = (!span.is_none()).then_some(span);
        if deadline.is_none() && span.is_none() {
            return None;
        }
        Some(Self(Box::new((deadline.unwrap_or(NO_DEADLINE), span))))
    }
}

impl Extras for TaskExtras {
    fn deadline(&self) -> u64 {
        self.0.0
    }

    fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.0.1.as_ref().map(tracing::Span::enter)
    }
}

/// A task whose result goes to a [`TaskHandle`]: the slot first (the
/// handle's view), then what the job alone owns.
#[repr(C)]
struct HandleTask<F, C, T, X> {
    cell: Cell<T>,
    /// Moved out exactly once, by `run` or `abandon`.
    parts: ManuallyDrop<Parts<F, C, X>>,
}

/// `call` says how to invoke `f` (with or without the token); it is a
/// zero-sized function item, so `f` stays recoverable as it was given.
struct Parts<F, C, X> {
    f: F,
    call: C,
    extras: X,
}

impl<F, C, T, X> HandleTask<F, C, T, X>
where
    F: Send + 'static,
    C: FnOnce(F, &CancelToken<'_>) -> T + Send + 'static,
    T: Send + 'static,
    X: Extras,
{
    const VTABLE: VTable = VTable { abandon: Self::abandon, free: Self::free, runner: None };

    /// A new task and its handle.
    fn create(parts: Parts<F, C, X>) -> (Job, TaskHandle<T>) {
        let task =
            Box::new(Self { cell: Cell::new(&Self::VTABLE), parts: ManuallyDrop::new(parts) });
        // `repr(C)`: the task, its cell and the cell's header share an address.
        let ptr = NonNull::from(Box::leak(task));
        // SAFETY: a live task with a slot of `T`; the handle's reference is handed over.
        let rx = unsafe { CellReceiver::from_raw(ptr.cast::<Cell<T>>()) };
        (Job::heap(ptr.cast::<Header>(), Self::run), TaskHandle::from_cell(rx))
    }

    /// Moves the job's parts out, and its reference into a sender.
    ///
    /// # Safety
    ///
    /// `ptr` is a task of this type whose job reference the caller hands
    /// over; its parts were not moved out before.
    unsafe fn take(ptr: NonNull<Header>) -> (Parts<F, C, X>, CellSender<T>) {
        let task = ptr.cast::<Self>();
        // SAFETY: the job reference is handed over (the caller's contract).
        let tx = unsafe { CellSender::from_raw(task.cast::<Cell<T>>()) };
        // SAFETY: the allocation is alive (the job's reference), only the job
        // touches `parts`, and this is the one time they are moved out.
        let parts = unsafe { ptr::read(&raw const (*task.as_ptr()).parts) };
        (ManuallyDrop::into_inner(parts), tx)
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn run(ptr: NonNull<Header>, now: u64) -> Outcome {
        // SAFETY: the caller's contract.
        let (Parts { f, call, extras }, tx) = unsafe { Self::take(ptr) };
        let _entered = extras.enter();
        run_with_handle(tx, extras.deadline(), now, move |token| call(f, token))
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn abandon(ptr: NonNull<Header>, reason: Option<JoinError>) {
        // SAFETY: the caller's contract.
        let (parts, tx) = unsafe { Self::take(ptr) };
        // The handle learns why first: a closure whose drop panics must not
        // turn the reason into a cancellation.
        match reason {
            Some(reason) => {
                let _ = tx.send(Err(reason));
            }
            None => drop(tx),
        }
        drop(parts);
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type with no reference left; its parts were
    /// moved out.
    unsafe fn free(ptr: NonNull<Header>) {
        // SAFETY: made by `Box::new` in `create`; no one references it any
        // more. The parts are `ManuallyDrop` (already moved out), the slot
        // is dropped with the box.
        drop(unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) });
    }
}

/// Runs `f` with a token at `now`, catching a panic, and reports to `tx`.
fn run_with_handle<T, R>(tx: CellSender<T>, deadline: u64, now: u64, f: R) -> Outcome
where
    R: FnOnce(&CancelToken<'_>) -> T,
{
    if tx.is_closed() {
        return Outcome::Cancelled;
    }
    if deadline != NO_DEADLINE && now >= deadline {
        let _ = tx.send(Err(JoinError::DeadlineExceeded));
        return Outcome::TimedOut;
    }
    let closed = || tx.is_closed();
    let token = CancelToken::new(&closed);
    match catch_unwind(AssertUnwindSafe(|| f(&token))) {
        Ok(value) => {
            // Not delivered: the handle was cancelled while it ran.
            if tx.send(Ok(value)) { Outcome::Completed } else { Outcome::Cancelled }
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            let _ = tx.send(Err(JoinError::Panicked { message }));
            Outcome::Panicked
        }
    }
}

/// A task with a handle: `f`, run through `call`, with `extras` if any.
pub(crate) fn with_handle<F, C, T>(
    f: F,
    call: C,
    extras: Option<TaskExtras>,
) -> (Job, TaskHandle<T>)
where
    F: Send + 'static,
    C: FnOnce(F, &CancelToken<'_>) -> T + Send + 'static,
    T: Send + 'static,
{
    match extras {
        None => HandleTask::create(Parts { f, call, extras: NoExtras }),
        Some(extras) => HandleTask::create(Parts { f, call, extras }),
    }
}

/// A fire-and-forget task: its vtable, then the closure (and extras).
#[repr(C)]
struct SpawnTask<F, X> {
    header: Header,
    /// Moved out when the box is taken apart.
    parts: ManuallyDrop<(F, X)>,
}

impl<F, X> SpawnTask<F, X>
where
    F: FnOnce() + Send + 'static,
    X: Extras,
{
    const VTABLE: VTable = VTable { abandon: Self::abandon, free: Self::free, runner: None };

    fn create(f: F, extras: X) -> Job {
        let header = Header::new(&Self::VTABLE, JOB);
        let task = Box::new(Self { header, parts: ManuallyDrop::new((f, extras)) });
        Job::heap(NonNull::from(Box::leak(task)).cast::<Header>(), Self::run)
    }

    /// Takes the task apart, freeing its allocation.
    ///
    /// # Safety
    ///
    /// `ptr` is a task of this type, whose one reference the caller hands over.
    unsafe fn take(ptr: NonNull<Header>) -> (F, X) {
        // SAFETY: made by `Box::new` in `create`; the caller hands it over.
        let task = unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) };
        ManuallyDrop::into_inner(task.parts)
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn run(ptr: NonNull<Header>, _now: u64) -> Outcome {
        // SAFETY: the caller's contract.
        let (f, extras) = unsafe { Self::take(ptr) };
        let _entered = extras.enter();
        run_spawned(f)
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn abandon(ptr: NonNull<Header>, reason: Option<JoinError>) {
        // SAFETY: the caller's contract.
        drop(unsafe { Self::take(ptr) });
        if let Some(reason) = reason {
            tracing::warn!(target: "conc_pool", %reason, "spawned task dropped unstarted");
        }
    }

    /// # Safety
    ///
    /// As for [`take`](Self::take).
    unsafe fn free(ptr: NonNull<Header>) {
        // A spawned task has no handle: its one reference is the job's, which
        // `run` and `abandon` give up by freeing it. Nothing calls this; it
        // frees the task all the same.
        // SAFETY: the caller's contract.
        drop(unsafe { Self::take(ptr) });
    }
}

/// A fire-and-forget task: `f`, in the submitter's span if any.
pub(crate) fn spawn<F>(f: F, extras: Option<TaskExtras>) -> Job
where
    F: FnOnce() + Send + 'static,
{
    match extras {
        None if InlineTask::<F>::FITS => InlineTask::create(f),
        None => SpawnTask::create(f, NoExtras),
        Some(extras) => SpawnTask::create(f, extras),
    }
}

pub(crate) mod future;

#[cfg(test)]
mod tests;
