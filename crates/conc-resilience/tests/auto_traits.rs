//! Every public handle, guard, service and response future is `Send` and
//! `Sync` (so it can live in a spawned task and be shared), and the errors
//! are cheap `Send + Sync` values.

use std::future::Ready;

use conc_resilience::{
    Attempt, BreakerError, BreakerMetrics, Bulkhead, BulkheadError, BulkheadMetrics,
    BulkheadPermit, CircuitBreaker, CircuitBreakerBuilder, Elapsed, ErrIsFailure, Fallback,
    LoadPermit, LoadShedder, LoadShedderBuilder, NotReady, OwnedPermit, Permit, Refused, Rejected,
    ResilienceError, Retry, RetryBudget, RetryBudgetBuilder, RetryBudgetMetrics, RetryBuilder,
    RetryMetrics, Shed, ShedMetrics, Stack, StackBuilder, Timeout,
};
use static_assertions::assert_impl_all;

// Handles: shared by clones, used from many tasks.
assert_impl_all!(CircuitBreaker: Send, Sync, Clone);
assert_impl_all!(Bulkhead: Send, Sync, Clone);
assert_impl_all!(Retry: Send, Sync, Clone);
assert_impl_all!(RetryBudget: Send, Sync, Clone);
assert_impl_all!(Timeout: Send, Sync, Clone);
assert_impl_all!(LoadShedder: Send, Sync, Clone);
assert_impl_all!(Fallback<u32, std::io::Error>: Send, Sync, Clone);
assert_impl_all!(Stack: Send, Sync, Clone);

// Builders.
assert_impl_all!(CircuitBreakerBuilder: Send, Sync);
assert_impl_all!(conc_resilience::BulkheadBuilder: Send, Sync);
assert_impl_all!(RetryBuilder: Send, Sync);
assert_impl_all!(RetryBudgetBuilder: Send, Sync);
assert_impl_all!(LoadShedderBuilder: Send, Sync);
assert_impl_all!(StackBuilder: Send, Sync);

// Guards: held across awaits.
assert_impl_all!(Permit<'static>: Send, Sync);
assert_impl_all!(OwnedPermit: Send, Sync);
assert_impl_all!(BulkheadPermit: Send, Sync);
assert_impl_all!(LoadPermit: Send, Sync);

// Errors and reports.
assert_impl_all!(Rejected: Send, Sync, Copy, std::error::Error);
assert_impl_all!(BreakerError<std::io::Error>: Send, Sync, std::error::Error);
assert_impl_all!(BulkheadError: Send, Sync, Copy, std::error::Error);
assert_impl_all!(Refused<Ready<u32>>: Send, Sync, std::error::Error);
assert_impl_all!(Elapsed: Send, Sync, Copy, std::error::Error);
assert_impl_all!(Shed: Send, Sync, Copy, std::error::Error);
assert_impl_all!(NotReady: Send, Sync, Copy, std::error::Error);
assert_impl_all!(ResilienceError<std::io::Error>: Send, Sync, std::error::Error);
assert_impl_all!(BreakerMetrics: Send, Sync, Copy);
assert_impl_all!(BulkheadMetrics: Send, Sync, Copy);
assert_impl_all!(RetryMetrics: Send, Sync, Copy);
assert_impl_all!(RetryBudgetMetrics: Send, Sync, Copy);
assert_impl_all!(ShedMetrics: Send, Sync, Copy);
assert_impl_all!(Attempt: Send, Sync, Copy);
assert_impl_all!(ErrIsFailure: Send, Sync, Copy);

/// The tower services and their response futures, over a `Send + Sync` inner service.
#[cfg(feature = "tower")]
mod tower_types {
    use conc_core::BoxError;
    use conc_resilience::{
        Bulkhead, CircuitBreaker, CircuitBreakerLayer, Fallback, LoadShedder, Retry, Timeout,
        breaker, bulkhead, fallback, retry, shed, timeout,
    };
    use static_assertions::assert_impl_all;
    use tower_test::mock::Mock;

    type Inner = Mock<&'static str, &'static str>;
    type InnerFuture = tower_test::mock::future::ResponseFuture<&'static str>;

    assert_impl_all!(CircuitBreakerLayer: Send, Sync, Clone);
    assert_impl_all!(conc_resilience::BulkheadLayer: Send, Sync, Clone);
    assert_impl_all!(conc_resilience::RetryLayer: Send, Sync, Clone);
    assert_impl_all!(conc_resilience::TimeoutLayer: Send, Sync, Clone);
    assert_impl_all!(conc_resilience::LoadShedderLayer: Send, Sync, Clone);
    assert_impl_all!(conc_resilience::FallbackLayer<&'static str>: Send, Sync, Clone);

    assert_impl_all!(CircuitBreaker<Inner>: Send, Sync, Clone);
    assert_impl_all!(Bulkhead<Inner>: Send, Sync, Clone);
    assert_impl_all!(Retry<Inner>: Send, Sync, Clone);
    assert_impl_all!(Timeout<Inner>: Send, Sync, Clone);
    assert_impl_all!(LoadShedder<Inner>: Send, Sync, Clone);
    assert_impl_all!(Fallback<&'static str, BoxError, Inner>: Send, Sync, Clone);

    assert_impl_all!(breaker::future::ResponseFuture<InnerFuture, conc_resilience::ErrIsFailure>: Send, Sync);
    assert_impl_all!(bulkhead::future::ResponseFuture<Inner, &'static str>: Send, Sync);
    assert_impl_all!(retry::future::ResponseFuture<Inner, &'static str>: Send, Sync);
    assert_impl_all!(timeout::future::ResponseFuture<InnerFuture>: Send, Sync);
    assert_impl_all!(shed::future::ResponseFuture<InnerFuture>: Send, Sync);
    assert_impl_all!(fallback::future::ResponseFuture<InnerFuture, &'static str>: Send, Sync);
}
