//! The three kinds of stage processor behind one private trait, each with a
//! concrete future type so a stage allocates nothing per item.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use conc_core::BoxError;
use futures::future::{FutureExt, Map, MapErr, TryFutureExt};
use tokio::task::JoinHandle;

use conc_core::item::ItemError;

/// Runs one attempt on one item.
pub(crate) trait Processor<In>: Send + Sync + 'static {
    type Out: Send + 'static;
    type Fut: Future<Output = Result<Self::Out, ItemError>> + Send;
    fn call(&self, item: In) -> Self::Fut;
}

fn failed<E: Into<BoxError>>(error: E) -> ItemError {
    ItemError::Failed(error.into())
}

/// An async function returning `Result<Out, E>`.
pub(crate) struct AsyncTry<F>(pub(crate) F);

impl<In, Out, E, F, Fut> Processor<In> for AsyncTry<F>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, E>> + Send,
    Out: Send + 'static,
    E: Into<BoxError>,
{
    type Out = Out;
    type Fut = MapErr<Fut, fn(E) -> ItemError>;

    fn call(&self, item: In) -> Self::Fut {
        (self.0)(item).map_err(failed::<E> as fn(E) -> ItemError)
    }
}

/// An async function that cannot fail.
pub(crate) struct AsyncMap<F>(pub(crate) F);

impl<In, Out, F, Fut> Processor<In> for AsyncMap<F>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Out> + Send,
    Out: Send + 'static,
{
    type Out = Out;
    type Fut = Map<Fut, fn(Out) -> Result<Out, ItemError>>;

    fn call(&self, item: In) -> Self::Fut {
        (self.0)(item).map(Ok as fn(Out) -> Result<Out, ItemError>)
    }
}

/// A blocking function returning `Result<Out, E>`, run on tokio's blocking pool.
pub(crate) struct Blocking<F>(pub(crate) Arc<F>);

impl<In, Out, E, F> Processor<In> for Blocking<F>
where
    F: Fn(In) -> Result<Out, E> + Send + Sync + 'static,
    In: Send + 'static,
    Out: Send + 'static,
    E: Into<BoxError>,
{
    type Out = Out;
    type Fut = BlockingCall<Out>;

    fn call(&self, item: In) -> Self::Fut {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return BlockingCall::Refused(Some(ItemError::Failed(
                "a blocking stage needs a tokio runtime".into(),
            )));
        };
        let f = Arc::clone(&self.0);
        BlockingCall::Running(runtime.spawn_blocking(move || f(item).map_err(Into::into)))
    }
}

/// A call running on the blocking pool, or refused before it started.
pub(crate) enum BlockingCall<Out> {
    Running(JoinHandle<Result<Out, BoxError>>),
    Refused(Option<ItemError>),
}

impl<Out> Future for BlockingCall<Out> {
    type Output = Result<Out, ItemError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Running(handle) => handle.poll_unpin(cx).map(|joined| match joined {
                Ok(Ok(out)) => Ok(out),
                Ok(Err(error)) => Err(ItemError::Failed(error)),
                Err(error) if error.is_panic() => Err(ItemError::from_panic(&*error.into_panic())),
                Err(error) => Err(ItemError::Failed(Box::new(error))),
            }),
            Self::Refused(error) => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| ItemError::Failed("polled after completion".into())))),
        }
    }
}
