//! Retry, retry budget and timeout, on tokio's paused clock and a `ManualClock`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::time::ManualClock;
use conc_resilience::{Elapsed, Retry, RetryBudget, Timeout};
use proptest::prelude::*;
use tokio::time::Instant;

mod support;

const MS: Duration = Duration::from_millis(1);

fn fixed(ms: u64) -> Backoff {
    Backoff::fixed(Duration::from_millis(ms)).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn attempt_numbers_and_max_attempts() {
    let retry = Retry::builder().backoff(fixed(10)).max_attempts(3).build().unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    let result: Result<(), u32> = retry
        .run(|attempt| {
            seen.lock().unwrap().push((attempt.number(), attempt.retries(), attempt.is_retry()));
            async move { Err(attempt.number()) }
        })
        .await;
    assert_eq!(result, Err(3), "the last error is returned as it is");
    assert_eq!(*seen.lock().unwrap(), [(1, 0, false), (2, 1, true), (3, 2, true)]);
    assert_eq!(started.elapsed(), 20 * MS, "two delays of 10 ms");
    let metrics = retry.metrics();
    assert_eq!((metrics.calls, metrics.retries, metrics.exhausted), (1, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn max_retries_does_not_count_the_first_call() {
    let retry = Retry::builder().backoff(fixed(1)).max_retries(3).build().unwrap();
    assert_eq!(support::calls_of_a_failing_run(&retry).await, 4);
    // The backoff's own limit applies when no setter overrides it.
    let retry = Retry::builder()
        .backoff(Backoff::fixed(MS).max_retries(1).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(retry.max_retries(), 1);
}

#[tokio::test(start_paused = true)]
async fn success_stops_retrying() {
    let retry = Retry::builder().backoff(fixed(5)).max_attempts(10).build().unwrap();
    let value = retry
        .run(|attempt| async move {
            if attempt.number() < 4 { Err("no") } else { Ok(attempt.number()) }
        })
        .await;
    assert_eq!(value, Ok(4));
    assert_eq!(retry.metrics().exhausted, 0);
}

#[tokio::test(start_paused = true)]
async fn predicates_choose_what_is_retried() {
    let retry = Retry::builder()
        .backoff(fixed(1))
        .max_attempts(5)
        .retry_if(|error: &std::io::ErrorKind| *error != std::io::ErrorKind::PermissionDenied)
        .retry_if_result(|status: &u16| *status == 503)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let denied: Result<u16, std::io::ErrorKind> = retry
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(std::io::ErrorKind::PermissionDenied) }
        })
        .await;
    assert_eq!(denied, Err(std::io::ErrorKind::PermissionDenied));
    assert_eq!(calls.swap(0, Ordering::SeqCst), 1, "a refused error is not retried");

    let unavailable: Result<u16, std::io::ErrorKind> = retry
        .run(|attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok(if attempt.number() < 3 { 503 } else { 200 }) }
        })
        .await;
    assert_eq!(unavailable, Ok(200));
    assert_eq!(calls.swap(0, Ordering::SeqCst), 3, "a 503 value is retried");

    let always: Result<u16, std::io::ErrorKind> = retry.run(|_| async { Ok(503) }).await;
    assert_eq!(always, Ok(503), "the last value comes back when attempts run out");
}

#[tokio::test(start_paused = true)]
async fn deadline_is_never_slept_past() {
    let retry = Retry::builder()
        .backoff(fixed(300))
        .max_attempts(100)
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let calls = support::calls_of_a_failing_run(&retry).await;
    // Attempts at 0, 300, 600, 900 ms; a fourth delay would end at 1200 ms.
    assert_eq!(calls, 4);
    assert_eq!(started.elapsed(), 900 * MS);
}

/// tower#857: a budget of 0.6 retries per request, no reserve, allows 6 retries after 10 requests, not 10.
#[test]
fn budget_fractional_ratio_is_exact() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .retry_ratio(0.6)
        .clock(clock)
        .build()
        .unwrap();
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(budget.remaining(), 6);
    assert_eq!((0..10).filter(|_| budget.try_withdraw()).count(), 6);
    assert_eq!(budget.remaining(), 0);
}

