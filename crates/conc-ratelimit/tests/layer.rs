//! The tower layer: shared across clones, keyed, reject or wait, and the
//! `poll_ready` contract of the inner service honoured.

use std::sync::Arc;
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{Keyed, Mode, Quota, RateLimitError, RateLimitLayer, TokioClock};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

#[tokio::test]
async fn rejects_over_the_limit_per_key_and_clones_share_the_limit() {
    let clock = ManualClock::new();
    let limiter =
        Arc::new(Keyed::builder(Quota::per_second(2).unwrap()).clock(clock.clone()).build());
    let layer = RateLimitLayer::new(limiter, |req: &(u32, &str)| req.0);
    let (inner, mut handle) = mock::pair::<(u32, &str), &str>();
    let mut first = layer.layer(inner);
    let mut second = first.clone();
    handle.allow(10);

    let respond = tokio::spawn(async move {
        for _ in 0..3 {
            let (request, reply) = handle.next_request().await.unwrap();
            reply.send_response(request.1);
        }
        handle
    });
    assert_eq!(first.ready().await.unwrap().call((1, "a")).await.unwrap(), "a");
    assert_eq!(second.ready().await.unwrap().call((1, "b")).await.unwrap(), "b");
    // The clone charged the same limiter: user 1 is over its limit.
    let refused = first.ready().await.unwrap().call((1, "c")).await.unwrap_err();
    let refused = refused.downcast::<RateLimitError>().unwrap();
    assert_eq!(*refused, RateLimitError::Limited { retry_after: Duration::from_millis(500) });
    // Another user is not.
    assert_eq!(second.ready().await.unwrap().call((2, "d")).await.unwrap(), "d");
    let _handle = respond.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_mode_delays_instead_of_rejecting() {
    let limiter = Arc::new(Keyed::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build());
    let layer = RateLimitLayer::new(limiter, |_: &u32| ()).mode(Mode::Wait);
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let mut svc = layer.layer(inner);
    handle.allow(10);
    let respond = tokio::spawn(async move {
        loop {
            let Some((request, reply)) = handle.next_request().await else { break };
            reply.send_response(request * 10);
        }
    });
    let started = tokio::time::Instant::now();
    assert_eq!(svc.ready().await.unwrap().call(1).await.unwrap(), 10);
    assert_eq!(svc.ready().await.unwrap().call(2).await.unwrap(), 20);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    drop(svc);
    respond.await.unwrap();
}

#[tokio::test]
async fn poll_ready_is_the_inner_services() {
    let limiter = Arc::new(Keyed::new(Quota::per_second(10).unwrap()));
    let layer = RateLimitLayer::new(limiter, |_: &u32| ());
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let mut svc = tower_test::mock::Spawn::new(layer.layer(inner));
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    assert!(format!("{layer:?}").contains("Reject"));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_calls_nothing_and_consumes_nothing() {
    let limiter = Arc::new(Keyed::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build());
    let layer = RateLimitLayer::new(Arc::clone(&limiter), |_: &u32| ()).mode(Mode::Wait);
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let mut svc = layer.layer(inner);
    handle.allow(10);
    // The only unit is taken: a call has to wait about a second.
    limiter.try_acquire(&(), 1).unwrap();
    let waiting = svc.ready().await.unwrap().call(1);
    assert!(format!("{waiting:?}").contains("waiting"));
    tokio::time::timeout(Duration::from_millis(500), waiting).await.unwrap_err();
    // Given up half-way: the inner service never saw the request...
    tokio::time::timeout(Duration::from_secs(2), handle.next_request()).await.unwrap_err();
    // ...and the wait took nothing: the unit that came back is there.
    assert_eq!(limiter.try_acquire(&(), 1), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn wait_mode_hands_the_readied_service_over_and_polls_the_inner_again() {
    let limiter = Arc::new(Keyed::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build());
    let layer = RateLimitLayer::new(Arc::clone(&limiter), |_: &u32| ()).mode(Mode::Wait);
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let mut svc = tower_test::mock::Spawn::new(layer.layer(inner));
    limiter.try_acquire(&(), 1).unwrap();
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    // The readied inner service leaves with the waiting request (the mock
    // panics when a service it did not ready is called).
    let waiting = svc.call(7);
    let respond = tokio::spawn(async move {
        let (request, reply) = handle.next_request().await.unwrap();
        reply.send_response(request + 1);
        handle
    });
    assert_eq!(waiting.await.unwrap(), 8);
    let mut handle = respond.await.unwrap();
    // The call used the inner service's only allowance: the service left
    // behind is not ready until the inner one is.
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
}
