//! Bad input never panics, aborts or hangs: every public constructor and
//! builder setter of the crate fed edge values (0, 1, MAX, MAX − 1, MAX / 2,
//! `u32::MAX`, `Duration::MAX`, `u64::MAX` seconds or nanoseconds, names with
//! NUL bytes, braces), each call in `catch_unwind`, then the limiter it built
//! (if it built one) driven with edge values too. Each property runs under a
//! watchdog, so a hang fails the test instead of stalling CI.
//!
//! Covered (60 constructors and setters): `Quota::{new, per_second,
//! per_minute, per_hour, per_day, with_period, redis_cell, with_burst}`,
//! `Gcra::{new, builder}` and its `clock`, `build`, `Keyed::{new, builder}`
//! and its `clock`, `hasher`, `build`,
//! `TokenBucket::builder` and its `capacity`, `refill`, `interval`, `initial`,
//! `clock`, `build`, `LeakyBucket::builder` and its `capacity`, `interval`,
//! `burst`, `clock`, `build`, `SlidingWindow::{new, builder}` and its `clock`,
//! `build`, `SlidingLog::{new, builder}` and its `clock`, `build`,
//! `RateLimiter::{new, builder, for_name}` and its `clock`, `build`,
//! `Limit::{new, per_second, per_minute, per_minutes, per_hour, per_day, by}`,
//! `Decision::{new, with_reset_after, with_retry_after}`, `Decisions::new`,
//! and (features) `RateLimitLayer::new`, `RateLimit::new`,
//! `RedisLimiter::builder` with `key_prefix`, `response_timeout`, `on_failure`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_core::time::ManualClock;
use conc_ratelimit::{
    Decision, Decisions, Gcra, Keyed, LeakyBucket, Limit, Limiter, Quota, RateLimiter, SlidingLog,
    SlidingWindow, TokenBucket,
};
use proptest::prelude::*;

use conc_test_support::edge::{durations, texts, u32s, u64s, usizes, within};

/// `f()`, failing the property (with `what`) if it panicked.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    conc_test_support::edge::no_panic(f)
        .map_err(|message| TestCaseError::fail(format!("{what} panicked: {message}")))
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() }
}

/// Drives any limiter with edge values: nothing may panic.
fn drive<L: Limiter>(limiter: &L, key: &L::Key, n: u32) -> Result<(), TestCaseError> {
    no_panic("try_acquire", || limiter.try_acquire(key, n))?.ok();
    no_panic("remaining", || limiter.remaining(key))?;
    no_panic("retry_after", || limiter.retry_after(key, n))?.ok();
    no_panic("capacity", || limiter.capacity())?;
    no_panic("reset", || limiter.reset(key))?;
    Ok(())
}

#[test]
fn quotas_and_direct_limiters() {
    within(Duration::from_secs(60), || {
        proptest!(config(), |(rate in u32s(), burst in u32s(), n in u32s(),
                              period in durations(), step in durations())| {
            let quotas = [
                no_panic("Quota::new", || Quota::new(rate, period))?,
                no_panic("Quota::per_second", || Quota::per_second(rate))?,
                no_panic("Quota::per_minute", || Quota::per_minute(rate))?,
                no_panic("Quota::per_hour", || Quota::per_hour(rate))?,
                no_panic("Quota::per_day", || Quota::per_day(rate))?,
                no_panic("Quota::with_period", || Quota::with_period(period))?,
                no_panic("Quota::redis_cell", || Quota::redis_cell(burst, rate, period))?,
            ];
            for quota in quotas.into_iter().flatten() {
                let Ok(quota) = no_panic("Quota::with_burst", || quota.with_burst(burst))? else {
                    continue;
                };
                let _ = no_panic("Quota getters", || (quota.emission_interval(), quota.replenish_all()))?;
                let clock = ManualClock::new();
                let gcra = no_panic("Gcra builder", || Gcra::builder(quota).clock(clock.clone()).build())?;
                let _ = no_panic("Gcra::new", || Gcra::new(quota))?;
                drive(&gcra, &(), n)?;
                no_panic("Gcra::decide", || gcra.decide("p\0", n).map(|d| Decisions::new(vec![d]).headers(SystemTime::now())))?.ok();
                no_panic("Gcra::try_acquire_batch", || gcra.try_acquire_batch(n))?.ok();
                clock.advance(step);
                drive(&gcra, &(), n)?;
                no_panic("Gcra::reset_after", || gcra.reset_after())?;

                let keyed = no_panic("Keyed builder", || Keyed::builder(quota).clock(clock.clone()).build())?;
                let _ = no_panic("Keyed::new", || Keyed::<u64>::new(quota))?;
                let hashed = no_panic("Keyed builder with a hasher", || {
                    Keyed::builder(quota).clock(clock.clone()).hasher(std::hash::RandomState::new()).build()
                })?;
                drive(&keyed, &7u64, n)?;
                drive(&hashed, &"k", n)?;
                clock.advance(step);
                drive(&keyed, &8u64, n)?;
                no_panic("Keyed::decide", || keyed.decide("p", &9, n))?.ok();
                no_panic("Keyed::try_acquire_batch", || keyed.try_acquire_batch(&9, n))?.ok();
                no_panic("Keyed::reset_after", || keyed.reset_after(&9))?;
                no_panic("Keyed::evict_idle", || keyed.evict_idle())?;
            }
        });
    });
}

