//! [`TimeoutCall`]: the future of [`Timeout::call`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::{Elapsed, Timeout};

pin_project! {
    /// The future of [`Timeout::call`]: `work`, and a timer armed only when
    /// the work is not ready at its first poll (so work ready at once, a
    /// cache hit or an early error, never touches the timer wheel). The timer
    /// is boxed: it is larger than most work, and a future carrying its room
    /// inline would move it through every caller's await.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{Timeout, TimeoutCall};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let timeout = Timeout::new(Duration::from_secs(1))?;
    /// let call: TimeoutCall<'_, _> = timeout.call(async { 7 });
    /// assert_eq!(call.await?, 7);
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutCall<'a, F> {
        #[pin]
        work: F,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        timeout: &'a Timeout,
    }
}

impl<'a, F> TimeoutCall<'a, F> {
    pub(super) fn new(work: F, timeout: &'a Timeout) -> Self {
        Self { work, timer: None, timeout }
    }
}

impl<F> std::fmt::Debug for TimeoutCall<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutCall")
            .field("after", &self.timeout.duration())
            .field("armed", &self.timer.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for TimeoutCall<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let after = this.timeout.duration();
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.timeout.expired())),
            Poll::Pending => Poll::Pending,
        }
    }
}
