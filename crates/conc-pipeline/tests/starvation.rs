//! A pipeline whose source is always ready must not keep an item waiting on
//! a wake-up (a timer above all) from coming out, on any runtime flavour: the
//! output stream takes part in tokio's cooperative budget, so it gives the
//! runtime a turn after a bounded run of items, filtered holes included, and
//! a stage polls its woken slots at least once per 32 items it starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use conc_pipeline::{Pipeline, Stage};
use futures::StreamExt;

/// Before: on `#[tokio::test]`'s current-thread runtime the item waiting on a
/// 1 ms timer never came out of an unordered stage while 2,000,000 others
/// did (the timer driver never ran, and the stage did not look at its woken
/// slots while its upstream had items).
#[tokio::test]
async fn an_item_on_a_timer_comes_out_beside_an_always_ready_source() {
    item_zero_comes_out().await;
}

/// Before: the same on a multi-thread runtime, where the timer fires on
/// another thread: the stage polled its woken slots only once its upstream
/// had nothing ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_woken_on_another_thread_comes_out_beside_an_always_ready_source() {
    item_zero_comes_out().await;
}

async fn item_zero_comes_out() {
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("wait", |n: u64| async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                n
            })
            .concurrency(2)
            .unordered(),
        )
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter(0_u64..));
    let mut taken = 0_u64;
    loop {
        if out.next().await.unwrap().unwrap() == 0 {
            break;
        }
        taken += 1;
        assert!(taken < 2_000_000, "item 0 still waits after {taken} others");
    }
}

/// Before: the first poll of the output pulled all 1,000,000 source items
/// through the filter without returning (an endless source would have hung
/// the task, with no `.await` at which to cancel it).
#[tokio::test]
async fn filtered_items_cannot_hold_the_output_in_one_poll() {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    let source = futures::stream::iter(0_u64..1_000_000).inspect(move |_| {
        counter.fetch_add(1, Relaxed);
    });
    let pipeline = Pipeline::builder()
        .map("id", 4, 0, |n: u64| async move { n })
        .filter(|_| false)
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(source);
    assert!(futures::poll!(out.next()).is_pending());
    let pulled = pulled.load(Relaxed);
    assert!(pulled < 1_000, "one poll of the output pulled {pulled} items");
}
