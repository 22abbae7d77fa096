//! `metrics()` snapshots of the direct limiters: allowed and rejected calls
//! (exact, also across threads on the striped counters), the waiting gauge
//! while an `acquire` (or a `LeakyBucket::enqueue`) is pending, released on
//! completion and on cancellation without consuming anything, and the same
//! counts on the `metrics` facade.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use conc_core::metrics::{
    MetricValue, MetricsSnapshot, MetricsSource, RATELIMIT_PERMITTED, RATELIMIT_REJECTED,
    RATELIMIT_WAITING,
};
use conc_core::time::ManualClock;
use conc_ratelimit::{
    Gcra, LeakyBucket, LimiterMetrics, Quota, RateLimitError, SlidingLog, SlidingWindow,
    TokenBucket, TokioClock,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A limiter's `try_acquire` and `metrics`, for checks that loop over kinds.
type Check<'a> =
    (&'a str, &'a dyn Fn(u32) -> Result<(), RateLimitError>, &'a dyn Fn() -> LimiterMetrics);

fn counts(metrics: LimiterMetrics) -> (u64, u64, u64) {
    (metrics.allowed, metrics.rejected, metrics.waiting)
}

/// Polls `future` once; true when it is still pending.
async fn still_pending<F: Future>(future: &mut Pin<Box<F>>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_pending())).await
}

#[test]
fn each_limiter_counts_allowed_and_rejected_calls() {
    let clock = ManualClock::new();
    let gcra = Gcra::builder(Quota::per_second(2).unwrap()).clock(clock.clone()).build();
    let bucket = TokenBucket::builder()
        .capacity(2)
        .refill(2)
        .interval(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let window =
        SlidingWindow::builder(2, Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    let log = SlidingLog::builder(2, Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    let checks: [Check<'_>; 4] = [
        ("gcra", &|n| gcra.try_acquire(n), &|| gcra.metrics()),
        ("token bucket", &|n| bucket.try_acquire(n), &|| bucket.metrics()),
        ("sliding window", &|n| window.try_acquire(n), &|| window.metrics()),
        ("sliding log", &|n| log.try_acquire(n), &|| log.metrics()),
    ];
    for (name, try_acquire, metrics) in checks {
        assert_eq!(counts(metrics()), (0, 0, 0), "{name}");
        assert_eq!(try_acquire(1), Ok(()), "{name}");
        assert_eq!(try_acquire(1), Ok(()), "{name}");
        assert!(try_acquire(1).is_err(), "{name}");
        // More than the limit ever allows is refused too.
        assert!(matches!(try_acquire(3), Err(RateLimitError::ExceedsCapacity { .. })), "{name}");
        assert_eq!(counts(metrics()), (2, 2, 0), "{name}: calls, not units");
    }
    // Batches count one call each.
    clock.advance(Duration::from_secs(5));
    assert_eq!(gcra.try_acquire_batch(5), Ok(2));
    assert!(gcra.try_acquire_batch(1).is_err());
    assert_eq!(counts(gcra.metrics()), (3, 3, 0));
    // Decisions count as well.
    clock.advance(Duration::from_secs(5));
    assert!(gcra.decide("api", 2).unwrap().allowed());
    assert!(!gcra.decide("api", 1).unwrap().allowed());
    assert_eq!(counts(gcra.metrics()), (4, 4, 0));
}

#[test]
fn leaky_bucket_counts_enqueues_and_full_refusals() {
    let bucket = LeakyBucket::builder()
        .capacity(2)
        .interval(Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    bucket.try_enqueue(1).unwrap();
    bucket.try_enqueue(2).unwrap();
    assert_eq!(bucket.try_enqueue(3).unwrap_err().item, 3);
    assert_eq!(counts(bucket.metrics()), (2, 1, 0));
    // Dequeues are not enqueues: the counts stay.
    assert_eq!(bucket.try_dequeue(), Ok(1));
    assert_eq!(counts(bucket.metrics()), (2, 1, 0));
}

#[test]
fn striped_counters_lose_no_increment_across_threads() {
    // A burst of exactly 40 000 on a clock that stands still.
    let gcra = Gcra::builder(Quota::per_minute(40_000).unwrap()).clock(ManualClock::new()).build();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10_000 {
                    gcra.try_acquire(1).unwrap();
                }
            });
        }
    });
    assert_eq!(counts(gcra.metrics()), (40_000, 0, 0));
    assert!(gcra.try_acquire(1).is_err());
    assert_eq!(counts(gcra.metrics()), (40_000, 1, 0));
}

