//! [`Bounded`]: one wait of a [`Stack`](super::Stack) run, cut off by the
//! attempt timeout and the run's total timeout, whose timers are made only
//! when the wait is not over at its first poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::{Elapsed, Timeout};

/// The total timeout of one run: the timer is made at the run's first wait
/// (a run that never waits reads no clock and touches no timer wheel), as
/// [`Timeout::call`] around the whole run would, and kept for the waits
/// after it.
pub(super) struct Total<'a> {
    timeout: Option<&'a Timeout>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<'a> Total<'a> {
    pub(super) fn new(timeout: Option<&'a Timeout>) -> Self {
        Self { timeout, timer: None }
    }

    /// Whether the total time is up, arming the timer first if need be.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<Elapsed> {
        let Some(timeout) = self.timeout else { return Poll::Pending };
        let timer =
            self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout.duration())));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(timeout.expired()),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// How a [`Bounded`] wait ended.
pub(super) enum Waited<T> {
    /// The work finished.
    Done(T),
    /// The attempt timeout cut the work off.
    Attempt(Elapsed),
    /// The run's total timeout cut the work off.
    Total(Elapsed),
}

pin_project! {
    /// `work`, polled first; when it is not ready, the attempt timer (armed
    /// at the first such poll), then the run's total timer: the order in
    /// which a [`Timeout::call`] per attempt inside one around the run polls
    /// them, without either future's layer.
    pub(super) struct Bounded<'t, 'a, W> {
        #[pin]
        work: W,
        attempt: Option<&'a Timeout>,
        attempt_timer: Option<Pin<Box<Sleep>>>,
        total: &'t mut Total<'a>,
    }
}

impl<'t, 'a, W> Bounded<'t, 'a, W> {
    /// `work` under `attempt` (if any) and `total`.
    pub(super) fn new(work: W, attempt: Option<&'a Timeout>, total: &'t mut Total<'a>) -> Self {
        Self { work, attempt, attempt_timer: None, total }
    }
}

impl<W: Future> Future for Bounded<'_, '_, W> {
    type Output = Waited<W::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Waited::Done(output));
        }
        if let Some(timeout) = *this.attempt {
            let timer = this
                .attempt_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout.duration())));
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Waited::Attempt(timeout.expired()));
            }
        }
        this.total.poll_elapsed(cx).map(Waited::Total)
    }
}
