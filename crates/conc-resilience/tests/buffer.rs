//! No admission outlives the request it was taken for, even behind a
//! `tower::buffer::Buffer`, whose worker readies its service for a request
//! and, when that request is cancelled while it waits, keeps the readied
//! service idle until the next request arrives.

use std::time::Duration;

use conc_core::time::ManualClock;
use conc_resilience::{BreakerState, Bulkhead, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer};
use tower::buffer::Buffer;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

/// Lets the buffer's worker task run until it has nothing left to do.
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// A breaker allowing one half-open probe over a one-slot bulkhead, behind a
/// buffer. One request goes in while the service below is not ready, and is
/// cancelled: the probe and the slot must be free for everyone else at once,
/// though the buffer stays idle (before, both stayed parked in the buffer's
/// service and every other caller was refused: a wedge).
#[tokio::test]
async fn a_cancelled_request_in_a_buffer_parks_no_probe_and_no_slot() {
    let breaker = CircuitBreaker::builder()
        .permitted_calls_in_half_open(1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    breaker.transition_to_half_open();
    let bulkhead = Bulkhead::builder().max_concurrent(1).build().unwrap();
    let (inner, mut handle) = mock::pair::<&'static str, &'static str>();
    handle.allow(0);
    let stack = CircuitBreakerLayer::new(breaker.clone())
        .layer(BulkheadLayer::new(bulkhead.clone()).layer(inner));
    let mut buffer = Buffer::new(stack, 8);

    let waiting = buffer.ready().await.unwrap().call("cancelled");
    settle().await;
    // The worker readied the stack for the request; the service below is not ready.
    drop(waiting);
    settle().await;

    let probe = breaker.try_acquire().expect("the probe is not parked in the idle buffer");
    let slot = bulkhead.try_acquire().expect("the slot is not parked in the idle buffer");
    drop((probe, slot));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);

    // The buffer still serves: the next request takes the probe and closes the breaker.
    handle.allow(1);
    let response = buffer.ready().await.unwrap().call("next");
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "next");
    send.send_response("ok");
    assert_eq!(response.await.unwrap(), "ok");
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(bulkhead.metrics().available, 1);
}

/// The same with a bulkhead that queues: a request waiting for a slot in the
/// buffer and then cancelled leaves nothing behind either.
#[tokio::test(start_paused = true)]
async fn a_cancelled_request_waiting_for_a_slot_in_a_buffer_leaves_the_queue() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent(1)
        .max_queued(4)
        .max_wait(Duration::from_secs(60))
        .build()
        .unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let (inner, mut handle) = mock::pair::<&'static str, &'static str>();
    handle.allow(1);
    let mut buffer = Buffer::new(BulkheadLayer::new(bulkhead.clone()).layer(inner), 8);

    let waiting = tokio::spawn(buffer.ready().await.unwrap().call("cancelled"));
    settle().await;
    assert_eq!(bulkhead.metrics().queued, 1, "the request waits for a slot");
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    settle().await;
    assert_eq!(bulkhead.metrics().queued, 0, "the cancelled request left the queue");
    drop(held);
    settle().await;
    assert_eq!(bulkhead.metrics().available, 1, "the freed slot went to nobody");
    let _slot = bulkhead.try_acquire().expect("free");
}
