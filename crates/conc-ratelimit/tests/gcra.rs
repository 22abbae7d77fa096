//! GCRA on a manual clock: exact boundaries, bursts, n > 1, clocks that step
//! back or jump far ahead, batches, queries and cancellation-safe waiting.

use std::future::Future;
use std::pin::pin;
use std::task::Context;
use std::time::Duration;

use conc_core::config::ConfigError;
use conc_core::time::ManualClock;
use conc_ratelimit::{Gcra, Quota, RateLimitError, TokioClock};

fn limiter(quota: Quota) -> (Gcra<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (Gcra::builder(quota).clock(clock.clone()).build(), clock)
}

fn limited(ms: u64) -> Result<(), RateLimitError> {
    Err(RateLimitError::Limited { retry_after: Duration::from_millis(ms) })
}

#[test]
fn burst_then_one_per_emission_interval_with_exact_boundaries() {
    let (gcra, clock) = limiter(Quota::per_second(4).unwrap());
    for _ in 0..4 {
        assert_eq!(gcra.try_acquire(1), Ok(()));
    }
    assert_eq!(gcra.try_acquire(1), limited(250));
    clock.advance(Duration::from_millis(250) - Duration::from_nanos(1));
    assert_eq!(
        gcra.try_acquire(1),
        Err(RateLimitError::Limited { retry_after: Duration::from_nanos(1) })
    );
    clock.advance(Duration::from_nanos(1));
    assert_eq!(gcra.try_acquire(1), Ok(()));
    assert_eq!(gcra.try_acquire(1), limited(250));
}

#[test]
fn n_units_are_all_or_nothing_with_exact_wait() {
    let (gcra, clock) = limiter(Quota::per_second(10).unwrap());
    assert_eq!(gcra.try_acquire(7), Ok(()));
    // 3 left; 5 needs two more emission intervals.
    assert_eq!(gcra.try_acquire(5), limited(200));
    assert_eq!(gcra.remaining(), 3, "a refusal must not charge");
    clock.advance(Duration::from_millis(200));
    assert_eq!(gcra.try_acquire(5), Ok(()));
    assert_eq!(gcra.remaining(), 0);
}

#[test]
fn more_than_the_burst_is_a_typed_error_and_zero_is_free() {
    let (gcra, _) = limiter(Quota::per_second(3).unwrap());
    assert_eq!(
        gcra.try_acquire(4),
        Err(RateLimitError::ExceedsCapacity { requested: 4, capacity: 3 })
    );
    assert_eq!(
        gcra.retry_after(4),
        Err(RateLimitError::ExceedsCapacity { requested: 4, capacity: 3 })
    );
    assert_eq!(gcra.try_acquire(0), Ok(()));
    assert_eq!(gcra.remaining(), 3);
}

#[test]
fn invalid_quotas_are_typed_errors() {
    let field = |result: Result<Quota, ConfigError>| result.unwrap_err().field;
    assert_eq!(field(Quota::per_second(0)), "rate");
    assert_eq!(field(Quota::new(1, Duration::ZERO)), "period");
    assert_eq!(field(Quota::per_second(1).unwrap().with_burst(0)), "burst");
    assert_eq!(field(Quota::new(10, Duration::from_nanos(5))), "rate");
    let err = Quota::per_day(1).unwrap().with_burst(u32::MAX).unwrap_err();
    assert_eq!(err.to_string(), "invalid `burst` 4294967295: must be at most 213503");
    assert_eq!(field(Quota::new(1, Duration::MAX)), "period");
    assert_eq!(field(Quota::redis_cell(u32::MAX, 1, Duration::from_secs(1))), "max_burst");
    let err = Quota::per_minute(0).unwrap_err().to_string();
    assert!(err.contains("`rate` 0"), "{err}");
}

#[test]
fn quota_is_exact_in_nanoseconds() {
    // 700 per minute must not become 705 (whole-millisecond truncation).
    let quota = Quota::per_minute(700).unwrap();
    assert_eq!(quota.emission_interval(), Duration::from_nanos(85_714_285));
    // Very high rates are fine down to one per nanosecond.
    assert_eq!(
        Quota::per_second(1_000_000_000).unwrap().emission_interval(),
        Duration::from_nanos(1)
    );
    assert_eq!(Quota::redis_cell(0, 1, Duration::from_secs(1)).unwrap().burst(), 1);
}

#[test]
fn a_clock_stepping_back_never_rejects_earlier_than_before() {
    let (gcra, clock) = limiter(Quota::per_second(2).unwrap());
    clock.advance(Duration::from_secs(10));
    assert_eq!(gcra.try_acquire(2), Ok(()));
    clock.advance(Duration::from_millis(500));
    assert_eq!(gcra.remaining(), 1);
    clock.rewind(Duration::from_secs(5)).unwrap();
    // The reading is clamped to the highest seen: still one unit available.
    assert_eq!(gcra.remaining(), 1);
    assert_eq!(gcra.try_acquire(1), Ok(()));
    assert_eq!(gcra.try_acquire(1), limited(500));
}