/// Runs the waiting checks for a limiter with a burst of one unit on tokio's
/// paused clock, one unit every second.
async fn waiting_gauge_follows_acquire<F: Future<Output = Result<(), RateLimitError>>>(
    name: &str,
    try_acquire: impl Fn() -> Result<(), RateLimitError>,
    acquire: impl Fn() -> F,
    metrics: impl Fn() -> LimiterMetrics,
) {
    assert_eq!(try_acquire(), Ok(()), "{name}");
    // A pending wait counts as waiting, not as rejected.
    let mut first = Box::pin(acquire());
    let mut second = Box::pin(acquire());
    assert!(still_pending(&mut first).await, "{name}");
    assert!(still_pending(&mut second).await, "{name}");
    assert_eq!(counts(metrics()), (1, 0, 2), "{name}: two waiting");
    // Cancelling one stops counting it and takes nothing.
    drop(second);
    assert_eq!(counts(metrics()), (1, 0, 1), "{name}: the cancelled wait is gone");
    // The other completes once its unit is back, and counts as allowed.
    first.await.unwrap();
    assert_eq!(counts(metrics()), (2, 0, 0), "{name}");
    // The cancelled wait consumed nothing: after one more unit of time the
    // next unit is there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(try_acquire(), Ok(()), "{name}");
    assert_eq!(counts(metrics()), (3, 0, 0), "{name}");
}

#[tokio::test(start_paused = true)]
async fn waiting_is_counted_while_acquire_is_pending_and_released_on_drop() {
    let gcra = Gcra::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build();
    waiting_gauge_follows_acquire(
        "gcra",
        || gcra.try_acquire(1),
        || gcra.acquire(1),
        || gcra.metrics(),
    )
    .await;
    let bucket = TokenBucket::builder()
        .capacity(1)
        .refill(1)
        .interval(Duration::from_secs(1))
        .clock(TokioClock)
        .build()
        .unwrap();
    waiting_gauge_follows_acquire(
        "token bucket",
        || bucket.try_acquire(1),
        || bucket.acquire(1),
        || bucket.metrics(),
    )
    .await;
    let window = SlidingLog::builder(1, Duration::from_secs(1)).clock(TokioClock).build().unwrap();
    waiting_gauge_follows_acquire(
        "sliding log",
        || window.try_acquire(1),
        || window.acquire(1),
        || window.metrics(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_impossible_acquire_is_rejected_without_waiting() {
    let window =
        SlidingWindow::builder(2, Duration::from_secs(1)).clock(TokioClock).build().unwrap();
    assert_eq!(
        window.acquire(3).await,
        Err(RateLimitError::ExceedsCapacity { requested: 3, capacity: 2 })
    );
    assert_eq!(counts(window.metrics()), (0, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn leaky_bucket_enqueue_waits_for_room_as_waiting() {
    let bucket =
        LeakyBucket::builder().capacity(1).interval(Duration::from_secs(1)).build().unwrap();
    bucket.try_enqueue("a").unwrap();
    let mut blocked = Box::pin(bucket.enqueue("b"));
    let mut cancelled = Box::pin(bucket.enqueue("c"));
    assert!(still_pending(&mut blocked).await);
    assert!(still_pending(&mut cancelled).await);
    assert_eq!(counts(bucket.metrics()), (1, 0, 2));
    drop(cancelled);
    assert_eq!(counts(bucket.metrics()), (1, 0, 1));
    assert_eq!(bucket.dequeue().await, "a");
    blocked.await;
    assert_eq!(counts(bucket.metrics()), (2, 0, 0));
    assert_eq!(bucket.dequeue().await, "b", "the cancelled item was never queued");
    assert!(bucket.is_empty());
}

#[test]
fn snapshots_name_their_metrics_and_reset_keeps_the_gauge() {
    let gcra = Gcra::builder(Quota::per_second(1).unwrap()).clock(ManualClock::new()).build();
    gcra.try_acquire(1).unwrap();
    gcra.try_acquire(1).unwrap_err();
    let entries = MetricsSource::metrics(&gcra).entries();
    let names: Vec<_> = entries.iter().map(|entry| entry.name).collect();
    assert_eq!(names, [RATELIMIT_PERMITTED, RATELIMIT_REJECTED, RATELIMIT_WAITING]);
    assert_eq!(entries[0].value, MetricValue::Count(1));
    assert_eq!(entries[1].value, MetricValue::Count(1));
    gcra.reset_metrics();
    assert_eq!(counts(gcra.metrics()), (0, 0, 0));
}

#[test]
fn the_facade_gets_refusals_and_the_waiting_gauge() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let value = |name: &str| {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(key, ..)| key.key().name() == name)
            .map(|(.., value)| value)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _entered = runtime.enter();
    metrics::with_local_recorder(&recorder, || {
        let gcra = Gcra::builder(Quota::per_second(1).unwrap()).clock(TokioClock).build();
        gcra.try_acquire(1).unwrap();
        gcra.try_acquire(1).unwrap_err();
        assert!(matches!(value(RATELIMIT_REJECTED), Some(DebugValue::Counter(1))));
        let mut waiter = Box::pin(gcra.acquire(1));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        let gauge = |value: Option<DebugValue>| match value {
            // Whole numbers, exact in an `f64`.
            Some(DebugValue::Gauge(g)) => g.0 as i64,
            other => panic!("expected the waiting gauge, got {other:?}"),
        };
        // The debugging recorder zeroes what it reports, so each snapshot is
        // the change since the previous one.
        assert_eq!(gauge(value(RATELIMIT_WAITING)), 1, "one caller started waiting");
        drop(waiter);
        assert_eq!(gauge(value(RATELIMIT_WAITING)), -1, "the cancelled caller stopped");
    });
}
