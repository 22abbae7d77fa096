//! The state of a response future guarded by an admission (a breaker
//! permit, a bulkhead slot): shared by the breaker's and the bulkhead's
//! tower services.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use conc_core::BoxError;
use pin_project_lite::pin_project;

use crate::NotReady;

pin_project! {
    /// A call guarded by an admission: not ready, refused, or running with its permit.
    #[derive(Debug)]
    #[project = GuardedProj]
    pub(crate) enum Guarded<F, P, R> {
        NotReady { done: bool },
        Refused { error: Option<R> },
        Admitted { #[pin] future: F, permit: Option<P> },
    }
}

impl<F, P, R> Guarded<F, P, R> {
    /// Polls the call; `finish` gets the permit and the result when it completes.
    pub(crate) fn poll_with<T, E>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        finish: impl FnOnce(P, &Result<T, E>),
    ) -> Poll<Result<T, BoxError>>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
        R: std::error::Error + Send + Sync + 'static,
    {
        const DONE: &str = "response future polled after completion";
        match self.project() {
            GuardedProj::NotReady { done } => {
                assert!(!*done, "{DONE}");
                *done = true;
                Poll::Ready(Err(NotReady.into()))
            }
            GuardedProj::Refused { error } => Poll::Ready(Err(error.take().expect(DONE).into())),
            GuardedProj::Admitted { future, permit } => {
                let result = std::task::ready!(future.poll(cx));
                finish(permit.take().expect(DONE), &result);
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}
