//! The async pool's queued tasks: one allocation per task, as for a
//! blocking closure (see `crate::task`).
//!
//! A task with a handle starts with the same result slot (see
//! `crate::result_cell`) as a blocking task, then the waker of the worker
//! polling it (so a cancelled or dropped handle wakes that worker, which
//! drops the future at once), then the future itself, pinned in place with
//! its deadline (boxed with its timer, only when there is one) and span. No channel and no second box: the queue's entry (a
//! [`FutureJob`]) and the handle both point at that one allocation, and the
//! last to let go frees it. A fire-and-forget future is one allocation too:
//! a header, then the future.
//!
//! The future is dropped in place, before its result is delivered (as a
//! closure is consumed before its result is): on completion, on a deadline,
//! when the handle is cancelled, or when the job is dropped (a shutdown
//! cutting a worker off), the handle then resolving as cancelled.
#![allow(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll, Waker, ready};

use pin_project_lite::pin_project;

use crate::core::Outcome;
use crate::job::{CarriedSpan, log_panic, poll_catching};
use crate::loom::cell::UnsafeCell;
use crate::result_cell::{Cell, CellReceiver, CellSender, Header, JOB, VTable};
use crate::{JoinError, TaskHandle};

/// A future task's poll function: polls the task once. It holds the job's
/// reference for the call: on `Pending` the caller keeps it; on `Ready`
/// (and when it unwinds) it has given it up, the future dropped and its
/// result delivered.
type PollFn = unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<Outcome>;

/// A queued async task: polled to completion by a worker, or abandoned (its
/// handle learns why), or, dropped, resolves its handle as cancelled (the
/// future dropped where it stopped). Two words: the task and its poll
/// function.
pub(crate) struct FutureJob {
    /// The job's reference; `None` once given up (the task finished).
    head: Option<NonNull<Header>>,
    poll: PollFn,
}

// SAFETY: a job is made only from a future and an output that are both
// `Send` (the bounds of `with_handle` and `spawn`); it holds the one job
// reference to its task, and its handle shares nothing but the slot, which
// is locked.
unsafe impl Send for FutureJob {}

impl FutureJob {
    /// Drops the task unrun; its handle resolves to `reason`.
    pub(crate) fn abandon(mut self, reason: JoinError) {
        if let Some(head) = self.head.take() {
            // SAFETY: the job's reference, handed over.
            unsafe { abandon(head, Some(reason)) };
        }
    }
}

/// Drops the task of `head` through its vtable, giving up the job's reference.
///
/// # Safety
///
/// `head` is a live task whose job reference the caller hands over.
unsafe fn abandon(head: NonNull<Header>, reason: Option<JoinError>) {
    // SAFETY: the job's reference keeps the allocation alive.
    let vtable = unsafe { head.as_ref() }.vtable();
    // SAFETY: the caller's contract.
    unsafe { (vtable.abandon)(head, reason) }
}

impl Future for FutureJob {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        // Taken for the call: the poll function gives the reference up on
        // `Ready` or when it unwinds, and hands it back on `Pending`.
        let Some(head) = self.head.take() else { return Poll::Ready(Outcome::Cancelled) };
        // SAFETY: `head` is a live task `poll` was made for, with the job's
        // reference, handed over for the call.
        let poll = unsafe { (self.poll)(head, cx) };
        if poll.is_pending() {
            self.head = Some(head);
        }
        poll
    }
}

impl Drop for FutureJob {
    fn drop(&mut self) {
        if let Some(head) = self.head.take() {
            // SAFETY: the job's reference, handed over.
            unsafe { abandon(head, None) };
        }
    }
}

impl fmt::Debug for FutureJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureJob").field("finished", &self.head.is_none()).finish_non_exhaustive()
    }
}

/// What only the job touches: the future and its companions, pinned in the
/// allocation (never moved), dropped in place once.
struct Stage<S>(UnsafeCell<Option<S>>);

/// Drops a stage's state when a poll unwinds (forgotten when it returns).
struct ClearOnUnwind<'a, S>(&'a Stage<S>);

impl<S> Drop for ClearOnUnwind<'_, S> {
    fn drop(&mut self) {
        // SAFETY: made by the job's holder in `poll`, the only caller of the
        // stage's methods, whose `with` call is over once this runs.
        unsafe { self.0.clear() };
    }
}

impl<S> Stage<S> {
    fn new(running: S) -> Self {
        Self(UnsafeCell::new(Some(running)))
    }

