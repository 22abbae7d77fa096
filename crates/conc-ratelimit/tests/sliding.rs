//! Sliding window counter and sliding log on a manual clock: the estimate at
//! window boundaries, exact waits, and the log's exact window bound.

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{RateLimitError, SlidingLog, SlidingWindow, TokioClock};
use proptest::prelude::*;

const W: Duration = Duration::from_secs(60);

fn counter(limit: u32) -> (SlidingWindow<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (SlidingWindow::builder(limit, W).clock(clock.clone()).build().unwrap(), clock)
}

fn log(limit: u32) -> (SlidingLog<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    (SlidingLog::builder(limit, W).clock(clock.clone()).build().unwrap(), clock)
}

#[test]
fn counter_estimate_at_the_window_boundaries() {
    let (limiter, clock) = counter(10);
    clock.advance(W.checked_sub(Duration::from_secs(1)).unwrap());
    limiter.try_acquire(10).unwrap();
    // elapsed = 0 in the next window: the whole previous count weighs in, so
    // the fixed window's 2× burst across the edge does not happen.
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.remaining(), 0);
    assert!(limiter.try_acquire(1).is_err());
    // elapsed = W/2: half of it.
    clock.advance(W / 2);
    assert_eq!(limiter.remaining(), 5);
    // elapsed = W, the start of the window after: nothing counts.
    clock.advance(W / 2);
    assert_eq!(limiter.remaining(), 10);
    assert_eq!(limiter.reset_after(), Duration::ZERO);
}

#[test]
fn counter_waits_are_exact() {
    let (limiter, clock) = counter(4);
    limiter.try_acquire(4).unwrap();
    // All 4 in the current window: only in the next one, once 3/4 of it slid out.
    let wait = limiter.try_acquire(3).unwrap_err().retry_after().unwrap();
    assert_eq!(wait, W + W * 3 / 4);
    assert_eq!(limiter.retry_after(3), Ok(wait));
    assert_eq!(limiter.reset_after(), 2 * W);
    clock.advance(wait.checked_sub(Duration::from_nanos(1)).unwrap());
    assert!(limiter.try_acquire(3).is_err());
    clock.advance(Duration::from_nanos(1));
    assert_eq!(limiter.try_acquire(3), Ok(()));
}

#[test]
fn counter_batches_and_resets() {
    let (limiter, _clock) = counter(5);
    assert_eq!(limiter.try_acquire_batch(0), Ok(0));
    assert_eq!(limiter.try_acquire_batch(3), Ok(3));
    assert_eq!(limiter.try_acquire_batch(9), Ok(2));
    assert!(limiter.try_acquire_batch(9).is_err());
    limiter.reset();
    assert_eq!(limiter.remaining(), 5);
    assert_eq!(limiter.capacity(), 5);
    assert_eq!(
        limiter.try_acquire(6),
        Err(RateLimitError::ExceedsCapacity { requested: 6, capacity: 5 })
    );
    assert!(format!("{limiter:?}").contains("SlidingWindow"));
}

#[test]
fn invalid_windows_are_typed_errors() {
    assert_eq!(
        SlidingWindow::new(0, W).unwrap_err().to_string(),
        "invalid `limit` 0: must be at least 1"
    );
    assert_eq!(SlidingLog::new(1, Duration::ZERO).unwrap_err().field, "window");
    assert_eq!(SlidingLog::new(1, Duration::MAX).unwrap_err().field, "window");
}

#[test]
fn log_entries_at_exactly_now_minus_window_fall_out() {
    let (limiter, clock) = log(2);
    limiter.try_acquire(1).unwrap();
    limiter.try_acquire(1).unwrap();
    assert_eq!(limiter.entries(), 1, "admissions at one instant share an entry");
    assert_eq!(limiter.try_acquire(1), Err(RateLimitError::Limited { retry_after: W }));
    clock.advance(W.checked_sub(Duration::from_nanos(1)).unwrap());
    assert!(limiter.try_acquire(1).is_err());
    clock.advance(Duration::from_nanos(1));
    assert_eq!(limiter.remaining(), 2);
    assert_eq!(limiter.try_acquire(2), Ok(()));
    assert_eq!(limiter.reset_after(), W);
}

#[test]
fn log_batches_and_resets() {
    let (limiter, clock) = log(5);
    assert_eq!(limiter.try_acquire_batch(0), Ok(0));
    assert_eq!(limiter.try_acquire_batch(2), Ok(2));
    clock.advance(Duration::from_secs(10));
    assert_eq!(limiter.try_acquire_batch(9), Ok(3));
    assert_eq!(
        limiter.try_acquire_batch(1),
        Err(RateLimitError::Limited { retry_after: Duration::from_secs(50) })
    );
    assert_eq!(limiter.retry_after(3), Ok(W));
    limiter.reset();
    assert_eq!(limiter.remaining(), 5);
    assert_eq!(limiter.try_acquire(0), Ok(()));
    assert_eq!(limiter.capacity(), 5);
    assert!(format!("{limiter:?}").contains("SlidingLog"));
}

