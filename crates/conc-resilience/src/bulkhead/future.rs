//! The response future of a [`Bulkhead`](super::Bulkhead) service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;
use tower::Service;

use super::error::BulkheadError;
use super::permit::BulkheadPermit;
use crate::NotReady;

/// A wait for a slot in the bulkhead's queue.
pub(super) type Wait =
    Pin<Box<dyn Future<Output = Result<BulkheadPermit, BulkheadError>> + Send + Sync>>;

pin_project! {
    /// The response future of a [`Bulkhead`](super::Bulkhead) service: the
    /// refusal, or the inner response holding its slot until it completes or
    /// is dropped. A request that found no slot free waits here, in the
    /// bulkhead's queue (the only case that allocates: the wait is boxed),
    /// then for the inner service to be ready.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// A call that finds every slot taken waits in its response future:
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_resilience::{Bulkhead, BulkheadLayer, bulkhead::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), conc_core::BoxError> {
    /// let bulkhead = Bulkhead::builder().max_concurrent(1).max_queued(1).max_wait(Duration::from_secs(1)).build()?;
    /// let slow = service_fn(|ms: u64| async move {
    ///     tokio::time::sleep(Duration::from_millis(ms)).await;
    ///     Ok::<_, std::io::Error>(ms)
    /// });
    /// let mut service = BulkheadLayer::new(bulkhead.clone()).layer(slow);
    /// let first = tokio::spawn(service.ready().await?.call(100));
    /// tokio::task::yield_now().await;
    /// let waiting: ResponseFuture<_, u64> = service.ready().await?.call(5);
    /// assert_eq!(waiting.await?, 5, "ran once the first call gave its slot back");
    /// assert_eq!(first.await??, 100);
    /// # Ok(()) }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Request>
    where
        S: Service<Request>,
    {
        #[pin]
        state: State<S::Future>,
        queued: Option<Queued<S, Request>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        NotReady,
        Refused { error: BulkheadError },
        Queued,
        Running { #[pin] future: F, permit: Option<BulkheadPermit> },
        Done,
    }
}

/// A request waiting for a slot, then for its inner service.
struct Queued<S, Request> {
    wait: Option<Wait>,
    permit: Option<BulkheadPermit>,
    inner: S,
    readied: bool,
    request: Option<Request>,
}

impl<S: Service<Request>, Request> ResponseFuture<S, Request> {
    pub(super) fn not_ready() -> Self {
        Self { state: State::NotReady, queued: None }
    }

    pub(super) fn refused(error: BulkheadError) -> Self {
        Self { state: State::Refused { error }, queued: None }
    }

    pub(super) fn running(future: S::Future, permit: BulkheadPermit) -> Self {
        Self { state: State::Running { future, permit: Some(permit) }, queued: None }
    }

    pub(super) fn queued(wait: Wait, inner: S, readied: bool, request: Request) -> Self {
        let queued =
            Queued { wait: Some(wait), permit: None, inner, readied, request: Some(request) };
        Self { state: State::Queued, queued: Some(queued) }
    }
}

impl<S: Service<Request>, Request> fmt::Debug for ResponseFuture<S, Request> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::NotReady => "not ready",
            State::Refused { .. } => "refused",
            State::Queued if self.queued.as_ref().is_some_and(|q| q.permit.is_none()) => {
                "waiting for a slot"
            }
            State::Queued => "waiting for the inner service",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish_non_exhaustive()
    }
}

impl<S, Request> Future for ResponseFuture<S, Request>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::NotReady => {
                    this.state.set(State::Done);
                    return Poll::Ready(Err(NotReady.into()));
                }
                StateProj::Refused { error } => {
                    let error = *error;
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Queued => {
                    let queued = this.queued.as_mut().expect("a queued call keeps its request");
                    if let Some(wait) = &mut queued.wait {
                        let granted = std::task::ready!(wait.as_mut().poll(cx));
                        queued.wait = None;
                        match granted {
                            Ok(permit) => queued.permit = Some(permit),
                            Err(error) => {
                                this.state.set(State::Done);
                                *this.queued = None;
                                return Poll::Ready(Err(error.into()));
                            }
                        }
                    }
                    if !queued.readied {
                        if let Err(error) = std::task::ready!(queued.inner.poll_ready(cx)) {
                            this.state.set(State::Done);
                            *this.queued = None;
                            return Poll::Ready(Err(error.into()));
                        }
                        queued.readied = true;
                    }
                    let request = queued.request.take().expect("called once");
                    let future = queued.inner.call(request);
                    let permit = queued.permit.take();
                    *this.queued = None;
                    this.state.set(State::Running { future, permit });
                }
                StateProj::Running { future, permit } => {
                    let result = std::task::ready!(future.poll(cx));
                    drop(permit.take());
                    this.state.set(State::Done);
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Done => panic!("bulkhead response future polled after completion"),
            }
        }
    }
}
