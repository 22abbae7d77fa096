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

/// Every stage at once, around a bulkhead of one slot and `breaker`.
fn full(breaker: &CircuitBreaker, bulkhead: &Bulkhead, retry: &conc_resilience::Retry) -> Stack {
    Stack::builder()
        .total_timeout(Timeout::new(Duration::from_secs(10)).unwrap())
        .retry(retry.clone())
        .circuit_breaker(breaker.clone())
        .bulkhead(bulkhead.clone())
        .attempt_timeout(Timeout::new(Duration::from_secs(1)).unwrap())
        .build()
}

/// The first attempt ready at its first poll: every guard is taken and
/// given back, every stage counts it, and no time passes.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_ready_at_once_goes_through_every_stage() {
    let (breaker, bulkhead, retry) =
        (breaker(10), Bulkhead::builder().max_concurrent(1).build().unwrap(), retry(3));
    let stack = full(&breaker, &bulkhead, &retry);
    let started = tokio::time::Instant::now();
    assert_eq!(stack.run(|attempt| async move { Ok::<_, ()>(attempt.number()) }).await, Ok(1));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed_calls), (1, 0));
    let runs = retry.metrics();
    assert_eq!((runs.calls, runs.retries, runs.exhausted), (1, 0, 0));
}

/// A first attempt that waits holds its slot until it finishes, and is
/// recorded once it does.
#[tokio::test(start_paused = true)]
async fn a_pending_first_attempt_holds_its_slot_until_it_finishes() {
    let (breaker, bulkhead, retry) =
        (breaker(10), Bulkhead::builder().max_concurrent(1).build().unwrap(), retry(3));
    let stack = full(&breaker, &bulkhead, &retry);
    let run = tokio::spawn(async move {
        stack
            .run(|_| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, ()>(7)
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(bulkhead.metrics().available, 0, "held while the attempt waits");
    assert_eq!(breaker.metrics().calls, 0, "not recorded yet");
    assert_eq!(run.await.unwrap(), Ok(7));
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!(breaker.metrics().calls, 1);
}

/// A first attempt that fails at once is retried after the pause; the slot
/// is free during the pause and every stage counts both attempts.
#[tokio::test(start_paused = true)]
async fn a_failed_first_attempt_is_retried_after_the_pause() {
    let (breaker, bulkhead, retry) =
        (breaker(10), Bulkhead::builder().max_concurrent(1).build().unwrap(), retry(3));
    let stack = full(&breaker, &bulkhead, &retry);
    let started = tokio::time::Instant::now();
    let result = stack
        .run(|attempt| async move {
            if attempt.is_retry() { Ok(attempt.number()) } else { Err("flaky") }
        })
        .await;
    assert_eq!(result, Ok(2));
    assert_eq!(started.elapsed(), Duration::from_millis(100), "one pause of 100 ms");
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!((breaker.metrics().calls, breaker.metrics().failed_calls), (2, 1));
    let runs = retry.metrics();
    assert_eq!((runs.calls, runs.retries), (1, 1));
}

/// A run cancelled in the middle of its first attempt (every stage set)
/// gives back the slot and the half-open probe slot, and records nothing.
#[tokio::test(start_paused = true)]
async fn cancelling_a_first_attempt_gives_back_the_slot_and_the_probe() {
    let breaker = CircuitBreaker::builder()
        .permitted_calls_in_half_open(1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    breaker.transition_to_half_open();
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let stack = full(&breaker, &bulkhead, &retry(3));
    let task =
        tokio::spawn(async move { stack.run(|_| std::future::pending::<Result<(), ()>>()).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(bulkhead.metrics().available, 0);
    assert!(breaker.try_acquire().is_err(), "the one probe slot is taken");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen, "nothing recorded");
    breaker.try_acquire().expect("the probe slot came back").success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// The total timeout cuts off a waiting attempt: the attempt is neither
/// recorded by the breaker nor retried, and its slot is given back.
#[tokio::test(start_paused = true)]
async fn the_total_timeout_cuts_off_a_waiting_attempt_unrecorded() {
    let (breaker, bulkhead, retry) =
        (breaker(10), Bulkhead::builder().max_concurrent(1).build().unwrap(), retry(3));
    let stack = Stack::builder()
        .total_timeout(Timeout::new(Duration::from_millis(100)).unwrap())
        .retry(retry.clone())
        .circuit_breaker(breaker.clone())
        .bulkhead(bulkhead.clone())
        .build();
    let started = tokio::time::Instant::now();
    let result = stack.run(|_| std::future::pending::<Result<(), ()>>()).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(bulkhead.metrics().available, 1);
    assert_eq!(breaker.metrics().calls, 0, "cut off, not recorded");
    assert_eq!((retry.metrics().calls, retry.metrics().retries), (1, 0));
}

/// The total timeout bounds the wait for a bulkhead slot too.
#[tokio::test(start_paused = true)]
async fn the_total_timeout_bounds_the_wait_for_a_slot() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .max_queued(1)
        .max_wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let stack = Stack::builder()
        .total_timeout(Timeout::new(Duration::from_millis(100)).unwrap())
        .bulkhead(bulkhead.clone())
        .build();
    let held = bulkhead.try_acquire().unwrap();
    let started = tokio::time::Instant::now();
    let result = stack.run(|_| async { Ok::<_, ()>(()) }).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(bulkhead.metrics().queued, 0, "left the queue");
    drop(held);
    assert_eq!(bulkhead.metrics().available, 1);
}

/// A retry's runs are counted exactly from many threads at once, and its
/// metrics reset to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_from_many_threads_are_all_counted() {
    let retry = retry(2);
    let stack = Stack::builder().retry(retry.clone()).build();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let stack = stack.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    stack.run(|_| async { Ok::<_, ()>(()) }).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(retry.metrics().calls, 4_000);
    conc_core::metrics::MetricsSource::reset_metrics(&retry);
    assert_eq!(retry.metrics().calls, 0);
    stack.run(|_| async { Ok::<_, ()>(()) }).await.unwrap();
    assert_eq!(retry.metrics().calls, 1);
}
