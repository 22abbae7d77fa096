//! Enforcing a shutdown deadline without an async runtime.
//!
//! `conc-core` depends on no runtime, so the registry cannot use a runtime
//! timer. A [`DeadlineTimer`] parks one helper thread until the deadline (or
//! until it is dropped) and then wakes whichever stop future is waiting. It is
//! used once per `shutdown_all`, never on a hot path.

use std::future::{Future, poll_fn};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Instant;

#[derive(Debug, Default)]
struct State {
    fired: bool,
    cancelled: bool,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wakeup: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock; recover the data anyway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Fires once at a deadline, waking the future polling it.
#[derive(Debug)]
pub(crate) struct DeadlineTimer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    deadline: Instant,
}

impl DeadlineTimer {
    /// Starts a timer for `deadline`. If no helper thread can be started the
    /// timer cannot wake anyone: it then reports the deadline as passed as
    /// soon as it is polled at or after it (see [`poll_fired`](Self::poll_fired)).
    pub(crate) fn start(deadline: Instant) -> Self {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("conc-shutdown-deadline".into())
                .spawn(move || wait_and_fire(&shared, deadline))
                .ok()
        };
        Self { shared, thread, deadline }
    }

    /// Whether the deadline has passed; if not, `cx` is woken when it does.
    ///
    /// Without a helper thread nobody wakes `cx`, so the time is checked here
    /// on every poll; a stop future that never wakes its task could then hang,
    /// which is why the thread is the normal path.
    fn poll_fired(&self, cx: &Context<'_>) -> bool {
        let mut state = self.shared.lock();
        if state.fired || (self.thread.is_none() && Instant::now() >= self.deadline) {
            state.fired = true;
            return true;
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        false
    }

    /// Runs `work` to completion, or gives up when the deadline passes first.
    /// `work` is always polled at least once, so work that can finish at once
    /// still does when the deadline has already passed.
    pub(crate) async fn race<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(output) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            if self.poll_fired(cx) { Poll::Ready(None) } else { Poll::Pending }
        })
        .await
    }
}

fn wait_and_fire(shared: &Shared, deadline: Instant) {
    let mut state = shared.lock();
    loop {
        if state.cancelled {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            state.fired = true;
            let waker = state.waker.take();
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            return;
        }
        state = shared
            .wakeup
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

impl Drop for DeadlineTimer {
    fn drop(&mut self) {
        self.shared.lock().cancelled = true;
        self.shared.wakeup.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread only waits on the condvar we just signalled.
            let _ = thread.join();
        }
    }
}
