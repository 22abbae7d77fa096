//! The conformance suite every keyed GCRA limiter passes: the in-memory
//! [`Keyed`](conc_ratelimit::Keyed) and the [`RedisLimiter`](conc_ratelimit::RedisLimiter).
//!
//! The two APIs differ (one is synchronous and owns its quota, the other is
//! asynchronous and takes the quota per call), so a test file adapts its
//! limiter to [`Subject`] and instantiates the suite with a factory that makes
//! a fresh, empty limiter for a quota:
//!
//! ```ignore
//! mod conformance;
//! conformance::suite!(async |quota: Quota| Some((Memory::new(quota), Box::new(()) as conformance::KeepAlive)));
//! ```
//!
//! A factory returns `None` when its service is missing and the test should
//! skip (see `conc_test_support::require_redis`).
//!
//! Quotas are slow (units worth seconds) wherever a check needs nothing to
//! replenish while it runs, so a server's real clock moving on cannot change
//! a decision; the one check about replenishment uses 800 ms units (so a
//! refusal still holds after a stall of several hundred milliseconds between
//! two calls) and lets time pass through [`Subject::pass`] (a manual clock's
//! advance, or a real sleep with a small tolerance). Waits are only checked
//! against what the quota logically implies (positive, at most the units
//! missing).

#![allow(dead_code, reason = "each test binary uses the part of the suite it instantiates")]
#![allow(unreachable_pub, reason = "the checks are the suite's interface to the macro")]
#![allow(async_fn_in_trait, reason = "the trait is private to the test binaries")]

use std::time::Duration;

use conc_ratelimit::{Quota, RateLimitError};

/// What keeps a limiter's resources alive for the length of a test.
pub type KeepAlive = Box<dyn std::any::Any + Send>;

/// A keyed limiter for one quota, as the suite sees it.
pub trait Subject {
    /// Takes `n` units for `key`, all or nothing.
    async fn try_acquire(&self, key: &str, n: u32) -> Result<(), RateLimitError>;
    /// Units `key` could take at once now.
    async fn remaining(&self, key: &str) -> u32;
    /// Forgets `key`'s charges.
    async fn reset(&self, key: &str);
    /// Lets at least `elapsed` pass on the limiter's clock.
    async fn pass(&self, elapsed: Duration);
}

/// Declares one `#[tokio::test]` per check, each on a fresh limiter from `$factory`.
macro_rules! suite {
    ($factory:expr) => {
        $crate::conformance::suite!(@tests $factory;
            burst_is_admitted_then_refused_with_a_retry_after,
            several_units_are_taken_all_or_nothing,
            more_than_the_burst_is_a_typed_error,
            keys_are_independent,
            reset_restores_the_burst,
            units_replenish_after_waiting,
        );
    };
    (@tests $factory:expr; $($check:ident,)*) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::conformance::$check($factory).await;
            }
        )*
    };
}
pub(crate) use suite;

/// Three per minute: one unit is worth 20 s, far longer than any check.
fn slow() -> Quota {
    Quota::per_minute(3).unwrap()
}

/// Asserts `result` is a refusal whose wait is positive and at most `most`.
fn assert_limited(result: Result<(), RateLimitError>, most: Duration) -> Duration {
    match result {
        Err(RateLimitError::Limited { retry_after }) => {
            assert!(
                retry_after > Duration::ZERO && retry_after <= most,
                "retry after {retry_after:?}, expected (0, {most:?}]"
            );
            retry_after
        }
        other => panic!("expected a refusal with a wait, got {other:?}"),
    }
}

pub async fn burst_is_admitted_then_refused_with_a_retry_after<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    let Some((limiter, _keep)) = factory(slow()).await else { return };
    assert_eq!(limiter.remaining("user:1").await, 3, "an unknown key has its whole burst");
    for taken in 1..=3 {
        assert_eq!(limiter.try_acquire("user:1", 1).await, Ok(()), "unit {taken} of the burst");
    }
    assert_eq!(limiter.remaining("user:1").await, 0);
    assert_limited(limiter.try_acquire("user:1", 1).await, Duration::from_secs(20));
    // A refusal takes nothing: it is refused again.
    assert_limited(limiter.try_acquire("user:1", 1).await, Duration::from_secs(20));
}

