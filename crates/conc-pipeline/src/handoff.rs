//! A spawned stage boundary: a task drives everything upstream and hands the
//! items over through a bounded queue, one at a time or in batches.
//!
//! The queue is a `VecDeque` behind a mutex that each side takes briefly: the
//! task pushes what it has (one item, or every item ready up to the batch
//! size), and the receiving side takes the *whole* queue at once, swapping in
//! an empty one, then hands its items out without touching the mutex again.
//! A side is woken only when it registered a waker because it had to wait
//! (the receiver on an empty queue, the task on a full one), so while both
//! are busy nobody is woken, and while the receiver waits for its wake-up the
//! task keeps filling the queue: the hand-off batches itself under load even
//! when items are handed over one at a time. (A channel that counts each item
//! through a semaphore, as tokio's bounded `mpsc` does, pays for that count
//! on both sides of every item.)

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::error::PipelineError;
use crate::slot::{Gone, Slot};

/// A batch is allocated for at most this many items up front.
const PREALLOCATE: usize = 64;

/// What both sides share.
struct Queue<T> {
    state: Mutex<State<T>>,
    /// The most items waiting in `state.items`.
    capacity: usize,
}

struct State<T> {
    items: VecDeque<Slot<T>>,
    /// The task handed over its last item.
    ended: bool,
    /// The task's sending side is gone (ended, or dropped mid-run).
    sender_gone: bool,
    /// The receiving side is gone.
    receiver_gone: bool,
    /// The receiver, waiting for items.
    receiver: Option<Waker>,
    /// The task, waiting for room.
    sender: Option<Waker>,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing runs user code under the lock, so a poisoned lock only
        // means a panic elsewhere in this module's few lines: the state is
        // still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The task's end of the queue.
struct Sender<T> {
    queue: Arc<Queue<T>>,
}

/// The receiver dropped its end: nothing more is wanted.
struct Closed;

impl<T> Sender<T> {
    /// Hands `items` over once the queue has room for all of them (a batch
    /// is never split), or reports that the receiver is gone.
    async fn send(&self, items: &mut Vec<Slot<T>>) -> Result<(), Closed> {
        poll_fn(|cx| {
            let mut state = self.queue.lock();
            if state.receiver_gone {
                return Poll::Ready(Err(Closed));
            }
            if state.items.len() + items.len() > self.queue.capacity && !state.items.is_empty() {
                if !state.sender.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                    state.sender = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            state.items.extend(items.drain(..));
            let receiver = state.receiver.take();
            drop(state);
            if let Some(receiver) = receiver {
                receiver.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// The last item is handed over.
    fn end(&self) {
        self.queue.lock().ended = true;
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.sender_gone = true;
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// Spawns `upstream` on the current runtime and returns the receiving end.
pub(crate) fn spawn_boundary<T: Send + 'static>(
    stage: Arc<str>,
    mut upstream: BoxStream<'static, Slot<T>>,
    buffer: usize,
    batch: usize,
) -> BoxStream<'static, Slot<T>> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        let error = PipelineError::NoRuntime { stage };
        return futures::stream::once(async move { Slot::gone(0, Gone::Failed(Box::new(error))) })
            .boxed();
    };
    let capacity = buffer.max(batch).max(1);
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            ended: false,
            sender_gone: false,
            receiver_gone: false,
            receiver: None,
            sender: None,
        }),
        capacity,
    });
    let sender = Sender { queue: Arc::clone(&queue) };
    let task = runtime.spawn(async move {
        let mut items = Vec::with_capacity(batch.min(PREALLOCATE));
        loop {
            let Some(first) = upstream.next().await else { break };
            items.push(first);
            let mut ended = false;
            while items.len() < batch {
                match futures::poll!(upstream.next()) {
                    Poll::Ready(Some(slot)) => items.push(slot),
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if sender.send(&mut items).await.is_err() {
                return;
            }
            if ended {
                break;
            }
        }
        sender.end();
    });
    HandOff { stage, queue, current: VecDeque::new(), task, done: false }.boxed()
}

/// The receiving end: takes the whole queue at once and hands its items out.
struct HandOff<T> {
    stage: Arc<str>,
    queue: Arc<Queue<T>>,
    /// Items taken from the queue, handed out before the queue is looked at
    /// again; swapped with the queue's (empty) buffer so neither side
    /// allocates once both have grown.
    current: VecDeque<Slot<T>>,
    task: JoinHandle<()>,
    done: bool,
}

impl<T> Unpin for HandOff<T> {}

impl<T> Drop for HandOff<T> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.receiver_gone = true;
        let sender = state.sender.take();
        drop(state);
        if let Some(sender) = sender {
            sender.wake();
        }
        self.task.abort();
    }
}

impl<T> Stream for HandOff<T> {
    type Item = Slot<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Slot<T>>> {
        let this = self.get_mut();
        if let Some(slot) = this.current.pop_front() {
            return Poll::Ready(Some(slot));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let mut state = this.queue.lock();
        if state.items.is_empty() {
            if state.ended {
                this.done = true;
                return Poll::Ready(None);
            }
            if state.sender_gone {
                // The task stopped without handing over its end: it panicked
                // or was cancelled.
                this.done = true;
                let error = PipelineError::TaskLost { stage: Arc::clone(&this.stage) };
                return Poll::Ready(Some(Slot::gone(u64::MAX, Gone::Failed(Box::new(error)))));
            }
            if !state.receiver.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                state.receiver = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut state.items, &mut this.current);
        let sender = state.sender.take();
        drop(state);
        if let Some(sender) = sender {
            sender.wake();
        }
        Poll::Ready(this.current.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::StreamExt;

    use super::spawn_boundary;
    use crate::slot::{Slot, State};

    fn item(index: u64) -> Slot<u64> {
        Slot { index, state: State::Item(index) }
    }

    /// An upstream of `count` items that counts how many the task pulled.
    fn counted(
        count: u64,
        pulled: &Arc<AtomicUsize>,
    ) -> futures::stream::BoxStream<'static, Slot<u64>> {
        let pulled = Arc::clone(pulled);
        futures::stream::iter(0..count)
            .map(move |index| {
                pulled.fetch_add(1, Ordering::SeqCst);
                item(index)
            })
            .boxed()
    }

    fn values(slots: Vec<Slot<u64>>) -> Vec<u64> {
        slots
            .into_iter()
            .map(|slot| match slot.state {
                State::Item(value) => value,
                State::Gone(_) => panic!("item {} is gone", slot.index),
            })
            .collect()
    }

    /// "`buffer` is the capacity of the hand-off queue": with nobody taking
    /// items, the task pulls at most `buffer` items plus the batch in its
    /// hands, for one-at-a-time and batched hand-offs; then every item
    /// arrives, in order.
    #[tokio::test]
    async fn the_queue_holds_at_most_its_capacity() {
        for (buffer, batch) in [(10, 1), (10, 4), (0, 1), (0, 8), (3, 3)] {
            let pulled = Arc::new(AtomicUsize::new(0));
            let mut stream = spawn_boundary("hop".into(), counted(1_000, &pulled), buffer, batch);
            for _ in 0..200 {
                tokio::task::yield_now().await;
            }
            let capacity = buffer.max(batch).max(1);
            let held = pulled.load(Ordering::SeqCst);
            assert!(held >= capacity, "buffer {buffer}, batch {batch}: the task filled the queue");
            assert!(
                held <= capacity + batch,
                "buffer {buffer}, batch {batch}: {held} items pulled with nobody taking them"
            );
            let mut all = Vec::new();
            while let Some(slot) = stream.next().await {
                all.push(slot);
            }
            assert_eq!(values(all), (0..1_000).collect::<Vec<_>>());
        }
    }

    /// Both sides on their own threads, queues of one and two items, one at a
    /// time and batched: every item arrives once, in order, and the run ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_cross_threads_in_order() {
        for (buffer, batch) in [(1, 1), (2, 1), (2, 2), (64, 16)] {
            let pulled = Arc::new(AtomicUsize::new(0));
            let stream = spawn_boundary("hop".into(), counted(100_000, &pulled), buffer, batch);
            let received = tokio::spawn(stream.collect::<Vec<_>>()).await.unwrap();
            assert_eq!(values(received), (0..100_000).collect::<Vec<_>>());
        }
    }

    /// Dropping the receiving end while the task waits for room stops the
    /// task: it pulls nothing more.
    #[tokio::test]
    async fn dropping_the_receiver_stops_the_task() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let stream = spawn_boundary("hop".into(), counted(1_000_000, &pulled), 4, 1);
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        drop(stream);
        let before = pulled.load(Ordering::SeqCst);
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pulled.load(Ordering::SeqCst), before);
        assert!(before <= 5);
    }
}
