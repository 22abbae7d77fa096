//! An always-ready input or retry must not keep the runtime from its other
//! work (timers above all) on a current-thread runtime: the fan-in and the
//! fan-out's retries take part in tokio's cooperative budget, so they give
//! the runtime a turn after a bounded run.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_fan::{FanIn, FanOut, Recovery};
use futures::{Stream, StreamExt};

/// An input that gives `tag` after each 1 ms `tokio::time` sleep.
fn slow(tag: u32) -> impl Stream<Item = u32> + Send {
    futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Some((tag, ()))
    })
}

/// Before: with `#[tokio::test]`'s current-thread runtime the slow inputs
/// delivered nothing in 2,000,000 merged items (`poll_next` never returned
/// `Pending`, so the timer driver never ran).
#[tokio::test]
async fn timer_woken_inputs_are_served_beside_an_always_ready_one() {
    let mut fan_in = FanIn::new();
    fan_in.add(futures::stream::repeat(0_u32));
    fan_in.add(slow(1));
    fan_in.add(slow(2));
    let mut fan_in = std::pin::pin!(fan_in);
    let mut from_slow = [0_u32; 3];
    let mut merged = 0_u64;
    while from_slow[1] < 3 || from_slow[2] < 3 {
        let item = fan_in.next().await.unwrap();
        from_slow[item as usize] += 1;
        merged += 1;
        assert!(merged < 2_000_000, "the slow inputs gave {from_slow:?} in {merged} items");
    }
}

/// An input that wakes itself at once and is never ready (a busy-polling
/// source) until it has been polled `until` times.
struct Restless {
    polls: Arc<AtomicU64>,
    until: u64,
}

impl Stream for Restless {
    type Item = u32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.polls.fetch_add(1, Relaxed) + 1 >= self.until {
            return Poll::Ready(None);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Before: the first `poll_next` polled the restless input 1,000,000 times
/// without returning.
#[tokio::test]
async fn an_input_that_wakes_itself_cannot_hold_the_fan_in_in_one_poll() {
    let polls = Arc::new(AtomicU64::new(0));
    let mut fan_in = FanIn::new();
    fan_in.add(Restless { polls: Arc::clone(&polls), until: 1_000_000 });
    let mut fan_in = std::pin::pin!(fan_in);
    assert!(futures::poll!(fan_in.next()).is_pending());
    let polled = polls.load(Relaxed);
    assert!(polled < 1_000, "one poll of the fan-in polled its input {polled} times");
}

/// Before: a worker retrying an item with zero delays ran 1,000,000 attempts
/// before its task first yielded.
#[tokio::test]
async fn zero_delay_retries_give_the_runtime_a_turn() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let fan_out = FanOut::builder()
        .workers(1)
        .recover(Recovery::new().retry(Backoff::custom(|_| Duration::ZERO).build().unwrap()))
        .build(move |n: u32| {
            let call = counter.fetch_add(1, Relaxed);
            async move { if call < 1_000_000 { Err("not yet") } else { Ok(n) } }
        })
        .unwrap();
    let mut out = fan_out.process_stream(futures::stream::iter([7]));
    for _ in 0..4 {
        assert!(futures::poll!(out.next()).is_pending());
        tokio::task::yield_now().await;
    }
    let attempts = calls.load(Relaxed);
    assert!(attempts > 0 && attempts < 10_000, "{attempts} attempts before the test ran again");
    drop(out);
}