#[test]
fn buckets_and_windows() {
    within(Duration::from_secs(60), || {
        proptest!(config(), |(capacity in u32s(), refill in u32s(), initial in u32s(),
                              queue in usizes(), burst in u32s(), n in u32s(),
                              interval in durations(), step in durations())| {
            let clock = ManualClock::new();
            let bucket = no_panic("TokenBucket builder", || {
                TokenBucket::builder()
                    .capacity(capacity)
                    .refill(refill)
                    .interval(interval)
                    .initial(initial)
                    .clock(clock.clone())
                    .build()
            })?;
            if let Ok(bucket) = bucket {
                drive(&bucket, &(), n)?;
                clock.advance(step);
                drive(&bucket, &(), n)?;
                no_panic("TokenBucket::try_acquire_batch", || bucket.try_acquire_batch(n))?.ok();
                no_panic("TokenBucket::reset_after", || bucket.reset_after())?;
            }
            let leaky = no_panic("LeakyBucket builder", || {
                LeakyBucket::<u8, _>::builder()
                    .capacity(queue)
                    .interval(interval)
                    .burst(burst)
                    .clock(clock.clone())
                    .build()
            })?;
            if let Ok(leaky) = leaky {
                drive(&leaky, &(), n)?;
                no_panic("LeakyBucket::try_enqueue", || leaky.try_enqueue(1))?.ok();
                clock.advance(step);
                no_panic("LeakyBucket::try_dequeue", || leaky.try_dequeue())?.ok();
                no_panic("LeakyBucket::try_dequeue_batch", || leaky.try_dequeue_batch(queue))?;
                no_panic("LeakyBucket::retry_after", || leaky.retry_after())?;
                no_panic("LeakyBucket::remaining", || leaky.remaining())?;
            }
            for window in [
                no_panic("SlidingWindow builder", || SlidingWindow::builder(capacity, interval).clock(clock.clone()).build())?,
            ].into_iter().flatten() {
                let _ = no_panic("SlidingWindow::new", || SlidingWindow::new(capacity, interval))?;
                drive(&window, &(), n)?;
                no_panic("SlidingWindow::try_acquire", || window.try_acquire(1))?.ok();
                no_panic("SlidingWindow::reset_after", || window.reset_after())?;
                no_panic("SlidingWindow::try_acquire", || window.try_acquire(n.min(capacity)))?.ok();
                clock.advance(step);
                drive(&window, &(), n)?;
                no_panic("SlidingWindow::reset_after", || window.reset_after())?;
                no_panic("SlidingWindow::try_acquire_batch", || window.try_acquire_batch(n))?.ok();
            }
            for log in [
                no_panic("SlidingLog builder", || SlidingLog::builder(capacity, interval).clock(clock.clone()).build())?,
            ].into_iter().flatten() {
                let _ = no_panic("SlidingLog::new", || SlidingLog::new(capacity, interval))?;
                drive(&log, &(), n)?;
                no_panic("SlidingLog::try_acquire", || log.try_acquire(1))?.ok();
                no_panic("SlidingLog::reset_after", || log.reset_after())?;
                no_panic("SlidingLog::try_acquire", || log.try_acquire(n.min(capacity).min(1_000)))?.ok();
                clock.advance(step);
                drive(&log, &(), n)?;
                no_panic("SlidingLog::reset_after", || log.reset_after())?;
                no_panic("SlidingLog::try_acquire_batch", || log.try_acquire_batch(n))?.ok();
            }
        });
    });
}

