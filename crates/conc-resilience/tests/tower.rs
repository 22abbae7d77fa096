//! The tower contract for every layer of the crate, with `tower-test` mocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use conc_core::BoxError;
use conc_core::backoff::Backoff;
use conc_core::time::ManualClock;
use conc_resilience::{
    BreakerState, Bulkhead, BulkheadError, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer,
    Elapsed, ErrorKind, FailureWindow, Fallback, FallbackLayer, LoadShedder, LoadShedderLayer,
    NotReady, Rejected, Retry, RetryLayer, Shed, Timeout, TimeoutLayer,
};
use tower_test::mock::{self, Spawn};

mod support;

use support::retry;

type Mock = mock::Mock<&'static str, &'static str>;

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .sliding_window(FailureWindow::count(2))
        .minimum_calls(2)
        .permitted_calls_in_half_open(1)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn assert_send<T: Send>(_: &T) {}

/// A future polled by hand, with a waker that records being woken.
struct Polled<F> {
    future: std::pin::Pin<Box<F>>,
    woken: Arc<WakeFlag>,
}

#[derive(Default)]
struct WakeFlag(AtomicBool);

impl std::task::Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl<F: std::future::Future> Polled<F> {
    fn new(future: F) -> Self {
        Self { future: Box::pin(future), woken: Arc::default() }
    }

    fn poll(&mut self) -> Poll<F::Output> {
        self.woken.0.store(false, Ordering::SeqCst);
        let waker = std::task::Waker::from(Arc::clone(&self.woken));
        self.future.as_mut().poll(&mut std::task::Context::from_waker(&waker))
    }

    fn is_woken(&self) -> bool {
        self.woken.0.load(Ordering::SeqCst)
    }
}

fn is_ready<T>(poll: &Poll<Result<(), T>>) -> bool {
    matches!(poll, Poll::Ready(Ok(())))
}

