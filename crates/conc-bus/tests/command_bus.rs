//! The in-process command bus: handlers, hooks, layers, errors, the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_bus::{
    Bus, Command, Dispatch, DispatchError, EnqueueError, Job, MemoryQueue, Queue, Refusal, Reply,
};
use conc_core::BoxError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
struct Add(u32, u32);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("overflow")]
struct Overflow;

impl Command for Add {
    type Output = u32;
    type Error = Overflow;
}

#[derive(Debug, Clone, PartialEq)]
struct Unmapped;

impl Command for Unmapped {
    type Output = ();
    type Error = std::convert::Infallible;
}

fn adder() -> conc_bus::BusBuilder {
    Bus::builder().handle(|Add(a, b)| async move { a.checked_add(b).ok_or(Overflow) })
}

#[tokio::test]
async fn a_command_goes_to_its_handler_and_an_unmapped_one_comes_back() {
    let bus = adder().build();
    assert_eq!(bus.dispatch(Add(2, 3)).await.unwrap(), 5);
    assert!(matches!(bus.dispatch(Add(u32::MAX, 1)).await, Err(DispatchError::Failed(Overflow))));
    let err = bus.dispatch(Unmapped).await.unwrap_err();
    assert_eq!(err.to_string(), "no handler is registered for command `Unmapped`");
    assert_eq!(err.into_command(), Some(Unmapped));
    assert!(bus.handles::<Add>() && !bus.handles::<Unmapped>());
}

#[tokio::test]
async fn hooks_refuse_with_the_command_handed_back_authorization_first() {
    let ran = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&ran);
    let bus = Bus::builder()
        .handle(move |Add(a, b)| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Overflow>(a + b) }
        })
        .validate(
            |Add(a, _): &Add| if *a == 0 { Err(Refusal::new("a must not be 0")) } else { Ok(()) },
        )
        .authorize(
            |Add(_, b): &Add| if *b == 13 { Err(Refusal::new("13 is unlucky")) } else { Ok(()) },
        )
        .build();
    match bus.dispatch(Add(0, 13)).await {
        Err(DispatchError::Unauthorized { command, refusal }) => {
            assert_eq!(command, Add(0, 13));
            assert_eq!(refusal.reason(), "13 is unlucky");
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let invalid = bus.dispatch(Add(0, 1)).await.unwrap_err();
    assert_eq!(invalid.to_string(), "command `Add` is invalid: a must not be 0");
    assert_eq!(invalid.into_command(), Some(Add(0, 1)));
    assert_eq!(bus.dispatch(Add(1, 1)).await.unwrap(), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "refused commands never reach the handler");
}

#[tokio::test]
async fn a_panicking_handler_is_reported_with_and_without_layers() {
    #[derive(Debug, Clone)]
    struct Boom;
    impl Command for Boom {
        type Output = ();
        type Error = std::convert::Infallible;
    }
    let handler = |_: Boom| async {
        panic!("kaboom");
        #[allow(unreachable_code)]
        Ok(())
    };
    for bus in
        [Bus::builder().handle(handler).build(), Bus::builder().handle(handler).trace().build()]
    {
        match bus.dispatch(Boom).await {
            Err(DispatchError::Panicked(message)) => assert_eq!(message, "kaboom"),
            other => panic!("expected a caught panic, got {other:?}"),
        }
    }
}

/// A layer whose service refuses in `poll_ready` while closed.
#[derive(Clone)]
struct Gate(Arc<std::sync::atomic::AtomicBool>);

#[derive(Clone)]
struct Gated<S> {
    open: Arc<std::sync::atomic::AtomicBool>,
    inner: S,
}

impl<S> tower::Layer<S> for Gate {
    type Service = Gated<S>;
    fn layer(&self, inner: S) -> Gated<S> {
        Gated { open: Arc::clone(&self.0), inner }
    }
}

impl<S: tower::Service<Dispatch, Response = Reply, Error = BoxError>> tower::Service<Dispatch>
    for Gated<S>
{
    type Response = Reply;
    type Error = BoxError;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.open.load(Ordering::SeqCst) {
            self.inner.poll_ready(cx)
        } else {
            Poll::Ready(Err("gate closed".into()))
        }
    }

    fn call(&mut self, dispatch: Dispatch) -> S::Future {
        self.inner.call(dispatch)
    }
}

#[tokio::test]
async fn a_layer_refusing_in_poll_ready_hands_the_command_back() {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bus = adder()
        .layer(Gate(Arc::clone(&open)))
        .map_error(|error| format!("mapped: {error}").into())
        .build();
    match bus.dispatch(Add(1, 2)).await {
        Err(DispatchError::Rejected { command, error }) => {
            assert_eq!(command, Add(1, 2));
            assert_eq!(error.to_string(), "mapped: gate closed");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    open.store(true, Ordering::SeqCst);
    assert_eq!(bus.dispatch(Add(1, 2)).await.unwrap(), 3);
    assert!(matches!(bus.dispatch(Add(u32::MAX, 2)).await, Err(DispatchError::Failed(Overflow))));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_layer_fails_the_dispatch_after_the_handler_started() {
    #[derive(Debug, Clone)]
    struct Slow;
    impl Command for Slow {
        type Output = ();
        type Error = std::convert::Infallible;
    }
    let bus = Bus::builder()
        .handle(|_: Slow| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)))
        .build();
    match bus.dispatch(Slow).await {
        Err(DispatchError::Middleware(error)) => assert_eq!(error.to_string(), "request timed out"),
        other => panic!("expected the timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_retry_layer_runs_the_handler_again_with_a_clone() {
    #[derive(Clone)]
    struct Twice;
    impl tower::retry::Policy<Dispatch, Reply, BoxError> for Twice {
        type Future = std::future::Ready<()>;
        fn retry(
            &mut self,
            _: &mut Dispatch,
            result: &mut Result<Reply, BoxError>,
        ) -> Option<Self::Future> {
            result.is_err().then(|| std::future::ready(()))
        }
        fn clone_request(&mut self, dispatch: &Dispatch) -> Option<Dispatch> {
            Some(dispatch.clone())
        }
    }
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let bus = Bus::builder()
        .handle(move |Add(a, b)| {
            let call = seen.fetch_add(1, Ordering::SeqCst);
            async move { if call == 0 { Err(Overflow) } else { Ok(a + b) } }
        })
        .layer(tower::retry::RetryLayer::new(Twice))
        .build();
    assert_eq!(bus.dispatch(Add(20, 22)).await.unwrap(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Notify {
    user: u32,
}

impl Job for Notify {
    const NAME: &'static str = "notify";
}

#[tokio::test]
async fn the_bus_pushes_jobs_onto_its_queue() {
    let queue = Queue::new(MemoryQueue::new());
    let bus = adder().queue(&queue).build();
    bus.dispatch_to_queue(Notify { user: 7 }).await.unwrap();
    bus.queue().unwrap().dispatch(Notify { user: 8 }).on_queue("later").await.unwrap();
    assert_eq!(queue.size("default").await.unwrap().ready, 1);
    assert_eq!(queue.size("later").await.unwrap().ready, 1);
    let no_queue = adder().build();
    match no_queue.dispatch_to_queue(Notify { user: 9 }).await {
        Err(EnqueueError::NoQueue { job }) => assert_eq!(job, Notify { user: 9 }),
        other => panic!("expected no queue, got {other:?}"),
    }
}
