//! The response future of a [`LoadShedder`](super::LoadShedder) service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use super::{LoadPermit, Shed};

pin_project! {
    /// The response future of a [`LoadShedder`](super::LoadShedder) service:
    /// the refusal, or the inner response holding its load units until it
    /// completes or is dropped.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_resilience::{LoadShedder, LoadShedderLayer, shed::future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::BoxError> {
    /// let mut service = LoadShedderLayer::new(LoadShedder::builder(1).build()?)
    ///     .layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
    /// let future: ResponseFuture<_> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 7);
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[derive(Debug)]
    #[project = StateProj]
    enum State<F> {
        Shed { shed: Option<Shed> },
        Admitted { #[pin] future: F, permit: Option<LoadPermit> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn shed(shed: Shed) -> Self {
        Self { state: State::Shed { shed: Some(shed) } }
    }

    pub(super) fn admitted(future: F, permit: LoadPermit) -> Self {
        Self { state: State::Admitted { future, permit: Some(permit) } }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        const DONE: &str = "load shedder response future polled after completion";
        match self.project().state.project() {
            StateProj::Shed { shed } => Poll::Ready(Err(shed.take().expect(DONE).into())),
            StateProj::Admitted { future, permit } => {
                let result = std::task::ready!(future.poll(cx));
                drop(permit.take().expect(DONE));
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}