#[test]
fn a_clock_jumping_centuries_ahead_keeps_exact_decisions() {
    let (gcra, clock) = limiter(Quota::per_day(1).unwrap().with_burst(2).unwrap());
    clock.advance(Duration::from_secs(500 * 365 * 86_400));
    assert_eq!(gcra.try_acquire(2), Ok(()));
    assert_eq!(gcra.try_acquire(1).unwrap_err().retry_after(), Some(Duration::from_secs(86_400)));
}

#[test]
fn the_end_of_representable_time_saturates_without_panicking() {
    let (gcra, clock) = limiter(Quota::per_day(1).unwrap().with_burst(2).unwrap());
    clock.set_elapsed(Duration::from_nanos(u64::MAX - 5)).unwrap();
    assert_eq!(gcra.try_acquire(1), Ok(()));
    // The TAT pins at the last representable nanosecond.
    assert_eq!(gcra.reset_after(), Duration::from_nanos(5));
    assert!(gcra.remaining() <= 2);
    let _ = gcra.try_acquire(2);
    let _ = gcra.try_acquire_batch(2);
    let _ = gcra.retry_after(2);
}

#[test]
fn batch_takes_what_is_available() {
    let (gcra, clock) = limiter(Quota::per_second(5).unwrap());
    assert_eq!(gcra.try_acquire_batch(0), Ok(0));
    assert_eq!(gcra.try_acquire_batch(3), Ok(3));
    assert_eq!(gcra.try_acquire_batch(10), Ok(2));
    assert_eq!(
        gcra.try_acquire_batch(10).unwrap_err().retry_after(),
        Some(Duration::from_millis(200))
    );
    clock.advance(Duration::from_millis(450));
    assert_eq!(gcra.try_acquire_batch(10), Ok(2));
}

#[test]
fn queries_and_reset() {
    let (gcra, clock) = limiter(Quota::per_minute(60).unwrap());
    assert_eq!(gcra.capacity(), 60);
    assert_eq!(gcra.quota(), Quota::per_minute(60).unwrap());
    gcra.try_acquire(60).unwrap();
    assert_eq!(gcra.remaining(), 0);
    assert_eq!(gcra.reset_after(), Duration::from_secs(60));
    assert_eq!(gcra.retry_after(1), Ok(Duration::from_secs(1)));
    assert_eq!(gcra.retry_after(30), Ok(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(15));
    assert_eq!(gcra.remaining(), 15);
    assert_eq!(gcra.retry_after(15), Ok(Duration::ZERO));
    gcra.reset();
    assert_eq!(gcra.remaining(), 60);
    assert_eq!(gcra.reset_after(), Duration::ZERO);
    assert!(format!("{gcra:?}").contains("Gcra"));
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_exactly_on_paused_time() {
    let gcra = Gcra::builder(Quota::per_second(4).unwrap()).clock(TokioClock).build();
    let started = tokio::time::Instant::now();
    gcra.acquire(4).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    gcra.acquire(2).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(
        gcra.acquire(5).await,
        Err(RateLimitError::ExceedsCapacity { requested: 5, capacity: 4 })
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_acquire_consumes_nothing() {
    let gcra = Gcra::builder(Quota::per_second(2).unwrap()).clock(TokioClock).build();
    gcra.acquire(2).await.unwrap();
    {
        let mut waiting = pin!(gcra.acquire(2));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(600)).await;
        // Dropped before it was polled again.
    }
    // 600 ms replenished one unit; the dropped waiter took nothing.
    assert_eq!(gcra.remaining(), 1);
    tokio::time::advance(Duration::from_millis(400)).await;
    assert_eq!(gcra.try_acquire(2), Ok(()));
}

#[test]
fn concurrent_checks_never_admit_more_than_the_burst() {
    let clock = ManualClock::new();
    let gcra = Gcra::builder(Quota::per_hour(1_000).unwrap()).clock(clock).build();
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..1_000).filter(|_| gcra.try_acquire(1).is_ok()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1_000);
}

static_assertions::assert_impl_all!(Gcra: Send, Sync);
static_assertions::assert_impl_all!(Gcra<ManualClock>: Send, Sync);
static_assertions::assert_impl_all!(RateLimitError: Send, Sync, std::error::Error);

#[test]
fn decide_reports_a_decision_for_headers() {
    let (gcra, clock) = limiter(Quota::per_second(2).unwrap());
    let first = gcra.decide("api", 2).unwrap();
    assert!(first.allowed());
    assert_eq!((first.limit(), first.remaining()), (2, 0));
    assert_eq!(first.reset_after(), Duration::from_secs(1));
    assert_eq!(first.window(), Duration::from_secs(1));
    let refused = gcra.decide("api", 1).unwrap();
    assert!(!refused.allowed());
    assert_eq!(refused.retry_after(), Duration::from_millis(500));
    assert_eq!(refused.remaining(), 0);
    clock.advance(Duration::from_millis(500));
    assert_eq!(gcra.decide("api", 1).unwrap().retry_after(), Duration::ZERO);
    assert_eq!(
        gcra.decide("api", 3),
        Err(RateLimitError::ExceedsCapacity { requested: 3, capacity: 2 })
    );
}