pub async fn several_units_are_taken_all_or_nothing<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    // Five per minute: one unit is worth 12 s.
    let Some((limiter, _keep)) = factory(Quota::per_minute(5).unwrap()).await else { return };
    assert_eq!(limiter.try_acquire("batch", 3).await, Ok(()));
    assert_eq!(limiter.remaining("batch").await, 2);
    // Three more need one unit that is not there: refused, with the wait for it.
    assert_limited(limiter.try_acquire("batch", 3).await, Duration::from_secs(12));
    assert_eq!(limiter.remaining("batch").await, 2, "a refused request took nothing");
    assert_eq!(limiter.try_acquire("batch", 2).await, Ok(()));
    assert_eq!(limiter.remaining("batch").await, 0);
    // Two missing units: the wait may be longer than one unit, never than two.
    assert_limited(limiter.try_acquire("batch", 2).await, Duration::from_secs(24));
}

pub async fn more_than_the_burst_is_a_typed_error<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    let Some((limiter, _keep)) = factory(slow()).await else { return };
    let exceeds = Err(RateLimitError::ExceedsCapacity { requested: 4, capacity: 3 });
    assert_eq!(limiter.try_acquire("big", 4).await, exceeds, "never waits forever");
    assert_eq!(limiter.remaining("big").await, 3, "an impossible request took nothing");
    assert_eq!(limiter.try_acquire("big", 3).await, Ok(()));
    // Still a typed error, not a refusal with a wait, once the key is spent.
    assert_eq!(limiter.try_acquire("big", 4).await, exceeds);
    assert_eq!(
        limiter.try_acquire("big", u32::MAX).await,
        Err(RateLimitError::ExceedsCapacity { requested: u32::MAX, capacity: 3 })
    );
}

pub async fn keys_are_independent<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    let Some((limiter, _keep)) = factory(slow()).await else { return };
    assert_eq!(limiter.try_acquire("alice", 3).await, Ok(()));
    assert_limited(limiter.try_acquire("alice", 1).await, Duration::from_secs(20));
    assert_eq!(limiter.remaining("bob").await, 3, "a spent key leaves others whole");
    assert_eq!(limiter.try_acquire("bob", 2).await, Ok(()));
    assert_eq!(limiter.remaining("bob").await, 1);
    assert_eq!(limiter.remaining("alice").await, 0, "charging bob does not refill alice");
    // Keys that look alike are still distinct.
    assert_eq!(limiter.remaining("alice ").await, 3);
    assert_eq!(limiter.remaining("Alice").await, 3);
}

pub async fn reset_restores_the_burst<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    let Some((limiter, _keep)) = factory(slow()).await else { return };
    assert_eq!(limiter.try_acquire("login", 3).await, Ok(()));
    assert_eq!(limiter.try_acquire("other", 3).await, Ok(()));
    assert_limited(limiter.try_acquire("login", 1).await, Duration::from_secs(20));
    limiter.reset("login").await;
    assert_eq!(limiter.remaining("login").await, 3);
    assert_eq!(limiter.try_acquire("login", 3).await, Ok(()));
    assert_eq!(limiter.remaining("other").await, 0, "reset touches only its key");
    // Resetting a key nobody used is harmless.
    limiter.reset("never-seen").await;
    assert_eq!(limiter.remaining("never-seen").await, 3);
}

pub async fn units_replenish_after_waiting<S: Subject>(
    factory: impl AsyncFnOnce(Quota) -> Option<(S, KeepAlive)>,
) {
    // One unit every 800 ms with a burst of two: each refusal below holds
    // as long as less than 800 ms passes between two calls, while the waits
    // (real sleeps for a server, about 2.4 s in all) stay short.
    let unit = Duration::from_millis(800);
    let quota = Quota::with_period(unit).unwrap().with_burst(2).unwrap();
    let Some((limiter, _keep)) = factory(quota).await else { return };
    assert_eq!(limiter.try_acquire("paced", 2).await, Ok(()));
    let wait = assert_limited(limiter.try_acquire("paced", 1).await, unit);
    // After the wait it named, the unit is there, and only that one.
    limiter.pass(wait).await;
    assert_eq!(limiter.try_acquire("paced", 1).await, Ok(()));
    assert_limited(limiter.try_acquire("paced", 1).await, unit);
    // After the time for the whole burst, the whole burst is there.
    limiter.pass(unit * 2).await;
    assert_eq!(limiter.remaining("paced").await, 2);
    assert_eq!(limiter.try_acquire("paced", 2).await, Ok(()));
}
