//! The token bucket on a manual clock: refills land exactly on interval
//! boundaries, never beyond the capacity; a reference model agrees.

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{RateLimitError, TokenBucket, TokioClock};
use proptest::prelude::*;

fn bucket(capacity: u32, refill: u32, interval_ms: u64) -> (TokenBucket<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let bucket = TokenBucket::builder()
        .capacity(capacity)
        .refill(refill)
        .interval(Duration::from_millis(interval_ms))
        .clock(clock.clone())
        .build()
        .unwrap();
    (bucket, clock)
}

#[test]
fn refill_lands_exactly_on_the_interval_boundary() {
    let (bucket, clock) = bucket(10, 3, 100);
    bucket.try_acquire(10).unwrap();
    assert_eq!(bucket.remaining(), 0);
    clock.advance(Duration::from_millis(100) - Duration::from_nanos(1));
    assert_eq!(bucket.remaining(), 0);
    assert_eq!(
        bucket.try_acquire(1),
        Err(RateLimitError::Limited { retry_after: Duration::from_nanos(1) })
    );
    clock.advance(Duration::from_nanos(1));
    assert_eq!(bucket.remaining(), 3, "exactly `refill` tokens per interval");
    // 5 needs a second refill: at 200 ms.
    assert_eq!(
        bucket.try_acquire(5),
        Err(RateLimitError::Limited { retry_after: Duration::from_millis(100) })
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(bucket.try_acquire(5), Ok(()));
    assert_eq!(bucket.remaining(), 1);
}

#[test]
fn never_holds_more_than_its_capacity() {
    let (bucket, clock) = bucket(4, 2, 10);
    bucket.try_acquire(1).unwrap();
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(bucket.remaining(), 4);
    assert_eq!(bucket.try_acquire(4), Ok(()));
    assert!(bucket.try_acquire(1).is_err());
    assert_eq!(bucket.reset_after(), Duration::from_millis(20));
}

#[test]
fn starting_empty_admits_no_burst() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::builder()
        .capacity(5)
        .refill(1)
        .interval(Duration::from_secs(1))
        .initial(0)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(bucket.retry_after(2), Ok(Duration::from_secs(2)));
    assert!(bucket.try_acquire(1).is_err());
    clock.advance(Duration::from_secs(1));
    assert_eq!(bucket.try_acquire(1), Ok(()));
    assert_eq!(bucket.capacity(), 5);
}

#[test]
fn invalid_settings_are_typed_errors() {
    assert_eq!(TokenBucket::builder().capacity(0).build().unwrap_err().field, "capacity");
    assert_eq!(TokenBucket::builder().refill(0).build().unwrap_err().field, "refill");
    assert_eq!(
        TokenBucket::builder().interval(Duration::ZERO).build().unwrap_err().field,
        "interval"
    );
    assert_eq!(
        TokenBucket::builder().interval(Duration::MAX).build().unwrap_err().field,
        "interval"
    );
    let (bucket, _) = bucket(3, 1, 1);
    assert_eq!(
        bucket.try_acquire(4),
        Err(RateLimitError::ExceedsCapacity { requested: 4, capacity: 3 })
    );
    assert_eq!(bucket.try_acquire(0), Ok(()));
}

#[test]
fn batch_reset_and_debug() {
    let (bucket, clock) = bucket(6, 2, 50);
    assert_eq!(bucket.try_acquire_batch(0), Ok(0));
    assert_eq!(bucket.try_acquire_batch(4), Ok(4));
    assert_eq!(bucket.try_acquire_batch(9), Ok(2));
    assert_eq!(
        bucket.try_acquire_batch(9),
        Err(RateLimitError::Limited { retry_after: Duration::from_millis(50) })
    );
    clock.advance(Duration::from_millis(120));
    assert_eq!(bucket.try_acquire_batch(9), Ok(4));
    bucket.reset();
    assert_eq!(bucket.remaining(), 6);
    assert!(format!("{bucket:?}").contains("TokenBucket"));
}

#[test]
fn a_clock_stepping_back_is_clamped() {
    let (bucket, clock) = bucket(2, 1, 100);
    clock.advance(Duration::from_secs(1));
    bucket.try_acquire(2).unwrap();
    clock.advance(Duration::from_millis(100));
    assert_eq!(bucket.remaining(), 1);
    clock.rewind(Duration::from_millis(700)).unwrap();
    assert_eq!(bucket.remaining(), 1, "a reading seen once is never taken back");
    assert_eq!(bucket.try_acquire(1), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_for_the_refill_and_a_dropped_wait_takes_nothing() {
    let bucket = TokenBucket::builder()
        .capacity(2)
        .refill(2)
        .interval(Duration::from_secs(1))
        .clock(TokioClock)
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    bucket.acquire(2).await.unwrap();
    let timed_out = tokio::time::timeout(Duration::from_millis(500), bucket.acquire(1)).await;
    assert!(timed_out.is_err());
    bucket.acquire(2).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

/// The textbook bucket: tokens and the tick of the last refill.
struct Model {
    capacity: u64,
    refill: u64,
    interval: u64,
    tokens: u64,
    tick: u64,
}

impl Model {
    fn check(&mut self, now: u64, n: u64) -> bool {
        let tick = now / self.interval;
        self.tokens = (self.tokens + (tick - self.tick) * self.refill).min(self.capacity);
        self.tick = tick;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

proptest! {
    #[test]
    fn matches_the_textbook_model(
        capacity in 1u32..20,
        refill in 1u32..10,
        interval_ms in 1u64..500,
        steps in proptest::collection::vec((0u64..800_000_000, 0u32..25), 1..150),
    ) {
        let (bucket, clock) = bucket(capacity, refill, interval_ms);
        let mut model = Model {
            capacity: capacity.into(),
            refill: refill.into(),
            interval: interval_ms * 1_000_000,
            tokens: capacity.into(),
            tick: 0,
        };
        let mut now = 0;
        for (gap, n) in steps {
            clock.advance(Duration::from_nanos(gap));
            now += gap;
            let ours = bucket.try_acquire(n);
            if n > capacity {
                prop_assert_eq!(ours, Err(RateLimitError::ExceedsCapacity { requested: n, capacity }));
                continue;
            }
            prop_assert_eq!(ours.is_ok(), model.check(now, n.into()));
            prop_assert_eq!(u64::from(bucket.remaining()), model.tokens);
            if let Err(RateLimitError::Limited { retry_after }) = ours {
                // Exact: refused 1 ns before, admitted at the named instant.
                let wait = retry_after.as_nanos() as u64;
                prop_assert!(wait > 0);
                let tokens_then = (model.tokens + ((now + wait) / model.interval - model.tick) * model.refill).min(model.capacity);
                let tokens_before = (model.tokens + ((now + wait - 1) / model.interval - model.tick) * model.refill).min(model.capacity);
                prop_assert!(tokens_then >= u64::from(n) && tokens_before < u64::from(n));
            }
        }
    }
}

static_assertions::assert_impl_all!(TokenBucket: Send, Sync);
