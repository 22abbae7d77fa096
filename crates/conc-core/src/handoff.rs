//! A bounded queue that hands items from tasks to one consumer in bulk.
//!
//! Senders append items (one, or a batch at once); the receiver takes
//! *everything* queued in one step, swapping in its own empty buffer, and
//! then hands the items out without touching the queue again. A side is
//! woken only when it registered a waker because it had to wait — the
//! receiver on an empty queue, a sender on a full one — so while both sides
//! are busy nobody is woken, and while the receiver waits for its wake-up the
//! senders keep filling the queue: the hand-off batches itself under load,
//! even when items are sent one at a time. A producer that knows more items
//! are ready can also hold the wake-up back ([`Sender::send_deferred`], then
//! [`Sender::flush`]), so the consumer is woken once for many items.
//!
//! It is a `VecDeque` behind a mutex that each side holds for a few
//! instructions; no user code runs under it. A channel that counts every item
//! through a semaphore (tokio's bounded `mpsc`) pays for that count on both
//! sides of every item; this queue pays one lock per send and one per take.
//! `conc-pipeline`'s spawned stages and `conc-fan`'s fan-out results travel
//! through it.
//!
//! The queue ends when every sender is gone and nothing is left. A producer
//! that calls [`Sender::finish`] before it drops its sender marks the end as
//! complete, so the receiver can tell a producer that finished from one that
//! died ([`Receiver::is_finished`]). The mark is one flag for the whole queue:
//! with several senders, call it once all of them are done (for instance from
//! the last one), or have each producer report its own end in its items.
//!
//! # Examples
//!
//! ```
//! use std::collections::VecDeque;
//! use conc_core::handoff;
//!
//! # futures::executor::block_on(async {
//! let (sender, mut receiver) = handoff::channel::<u32>(8);
//! let mut batch = vec![1, 2, 3];
//! sender.send(&mut batch).await.unwrap();
//! sender.send_one(4).await.unwrap();
//! sender.finish();
//! drop(sender);
//!
//! let mut taken = VecDeque::new();
//! assert!(receiver.take(&mut taken).await); // everything queued, at once
//! assert_eq!(taken, [1, 2, 3, 4]);
//! taken.clear();
//! assert!(!receiver.take(&mut taken).await); // the end
//! assert!(receiver.is_finished());
//! # });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A queue holding at most `capacity` items (0 counts as 1; `usize::MAX`
/// for a queue whose senders never wait, when something else bounds what is
/// in flight). A batch larger than the capacity is let in whole once the
/// queue is empty.
///
/// # Examples
///
/// ```
/// use conc_core::handoff;
///
/// let (sender, receiver) = handoff::channel::<String>(1_024);
/// let more = sender.clone(); // any number of senders, one receiver
/// # drop((more, receiver));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            finished: false,
            receiver_gone: false,
            receiver: None,
            waiting: Vec::new(),
        }),
        capacity: capacity.max(1),
    });
    (Sender { shared: Arc::clone(&shared) }, Receiver { shared })
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    finished: bool,
    receiver_gone: bool,
    /// The receiver, waiting for items.
    receiver: Option<Waker>,
    /// Senders waiting for room.
    waiting: Vec<Waker>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock (items are moved, never dropped
        // there), so a poisoned lock still guards a whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiver is gone: nothing more will be taken.
///
/// # Examples
///
/// ```
/// use conc_core::handoff::{self, Closed};
///
/// # futures::executor::block_on(async {
/// let (sender, receiver) = handoff::channel::<u32>(4);
/// drop(receiver);
/// assert_eq!(sender.send_one(1).await, Err(Closed));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving end of the hand-off queue is gone")
    }
}

impl std::error::Error for Closed {}