#[tokio::test]
async fn breaker_records_responses_and_rejects_from_call() {
    let breaker = breaker();
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(CircuitBreakerLayer::new(breaker.clone()));
    for _ in 0..2 {
        handle.allow(1);
        assert!(is_ready(&service.poll_ready()));
        let response = service.call("req");
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(request, "req");
        send.send_error("upstream down");
        assert_eq!(response.await.unwrap_err().to_string(), "upstream down");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    // Open: ready at once, although the inner service is not ready (allow(0)),
    // and the refusal comes from `call`.
    handle.allow(0);
    assert!(is_ready(&service.poll_ready()), "a rejection is never a poll_ready error");
    let error = service.call("req").await.unwrap_err();
    let rejected = error.downcast_ref::<Rejected>().expect("a breaker rejection");
    assert_eq!(rejected.state(), BreakerState::Open);
    assert!(matches!(handle.poll_request(), Poll::Pending), "the inner service never saw it");
}

#[tokio::test]
async fn breaker_probe_is_taken_by_call_and_freed_by_dropping_the_response() {
    let breaker = breaker();
    breaker.transition_to_half_open();
    let (mut first, mut handle) =
        mock::spawn_layer::<&str, &str, _>(CircuitBreakerLayer::new(breaker.clone()));
    let mut second = Spawn::new(first.get_ref().clone());
    handle.allow(2);
    assert!(is_ready(&first.poll_ready()));
    assert!(is_ready(&second.poll_ready()));
    breaker.try_acquire().expect("poll_ready took nothing").ignore();

    // The first call takes the only probe; the second is refused from `call`.
    let response = first.call("a");
    let _request = handle.next_request().await.unwrap();
    let refused = second.call("b").await.unwrap_err();
    assert!(refused.downcast_ref::<Rejected>().is_some(), "the probe is the first call's");
    assert!(matches!(handle.poll_request(), Poll::Pending), "the refused call never went in");

    // The first call is dropped mid-flight: the probe comes back without an outcome.
    drop(response);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(breaker.metrics().calls, 0);
    assert!(is_ready(&second.poll_ready()));
    let response = second.call("b");
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response("ok");
    assert_eq!(response.await.unwrap(), "ok");
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_breaker_service_waiting_for_its_inner_service_holds_no_probe() {
    let breaker = breaker();
    breaker.transition_to_half_open();
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(CircuitBreakerLayer::new(breaker.clone()));
    handle.allow(0);
    assert!(matches!(service.poll_ready(), Poll::Pending), "inner not ready: pending");
    breaker.try_acquire().expect("the probe is free while the service waits").ignore();
    handle.allow(1);
    assert!(service.is_woken());
    assert!(is_ready(&service.poll_ready()));
    let response = service.call("req");
    assert!(breaker.try_acquire().is_err(), "the call holds the probe");
    drop(response);
    breaker.try_acquire().expect("the dropped call gave it back").success();
}

#[tokio::test]
async fn readiness_errors_are_preserved_and_call_without_ready_fails() {
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(CircuitBreakerLayer::new(breaker()));
    let error = service.call("too early").await.unwrap_err();
    assert!(error.downcast_ref::<NotReady>().is_some());
    handle.send_error("inner broke");
    let Poll::Ready(Err(error)) = service.poll_ready() else {
        panic!("expected the inner readiness error")
    };
    assert_eq!(error.to_string(), "inner broke");
}

#[tokio::test]
async fn bulkhead_slot_is_taken_by_call_and_refused_from_call() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let (mut first, mut handle) =
        mock::spawn_layer::<&str, &str, _>(BulkheadLayer::new(bulkhead.clone()));
    let mut second = Spawn::new(first.get_ref().clone());
    handle.allow(2);
    assert!(is_ready(&first.poll_ready()));
    assert!(is_ready(&second.poll_ready()));
    assert_eq!(bulkhead.metrics().available, 1, "poll_ready took no slot");

    let response = first.call("a");
    assert_eq!(bulkhead.metrics().available, 0, "the call holds the slot");
    let error = second.call("b").await.unwrap_err();
    assert!(matches!(error.downcast_ref::<BulkheadError>(), Some(BulkheadError::Full { .. })));
    assert!(matches!(handle.poll_request(), Poll::Ready(Some(_))), "only the first call went in");
    // (The first request was taken just above; answer it through the mock's handle.)
    drop(response);
    assert_eq!(bulkhead.metrics().available, 1, "a dropped response releases the slot");

    // Full at `poll_ready`: ready at once, without polling the inner service.
    let _held = bulkhead.try_acquire().unwrap();
    handle.allow(0);
    assert!(is_ready(&second.poll_ready()), "refusals are never poll_ready errors");
    let error = second.call("c").await.unwrap_err();
    assert!(error.downcast_ref::<BulkheadError>().is_some());
    assert_eq!(bulkhead.metrics().rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_queue_waits_in_the_response_future() {
    let bulkhead = support::queued(1, 1, Duration::from_secs(5));
    let (mut first, mut handle) =
        mock::spawn_layer::<&str, &str, _>(BulkheadLayer::new(bulkhead.clone()));
    let mut second: Spawn<conc_resilience::Bulkhead<Mock>> = Spawn::new(first.get_ref().clone());
    handle.allow(2);
    assert!(is_ready(&first.poll_ready()));
    let running = first.call("a");
    let (_, send_a) = handle.next_request().await.unwrap();
    // No slot, room in the queue: ready at once; the response future waits.
    assert!(is_ready(&second.poll_ready()));
    let mut waiting = Polled::new(second.call("b"));
    assert!(waiting.poll().is_pending());
    assert_eq!(bulkhead.metrics().queued, 1);
    send_a.send_response("done");
    running.await.unwrap();
    assert!(waiting.is_woken(), "the freed slot woke the waiting call");
    assert!(waiting.poll().is_pending(), "it called the inner service");
    let (request, send_b) = handle.next_request().await.unwrap();
    assert_eq!(request, "b");
    assert_eq!(bulkhead.metrics().available, 0, "the waiting call holds the slot");
    send_b.send_response("done too");
    assert!(matches!(waiting.poll(), Poll::Ready(Ok("done too"))));
    assert_eq!(bulkhead.metrics().available, 1);

    // A waiting call dropped leaves the queue.
    let _held = bulkhead.try_acquire().unwrap();
    assert!(is_ready(&second.poll_ready()));
    let mut dropped = Polled::new(second.call("c"));
    assert!(dropped.poll().is_pending());
    assert_eq!(bulkhead.metrics().queued, 1);
    drop(dropped);
    assert_eq!(bulkhead.metrics().queued, 0);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_queue_timeout_is_returned_from_call() {
    let bulkhead = support::queued(1, 1, Duration::from_millis(10));
    let _held = bulkhead.try_acquire().unwrap();
    let service = BulkheadLayer::new(bulkhead.clone());
    let mut service =
        tower::Layer::layer(&service, tower::service_fn(|(): ()| async { Ok::<_, BoxError>(()) }));
    let error = tower::ServiceExt::oneshot(&mut service, ()).await.unwrap_err();
    assert!(matches!(error.downcast_ref::<BulkheadError>(), Some(BulkheadError::Timeout { .. })));
}

#[tokio::test(start_paused = true)]
async fn retry_waits_for_the_inner_service_to_be_ready_before_each_retry() {
    let retry = retry(3);
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(RetryLayer::new(retry.clone()));
    handle.allow(1);
    assert!(is_ready(&service.poll_ready()));
    let response = service.call("req");
    assert_send(&response);
    let response = tokio::spawn(response);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "req");
    send.send_error("flaky");

    // Far past the backoff, but the mock allows no more calls: no retry is sent.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(matches!(handle.poll_request(), Poll::Pending), "retried before the mock was ready");
    assert!(!response.is_finished());

    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "req", "the retry sends a clone of the request");
    send.send_response("ok");
    assert_eq!(response.await.unwrap().unwrap(), "ok");
    assert_eq!(retry.metrics().retries, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts_with_the_last_error() {
    let retry = retry(2);
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(RetryLayer::new(retry.clone()));
    handle.allow(5);
    assert!(is_ready(&service.poll_ready()));
    let response = tokio::spawn(service.call("req"));
    for message in ["first", "second"] {
        let (_, send) = handle.next_request().await.unwrap();
        send.send_error(message);
    }
    assert_eq!(response.await.unwrap().unwrap_err().to_string(), "second");
    assert!(matches!(handle.poll_request(), Poll::Pending), "no third attempt");
    assert_eq!(retry.metrics().exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_returns_a_readiness_error_met_before_a_retry() {
    let (mut service, mut handle) = mock::spawn_layer::<&str, &str, _>(RetryLayer::new(retry(3)));
    handle.allow(1);
    assert!(is_ready(&service.poll_ready()));
    let response = tokio::spawn(service.call("req"));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error("flaky");
    handle.send_error("inner broke");
    assert_eq!(response.await.unwrap().unwrap_err().to_string(), "inner broke");
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_cuts_a_slow_call_off_and_drops_the_inner_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&dropped);
    let layer = TimeoutLayer::new(Timeout::new(Duration::from_secs(1)).unwrap());
    let mut service = tower::Layer::layer(
        &layer,
        tower::service_fn(move |delay: Duration| {
            let guard = DropFlag(Arc::clone(&flag));
            async move {
                tokio::time::sleep(delay).await;
                drop(guard);
                Ok::<_, BoxError>("done")
            }
        }),
    );
    let started = tokio::time::Instant::now();
    tower::ServiceExt::ready(&mut service).await.unwrap();
    let mut response = std::pin::pin!(tower::Service::call(&mut service, Duration::from_secs(60)));
    let error = response.as_mut().await.unwrap_err();
    assert_eq!(error.downcast_ref::<Elapsed>(), Some(&Elapsed { after: Duration::from_secs(1) }));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "cut off at the timeout, on the paused clock"
    );
    assert!(dropped.load(Ordering::SeqCst), "the inner future was dropped when the time ran out");

    let reply = tower::ServiceExt::oneshot(&mut service, Duration::from_millis(999)).await.unwrap();
    assert_eq!(reply, "done");
}

#[tokio::test(start_paused = true)]
async fn timeout_passes_inner_errors_and_readiness_through() {
    let layer = TimeoutLayer::new(Timeout::new(Duration::from_secs(1)).unwrap());
    let (mut service, mut handle) = mock::spawn_layer::<&str, &str, _>(layer);
    handle.allow(0);
    assert!(matches!(service.poll_ready(), Poll::Pending), "the inner service's backpressure");
    handle.allow(1);
    assert!(service.is_woken());
    assert!(is_ready(&service.poll_ready()));
    let response = tokio::spawn(service.call("req"));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error("upstream down");
    let error = response.await.unwrap().unwrap_err();
    assert!(error.downcast_ref::<Elapsed>().is_none());
    assert_eq!(error.to_string(), "upstream down");
}

#[tokio::test]
async fn load_shed_rejects_from_call_and_a_dropped_response_releases_its_units() {
    let shedder = LoadShedder::builder(3).build().unwrap();
    let layer = LoadShedderLayer::new(shedder.clone()).units(|request: &&str| request.len() as u64);
    let (mut service, mut handle) = mock::spawn_layer::<&str, &str, _>(layer);
    handle.allow(3);
    assert!(is_ready(&service.poll_ready()));
    let first = service.call("ab");
    assert_send(&first);
    let _request = handle.next_request().await.unwrap();
    assert_eq!(shedder.metrics().load, 2);

    assert!(is_ready(&service.poll_ready()), "shedding is never a poll_ready error");
    let error = service.call("cd").await.unwrap_err();
    assert_eq!(
        error.downcast_ref::<Shed>(),
        Some(&Shed::Overloaded { load: 2, units: 2, max_load: 3 })
    );
    assert!(
        matches!(handle.poll_request(), Poll::Pending),
        "the shed request never reached the inner service"
    );

    drop(first);
    assert_eq!(shedder.metrics().load, 0, "dropping the response future released its units");
    assert!(is_ready(&service.poll_ready()));
    let response = service.call("cd");
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "cd");
    send.send_response("ok");
    assert_eq!(response.await.unwrap(), "ok");
    assert_eq!(shedder.metrics().load, 0);
    assert_eq!(shedder.metrics().rejected(), 1);
}

#[tokio::test]
async fn load_shed_counts_one_unit_per_request_and_passes_readiness_through() {
    let shedder = LoadShedder::builder(1).build().unwrap();
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(LoadShedderLayer::new(shedder.clone()));
    handle.allow(0);
    assert!(matches!(service.poll_ready(), Poll::Pending), "the inner service's backpressure");
    handle.allow(1);
    assert!(is_ready(&service.poll_ready()));
    let response = service.call("a long request is still one unit");
    let (_, send) = handle.next_request().await.unwrap();
    assert_eq!(shedder.metrics().load, 1);
    send.send_error("failed");
    assert!(response.await.is_err());
    assert_eq!(shedder.metrics().load, 0, "an error response releases its unit");
}

#[tokio::test]
async fn fallback_answers_a_breaker_rejection_without_touching_the_inner_service() {
    let breaker = breaker();
    let (inner, mut handle) = mock::pair::<&str, &str>();
    let fallback = Fallback::new().on(ErrorKind::BreakerOpen, |_| "cached");
    let service = tower::Layer::layer(
        &FallbackLayer::new(fallback),
        tower::Layer::layer(&CircuitBreakerLayer::new(breaker.clone()), inner),
    );
    let mut service = Spawn::new(service);
    breaker.force_open();
    handle.allow(0);
    assert!(is_ready(&service.poll_ready()));
    assert_eq!(service.call("req").await.unwrap(), "cached");
    assert!(matches!(handle.poll_request(), Poll::Pending));
}

#[tokio::test]
async fn fallback_answers_inner_errors_it_handles_and_passes_the_rest_unchanged() {
    let fallback = Fallback::new()
        .on_inner(|error: &BoxError| (error.to_string() == "not found").then_some("empty"));
    let (mut service, mut handle) =
        mock::spawn_layer::<&str, &str, _>(FallbackLayer::new(fallback));
    handle.allow(2);
    assert!(is_ready(&service.poll_ready()));
    let response = service.call("a");
    assert_send(&response);
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error("not found");
    assert_eq!(response.await.unwrap(), "empty");

    assert!(is_ready(&service.poll_ready()));
    let response = service.call("b");
    let (_, send) = handle.next_request().await.unwrap();
    send.send_error("upstream down");
    assert_eq!(response.await.unwrap_err().to_string(), "upstream down");

    handle.send_error("inner broke");
    let Poll::Ready(Err(error)) = service.poll_ready() else {
        panic!("a readiness error is not answered by the fallback")
    };
    assert_eq!(error.to_string(), "inner broke");
}

#[tokio::test(start_paused = true)]
async fn fallback_tells_rejections_from_timeouts() {
    let shedder = LoadShedder::builder(1).build().unwrap();
    let _held = shedder.try_admit(1).unwrap();
    let fallback = Fallback::new().on_rejection(|error| {
        assert_eq!(error.kind(), ErrorKind::Shed);
        "shed"
    });
    let stack = |shedder: LoadShedder| {
        tower::Layer::layer(
            &FallbackLayer::new(fallback.clone()),
            tower::Layer::layer(
                &LoadShedderLayer::new(shedder),
                tower::Layer::layer(
                    &TimeoutLayer::new(Timeout::new(Duration::from_secs(1)).unwrap()),
                    tower::service_fn(|(): ()| async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<_, BoxError>("done")
                    }),
                ),
            ),
        )
    };
    let mut service = stack(shedder.clone());
    assert_eq!(tower::ServiceExt::oneshot(&mut service, ()).await.unwrap(), "shed");

    let mut service = stack(LoadShedder::builder(1).build().unwrap());
    let error = tower::ServiceExt::oneshot(&mut service, ()).await.unwrap_err();
    assert!(error.downcast_ref::<Elapsed>().is_some(), "an unanswered timeout keeps its type");
}

#[tokio::test(start_paused = true)]
async fn retry_over_a_breaker_takes_a_fresh_permit_for_every_attempt() {
    let breaker = CircuitBreaker::builder().minimum_calls(10).build().unwrap();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let inner = tower::service_fn(move |(): ()| {
        let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move { if attempt < 3 { Err::<u32, BoxError>("flaky".into()) } else { Ok(attempt) } }
    });
    let mut service = tower::Layer::layer(
        &RetryLayer::new(retry(3)),
        tower::Layer::layer(&CircuitBreakerLayer::new(breaker.clone()), inner),
    );
    assert_eq!(tower::ServiceExt::oneshot(&mut service, ()).await.unwrap(), 3);
    let metrics = breaker.metrics();
    assert_eq!(metrics.calls, 3, "each retry went through the breaker's poll_ready and call");
    assert_eq!(metrics.failed_calls, 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_waiting_for_readiness_holds_no_bulkhead_slot() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let (inner, mut handle) = mock::pair::<&str, &str>();
    let service = tower::Layer::layer(
        &RetryLayer::new(retry(3)),
        tower::Layer::layer(&BulkheadLayer::new(bulkhead.clone()), inner),
    );
    let mut service = Spawn::new(service);
    handle.allow(1);
    assert!(is_ready(&service.poll_ready()));
    assert_eq!(bulkhead.metrics().available, 1, "readying takes no slot");
    let response = tokio::spawn(service.call("req"));
    let (_, send) = handle.next_request().await.unwrap();
    assert_eq!(bulkhead.metrics().available, 0, "the attempt holds the slot");
    send.send_error("flaky");
    tokio::task::yield_now().await;
    assert_eq!(
        bulkhead.metrics().available,
        1,
        "the failed attempt's slot is free during the backoff"
    );

    // Past the backoff the retry readies the bulkhead and waits for the mock:
    // no slot is taken before the retry's call.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bulkhead.metrics().available, 1, "waiting for readiness holds no slot");
    response.abort();
    assert!(response.await.unwrap_err().is_cancelled());
    assert_eq!(bulkhead.metrics().available, 1);
}

/// Retry predicates see the error type of the service below: a `BoxError`
/// predicate can leave a breaker's refusal alone; a predicate for another
/// type does not apply, so every error is retried.
#[tokio::test(start_paused = true)]
async fn retry_predicates_see_the_boxed_errors_of_the_layers_below() {
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.force_open();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let inner = tower::service_fn(move |(): ()| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<u32, BoxError>(1) }
    });
    let stack = |retry: Retry| {
        tower::Layer::layer(
            &RetryLayer::new(retry),
            tower::Layer::layer(&CircuitBreakerLayer::new(breaker.clone()), inner.clone()),
        )
    };
    let backoff = || Backoff::fixed(Duration::from_millis(1)).build().unwrap();
    let not_refusals = Retry::builder()
        .backoff(backoff())
        .max_attempts(5)
        .retry_if(|error: &BoxError| error.downcast_ref::<Rejected>().is_none())
        .build()
        .unwrap();
    let mut service = stack(not_refusals.clone());
    assert!(tower::ServiceExt::oneshot(&mut service, ()).await.is_err());
    assert_eq!(not_refusals.metrics().retries, 0, "the refusal was not retried");

    let other_type = Retry::builder()
        .backoff(backoff())
        .max_attempts(5)
        .retry_if(|_: &std::io::Error| false)
        .build()
        .unwrap();
    let mut service = stack(other_type.clone());
    assert!(tower::ServiceExt::oneshot(&mut service, ()).await.is_err());
    assert_eq!(other_type.metrics().retries, 4, "an io::Error predicate does not apply");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
