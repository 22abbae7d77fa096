//! A spawned stage boundary: a task drives everything upstream and hands the
//! items over through a bounded tokio channel, one at a time or in batches.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::PipelineError;
use crate::slot::{Gone, Slot};

/// A batch is allocated for at most this many items up front.
const PREALLOCATE: usize = 64;

enum Message<T> {
    One(Slot<T>),
    Many(Vec<Slot<T>>),
    /// The upstream ended normally; anything else closing the channel is a lost task.
    End,
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
    // `build` refused a zero batch. The queue holds whole batches, at least one.
    let capacity = (buffer / batch).max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let task = runtime.spawn(async move {
        if batch == 1 {
            while let Some(slot) = upstream.next().await {
                if tx.send(Message::One(slot)).await.is_err() {
                    return;
                }
            }
        } else {
            loop {
                let Some(first) = upstream.next().await else { break };
                // Room for what is likely ready; a larger batch grows as items come.
                let mut items = Vec::with_capacity(batch.min(PREALLOCATE));
                items.push(first);
                let mut ended = false;
                // Take what is ready now, without waiting for more.
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
                let message = if items.len() == 1 {
                    Message::One(items.remove(0))
                } else {
                    Message::Many(items)
                };
                if tx.send(message).await.is_err() {
                    return;
                }
                if ended {
                    break;
                }
            }
        }
        let _ = tx.send(Message::End).await;
    });
    HandOff { stage, rx, current: Vec::new().into_iter(), task, done: false }.boxed()
}

struct HandOff<T> {
    stage: Arc<str>,
    rx: mpsc::Receiver<Message<T>>,
    current: std::vec::IntoIter<Slot<T>>,
    task: JoinHandle<()>,
    done: bool,
}

// Nothing in it is pinned: items sit in a channel and a `Vec`.
impl<T> Unpin for HandOff<T> {}

impl<T> Drop for HandOff<T> {
    fn drop(&mut self) {
        // Dropping the output cancels the stage task and everything upstream.
        self.task.abort();
    }
}

impl<T> Stream for HandOff<T> {
    type Item = Slot<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Slot<T>>> {
        let this = self.get_mut();
        loop {
            if let Some(slot) = this.current.next() {
                return Poll::Ready(Some(slot));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Message::One(slot))) => return Poll::Ready(Some(slot)),
                Poll::Ready(Some(Message::Many(items))) => this.current = items.into_iter(),
                Poll::Ready(Some(Message::End)) => this.done = true,
                Poll::Ready(None) => {
                    this.done = true;
                    let error = PipelineError::TaskLost { stage: Arc::clone(&this.stage) };
                    return Poll::Ready(Some(Slot::gone(u64::MAX, Gone::Failed(Box::new(error)))));
                }
            }
        }
    }
}
