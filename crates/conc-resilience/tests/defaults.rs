//! Every default the guide's tables and the builders' docs state, one test
//! each: a changed default fails its test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_core::time::{Clock, CoarseClock, ManualClock};
use conc_resilience::{
    BreakerState, Bulkhead, BulkheadError, CircuitBreaker, HalfOpenTimeout, LoadShedder, OpenWait,
    Retry, RetryBudget,
};

mod support;

/// The global coarse clock, as a primitive's `Debug` shows the clock it reads.
fn reads_the_global_coarse_clock(debug: &str) -> bool {
    debug.contains("CoarseClock")
        && debug.contains(&format!("{:?}", CoarseClock::global().origin()))
}

// ===== circuit breaker =====

#[test]
fn breaker_window_is_the_last_100_calls() {
    let breaker = CircuitBreaker::builder().failure_rate_threshold(1.0).build().unwrap();
    for _ in 0..150 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.metrics().calls, 100);
}

#[test]
fn breaker_opens_at_a_failure_rate_of_at_least_one_half() {
    let threshold = CircuitBreaker::builder().build().unwrap().config().failure_rate_threshold;
    assert!((threshold - 0.5).abs() < f64::EPSILON);
    let breaker = CircuitBreaker::builder().clock(ManualClock::new()).build().unwrap();
    for round in 0..100 {
        let permit = breaker.try_acquire().unwrap();
        if round % 2 == 0 { permit.success() } else { permit.failure() }
    }
    assert_eq!(breaker.state(), BreakerState::Open, "exactly 50 % opens it");
}

#[test]
fn breaker_detects_no_slow_calls() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder().clock(clock.clone()).build().unwrap();
    assert_eq!(breaker.config().slow_call, None);
    for _ in 0..100 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_secs(3600));
        permit.success();
    }
    assert_eq!(breaker.metrics().slow_calls, 0);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn breaker_needs_100_calls_before_rates_count() {
    let breaker = CircuitBreaker::builder().clock(ManualClock::new()).build().unwrap();
    assert_eq!(breaker.config().minimum_calls, 100);
    for _ in 0..99 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.metrics().failure_rate, None);
    assert_eq!(breaker.state(), BreakerState::Closed, "99 failures: below the minimum");
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn breaker_admits_exactly_10_probes_in_half_open() {
    let breaker = CircuitBreaker::builder().clock(ManualClock::new()).build().unwrap();
    assert_eq!(breaker.config().permitted_calls_in_half_open, 10);
    breaker.transition_to_half_open();
    let probes: Vec<_> = (0..10).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err(), "an eleventh is refused");
    drop(probes);
}

#[test]
fn breaker_waits_60_seconds_in_open() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder().clock(clock.clone()).build().unwrap();
    assert!(
        matches!(breaker.config().wait_in_open, OpenWait::Fixed(wait) if wait == Duration::from_secs(60))
    );
    breaker.transition_to_open();
    assert_eq!(breaker.retry_after(), Some(Duration::from_secs(60)));
    clock.advance(Duration::from_secs(59));
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn breaker_waits_for_its_probes_in_half_open() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder().clock(clock.clone()).build().unwrap();
    assert_eq!(breaker.config().max_wait_in_half_open, None);
    breaker.transition_to_half_open();
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // When set, the default target is open.
    assert_eq!(HalfOpenTimeout::default(), HalfOpenTimeout::Open);
}

#[test]
fn breaker_counts_every_err_as_a_failure_and_every_ok_as_a_success() {
    let breaker =
        CircuitBreaker::builder().minimum_calls(4).failure_rate_threshold(1.0).build().unwrap();
    breaker.try_acquire().unwrap().record(&Ok::<u16, ()>(503));
    breaker.try_acquire().unwrap().record(&Err::<(), _>(std::io::Error::other("any")));
    breaker.try_acquire().unwrap().record(&Err::<(), _>("any other type"));
    breaker.try_acquire().unwrap().record(&Ok::<(), ()>(()));
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failed_calls), (4, 2));
}

#[test]
fn breaker_reads_the_global_coarse_clock() {
    let breaker = CircuitBreaker::builder().build().unwrap();
    assert!(reads_the_global_coarse_clock(&format!("{breaker:?}")), "{breaker:?}");
    let manual = CircuitBreaker::builder().clock(ManualClock::new()).build().unwrap();
    assert!(!reads_the_global_coarse_clock(&format!("{manual:?}")));
}

#[test]
fn breaker_starts_closed_and_is_named_default() {
    let breaker = CircuitBreaker::builder().build().unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.name(), "default");
}

// ===== bulkhead =====

