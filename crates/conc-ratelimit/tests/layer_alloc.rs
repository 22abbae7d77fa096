//! "No allocation per admitted call": a call through `RateLimit` that is
//! admitted (over a keyed or a direct limiter) allocates nothing; a refused
//! one allocates exactly once, the `BoxError` tower's error type needs.
//! Measured with a counting allocator.

#[path = "support/counting.rs"]
mod counting;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use conc_core::time::ManualClock;
use conc_ratelimit::{Gcra, Keyed, Quota, RateLimitLayer};
use tower::{Layer, Service, service_fn};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Calls `service` once and polls the response to completion.
fn call<S: Service<u64>>(service: &mut S, request: u64) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(result) => result.is_ok(),
        Poll::Pending => panic!("a reject-mode call answers at once"),
    }
}

#[test]
fn a_call_allocates_nothing() {
    let answer = service_fn(|n: u64| async move { Ok::<_, std::convert::Infallible>(n) });
    let clock = ManualClock::new();
    // 10 per second per key: the first 10 calls of a key pass, the rest are refused.
    let keyed =
        Arc::new(Keyed::builder(Quota::per_second(10).unwrap()).clock(clock.clone()).build());
    let mut per_key = RateLimitLayer::new(keyed, |n: &u64| *n % 4).layer(answer);
    let direct =
        Arc::new(Gcra::builder(Quota::per_second(10).unwrap()).clock(clock.clone()).build());
    let mut global = RateLimitLayer::new(direct, |_: &u64| ()).layer(answer);
    // The keys exist before counting (a new key is one insertion).
    for key in 0..4 {
        assert!(call(&mut per_key, key));
    }

    let (mut admitted, mut refused) = (0, 0);
    for n in 0..1_000 {
        for service in [0, 1] {
            let before = counting::allocations();
            let ok = if service == 0 { call(&mut per_key, n) } else { call(&mut global, n) };
            let allocated = counting::allocations() - before;
            if ok {
                admitted += 1;
                assert_eq!(allocated, 0, "an admitted call allocated");
            } else {
                refused += 1;
                assert_eq!(allocated, 1, "a refused call allocates its boxed error only");
            }
        }
        if n % 100 == 0 {
            clock.advance(std::time::Duration::from_secs(1));
        }
    }
    assert!(admitted > 100 && refused > 0, "{admitted} admitted, {refused} refused");
}
