//! The composed stack (`Stack`): stage order, what is retried, fallbacks, cancellation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_resilience::{
    BreakerState, Bulkhead, CircuitBreaker, ErrorKind, FailureWindow, Fallback, LoadShedder,
    ResilienceError, Stack, Timeout,
};

use support::retry;

mod support;

fn breaker(calls: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .sliding_window(FailureWindow::count(calls))
        .minimum_calls(calls)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_go_through_the_breaker_and_stop_when_it_opens() {
    let breaker = breaker(2);
    let stack = Stack::builder().retry(retry(5)).circuit_breaker(breaker.clone()).build();
    let calls = AtomicU32::new(0);
    let result: Result<(), _> = stack
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err("down") }
        })
        .await;
    // Two failures open the breaker; the third attempt is refused and not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::BreakerOpen);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_are_retried_and_count_as_breaker_failures() {
    let breaker = breaker(10);
    let stack = Stack::builder()
        .retry(retry(3))
        .circuit_breaker(breaker.clone())
        .attempt_timeout(Timeout::new(Duration::from_millis(50)).unwrap())
        .build();
    let result = stack
        .run(|attempt| async move {
            if attempt.number() < 3 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok::<_, ()>(attempt.number())
        })
        .await;
    assert_eq!(result, Ok(3));
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failed_calls), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn total_timeout_bounds_the_retries() {
    let stack = Stack::builder()
        .total_timeout(Timeout::new(Duration::from_millis(250)).unwrap())
        .retry(retry(100))
        .build();
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let result: Result<(), _> = stack
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(()) }
        })
        .await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "attempts at 0, 100 and 200 ms");
}

#[tokio::test(start_paused = true)]
async fn bulkhead_slot_is_not_held_during_backoff() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let stack = Stack::builder().retry(retry(2)).bulkhead(bulkhead.clone()).build();
    let run = tokio::spawn({
        let stack = stack.clone();
        async move {
            stack
                .run(|attempt| async move { if attempt.is_retry() { Ok(()) } else { Err(()) } })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(bulkhead.metrics().available, 1, "free while the retry waits");
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_rejections_and_chosen_errors() {
    let breaker = breaker(1);
    breaker.force_open();
    let shedder = LoadShedder::builder(1).build().unwrap();
    let fallback = Fallback::new()
        .on_rejection(|error| format!("fallback for {:?}", error.kind()))
        .on_inner(|error: &&str| (*error == "not found").then(|| "empty".to_owned()));
    let open = Stack::builder().circuit_breaker(breaker).build();
    let answer =
        open.run_with_fallback(&fallback, |_| async { Ok::<_, &str>("live".to_owned()) }).await;
    assert_eq!(answer.unwrap(), "fallback for BreakerOpen");

    let _held = shedder.try_admit(1).unwrap();
    let shed = Stack::builder().load_shedder(shedder.clone(), 1).build();
    let answer =
        shed.run_with_fallback(&fallback, |_| async { Ok::<_, &str>("live".to_owned()) }).await;
    assert_eq!(answer.unwrap(), "fallback for Shed");

    let plain = Stack::builder().build();
    assert_eq!(
        plain.run_with_fallback(&fallback, |_| async { Err("not found") }).await.unwrap(),
        "empty"
    );
    let unhandled = plain.run_with_fallback(&fallback, |_| async { Err("boom") }).await;
    assert_eq!(unhandled, Err(ResilienceError::Inner("boom")));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_run_releases_every_permit() {
    let breaker = breaker(4);
    breaker.transition_to_half_open();
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let shedder = LoadShedder::builder(1).build().unwrap();
    let stack = support::guarded(&shedder, &breaker, &bulkhead);
    let task = tokio::spawn({
        let stack = stack.clone();
        async move { stack.run(|_| std::future::pending::<Result<(), ()>>()).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!((bulkhead.metrics().available, shedder.metrics().load), (0, 1));
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!((bulkhead.metrics().available, shedder.metrics().load), (1, 0));
    // All ten half-open probe slots are free again (the default is 10).
    let probes: Vec<_> = (0..10).map(|_| breaker.try_acquire().expect("probe slot")).collect();
    drop(probes);
}

/// The breaker's `Classify` policy counts the operation's results in a stack.
#[tokio::test(start_paused = true)]
async fn the_breakers_policy_counts_the_results() {
    let breaker = CircuitBreaker::builder()
        .minimum_calls(1)
        .classify(|result: &Result<u32, &str>| match result {
            Err("not found") => conc_resilience::CallOutcome::Ignore,
            other => conc_resilience::CallOutcome::of(other),
        })
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let stack = Stack::builder().circuit_breaker(breaker.clone()).build();
    assert!(stack.run(|_| async { Err("not found") }).await.is_err());
    assert_eq!(breaker.metrics().calls, 0, "ignored by the policy");
    assert!(stack.run(|_| async { Err("down") }).await.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
}