/// A sending end; clone it for more senders.
///
/// # Examples
///
/// ```
/// use conc_core::handoff;
///
/// # futures::executor::block_on(async {
/// let (sender, _receiver) = handoff::channel::<u32>(2);
/// let mut batch = vec![1, 2];
/// sender.send(&mut batch).await.unwrap();
/// assert!(batch.is_empty()); // moved out; its allocation stays for reuse
/// # });
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Appends every item of `items` (emptying it, keeping its allocation),
    /// once the queue has room for all of them; a batch is never split.
    ///
    /// # Errors
    ///
    /// [`Closed`] when the receiver is gone; the items stay in `items`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// # futures::executor::block_on(async {
    /// let (sender, _receiver) = handoff::channel::<u32>(4);
    /// sender.send(&mut vec![1, 2, 3]).await.unwrap();
    /// # });
    /// ```
    pub async fn send(&self, items: &mut Vec<T>) -> Result<(), Closed> {
        poll_fn(|cx| self.poll_send(cx, items.len(), true, |queue| queue.extend(items.drain(..))))
            .await
    }

    /// Like [`send`](Self::send), but a receiver waiting for items is not
    /// woken yet: call [`flush`](Self::flush) when nothing more is coming at
    /// once. A producer with more items ready wakes the receiver once for
    /// many of them. (A full queue wakes the receiver anyway, and so does the
    /// last sender going away.)
    ///
    /// # Errors
    ///
    /// [`Closed`] when the receiver is gone; the items stay in `items`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// # futures::executor::block_on(async {
    /// let (sender, _receiver) = handoff::channel::<u32>(64);
    /// for n in 0..10 {
    ///     sender.send_deferred(&mut vec![n]).await.unwrap();
    /// }
    /// sender.flush(); // one wake-up for the ten
    /// # });
    /// ```
    pub async fn send_deferred(&self, items: &mut Vec<T>) -> Result<(), Closed> {
        poll_fn(|cx| self.poll_send(cx, items.len(), false, |queue| queue.extend(items.drain(..))))
            .await
    }

    /// Wakes the receiver if it is waiting and items are queued (after
    /// [`send_deferred`](Self::send_deferred)).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// let (sender, _receiver) = handoff::channel::<u32>(4);
    /// sender.flush(); // nothing queued, nobody woken
    /// ```
    pub fn flush(&self) {
        let mut state = self.shared.lock();
        let receiver = if state.items.is_empty() { None } else { state.receiver.take() };
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }

    /// Appends one item, once the queue has room for it.
    ///
    /// # Errors
    ///
    /// [`Closed`] when the receiver is gone (the item is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// # futures::executor::block_on(async {
    /// let (sender, _receiver) = handoff::channel::<u32>(4);
    /// sender.send_one(7).await.unwrap();
    /// # });
    /// ```
    pub async fn send_one(&self, item: T) -> Result<(), Closed> {
        let mut item = Some(item);
        poll_fn(|cx| {
            self.poll_send(cx, 1, true, |queue| {
                if let Some(item) = item.take() {
                    queue.push_back(item);
                }
            })
        })
        .await
    }

    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        count: usize,
        wake: bool,
        append: impl FnOnce(&mut VecDeque<T>),
    ) -> Poll<Result<(), Closed>> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Poll::Ready(Err(Closed));
        }
        let queued = state.items.len();
        if queued > 0 && queued.saturating_add(count) > self.shared.capacity {
            if !state.waiting.iter().any(|waker| waker.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            // A full queue must reach the receiver, deferred or not.
            let receiver = state.receiver.take();
            drop(state);
            if let Some(receiver) = receiver {
                receiver.wake();
            }
            return Poll::Pending;
        }
        append(&mut state.items);
        let receiver = if wake { state.receiver.take() } else { None };
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Marks the queue's end as complete (one flag for the whole queue, set
    /// by any sender): [`Receiver::is_finished`] says so from now on. An end
    /// without it means the senders were dropped, say by a panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// let (sender, receiver) = handoff::channel::<u32>(1);
    /// sender.finish();
    /// assert!(receiver.is_finished());
    /// ```
    pub fn finish(&self) {
        self.shared.lock().finished = true;
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        // The last sender ends the queue; any sender may leave deferred items.
        let receiver = if state.senders == 0 || !state.items.is_empty() {
            state.receiver.take()
        } else {
            None
        };
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("capacity", &self.shared.capacity).finish_non_exhaustive()
    }
}