#[test]
fn budget_reserve_and_expiry() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder()
        .ttl(Duration::from_secs(10))
        .min_per_second(1)
        .retry_ratio(0.25)
        .clock(clock.clone())
        .build()
        .unwrap();
    // 1 per second over 10 s: 10 in reserve; 3 deposits of 0.25 add nothing whole.
    for _ in 0..3 {
        budget.deposit();
    }
    assert_eq!(budget.remaining(), 10);
    budget.deposit();
    assert_eq!(budget.remaining(), 11);
    assert!((0..11).all(|_| budget.try_withdraw()));
    assert!(!budget.try_withdraw());
    // Everything ages out of the window.
    clock.advance(Duration::from_secs(11));
    assert_eq!(budget.remaining(), 10);
}

#[tokio::test(start_paused = true)]
async fn budget_stops_retries() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .retry_ratio(0.5)
        .clock(clock)
        .build()
        .unwrap();
    let retry =
        Retry::builder().backoff(fixed(1)).max_attempts(10).budget(budget.clone()).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    for _ in 0..4 {
        let calls = Arc::clone(&calls);
        let _: Result<(), ()> = retry
            .run(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(()) }
            })
            .await;
    }
    // Four runs earn two retries in all: four first calls plus two retries.
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(retry.metrics().budget_refused, 4);
}

#[test]
fn builders_validate() {
    let message = |error: conc_core::config::ConfigError| error.to_string();
    assert_eq!(
        message(Retry::builder().max_attempts(0).build().unwrap_err()),
        "invalid `max_attempts` 0: must be at least 1"
    );
    assert_eq!(
        message(Retry::builder().deadline(Duration::ZERO).build().unwrap_err()),
        "invalid `deadline` 0ns: must be longer than zero"
    );
    assert_eq!(
        message(Retry::builder().name("").build().unwrap_err()),
        r#"invalid `name` "": must not be empty"#
    );
    assert_eq!(
        message(RetryBudget::builder().ttl(Duration::from_secs(61)).build().unwrap_err()),
        "invalid `ttl` 61s: must be between 1s and 60s"
    );
    assert_eq!(
        message(RetryBudget::builder().retry_ratio(-0.1).build().unwrap_err()),
        "invalid `retry_ratio` -0.1: must be between 0.0 and 1000.0"
    );
    assert_eq!(
        message(Timeout::new(Duration::ZERO).unwrap_err()),
        "invalid `timeout` 0ns: must be longer than zero"
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_cuts_off_and_drops_the_call() {
    let timeout = Timeout::new(Duration::from_millis(100)).unwrap();
    let bulkhead = conc_resilience::Bulkhead::builder().max_concurrent(1).build().unwrap();
    let result = timeout
        .call(async {
            let _permit = bulkhead.try_acquire().unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
    assert_eq!(result, Err(Elapsed { after: Duration::from_millis(100) }));
    assert_eq!(bulkhead.metrics().available, 1, "the cut-off call released its permit");
}

proptest! {
    /// However the backoff and deadline are drawn, the run never sleeps past the
    /// deadline and never makes more attempts than allowed.
    #[test]
    fn never_past_the_deadline(delay_ms in 1_u64..500, deadline_ms in 1_u64..5_000, attempts in 1_u32..20) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        runtime.block_on(async {
            let retry = Retry::builder()
                .backoff(Backoff::exponential(Duration::from_millis(delay_ms)).build().unwrap())
                .max_attempts(attempts)
                .deadline(Duration::from_millis(deadline_ms))
                .build()
                .unwrap();
            let calls = AtomicU32::new(0);
            let started = Instant::now();
            let _: Result<(), ()> = retry.run(|_| { calls.fetch_add(1, Ordering::SeqCst); async { Err(()) } }).await;
            prop_assert!(started.elapsed() < Duration::from_millis(deadline_ms));
            prop_assert!(calls.load(Ordering::SeqCst) <= attempts);
            prop_assert!(calls.load(Ordering::SeqCst) >= 1);
            Ok(())
        })?;
    }

    /// The budget never allows more than floor(reserve + ratio × deposits) retries.
    #[test]
    fn budget_never_over_allocates(ratio_milli in 0_u32..3_000, deposits in 0_u32..200, reserve in 0_u32..5) {
        let budget = RetryBudget::builder()
            .ttl(Duration::from_secs(1))
            .min_per_second(reserve)
            .retry_ratio(f64::from(ratio_milli) / 1000.0)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        for _ in 0..deposits {
            budget.deposit();
        }
        let granted = (0..10_000).take_while(|_| budget.try_withdraw()).count() as u64;
        let expected = u64::from(reserve) + u64::from(ratio_milli) * u64::from(deposits) / 1000;
        prop_assert_eq!(granted, expected);
    }
}
