//! The leaky bucket queue: bounded, items handed back when full, output paced
//! exactly, waits cancellation-safe.

use std::future::Future;
use std::pin::pin;
use std::task::Context;
use std::time::Duration;

use conc_core::time::ManualClock;
use conc_ratelimit::{DequeueError, Full, LeakyBucket, TokioClock};

fn bucket(
    capacity: usize,
    interval_ms: u64,
    burst: u32,
) -> (LeakyBucket<u32, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let bucket = LeakyBucket::builder()
        .capacity(capacity)
        .interval(Duration::from_millis(interval_ms))
        .burst(burst)
        .clock(clock.clone())
        .build()
        .unwrap();
    (bucket, clock)
}

#[test]
fn a_full_queue_hands_the_item_back() {
    let (bucket, _) = bucket(2, 100, 1);
    assert_eq!(bucket.try_enqueue(1), Ok(()));
    assert_eq!(bucket.try_enqueue(2), Ok(()));
    assert_eq!(bucket.try_enqueue(3), Err(Full { item: 3, capacity: 2 }));
    assert_eq!(bucket.len(), 2);
    assert_eq!(bucket.remaining(), 0);
    assert_eq!(Full { item: 3, capacity: 2 }.to_string(), "leaky bucket is full (2 items waiting)");
}

#[test]
fn items_leave_exactly_one_per_interval() {
    let (bucket, clock) = bucket(10, 100, 1);
    assert_eq!(bucket.try_dequeue(), Err(DequeueError::Empty));
    for n in 0..3 {
        bucket.try_enqueue(n).unwrap();
    }
    assert_eq!(bucket.try_dequeue(), Ok(0));
    assert_eq!(
        bucket.try_dequeue(),
        Err(DequeueError::NotYet { retry_after: Duration::from_millis(100) })
    );
    assert_eq!(bucket.retry_after(), Duration::from_millis(100));
    clock.advance(Duration::from_millis(100) - Duration::from_nanos(1));
    assert!(matches!(bucket.try_dequeue(), Err(DequeueError::NotYet { .. })));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(bucket.try_dequeue(), Ok(1));
    assert_eq!(bucket.len(), 1, "a refused dequeue takes nothing");
}

#[test]
fn burst_lets_several_leave_after_idle_and_batches_take_what_may_leave() {
    let (bucket, clock) = bucket(10, 50, 3);
    for n in 0..8 {
        bucket.try_enqueue(n).unwrap();
    }
    assert_eq!(bucket.try_dequeue_batch(0), Vec::<u32>::new());
    assert_eq!(bucket.try_dequeue_batch(10), vec![0, 1, 2]);
    assert_eq!(bucket.try_dequeue_batch(10), Vec::<u32>::new());
    clock.advance(Duration::from_millis(100));
    assert_eq!(bucket.try_dequeue_batch(10), vec![3, 4]);
    bucket.reset();
    assert_eq!(bucket.try_dequeue_batch(1), vec![5]);
    assert_eq!(bucket.clear(), vec![6, 7]);
    assert!(bucket.is_empty());
    assert_eq!(bucket.capacity(), 10);
    assert!(format!("{bucket:?}").contains("LeakyBucket"));
}

#[test]
fn invalid_settings_are_typed_errors() {
    let err = LeakyBucket::<()>::builder().capacity(0).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid `capacity` 0: must be at least 1");
    let err = LeakyBucket::<()>::builder().burst(0).build().unwrap_err();
    assert_eq!(err.field, "burst");
    let err = LeakyBucket::<()>::builder().interval(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid `interval` 0ns: must be longer than zero");
    let err = LeakyBucket::<()>::builder().interval(Duration::MAX).build().unwrap_err();
    assert_eq!(err.field, "interval");
    let err = LeakyBucket::<()>::builder()
        .interval(Duration::from_secs(86_400))
        .burst(u32::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "burst");
}

#[tokio::test(start_paused = true)]
async fn dequeue_paces_and_waits_for_arrivals() {
    let bucket: LeakyBucket<u32, TokioClock> = LeakyBucket::builder()
        .capacity(4)
        .interval(Duration::from_millis(250))
        .clock(TokioClock)
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let (got, ()) = tokio::join!(
        async {
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push((bucket.dequeue().await, started.elapsed()));
            }
            got
        },
        async {
            for n in 0..4 {
                bucket.enqueue(n).await;
            }
        }
    );
    let expected: Vec<_> = (0..4).map(|n| (n, Duration::from_millis(250 * u64::from(n)))).collect();
    assert_eq!(got, expected);
}

#[tokio::test(start_paused = true)]
async fn enqueue_waits_for_room() {
    let bucket: LeakyBucket<u32, TokioClock> = LeakyBucket::builder()
        .capacity(1)
        .interval(Duration::from_secs(1))
        .clock(TokioClock)
        .build()
        .unwrap();
    bucket.enqueue(1).await;
    let mut second = pin!(bucket.enqueue(2));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(bucket.try_dequeue(), Ok(1));
    assert!(second.as_mut().poll(&mut cx).is_ready());
    assert_eq!(bucket.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_dequeue_takes_nothing() {
    let bucket: LeakyBucket<u32, TokioClock> = LeakyBucket::builder()
        .capacity(4)
        .interval(Duration::from_secs(1))
        .clock(TokioClock)
        .build()
        .unwrap();
    bucket.try_enqueue(1).unwrap();
    bucket.try_enqueue(2).unwrap();
    assert_eq!(bucket.dequeue().await, 1);
    // The second item may leave only in a second; give up after half.
    assert!(tokio::time::timeout(Duration::from_millis(500), bucket.dequeue()).await.is_err());
    assert_eq!(bucket.len(), 1);
    assert_eq!(bucket.dequeue().await, 2);
}

static_assertions::assert_impl_all!(LeakyBucket<String>: Send, Sync);