#[tokio::test(start_paused = true)]
async fn both_wait_on_paused_time() {
    let counter =
        SlidingWindow::builder(2, Duration::from_secs(1)).clock(TokioClock).build().unwrap();
    let log = SlidingLog::builder(2, Duration::from_secs(1)).clock(TokioClock).build().unwrap();
    let started = tokio::time::Instant::now();
    log.acquire(2).await.unwrap();
    log.acquire(1).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    counter.acquire(2).await.unwrap();
    counter.acquire(2).await.unwrap();
    assert_eq!(
        counter.acquire(3).await,
        Err(RateLimitError::ExceedsCapacity { requested: 3, capacity: 2 })
    );
}

proptest! {
    /// The log never admits more than `limit` units in any half-open window
    /// `(t − W, t]`, and its waits are exact.
    #[test]
    fn log_bound_is_exact(
        limit in 1u32..10,
        steps in proptest::collection::vec((0u64..30_000_000_000, 1u32..4), 1..200),
    ) {
        let (limiter, clock) = log(limit);
        let window = W.as_nanos() as u64;
        let mut admitted: Vec<(u64, u32)> = Vec::new();
        let mut now = 0;
        for (gap, n) in steps {
            clock.advance(Duration::from_nanos(gap));
            now += gap;
            match limiter.try_acquire(n) {
                Ok(()) => admitted.push((now, n)),
                Err(RateLimitError::Limited { retry_after }) => {
                    let in_window = |t: u64| admitted.iter().filter(|(at, _)| *at + window > t).map(|(_, n)| u64::from(*n)).sum::<u64>();
                    let at = now + retry_after.as_nanos() as u64;
                    prop_assert!(in_window(at) + u64::from(n) <= u64::from(limit));
                    prop_assert!(in_window(at - 1) + u64::from(n) > u64::from(limit));
                }
                Err(RateLimitError::ExceedsCapacity { .. }) => prop_assert!(n > limit),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
            prop_assert!(limiter.entries() <= limit as usize);
        }
        for &(end, _) in &admitted {
            let total: u64 = admitted.iter().filter(|(at, _)| *at <= end && *at + window > end).map(|(_, n)| u64::from(*n)).sum();
            prop_assert!(total <= u64::from(limit));
        }
    }

    /// The counter's waits are exact (refused 1 ns before, admitted at), and
    /// what it admits never passes the estimate's bound: after each admission
    /// at `elapsed` into window `k`, `count(k − 1) × (W − elapsed) / W +
    /// count(k) ≤ limit`, so no fixed window ever holds more than `limit`.
    #[test]
    fn counter_waits_are_exact_everywhere(
        limit in 1u32..20,
        steps in proptest::collection::vec((0u64..90_000_000_000, 1u32..6), 1..60),
    ) {
        let (limiter, clock) = counter(limit);
        let window = W.as_nanos() as u64;
        // Units admitted per fixed window, by the window's index.
        let mut counts: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
        let mut now = 0u64;
        let admit = |now: u64, n: u32, counts: &mut std::collections::BTreeMap<u64, u64>| {
            let index = now / window;
            let elapsed = u128::from(now % window);
            *counts.entry(index).or_default() += u64::from(n);
            let current = u128::from(counts[&index]);
            let previous = u128::from(index.checked_sub(1).and_then(|i| counts.get(&i).copied()).unwrap_or(0));
            previous * (u128::from(window) - elapsed) + current * u128::from(window)
                <= u128::from(limit) * u128::from(window)
        };
        for (gap, n) in steps {
            clock.advance(Duration::from_nanos(gap));
            now += gap;
            match limiter.try_acquire(n) {
                Ok(()) => {
                    prop_assert!(n <= limit);
                    prop_assert!(admit(now, n, &mut counts), "admitted {n} past the bound at {now}");
                }
                Err(RateLimitError::Limited { retry_after }) => {
                    prop_assert!(n <= limit);
                    prop_assert!(retry_after > Duration::ZERO);
                    let before = retry_after.checked_sub(Duration::from_nanos(1)).unwrap();
                    clock.advance(before);
                    now += before.as_nanos() as u64;
                    prop_assert!(
                        matches!(limiter.try_acquire(n), Err(RateLimitError::Limited { .. })),
                        "admitted 1 ns before the wait it named"
                    );
                    clock.advance(Duration::from_nanos(1));
                    now += 1;
                    prop_assert_eq!(limiter.try_acquire(n), Ok(()));
                    prop_assert!(admit(now, n, &mut counts), "admitted {n} past the bound at {now}");
                }
                Err(RateLimitError::ExceedsCapacity { requested, capacity }) => {
                    prop_assert!(n > limit);
                    prop_assert_eq!((requested, capacity), (n, limit));
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
            prop_assert!(counts.values().all(|&count| count <= u64::from(limit)));
        }
    }
}

static_assertions::assert_impl_all!(SlidingWindow: Send, Sync);
static_assertions::assert_impl_all!(SlidingLog: Send, Sync);
