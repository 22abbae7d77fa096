//! Helpers the behaviour tests share.
#![allow(dead_code, reason = "each test binary uses some of the helpers")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_resilience::{Bulkhead, CircuitBreaker, LoadShedder, Retry, Stack};

/// A bulkhead of `max` slots with a queue of `queue` callers waiting at most `wait`.
pub(crate) fn queued(max: u32, queue: u32, wait: Duration) -> Bulkhead {
    Bulkhead::builder().max_concurrent(max).max_queued(queue).max_wait(wait).build().unwrap()
}

/// A retry of `attempts` attempts, 100 ms apart.
pub(crate) fn retry(attempts: u32) -> Retry {
    Retry::builder()
        .backoff(Backoff::fixed(Duration::from_millis(100)).build().unwrap())
        .max_attempts(attempts)
        .build()
        .unwrap()
}

/// Runs an operation that always fails through `retry`; returns how often it was called.
pub(crate) async fn calls_of_a_failing_run(retry: &Retry) -> u32 {
    let calls = AtomicU32::new(0);
    let _: Result<(), ()> = retry
        .run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(()) }
        })
        .await;
    calls.into_inner()
}

/// A stack admitting each run through `shedder` (one unit), `breaker` and `bulkhead`.
pub(crate) fn guarded(
    shedder: &LoadShedder,
    breaker: &CircuitBreaker,
    bulkhead: &Bulkhead,
) -> Stack {
    Stack::builder()
        .load_shedder(shedder.clone(), 1)
        .circuit_breaker(breaker.clone())
        .bulkhead(bulkhead.clone())
        .build()
}