/// The receiving end.
///
/// # Examples
///
/// ```
/// use std::collections::VecDeque;
/// use conc_core::handoff;
///
/// # futures::executor::block_on(async {
/// let (sender, mut receiver) = handoff::channel::<u32>(4);
/// sender.send_one(1).await.unwrap();
/// drop(sender);
/// let mut taken = VecDeque::new();
/// while receiver.take(&mut taken).await {
///     while let Some(item) = taken.pop_front() {
///         assert_eq!(item, 1);
///     }
/// }
/// assert!(!receiver.is_finished()); // dropped without `finish`
/// # });
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Moves every queued item to the back of `into` (by swapping buffers
    /// when `into` is empty, so neither side allocates once both have grown)
    /// and wakes the senders waiting for room. Ready with `true` when items
    /// moved, with `false` once every sender is gone and nothing is left;
    /// pending (the task is woken) while the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use std::task::{Context, Poll, Waker};
    /// use conc_core::handoff;
    ///
    /// let (sender, mut receiver) = handoff::channel::<u32>(4);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut taken = VecDeque::new();
    /// assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
    /// drop(sender);
    /// assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(false));
    /// ```
    pub fn poll_take(&mut self, cx: &mut Context<'_>, into: &mut VecDeque<T>) -> Poll<bool> {
        let mut state = self.shared.lock();
        if state.items.is_empty() {
            if state.senders == 0 {
                return Poll::Ready(false);
            }
            if !state.receiver.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                state.receiver = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        if into.is_empty() {
            std::mem::swap(&mut state.items, into);
        } else {
            into.extend(state.items.drain(..));
        }
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        for sender in waiting {
            sender.wake();
        }
        Poll::Ready(true)
    }

    /// [`poll_take`](Self::poll_take) as a future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use conc_core::handoff;
    ///
    /// # futures::executor::block_on(async {
    /// let (sender, mut receiver) = handoff::channel::<u32>(4);
    /// sender.send_one(1).await.unwrap();
    /// let mut taken = VecDeque::new();
    /// assert!(receiver.take(&mut taken).await);
    /// # });
    /// ```
    pub async fn take(&mut self, into: &mut VecDeque<T>) -> bool {
        poll_fn(|cx| self.poll_take(cx, into)).await
    }

    /// Whether a sender called [`Sender::finish`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::handoff;
    ///
    /// let (sender, receiver) = handoff::channel::<u32>(1);
    /// assert!(!receiver.is_finished());
    /// sender.finish();
    /// assert!(receiver.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        let items = std::mem::take(&mut state.items);
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        // Items (user values) are dropped outside the lock.
        drop(items);
        for sender in waiting {
            sender.wake();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("capacity", &self.shared.capacity).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::{Closed, channel};

    /// A waker that records being woken.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag::default());
        (Arc::clone(&flag), Waker::from(flag))
    }

    /// A full queue makes a sender wait until the receiver takes; the
    /// receiver is woken by the send that follows its wait, and by nothing
    /// else.
    #[test]
    fn a_full_queue_holds_senders_until_the_receiver_takes() {
        let (sender, mut receiver) = channel::<u32>(2);
        let (receiver_woken, receiver_waker) = flag();
        let mut receiver_cx = Context::from_waker(&receiver_waker);
        let mut taken = VecDeque::new();
        assert!(receiver.poll_take(&mut receiver_cx, &mut taken).is_pending());

        let (sender_woken, sender_waker) = flag();
        let mut sender_cx = Context::from_waker(&sender_waker);
        let mut first = std::pin::pin!(sender.send_one(1));
        assert_eq!(first.as_mut().poll(&mut sender_cx), Poll::Ready(Ok(())));
        assert!(receiver_woken.0.swap(false, Ordering::SeqCst), "the waiting receiver is woken");
        let mut second = std::pin::pin!(sender.send_one(2));
        assert_eq!(second.as_mut().poll(&mut sender_cx), Poll::Ready(Ok(())));
        assert!(!receiver_woken.0.load(Ordering::SeqCst), "a receiver not waiting is not woken");
        let mut third = std::pin::pin!(sender.send_one(3));
        assert!(third.as_mut().poll(&mut sender_cx).is_pending(), "two items fill the queue");

        assert_eq!(receiver.poll_take(&mut receiver_cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken, [1, 2]);
        assert!(sender_woken.0.load(Ordering::SeqCst), "taking wakes the waiting sender");
        assert_eq!(third.as_mut().poll(&mut sender_cx), Poll::Ready(Ok(())));
        assert_eq!(receiver.poll_take(&mut receiver_cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken, [1, 2, 3], "appended behind what was not handed out yet");
    }

    /// Deferred sends leave a waiting receiver asleep until a flush, a full
    /// queue or a sender leaving with items queued wakes it.
    #[test]
    fn deferred_sends_wake_the_receiver_once() {
        let (sender, mut receiver) = channel::<u32>(3);
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let mut taken = VecDeque::new();
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
        let mut noop = Context::from_waker(Waker::noop());
        for n in 0..2 {
            let sent = std::pin::pin!(sender.send_deferred(&mut vec![n])).poll(&mut noop);
            assert_eq!(sent, Poll::Ready(Ok(())));
        }
        assert!(!woken.0.load(Ordering::SeqCst), "deferred: not woken yet");
        sender.flush();
        assert!(woken.0.swap(false, Ordering::SeqCst), "the flush wakes it");
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken, [0, 1]);

        // A full queue wakes the receiver even for deferred sends.
        taken.clear();
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
        let mut three = vec![2, 3, 4];
        assert!(std::pin::pin!(sender.send_deferred(&mut three)).poll(&mut noop).is_ready());
        assert!(!woken.0.load(Ordering::SeqCst));
        let mut four = vec![5];
        assert!(std::pin::pin!(sender.send_deferred(&mut four)).poll(&mut noop).is_pending());
        assert!(woken.0.swap(false, Ordering::SeqCst), "a sender waiting for room wakes it");
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(true));

        // A sender that leaves with deferred items wakes it, even if others stay.
        taken.clear();
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
        let other = sender.clone();
        assert!(std::pin::pin!(other.send_deferred(&mut vec![6])).poll(&mut noop).is_ready());
        drop(other);
        assert!(woken.0.load(Ordering::SeqCst), "the leaving sender wakes it");
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken, [6]);
    }

    /// A batch larger than the capacity goes in whole into an empty queue,
    /// and waits whole behind a non-empty one.
    #[test]
    fn a_batch_is_never_split() {
        let (sender, mut receiver) = channel::<u32>(2);
        let mut cx = Context::from_waker(Waker::noop());
        let mut big = vec![1, 2, 3];
        assert_eq!(std::pin::pin!(sender.send(&mut big)).poll(&mut cx), Poll::Ready(Ok(())));
        let mut more = vec![4];
        assert!(std::pin::pin!(sender.send(&mut more)).poll(&mut cx).is_pending());
        assert_eq!(more, [4], "a waiting batch keeps its items");
        let mut taken = VecDeque::new();
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(true));
        assert_eq!(taken, [1, 2, 3]);
    }

    /// The end: every sender gone, finished or not; a dropped receiver
    /// refuses sends and wakes waiting senders.
    #[test]
    fn ends_and_closes() {
        let mut cx = Context::from_waker(Waker::noop());
        let (sender, mut receiver) = channel::<u32>(0);
        let other = sender.clone();
        drop(sender);
        let mut taken = VecDeque::new();
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending(), "one sender is left");
        other.finish();
        drop(other);
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(false));
        assert!(receiver.is_finished());

        let (sender, receiver) = channel::<u32>(1);
        let (woken, waker) = flag();
        let mut sender_cx = Context::from_waker(&waker);
        assert_eq!(std::pin::pin!(sender.send_one(1)).poll(&mut sender_cx), Poll::Ready(Ok(())));
        let mut blocked = std::pin::pin!(sender.send_one(2));
        assert!(blocked.as_mut().poll(&mut sender_cx).is_pending());
        drop(receiver);
        assert!(woken.0.load(Ordering::SeqCst));
        assert_eq!(blocked.poll(&mut sender_cx), Poll::Ready(Err(Closed)));
    }

    /// Two sender threads and a receiver thread: every item arrives once,
    /// each sender's in its order.
    #[test]
    fn items_cross_threads_in_order() {
        let (sender, mut receiver) = channel::<(u8, u32)>(3);
        let senders: Vec<_> = (0..2_u8)
            .map(|id| {
                let sender = sender.clone();
                std::thread::spawn(move || {
                    futures::executor::block_on(async {
                        for n in 0..20_000 {
                            sender.send_one((id, n)).await.unwrap();
                        }
                    });
                })
            })
            .collect();
        drop(sender);
        let consumer = std::thread::spawn(move || {
            futures::executor::block_on(async {
                let mut next = [0_u32; 2];
                let mut taken = VecDeque::new();
                while receiver.take(&mut taken).await {
                    for (id, n) in taken.drain(..) {
                        assert_eq!(n, next[usize::from(id)]);
                        next[usize::from(id)] += 1;
                    }
                }
                next
            })
        });
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), [20_000, 20_000]);
    }
}
