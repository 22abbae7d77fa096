//! The result slot on its own: a sender and a receiver over one test
//! allocation (a bare cell, freed by whichever side lets go last).

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::{Cell, CellReceiver, CellSender, Header, VTable};
use crate::JoinError;

/// The vtable of a bare cell: nothing to run; freeing drops the box.
struct Bare<T>(PhantomData<T>);

impl<T> Bare<T> {
    const VTABLE: VTable = VTable { abandon: Self::abandon, free: Self::free, runner: None };

    unsafe fn abandon(_: NonNull<Header>, _: Option<JoinError>) {
        unreachable!("a bare cell has no task")
    }

    unsafe fn free(ptr: NonNull<Header>) {
        // SAFETY: made by `Box::new` in `slot`, with no reference left.
        drop(unsafe { Box::from_raw(ptr.cast::<Cell<T>>().as_ptr()) });
    }
}

/// A new slot: its sender (for the task) and receiver (for the handle).
pub(crate) fn slot<T>() -> (CellSender<T>, CellReceiver<T>) {
    let cell = NonNull::from(Box::leak(Box::new(Cell::<T>::new(&Bare::<T>::VTABLE))));
    // SAFETY: a live cell held by both references, each handed to one side.
    unsafe { (CellSender::from_raw(cell), CellReceiver::from_raw(cell)) }
}

/// Counts its wake-ups.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    (Arc::clone(&count), Waker::from(count))
}

/// Counts its drops.
#[derive(Debug)]
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_result_sent_after_a_poll_wakes_the_handle_and_is_read_once() {
    let (tx, rx) = slot::<u8>();
    let (count, waker) = counting();
    let cx = Context::from_waker(&waker);
    assert!(rx.poll(&cx).is_pending());
    assert!(!rx.is_finished());
    assert!(tx.send(Ok(7)));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(rx.is_finished());
    assert_eq!(rx.poll(&cx), Poll::Ready(Some(Ok(7))));
    assert_eq!(rx.poll(&cx), Poll::Ready(None));
}

#[test]
fn a_sender_dropped_without_a_result_ends_the_wait() {
    let (tx, rx) = slot::<u8>();
    let (count, waker) = counting();
    assert!(rx.poll(&Context::from_waker(&waker)).is_pending());
    drop(tx);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(rx.is_finished());
    assert_eq!(rx.wait(), None);
}

#[test]
fn cancelling_closes_the_sender_and_drops_a_late_result() {
    let (tx, rx) = slot::<String>();
    assert!(!tx.is_closed());
    rx.close();
    assert!(tx.is_closed());
    assert!(!tx.send(Ok("late".to_owned())));
    assert_eq!(rx.wait(), None);
}

#[test]
fn cancelling_after_the_result_came_keeps_it() {
    let (tx, rx) = slot::<u8>();
    assert!(tx.send(Err(JoinError::DeadlineExceeded)));
    rx.close();
    assert_eq!(rx.wait(), Some(Err(JoinError::DeadlineExceeded)));
}

#[test]
fn a_dropped_handle_closes_the_sender() {
    let (tx, rx) = slot::<u8>();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
}

#[test]
fn wait_blocks_until_another_thread_sends() {
    let (tx, rx) = slot::<u64>();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(tx.send(Ok(42)));
    });
    assert_eq!(rx.wait(), Some(Ok(42)));
    sender.join().unwrap();
}

#[test]
fn an_unread_result_is_dropped_once_whichever_side_lets_go_last() {
    // The handle goes first: the late result is refused and dropped.
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = slot::<Dropped>();
    drop(rx);
    assert!(!tx.send(Ok(Dropped(Arc::clone(&drops)))));
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // The sender goes first: the result waits in the slot until the handle drops.
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = slot::<Dropped>();
    assert!(tx.send(Ok(Dropped(Arc::clone(&drops)))));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_registered_waker_is_released_with_the_slot() {
    let (count, waker) = counting();
    let (tx, rx) = slot::<u8>();
    assert!(rx.poll(&Context::from_waker(&waker)).is_pending());
    assert_eq!(Arc::strong_count(&count), 3);
    drop(rx);
    assert_eq!(Arc::strong_count(&count), 2, "the handle's waker went with it");
    drop(tx);
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "no one was waiting any more");
}

#[test]
fn the_head_of_a_task_with_a_small_result_is_three_words() {
    // The header word (with what the slot holds) and the storage the
    // waker, the value and the boxed error share.
    assert!(size_of::<Cell<u8>>() <= 24, "{} bytes", size_of::<Cell<u8>>());
}

/// A waker whose clone panics (allowed by the `RawWaker` contract); waking
/// and dropping it do nothing.
fn clone_panics() -> Waker {
    const VTABLE: std::task::RawWakerVTable = std::task::RawWakerVTable::new(
        |_| panic!("this waker cannot be cloned"),
        |_| {},
        |_| {},
        |_| {},
    );
    // SAFETY: every function of the vtable ignores the (null) data pointer.
    unsafe { Waker::from_raw(std::task::RawWaker::new(std::ptr::null(), &VTABLE)) }
}

#[test]
fn a_waker_clone_that_panics_leaves_the_stored_waker_in_place() {
    let (tx, rx) = slot::<u8>();
    let (count, waker) = counting();
    assert!(rx.poll(&Context::from_waker(&waker)).is_pending());
    assert_eq!(Arc::strong_count(&count), 3, "the slot holds a clone of the first waker");

    let other = clone_panics();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.poll(&Context::from_waker(&other))
    }));
    assert!(polled.is_err(), "the clone panicked through the poll");
    assert_eq!(Arc::strong_count(&count), 3, "the first waker's clone is still stored, once");

    assert!(tx.send(Ok(7)));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "the stored waker was woken once");
    assert_eq!(Arc::strong_count(&count), 2, "and consumed by the wake-up");
    assert_eq!(rx.poll(&Context::from_waker(&waker)), Poll::Ready(Some(Ok(7))));
}