    /// Runs `f` on the pinned state, if it was not dropped yet.
    ///
    /// # Safety
    ///
    /// Only the holder of the job's reference calls this, `clear` and
    /// `with`, one call at a time.
    unsafe fn with<R>(&self, f: impl FnOnce(Option<Pin<&mut S>>) -> R) -> R {
        self.0.with_mut(|state| {
            // SAFETY: the only access (the caller's contract); the state
            // lives in a heap allocation that never moves and is dropped in
            // place (`clear`, or with the allocation), so pinning holds.
            let state = unsafe { (*state).as_mut().map(|s| Pin::new_unchecked(s)) };
            f(state)
        })
    }

    /// Drops the state in place (once; later calls do nothing).
    ///
    /// # Safety
    ///
    /// As for [`with`](Self::with).
    unsafe fn clear(&self) {
        /// Marks the state dropped, also when its drop unwinds.
        struct Cleared<S>(*mut Option<S>);
        impl<S> Drop for Cleared<S> {
            fn drop(&mut self) {
                // SAFETY: the state was just dropped in place; `None` owns
                // nothing, so nothing is dropped twice.
                unsafe { ptr::write(self.0, None) };
            }
        }
        self.0.with_mut(|state| {
            // SAFETY: the only access (the caller's contract).
            if unsafe { (*state).is_none() } {
                return;
            }
            let _cleared = Cleared(state);
            // SAFETY: a live state, dropped where it is (it is pinned), and
            // overwritten with `None` right after by the guard.
            unsafe { ptr::drop_in_place(state) };
        });
    }
}

/// How a future with a handle ended.
enum Finish<T> {
    /// Its output, for the handle.
    Value(T),
    /// An outcome with the error the handle gets.
    Failed(Outcome, JoinError),
    /// The handle was cancelled or dropped.
    Cancelled,
}

pin_project! {
    /// A future whose output goes to a handle, with its deadline, if any,
    /// boxed (8 bytes in the task) and the submitter's span.
    struct Running<F> {
        #[pin]
        fut: F,
        deadline: Option<Pin<Box<Deadline>>>,
        started: bool,
        // The submitter's span, entered on every poll.
        span: CarriedSpan,
    }
}

pin_project! {
    /// A deadline on tokio's clock and, once the task started, its timer.
    struct Deadline {
        at: tokio::time::Instant,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
    }
}

impl<F: Future> Running<F> {
    /// Polls the future; `tx` is the task's slot (looked at, not written),
    /// `runner` where this worker's waker goes for a close to wake it.
    fn poll(
        self: Pin<&mut Self>,
        tx: &CellSender<F::Output>,
        runner: &UnsafeCell<Option<Waker>>,
        cx: &mut Context<'_>,
    ) -> Poll<Finish<F::Output>> {
        let mut this = self.project();
        let _entered = this.span.enter();
        // A cancelled task is not polled again: it is dropped where it stopped.
        if tx.is_closed() {
            return Poll::Ready(Finish::Cancelled);
        }
        if !*this.started {
            *this.started = true;
            if let Some(deadline) = this.deadline.as_mut() {
                let mut deadline = deadline.as_mut().project();
                if tokio::time::Instant::now() >= *deadline.at {
                    return Poll::Ready(Finish::Failed(
                        Outcome::TimedOut,
                        JoinError::DeadlineExceeded,
                    ));
                }
                deadline.sleep.set(Some(tokio::time::sleep_until(*deadline.at)));
            }
        }
        if let Poll::Ready(result) = poll_catching(this.fut.as_mut(), cx) {
            return Poll::Ready(match result {
                Ok(value) => Finish::Value(value),
                Err(message) => Finish::Failed(Outcome::Panicked, JoinError::Panicked { message }),
            });
        }
        // Pending: this worker's waker goes where a close finds it, unless
        // the handle closed already.
        let waker = cx.waker();
        let open = tx.while_open(|| {
            runner.with_mut(|stored| {
                // SAFETY: the slot's lock is held (`while_open`), which
                // guards the stored waker.
                let stored = unsafe { &mut *stored };
                match stored {
                    Some(current) if current.will_wake(waker) => None,
                    // Cloned before the stored one is touched.
                    _ => stored.replace(waker.clone()),
                }
            })
        });
        if !open {
            return Poll::Ready(Finish::Cancelled);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && let Some(sleep) = deadline.as_mut().project().sleep.as_pin_mut()
            && sleep.poll(cx).is_ready()
        {
            return Poll::Ready(Finish::Failed(Outcome::TimedOut, JoinError::DeadlineExceeded));
        }
        Poll::Pending
    }
}

/// A future task with a handle: the slot first (the handle's view), then
/// the waker of the worker polling it, then what the job alone owns.
#[repr(C)]
struct HandleTask<F: Future> {
    cell: Cell<F::Output>,
    /// Guarded by the slot's lock.
    runner: UnsafeCell<Option<Waker>>,
    stage: Stage<Running<F>>,
}

impl<F> HandleTask<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    const VTABLE: VTable =
        VTable { abandon: Self::abandon, free: Self::free, runner: Some(Self::take_runner) };

