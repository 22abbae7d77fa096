//! "A dropped wait consumes nothing", for every limiter with an `acquire`:
//! a waiter is polled until it waits, dropped, and then the capacity it was
//! waiting for is all there, untouched, when its time comes.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;

use conc_ratelimit::{
    Gcra, Keyed, LeakyBucket, Limiter, Quota, SlidingLog, SlidingWindow, TokenBucket, TokioClock,
};

/// Polls `future` once; true when it is pending (waiting).
fn pending<F: Future>(future: F) -> bool {
    let mut future = pin!(future);
    future.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending()
}

/// Exhausts `limiter` for `key`, drops a waiter for `n` units, waits out the
/// refill, and checks that all of it is still there.
async fn check<L: Limiter>(name: &str, limiter: &L, key: &L::Key, n: u32) {
    while limiter.try_acquire(key, 1).is_ok() {}
    let wait = limiter.retry_after(key, n).unwrap();
    assert!(wait > Duration::ZERO, "{name}: exhausted");
    assert!(pending(limiter.acquire(key, n)), "{name}: the waiter waits");
    // When the dropped waiter's units come, they are all there: it reserved
    // nothing (a reservation would have taken them by now).
    tokio::time::advance(wait).await;
    assert!(limiter.remaining(key) >= n, "{name}: the dropped waiter took nothing");
    assert_eq!(limiter.try_acquire(key, n), Ok(()), "{name}");
    // And a waiter that is not dropped gets what it asked for.
    while limiter.try_acquire(key, 1).is_ok() {}
    let started = tokio::time::Instant::now();
    limiter.acquire(key, n).await.unwrap();
    assert!(started.elapsed() > Duration::ZERO, "{name}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_consumes_nothing() {
    let quota = Quota::per_second(4).unwrap();
    let second = Duration::from_secs(1);
    check("gcra", &Gcra::builder(quota).clock(TokioClock).build(), &(), 2).await;
    check("keyed", &Keyed::builder(quota).clock(TokioClock).build(), &"user", 2).await;
    let bucket =
        TokenBucket::builder().capacity(4).refill(4).interval(second).clock(TokioClock).build();
    check("token bucket", &bucket.unwrap(), &(), 2).await;
    check(
        "sliding window",
        &SlidingWindow::builder(4, second).clock(TokioClock).build().unwrap(),
        &(),
        2,
    )
    .await;
    check(
        "sliding log",
        &SlidingLog::builder(4, second).clock(TokioClock).build().unwrap(),
        &(),
        2,
    )
    .await;
    let leaky = LeakyBucket::<()>::builder()
        .interval(Duration::from_millis(250))
        .burst(4)
        .clock(TokioClock)
        .build()
        .unwrap();
    check("leaky bucket", &leaky, &(), 2).await;
}
