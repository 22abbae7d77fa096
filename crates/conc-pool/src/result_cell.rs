//! Where a blocking task's result goes: one small shared slot the worker
//! fills and the [`TaskHandle`](crate::TaskHandle) reads, in place of a
//! channel. A mutex guards it (held for a few instructions, never across
//! user code), and it keeps one waker: the handle's. A blocking task's
//! sender needs no waker of its own, since it only polls for cancellation
//! between steps; that is what makes the slot smaller than a oneshot channel.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::JoinError;

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

type Shared<T> = Arc<Mutex<Slot<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, Slot<T>> {
    // No code that can panic runs under the lock.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A new slot: its sender (for the task) and receiver (for the handle).
pub(crate) fn slot<T>() -> (CellSender<T>, CellReceiver<T>) {
    let shared = Arc::new(Mutex::new(Slot::Empty(None)));
    (CellSender { shared: Arc::clone(&shared) }, CellReceiver { shared })
}

/// The task's side. Dropped without [`send`](Self::send), the handle
/// resolves as cancelled.
pub(crate) struct CellSender<T> {
    shared: Shared<T>,
}

impl<T> CellSender<T> {
    /// Whether the handle was cancelled or dropped.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(*lock(&self.shared), Slot::Cancelled | Slot::Done)
    }

    /// Delivers the result (dropped, outside the lock, if the handle no
    /// longer wants it); whether it was delivered.
    pub(crate) fn send(self, result: Result<T, JoinError>) -> bool {
        let waker = {
            let mut slot = lock(&self.shared);
            match &mut *slot {
                Slot::Empty(waker) => {
                    let waker = waker.take();
                    *slot = Slot::Full(result);
                    waker
                }
                Slot::Full(_) | Slot::Cancelled | Slot::Done => return false,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

impl<T> Drop for CellSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = lock(&self.shared);
            match &mut *slot {
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
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The handle's side. `None` from a read means no result will come (the
/// task was cancelled, or its sender dropped without one).
pub(crate) struct CellReceiver<T> {
    shared: Shared<T>,
}

impl<T> CellReceiver<T> {
    /// Takes the result if it is there; otherwise registers `waker` (when
    /// given) to be woken when it comes.
    fn take_or_register(&self, waker: Option<&Waker>) -> Poll<Option<Result<T, JoinError>>> {
        let mut slot = lock(&self.shared);
        match &mut *slot {
            Slot::Empty(registered) => {
                if let Some(waker) = waker {
                    match registered {
                        Some(old) if old.will_wake(waker) => {}
                        _ => *registered = Some(waker.clone()),
                    }
                }
                Poll::Pending
            }
            Slot::Full(_) => match std::mem::replace(&mut *slot, Slot::Done) {
                Slot::Full(result) => Poll::Ready(Some(result)),
                _ => unreachable!("the slot was full under the lock"),
            },
            Slot::Cancelled | Slot::Done => Poll::Ready(None),
        }
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
        let mut slot = lock(&self.shared);
        if let Slot::Empty(_) = &*slot {
            *slot = Slot::Cancelled;
        }
    }

    /// Whether a result is waiting, or none will come.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(*lock(&self.shared), Slot::Full(_) | Slot::Done)
    }
}

impl<T> Drop for CellReceiver<T> {
    fn drop(&mut self) {
        let unread = {
            let mut slot = lock(&self.shared);
            match &*slot {
                Slot::Empty(_) => std::mem::replace(&mut *slot, Slot::Cancelled),
                Slot::Full(_) => std::mem::replace(&mut *slot, Slot::Done),
                Slot::Cancelled | Slot::Done => return,
            }
        };
        // An unread result (user data) is dropped outside the lock.
        drop(unread);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

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
    fn the_slot_of_a_small_result_is_smaller_than_a_oneshot_channel() {
        // The allocation: two reference counts, the mutex and the slot.
        let slot = 2 * size_of::<usize>() + size_of::<Mutex<Slot<u8>>>();
        assert!(slot <= 48, "{slot} bytes");
    }
}