    /// A new task and its handle.
    fn create(
        fut: F,
        deadline: Option<tokio::time::Instant>,
    ) -> (FutureJob, TaskHandle<F::Output>) {
        let deadline = deadline.map(|at| Box::pin(Deadline { at, sleep: None }));
        let running = Running { fut, deadline, started: false, span: CarriedSpan::current() };
        let task = Box::new(Self {
            cell: Cell::new(&Self::VTABLE),
            runner: UnsafeCell::new(None),
            stage: Stage::new(running),
        });
        // `repr(C)`: the task, its cell and the cell's header share an address.
        let ptr = NonNull::from(Box::leak(task));
        // SAFETY: a live task with a slot of `F::Output`; the handle's
        // reference is handed over.
        let rx = unsafe { CellReceiver::from_raw(ptr.cast::<Cell<F::Output>>()) };
        (
            FutureJob { head: Some(ptr.cast::<Header>()), poll: Self::poll },
            TaskHandle::from_cell(rx),
        )
    }

    /// The job's reference as a sender.
    ///
    /// # Safety
    ///
    /// `ptr` is a task of this type whose job reference the caller hands over.
    unsafe fn sender(ptr: NonNull<Header>) -> CellSender<F::Output> {
        // SAFETY: the caller's contract.
        unsafe { CellSender::from_raw(ptr.cast::<Cell<F::Output>>()) }
    }

