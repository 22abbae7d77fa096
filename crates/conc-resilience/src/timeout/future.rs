//! The response future of a [`Timeout`] service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use super::Timeout;

pin_project! {
    /// The response future of a [`Timeout`](super::Timeout) service: the
    /// inner response, cut off with [`Elapsed`](super::Elapsed) when the
    /// time runs out.
    ///
    /// The timer is armed only when the inner future first returns
    /// `Pending`; the inner future is dropped as soon as the time is up.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{Timeout, TimeoutLayer, timeout::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
    /// let mut service = TimeoutLayer::new(Timeout::new(Duration::from_secs(1))?)
    ///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
    /// let future: ResponseFuture<_> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 7);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        response: Running<F>,
        #[pin]
        timer: Timer,
        timeout: Timeout,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(future: F, timeout: Timeout) -> Self {
        Self { response: Running::Running { future }, timer: Timer::Unarmed, timeout }
    }
}

pin_project! {
    /// A future that is dropped in place once it is no longer wanted.
    #[derive(Debug)]
    #[project = RunningProj]
    enum Running<F> {
        Running { #[pin] future: F },
        Dropped,
    }
}

pin_project! {
    /// A timer set on the first wait.
    #[derive(Debug)]
    #[project = TimerProj]
    enum Timer {
        Unarmed,
        Armed { #[pin] sleep: tokio::time::Sleep },
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.response.as_mut().project() {
            RunningProj::Running { future } => {
                if let Poll::Ready(result) = future.poll(cx) {
                    this.response.set(Running::Dropped);
                    return Poll::Ready(result.map_err(Into::into));
                }
            }
            RunningProj::Dropped => panic!("timeout response future polled after completion"),
        }
        loop {
            match this.timer.as_mut().project() {
                TimerProj::Unarmed => {
                    this.timer
                        .set(Timer::Armed { sleep: tokio::time::sleep(this.timeout.duration()) });
                }
                TimerProj::Armed { sleep } => {
                    if sleep.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.response.set(Running::Dropped);
                    return Poll::Ready(Err(this.timeout.expired().into()));
                }
            }
        }
    }
}