#[test]
fn named_limits_and_decisions() {
    within(Duration::from_secs(60), || {
        proptest!(config(), |(max in u64s(), minutes in u64s(), decay in durations(),
                              wait in durations(), key in texts(), step in durations(),
                              unix in durations())| {
            let limits = [
                no_panic("Limit::new", || Limit::new(max, decay))?,
                no_panic("Limit::per_second", || Limit::per_second(max))?,
                no_panic("Limit::per_minute", || Limit::per_minute(max))?,
                no_panic("Limit::per_minutes", || Limit::per_minutes(minutes, max))?,
                no_panic("Limit::per_hour", || Limit::per_hour(max))?,
                no_panic("Limit::per_day", || Limit::per_day(max))?,
            ];
            let clock = ManualClock::new();
            let limiter = no_panic("RateLimiter builder", || RateLimiter::<String>::builder().clock(clock.clone()).build())?;
            let _ = no_panic("RateLimiter::new", RateLimiter::<()>::new)?;
            for limit in limits {
                let limit = no_panic("Limit::by", || limit.by(key.clone()))?;
                let name = key.clone();
                no_panic("RateLimiter::for_name", || {
                    let limit = limit.clone();
                    limiter.for_name(name, move |_: &String| limit.clone());
                })?;
                let decisions = no_panic("RateLimiter::check", || limiter.check(&key, &key))?;
                if let Ok(decisions) = decisions {
                    let now = UNIX_EPOCH.checked_add(unix).unwrap_or(UNIX_EPOCH);
                    no_panic("Decisions::headers", || decisions.headers(now))?;
                }
                no_panic("RateLimiter::attempt", || limiter.attempt(&key, max, decay, || ()))?.ok();
                no_panic("RateLimiter::increment", || limiter.increment(&key, decay, max))?;
                clock.advance(step);
                no_panic("RateLimiter::hit", || limiter.hit(&key, decay))?;
                no_panic("RateLimiter::decrement", || limiter.decrement(&key, max))?;
                no_panic("RateLimiter::remaining", || limiter.remaining(&key, max))?;
                no_panic("RateLimiter::available_in", || limiter.available_in(&key))?;
                no_panic("RateLimiter::too_many_attempts", || limiter.too_many_attempts(&key, max))?;
            }
            let decision = no_panic("Decision::new", || {
                Decision::new(key.as_str(), false, max, max, decay)
                    .with_reset_after(wait)
                    .with_retry_after(wait)
            })?;
            no_panic("Decision::ietf_limit", || decision.ietf_limit())?;
            no_panic("Decision::ietf_policy", || decision.ietf_policy())?;
            let decisions = no_panic("Decisions::new", || Decisions::new(vec![decision.clone(), decision]))?;
            let now = UNIX_EPOCH.checked_add(unix).unwrap_or(UNIX_EPOCH);
            no_panic("Decisions::headers", || decisions.headers(now))?;
            no_panic("Decisions::headers at MAX", || decisions.headers(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4)))?;
        });
    });
}

#[cfg(feature = "tower")]
#[test]
fn tower_middleware() {
    use std::sync::Arc;

    use conc_ratelimit::{Mode, RateLimit, RateLimitLayer};
    use tower::{Layer, Service};

    within(Duration::from_secs(60), || {
        proptest!(ProptestConfig { cases: 32, ..config() }, |(burst in 1..=u32::MAX, period in durations())| {
            let Ok(quota) = Quota::new(burst, period) else { return Ok(()) };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            let _entered = runtime.enter();
            let inner = tower::service_fn(|n: u8| async move { Ok::<_, std::convert::Infallible>(n) });
            let keyed = Arc::new(Keyed::builder(quota).clock(ManualClock::new()).build());
            let mut layered = no_panic("RateLimitLayer::new", || {
                RateLimitLayer::new(Arc::clone(&keyed), |n: &u8| *n).mode(Mode::Wait).layer(inner)
            })?;
            let mut direct = no_panic("RateLimit::new", || RateLimit::new(inner, Arc::new(Gcra::new(quota)), |_: &u8| ()))?;
            for n in 0..3u8 {
                drop(no_panic("RateLimit::call (wait)", || layered.call(n))?);
                drop(no_panic("RateLimit::call", || direct.call(n))?);
            }
        });
    });
}

#[cfg(feature = "redis")]
#[test]
fn redis_builder_refuses_bad_settings_before_connecting() {
    use conc_ratelimit::{FailurePolicy, RedisLimiter, RedisSetupError};

    within(Duration::from_secs(60), || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        proptest!(ProptestConfig { cases: 64, ..config() }, |(prefix in texts(), timeout in durations())| {
            // Port 1 on loopback: nothing listens, so a valid setting fails fast to connect.
            let builder = no_panic("RedisLimiter::builder", || {
                RedisLimiter::builder("redis://127.0.0.1:1/")
                    .key_prefix(prefix.clone())
                    .response_timeout(timeout)
                    .on_failure(FailurePolicy::Open)
            })?;
            let result = no_panic("RedisLimiter connect", || runtime.block_on(builder.connect()))?;
            let bad = prefix.contains(['{', '}', '\0'])
                || timeout.is_zero()
                || timeout > Duration::from_secs(3_600);
            match result {
                Err(RedisSetupError::Config(error)) => prop_assert!(bad, "{error}"),
                Err(RedisSetupError::Connect(_)) => prop_assert!(!bad),
                other => prop_assert!(false, "{other:?}"),
            }
        });
    });
}