    /// The task's stage.
    ///
    /// # Safety
    ///
    /// `ptr` is a live task of this type.
    unsafe fn stage<'a>(ptr: NonNull<Header>) -> &'a Stage<Running<F>> {
        // SAFETY: the caller's contract; only the stage is borrowed.
        unsafe { &(*ptr.cast::<Self>().as_ptr()).stage }
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type whose job reference the caller hands
    /// over for the call (see [`PollFn`]).
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<Outcome> {
        // SAFETY: the caller's contract. Dropped (letting go of the
        // reference) only once the task is finished, or if this unwinds.
        let tx = unsafe { Self::sender(ptr) };
        // SAFETY: the job's reference keeps the task alive; only the job's
        // holder touches the stage, and the runner's waker is touched only
        // under the slot's lock (or by `free`, once nothing else can).
        let (stage, runner) = unsafe { (Self::stage(ptr), &(*ptr.cast::<Self>().as_ptr()).runner) };
        // Should the poll unwind (a worker waker's clone or a timer that
        // panics; a panic of the future itself is caught inside), the future
        // is dropped here, on the worker, before `tx` lets go of the job's
        // reference: never later by whoever frees the task.
        let unwinding = ClearOnUnwind(stage);
        // SAFETY: the job's holder, one call at a time.
        let polled = unsafe {
            stage.with(|running| match running {
                Some(running) => running.poll(&tx, runner, cx),
                None => Poll::Ready(Finish::Cancelled),
            })
        };
        std::mem::forget(unwinding);
        let Poll::Ready(finish) = polled else {
            // The caller keeps the reference.
            let _ = ManuallyDrop::new(tx);
            return Poll::Pending;
        };
        // The future is dropped before its result is delivered.
        // SAFETY: as for `with`.
        unsafe { stage.clear() };
        Poll::Ready(match finish {
            Finish::Value(value) => {
                if tx.send(Ok(value)) {
                    Outcome::Completed
                } else {
                    Outcome::Cancelled
                }
            }
            Finish::Failed(outcome, error) => {
                let _ = tx.send(Err(error));
                outcome
            }
            Finish::Cancelled => {
                drop(tx);
                Outcome::Cancelled
            }
        })
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type whose job reference the caller hands over.
    unsafe fn abandon(ptr: NonNull<Header>, reason: Option<JoinError>) {
        // SAFETY: the caller's contract; dropped (letting go) last, also if
        // the future's drop unwinds.
        let tx = unsafe { Self::sender(ptr) };
        // The handle learns why first: a future whose drop panics must not
        // turn the reason into a cancellation.
        if let Some(reason) = reason {
            let _ = tx.deliver(Err(reason));
        }
        // SAFETY: the job's reference keeps the task alive; the job's holder.
        unsafe { Self::stage(ptr).clear() };
        drop(tx);
    }

    /// # Safety
    ///
    /// `ptr` is a live task of this type, and the slot's lock is held.
    unsafe fn take_runner(ptr: NonNull<Header>) -> Option<Waker> {
        // SAFETY: the caller's contract: the lock guards the runner's waker.
        let runner = unsafe { &(*ptr.cast::<Self>().as_ptr()).runner };
        // SAFETY: as above.
        runner.with_mut(|stored| unsafe { (*stored).take() })
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type with no reference left.
    unsafe fn free(ptr: NonNull<Header>) {
        // SAFETY: made by `Box::new` in `create`; no one references it any
        // more. What it still holds (a future not dropped yet, a waker, a
        // result) is dropped with the box.
        drop(unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) });
    }
}

/// A future task with a handle for its output, with a deadline on tokio's
/// clock if any.
pub(crate) fn with_handle<F>(
    fut: F,
    deadline: Option<tokio::time::Instant>,
) -> (FutureJob, TaskHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    HandleTask::create(fut, deadline)
}

pin_project! {
    /// A fire-and-forget future, in the submitter's span.
    struct Spawned<F> {
        #[pin]
        fut: F,
        span: CarriedSpan,
    }
}

/// A fire-and-forget future task: its header, then the future. The job
/// holds the one reference.
#[repr(C)]
struct SpawnTask<F> {
    header: Header,
    stage: Stage<Spawned<F>>,
}

/// Frees a fire-and-forget task when dropped (also when a poll unwinds).
struct Owned<F>(NonNull<SpawnTask<F>>);

impl<F> Drop for Owned<F> {
    fn drop(&mut self) {
        // SAFETY: made by `Box::new` in `SpawnTask::create`; the holder of
        // this guard holds its one reference.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<F> SpawnTask<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    const VTABLE: VTable = VTable { abandon: Self::abandon, free: Self::free, runner: None };

    fn create(fut: F) -> FutureJob {
        let header = Header::new(&Self::VTABLE, JOB);
        let task = Box::new(Self {
            header,
            stage: Stage::new(Spawned { fut, span: CarriedSpan::current() }),
        });
        let head = NonNull::from(Box::leak(task)).cast::<Header>();
        FutureJob { head: Some(head), poll: Self::poll }
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type whose one reference the caller hands
    /// over for the call (see [`PollFn`]).
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let owned = Owned(ptr.cast::<Self>());
        // SAFETY: the reference keeps the task alive; only its holder
        // touches the stage, one call at a time.
        let stage = unsafe { &(*owned.0.as_ptr()).stage };
        // SAFETY: as above.
        let polled = unsafe {
            stage.with(|spawned| {
                let Some(spawned) = spawned else { return Poll::Ready(Outcome::Cancelled) };
                let this = spawned.project();
                let _entered = this.span.enter();
                Poll::Ready(match ready!(poll_catching(this.fut, cx)) {
                    Ok(()) => Outcome::Completed,
                    Err(message) => {
                        log_panic(&message);
                        Outcome::Panicked
                    }
                })
            })
        };
        if polled.is_pending() {
            // The caller keeps the reference.
            let _ = ManuallyDrop::new(owned);
        }
        polled
    }

    /// # Safety
    ///
    /// `ptr` is a task of this type whose one reference the caller hands over.
    unsafe fn abandon(ptr: NonNull<Header>, reason: Option<JoinError>) {
        drop(Owned(ptr.cast::<Self>()));
        if let Some(reason) = reason {
            tracing::warn!(target: "conc_pool", %reason, "spawned task dropped unstarted");
        }
    }

    /// # Safety
    ///
    /// As for [`abandon`](Self::abandon).
    unsafe fn free(ptr: NonNull<Header>) {
        // A spawned task has no handle: its one reference is the job's,
        // which a finished poll and `abandon` give up by freeing it. Nothing
        // calls this; it frees the task all the same.
        drop(Owned(ptr.cast::<Self>()));
    }
}

/// A fire-and-forget future task, in the submitter's span.
pub(crate) fn spawn<F>(fut: F) -> FutureJob
where
    F: Future<Output = ()> + Send + 'static,
{
    SpawnTask::create(fut)
}

#[cfg(test)]
mod tests;
