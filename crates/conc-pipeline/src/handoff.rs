//! A spawned stage boundary: a task drives everything upstream and hands the
//! items over through a bounded [`conc_core::handoff`] queue, one at a time
//! or in batches. The next stage takes everything queued in one step, and
//! neither side is woken unless it had to wait.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::handoff;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::error::PipelineError;
use crate::slot::{Gone, Slot};

/// A batch is allocated for at most this many items up front.
const PREALLOCATE: usize = 64;

/// While the upstream keeps items ready, the next stage is woken at least
/// once per this many items handed over.
const FLUSH_EVERY: usize = 32;

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
    let (sender, queue) = handoff::channel(buffer.max(batch));
    let task = runtime.spawn(async move {
        let mut items = Vec::with_capacity(batch.min(PREALLOCATE));
        let mut unflushed = 0;
        let mut next = upstream.next().await;
        while let Some(first) = next {
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
            unflushed += items.len();
            if sender.send_deferred(&mut items).await.is_err() {
                return;
            }
            if ended {
                break;
            }
            // The next stage is woken once nothing more is ready, or every
            // `FLUSH_EVERY` items while more keep coming.
            next = match futures::poll!(upstream.next()) {
                Poll::Ready(item) => {
                    if unflushed >= FLUSH_EVERY {
                        sender.flush();
                        unflushed = 0;
                    }
                    item
                }
                Poll::Pending => {
                    sender.flush();
                    unflushed = 0;
                    upstream.next().await
                }
            };
        }
        sender.finish();
        // Dropping the sender wakes the next stage for what is left.
    });
    HandOff { stage, queue, current: VecDeque::new(), task, done: false }.boxed()
}

/// The receiving end: takes the whole queue at once and hands its items out.
struct HandOff<T> {
    stage: Arc<str>,
    queue: handoff::Receiver<Slot<T>>,
    /// Items taken from the queue, handed out before it is looked at again.
    current: VecDeque<Slot<T>>,
    task: JoinHandle<()>,
    done: bool,
}

impl<T> Unpin for HandOff<T> {}

impl<T> Drop for HandOff<T> {
    fn drop(&mut self) {
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
        if std::task::ready!(this.queue.poll_take(cx, &mut this.current)) {
            return Poll::Ready(this.current.pop_front());
        }
        this.done = true;
        if this.queue.is_finished() {
            return Poll::Ready(None);
        }
        // The task stopped without handing over its end: it panicked or was
        // cancelled.
        let error = PipelineError::TaskLost { stage: Arc::clone(&this.stage) };
        Poll::Ready(Some(Slot::gone(u64::MAX, Gone::Failed(Box::new(error)))))
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
