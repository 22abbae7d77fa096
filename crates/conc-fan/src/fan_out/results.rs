//! The queue results travel through, from the workers (and the dispatcher,
//! for its own failure) to the run's stream.
//!
//! A `VecDeque` behind a mutex: a sender appends its results and wakes the
//! stream only when it was waiting; the stream takes everything queued in one
//! swap and hands it out without the mutex. Senders never wait: what bounds
//! the results in the queue is the run's window of permits, which the
//! dispatcher takes before it pulls an item and the stream gives back only
//! when it hands the item's result out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::FanError;

/// One result and the index of its input.
pub(crate) type Entry<Out> = (u64, Result<Out, FanError>);

struct Shared<Out> {
    state: Mutex<State<Out>>,
}

struct State<Out> {
    entries: VecDeque<Entry<Out>>,
    /// Live senders; none left and nothing queued ends the stream.
    senders: usize,
    receiver_gone: bool,
    /// The stream, waiting for results.
    receiver: Option<Waker>,
}

impl<Out> Shared<Out> {
    fn lock(&self) -> MutexGuard<'_, State<Out>> {
        // No user code runs under the lock: a poisoned lock still holds a
        // whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queue with one sender; clone the sender for more.
pub(crate) fn queue<Out>() -> (ResultSender<Out>, ResultReceiver<Out>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            entries: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
            receiver: None,
        }),
    });
    (ResultSender { shared: Arc::clone(&shared) }, ResultReceiver { shared })
}

/// The stream is gone: results are no longer wanted.
pub(crate) struct Closed;

/// A worker's (or the dispatcher's) end.
pub(crate) struct ResultSender<Out> {
    shared: Arc<Shared<Out>>,
}

impl<Out> ResultSender<Out> {
    /// Queues `entries` (emptying it, so its allocation can be reused).
    pub(crate) fn send(&self, entries: &mut Vec<Entry<Out>>) -> Result<(), Closed> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(Closed);
        }
        state.entries.extend(entries.drain(..));
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Queues one result.
    pub(crate) fn send_one(&self, entry: Entry<Out>) -> Result<(), Closed> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(Closed);
        }
        state.entries.push_back(entry);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }
}

impl<Out> Clone for ResultSender<Out> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<Out> Drop for ResultSender<Out> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let receiver = if state.senders == 0 { state.receiver.take() } else { None };
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// The stream's end.
pub(crate) struct ResultReceiver<Out> {
    shared: Arc<Shared<Out>>,
}

impl<Out> ResultReceiver<Out> {
    /// Moves everything queued into `into` (which the caller has emptied):
    /// `Some(())` when something was moved, `None` once every sender is gone
    /// and nothing is left.
    pub(crate) fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<Entry<Out>>,
    ) -> Poll<Option<()>> {
        let mut state = self.shared.lock();
        if !state.entries.is_empty() {
            std::mem::swap(&mut state.entries, into);
            return Poll::Ready(Some(()));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        if !state.receiver.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            state.receiver = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<Out> Drop for ResultReceiver<Out> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        let entries = std::mem::take(&mut state.entries);
        drop(state);
        // The results (user values) are dropped outside the lock.
        drop(entries);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::{Context, Poll, Waker};

    use super::queue;

    /// Results from several senders arrive in the order each sent them; the
    /// queue ends once every sender is gone and nothing is left, and a sender
    /// learns when the stream is gone.
    #[test]
    fn takes_everything_queued_then_ends_with_the_last_sender() {
        let mut cx = Context::from_waker(Waker::noop());
        let (first, mut receiver) = queue::<u32>();
        let second = first.clone();
        let mut taken = VecDeque::new();
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
        let mut batch = vec![(0, Ok(10)), (1, Ok(11))];
        assert!(first.send(&mut batch).is_ok());
        assert!(batch.is_empty());
        assert!(second.send_one((2, Ok(12))).is_ok());
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(Some(())));
        let values: Vec<_> = taken.drain(..).map(|(seq, result)| (seq, result.unwrap())).collect();
        assert_eq!(values, [(0, 10), (1, 11), (2, 12)]);
        drop(first);
        assert!(receiver.poll_take(&mut cx, &mut taken).is_pending());
        assert!(second.send_one((3, Ok(13))).is_ok());
        drop(second);
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(Some(())));
        taken.clear();
        assert_eq!(receiver.poll_take(&mut cx, &mut taken), Poll::Ready(None));

        let (sender, receiver) = queue::<u32>();
        drop(receiver);
        assert!(sender.send_one((0, Ok(0))).is_err());
    }
}
