//! Every public limiter, service, future, handle and report is `Send + Sync`
//! where a user needs it, and the futures of the async methods are `Send`, so
//! they can be spawned on a multi-threaded runtime.

use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::future::Future;

use conc_core::metrics::MetricsSource;
use conc_core::time::ManualClock;
use conc_ratelimit::{
    Decision, Decisions, DequeueError, Full, Gcra, GcraBuilder, Keyed, KeyedBuilder, KeyedMetrics,
    LeakyBucket, LeakyBucketBuilder, Limit, Limiter, LimiterMetrics, Limits, NamedError,
    NamedMetrics, Quota, RateLimitError, RateLimiter, RateLimiterBuilder, SlidingLog,
    SlidingLogBuilder, SlidingWindow, SlidingWindowBuilder, TokenBucket, TokenBucketBuilder,
    TokioClock, TooManyAttempts,
};
use static_assertions::assert_impl_all;

assert_impl_all!(Gcra: Send, Sync, Debug, Limiter<Key = ()>, MetricsSource<Snapshot = LimiterMetrics>);
assert_impl_all!(Gcra<ManualClock>: Send, Sync, Debug, Limiter);
assert_impl_all!(TokenBucket: Send, Sync, Debug, Limiter<Key = ()>, MetricsSource);
assert_impl_all!(LeakyBucket<String>: Send, Sync, Debug, Limiter<Key = ()>, MetricsSource);
assert_impl_all!(SlidingWindow: Send, Sync, Debug, Limiter<Key = ()>, MetricsSource);
assert_impl_all!(SlidingLog: Send, Sync, Debug, Limiter<Key = ()>, MetricsSource);
assert_impl_all!(Keyed<u64>: Send, Sync, Debug, Limiter<Key = u64>, MetricsSource<Snapshot = KeyedMetrics>);
assert_impl_all!(Keyed<String, TokioClock, RandomState>: Send, Sync, Limiter<Key = String>);
assert_impl_all!(RateLimiter<String>: Send, Sync, Debug, MetricsSource<Snapshot = NamedMetrics>);
assert_impl_all!(TokenBucketBuilder: Send, Sync, Debug, Clone);
assert_impl_all!(LeakyBucketBuilder<u8>: Send, Sync, Debug);
assert_impl_all!(GcraBuilder: Send, Sync, Debug, Clone);
assert_impl_all!(GcraBuilder<ManualClock>: Send, Sync, Debug, Clone);
assert_impl_all!(KeyedBuilder<u64>: Send, Sync, Debug, Clone);
assert_impl_all!(KeyedBuilder<String, TokioClock, RandomState>: Send, Sync, Debug, Clone);
assert_impl_all!(SlidingWindowBuilder: Send, Sync, Debug, Clone);
assert_impl_all!(SlidingLogBuilder<ManualClock>: Send, Sync, Debug, Clone);
assert_impl_all!(RateLimiterBuilder<String>: Send, Sync, Debug, Clone);
assert_impl_all!(Quota: Send, Sync, Copy, Debug);
assert_impl_all!(Decision: Send, Sync, Clone, Debug);
assert_impl_all!(Decisions: Send, Sync, Clone, Debug);
assert_impl_all!(Limit: Send, Sync, Clone, Debug);
assert_impl_all!(Limits: Send, Sync, Clone, Debug);
assert_impl_all!(LimiterMetrics: Send, Sync, Copy, Debug);
assert_impl_all!(KeyedMetrics: Send, Sync, Copy, Debug);
assert_impl_all!(NamedMetrics: Send, Sync, Copy, Debug);
assert_impl_all!(RateLimitError: Send, Sync, std::error::Error);
assert_impl_all!(NamedError: Send, Sync, std::error::Error);
assert_impl_all!(TooManyAttempts: Send, Sync, std::error::Error);
assert_impl_all!(DequeueError: Send, Sync, std::error::Error);
assert_impl_all!(Full<String>: Send, Sync, std::error::Error);
assert_impl_all!(TokioClock: Send, Sync, Copy, Debug);

#[cfg(feature = "tower")]
mod tower_types {
    use std::convert::Infallible;
    use std::sync::Arc;

    use conc_ratelimit::rate_limit::future::ResponseFuture;
    use conc_ratelimit::{Gcra, Keyed, Mode, RateLimit, RateLimitLayer};
    use static_assertions::assert_impl_all;
    use tower::util::ServiceFn;

    type Inner = ServiceFn<fn(u64) -> std::future::Ready<Result<u64, Infallible>>>;
    type Extract = fn(&u64) -> u64;

    assert_impl_all!(RateLimitLayer<Keyed<u64>, Extract>: Send, Sync, Clone, std::fmt::Debug);
    assert_impl_all!(RateLimitLayer<Gcra, fn(&u64)>: Send, Sync, Clone);
    assert_impl_all!(RateLimit<Inner, Keyed<u64>, Extract>: Send, Sync, Clone, std::fmt::Debug);
    assert_impl_all!(ResponseFuture<Inner, u64, Keyed<u64>>: Send, Sync, std::fmt::Debug);
    assert_impl_all!(ResponseFuture<Inner, u64, Gcra>: Send, Sync);
    assert_impl_all!(Mode: Send, Sync, Copy);
    assert_impl_all!(Arc<Keyed<u64>>: Send, Sync);
}

#[cfg(feature = "redis")]
assert_impl_all!(conc_ratelimit::RedisLimiter: Send, Sync, Clone, Debug, MetricsSource);
#[cfg(feature = "redis")]
assert_impl_all!(conc_ratelimit::RedisLimiterBuilder: Send, Sync, Clone, Debug);
#[cfg(feature = "redis")]
assert_impl_all!(conc_ratelimit::RedisSetupError: Send, Sync, std::error::Error);

fn send<T: Send>(value: T) -> T {
    value
}

/// Never run: it only has to compile. Each async method's future is `Send`.
#[allow(clippy::let_underscore_future, reason = "compile-time checks only")]
fn futures_are_send<L: Limiter>(
    limiter: &L,
    key: &L::Key,
    gcra: &Gcra,
    keyed: &Keyed<String>,
    bucket: &LeakyBucket<String>,
) {
    let _ = send(limiter.acquire(key, 1));
    let _ = send(gcra.acquire(1));
    let _ = send(keyed.acquire(&String::new(), 1));
    let _ = send(bucket.enqueue(String::new()));
    let _ = send(bucket.dequeue());
    let _ = send(Limiter::acquire(bucket, &(), 1));
}

fn is_future<F: Future>(_: &F) {}

#[test]
fn the_checks_compile() {
    // The assertions above are checked at compile time.
    let _ = futures_are_send::<Gcra>;
    is_future(&async {});
}