#[test]
fn bulkhead_admits_25_calls_at_once() {
    let bulkhead = Bulkhead::builder().build().unwrap();
    let slots: Vec<_> = (0..25).map(|_| bulkhead.try_acquire().unwrap()).collect();
    assert!(bulkhead.try_acquire().is_err());
    drop(slots);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_has_no_queue_and_fails_fast() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    assert!(!bulkhead.has_queue());
    let _held = bulkhead.try_acquire().unwrap();
    let started = tokio::time::Instant::now();
    let refused = bulkhead.acquire().await.unwrap_err();
    assert_eq!(refused, BulkheadError::Full { max_concurrent: 1, queued: 0 });
    assert_eq!(started.elapsed(), Duration::ZERO, "max_wait 0: no wait at all");
}

// ===== retry =====

#[tokio::test(start_paused = true)]
async fn retry_makes_3_attempts_with_exponential_full_jitter_from_100_ms() {
    let retry = Retry::builder().build().unwrap();
    assert_eq!(retry.max_retries(), 2);
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let gaps = std::sync::Mutex::new(Vec::new());
    let _: Result<(), ()> = retry
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            gaps.lock().unwrap().push(started.elapsed());
            async { Err(()) }
        })
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let at = gaps.into_inner().unwrap();
    // Full jitter: each delay is somewhere in [0, 100 ms × 2^n].
    assert!(at[1].saturating_sub(at[0]) <= Duration::from_millis(100), "{at:?}");
    assert!(at[2].saturating_sub(at[1]) <= Duration::from_millis(200), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_delays_are_capped_at_10_seconds() {
    let retry = Retry::builder().max_attempts(12).build().unwrap();
    let previous = std::sync::Mutex::new(tokio::time::Instant::now());
    let longest = std::sync::Mutex::new(Duration::ZERO);
    let _: Result<(), ()> = retry
        .run(|_| {
            let now = tokio::time::Instant::now();
            let gap = now - std::mem::replace(&mut *previous.lock().unwrap(), now);
            let mut longest = longest.lock().unwrap();
            *longest = (*longest).max(gap);
            async { Err(()) }
        })
        .await;
    assert!(*longest.lock().unwrap() <= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn retry_takes_the_backoff_limit_when_no_setter_does() {
    let backoff = conc_core::backoff::Backoff::fixed(Duration::from_millis(1))
        .max_retries(5)
        .build()
        .unwrap();
    assert_eq!(Retry::builder().backoff(backoff).build().unwrap().max_retries(), 5);
}

#[tokio::test(start_paused = true)]
async fn retry_has_no_deadline() {
    let retry = Retry::builder()
        .backoff(conc_core::backoff::Backoff::fixed(Duration::from_secs(3600)).build().unwrap())
        .max_attempts(3)
        .build()
        .unwrap();
    let calls = support::calls_of_a_failing_run(&retry).await;
    assert_eq!(calls, 3, "two hour-long delays, no deadline to stop them");
}

#[tokio::test(start_paused = true)]
async fn retry_retries_every_err_and_no_ok() {
    let retry = Retry::builder().build().unwrap();
    assert!(retry.should_retry(&Err::<(), _>("any error")));
    assert!(retry.should_retry(&Err::<(), _>(std::io::Error::other("of any type"))));
    assert!(!retry.should_retry(&Ok::<u16, ()>(503)));
}

// ===== retry budget =====

#[test]
fn budget_allows_10_per_second_over_10_seconds_plus_a_fifth_of_first_attempts() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder().clock(clock.clone()).build().unwrap();
    assert_eq!(budget.remaining(), 100, "10 per second × 10 s");
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(budget.remaining(), 102, "0.2 × 10 first attempts");
    // The ttl: 10 s later the first attempts have aged out.
    clock.advance(Duration::from_secs(11));
    assert_eq!(budget.remaining(), 100);
}

#[test]
fn budget_reads_the_global_coarse_clock() {
    let budget = RetryBudget::builder().build().unwrap();
    assert!(reads_the_global_coarse_clock(&format!("{budget:?}")), "{budget:?}");
}

// ===== load shedder =====

#[test]
fn shedder_has_no_cooldown_and_no_queue_wait_limit() {
    let shedder = LoadShedder::builder(1).build().unwrap();
    let held = shedder.try_admit(1).unwrap();
    let _ = shedder.try_admit(1).unwrap_err();
    drop(held);
    assert!(shedder.try_admit(1).is_ok(), "no cooldown after the overload");
    assert!(shedder.try_admit_after_wait(1, Duration::MAX).is_ok(), "no queue-wait limit");
}

#[test]
fn shedder_reads_the_global_coarse_clock() {
    let shedder = LoadShedder::builder(1).build().unwrap();
    assert!(reads_the_global_coarse_clock(&format!("{shedder:?}")), "{shedder:?}");
}

#[test]
fn everything_is_named_default() {
    // Names show in metric labels; the builders' docs promise "default".
    assert!(format!("{:?}", Bulkhead::builder().build().unwrap()).contains("\"default\""));
    assert!(format!("{:?}", Retry::builder().build().unwrap()).contains("\"default\""));
    assert!(format!("{:?}", LoadShedder::builder(1).build().unwrap()).contains("\"default\""));
}
