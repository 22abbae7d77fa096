//! The bulkhead: limits, the bounded queue, waits on tokio's paused clock,
//! and cancellation never leaking a slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_resilience::{Bulkhead, BulkheadError};

mod support;

fn queued(max: u32, queue: u32, wait_ms: u64) -> Bulkhead {
    support::queued(max, queue, Duration::from_millis(wait_ms))
}

#[test]
fn try_acquire_never_exceeds_the_limit() {
    let bulkhead = Bulkhead::builder().max_concurrent(3).build().unwrap();
    let permits: Vec<_> = (0..3).map(|_| bulkhead.try_acquire().unwrap()).collect();
    assert_eq!(
        bulkhead.try_acquire().unwrap_err(),
        BulkheadError::Full { max_concurrent: 3, queued: 0 }
    );
    let snapshot = bulkhead.metrics();
    assert_eq!((snapshot.available, snapshot.in_flight, snapshot.rejected), (0, 3, 1));
    drop(permits);
    assert_eq!(bulkhead.metrics().available, 3);
}

#[tokio::test(start_paused = true)]
async fn queued_caller_gets_the_freed_slot_in_order() {
    let bulkhead = queued(1, 2, 1_000);
    let held = bulkhead.try_acquire().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..2 {
        let bulkhead = bulkhead.clone();
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let permit = bulkhead.acquire().await.unwrap();
            order.lock().unwrap().push(id);
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(permit);
        }));
        tokio::task::yield_now().await;
    }
    assert_eq!(bulkhead.metrics().queued, 2);
    // The queue is full: a third waiter is refused at once.
    assert!(matches!(bulkhead.acquire().await, Err(BulkheadError::Full { queued: 2, .. })));
    // No barging past the queue either.
    drop(held);
    assert!(bulkhead.try_acquire().is_err());
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1]);
    assert_eq!(bulkhead.metrics().available, 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_ends_after_max_wait() {
    let bulkhead = queued(1, 4, 100);
    let _held = bulkhead.try_acquire().unwrap();
    let started = tokio::time::Instant::now();
    let result = bulkhead.acquire().await;
    assert_eq!(result.unwrap_err(), BulkheadError::Timeout { waited: Duration::from_millis(100) });
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(bulkhead.metrics().queued, 0, "the timed-out waiter left the queue");
}

#[tokio::test(start_paused = true)]
async fn cancelled_calls_and_waiters_give_every_slot_back() {
    let bulkhead = queued(2, 8, 10_000);
    let running = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let bulkhead = bulkhead.clone();
        let running = Arc::clone(&running);
        tasks.push(tokio::spawn(async move {
            bulkhead
                .call(async {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2);
                    std::future::pending::<()>().await;
                })
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let snapshot = bulkhead.metrics();
    assert_eq!((snapshot.in_flight, snapshot.queued), (2, 6));
    // Cancel everything mid-flight: running calls and queued waiters alike.
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    let snapshot = bulkhead.metrics();
    assert_eq!((snapshot.available, snapshot.queued), (2, 0));
    let _a = bulkhead.try_acquire().unwrap();
    let _b = bulkhead.try_acquire().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_after_being_granted_passes_the_slot_on() {
    let bulkhead = queued(1, 4, 10_000);
    let held = bulkhead.try_acquire().unwrap();
    let mut first = Box::pin(bulkhead.acquire());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let second = tokio::spawn({
        let bulkhead = bulkhead.clone();
        async move { bulkhead.acquire().await.map(drop) }
    });
    tokio::task::yield_now().await;
    // The slot goes to `first`, which is dropped without ever being polled again.
    drop(held);
    drop(first);
    second.await.unwrap().unwrap();
    assert_eq!(bulkhead.metrics().available, 1);
}

use std::future::Future as _;

#[tokio::test]
async fn try_call_hands_the_work_back() {
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    let refused = bulkhead.try_call(async { 5 }).await.unwrap_err();
    assert_eq!(refused.error, BulkheadError::Full { max_concurrent: 1, queued: 0 });
    assert_eq!(refused.work.await, 5);
}

#[test]
fn builder_validates() {
    assert_eq!(
        Bulkhead::builder().max_concurrent(0).build().unwrap_err().to_string(),
        "invalid `max_concurrent` 0: must be at least 1"
    );
    assert_eq!(
        Bulkhead::builder().max_concurrent(u32::MAX).build().unwrap_err().to_string(),
        "invalid `max_concurrent` 4294967295: must be at most 2147483647"
    );
    assert_eq!(
        Bulkhead::builder().max_queued(3).build().unwrap_err().to_string(),
        "invalid `max_wait` 0ns: must be longer than zero when max_queued is above 0"
    );
}

#[test]
fn threads_never_exceed_the_limit() {
    let bulkhead = Bulkhead::builder().max_concurrent(2).build().unwrap();
    let holding = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10_000 {
                    if let Ok(permit) = bulkhead.try_acquire() {
                        assert!(holding.fetch_add(1, Ordering::SeqCst) < 2);
                        holding.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                }
            });
        }
    });
    assert_eq!(bulkhead.metrics().available, 2);
}
