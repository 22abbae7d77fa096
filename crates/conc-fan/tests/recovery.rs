//! Fan-out retries (on tokio's paused clock) and dead letters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_fan::{DeadLetterQueue, ErrorPolicy, FanError, FanOut, ItemError, Origin, Recovery};
use futures::StreamExt;
use tokio::time::{Instant, sleep};

type Io<T> = Result<T, std::io::Error>;

fn fixed(delay_ms: u64, retries: u32) -> Backoff {
    Backoff::fixed(Duration::from_millis(delay_ms)).max_retries(retries).build().unwrap()
}

/// Counts calls per item; item `i` fails its first `fails(i)` calls.
fn flaky(
    calls: &Arc<Mutex<HashMap<u32, u32>>>,
    fails: fn(u32) -> u32,
) -> impl Fn(u32) -> std::pin::Pin<Box<dyn Future<Output = Io<u32>> + Send>> + Send + Sync + 'static
{
    let calls = Arc::clone(calls);
    move |i: u32| {
        let call = {
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(i).or_default();
            *n += 1;
            *n
        };
        Box::pin(async move {
            if call <= fails(i) {
                Err(std::io::Error::other(format!("{i} failed #{call}")))
            } else {
                Ok(i * 10)
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_item_is_retried_on_the_backoff_schedule_and_then_succeeds() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let fan_out =
        FanOut::builder()
            .workers(2)
            .recover(Recovery::new().retry(
                Backoff::exponential(Duration::from_secs(1)).max_retries(3).build().unwrap(),
            ))
            .build(flaky(&calls, |i| if i == 3 { 2 } else { 0 }))
            .unwrap();
    let start = Instant::now();
    let out: Vec<u32> =
        fan_out.process_stream(futures::stream::iter(0..6)).map(Result::unwrap).collect().await;
    assert_eq!(out, [0, 10, 20, 30, 40, 50]);
    assert_eq!(calls.lock().unwrap()[&3], 3);
    assert_eq!(calls.lock().unwrap()[&4], 1);
    // Waited 1 s then 2 s on tokio's (paused) clock.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_yield_the_last_error_with_the_attempt_count() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let fan_out = FanOut::builder()
        .workers(2)
        .recover(Recovery::new().retry(fixed(100, 2)))
        .build(flaky(&calls, |i| if i == 1 { u32::MAX } else { 0 }))
        .unwrap();
    let results = fan_out.process_batch((0..4).collect()).await;
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.attempts(), 3);
    match error {
        FanError::Worker { attempts: 3, error: ItemError::Failed(last), .. } => {
            assert_eq!(last.to_string(), "1 failed #3");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().ends_with("failed after 3 attempt(s): 1 failed #3"), "{error}");
    assert_eq!(*results[3].as_ref().unwrap(), 30);

    // Under Fail the stream yields the error and ends.
    let items: Vec<_> = fan_out.process_stream(futures::stream::iter(0..1)).collect().await;
    assert!(items.is_empty() || items.iter().all(Result::is_ok));
    let items: Vec<_> = fan_out.process_stream(futures::stream::iter([1])).collect().await;
    assert!(matches!(items[..], [Err(FanError::Worker { attempts: 3, .. })]));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let fan_out = FanOut::builder()
        .timeout(Duration::from_secs(1))
        .recover(Recovery::new().retry(fixed(10, 1)))
        .build(move |i: u32| {
            let first = c.fetch_add(1, SeqCst) == 0;
            async move {
                if first {
                    sleep(Duration::from_secs(60)).await;
                }
                Io::Ok(i)
            }
        })
        .unwrap();
    let out = fan_out.process_batch(vec![7]).await;
    assert_eq!(*out[0].as_ref().unwrap(), 7);
    assert_eq!(calls.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn dead_letters_keep_the_item_and_error_and_the_stream_goes_on() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let dead = DeadLetterQueue::new(10);
    let fan_out = FanOut::builder()
        .workers(3)
        .on_error(ErrorPolicy::Fail)
        .recover(Recovery::new().retry(fixed(500, 1)).dead_letter(dead.clone()))
        .build(flaky(&calls, |i| if i % 4 == 2 { u32::MAX } else { 0 }))
        .unwrap();
    let start = Instant::now();
    let mut stream = fan_out.process_stream(futures::stream::iter(0..12));
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item.unwrap());
    }
    assert_eq!(out, [0, 10, 30, 40, 50, 70, 80, 90, 110]);
    assert_eq!(stream.dead_lettered(), 3);
    assert_eq!(stream.skipped(), 0);
    let letters = dead.take();
    let mut items: Vec<u32> = letters.iter().map(|l| l.item).collect();
    items.sort_unstable();
    assert_eq!(items, [2, 6, 10]);
    for letter in &letters {
        assert_eq!(letter.attempts, 2);
        assert_eq!(letter.last_failure - letter.first_failure, Duration::from_millis(500));
        assert!(letter.first_failure >= start.into_std());
        let expected = format!("{} failed #2", letter.item);
        assert!(
            matches!(&letter.error, ItemError::Failed(error) if error.to_string() == expected),
            "{:?}",
            letter.error
        );
        assert!(matches!(letter.origin, Origin::Worker(worker) if worker < 3));
    }
    assert!(dead.is_empty());

    // process_batch reports a dead-lettered item in its slot.
    let results = fan_out.process_batch(vec![1, 2]).await;
    assert_eq!(*results[0].as_ref().unwrap(), 10);
    assert!(matches!(results[1], Err(FanError::DeadLettered { attempts: 2, .. })));
    assert_eq!(dead.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_dead_letter_queue_is_bounded_and_counts_what_it_dropped() {
    let dead = DeadLetterQueue::new(2);
    let fan_out = FanOut::builder()
        .workers(1)
        .recover(Recovery::new().dead_letter(dead.clone()))
        .build(|i: u32| async move { Io::<u32>::Err(std::io::Error::other(i.to_string())) })
        .unwrap();
    let results = fan_out.process_batch((0..5).collect()).await;
    assert!(results.iter().all(|r| matches!(r, Err(FanError::DeadLettered { attempts: 1, .. }))));
    assert_eq!(dead.capacity(), 2);
    assert_eq!(dead.dropped(), 3);
    let items: Vec<u32> = dead.take().into_iter().map(|l| l.item).collect();
    assert_eq!(items, [3, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_retrying_item_does_not_hold_up_the_items_after_it_on_its_worker() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let fan_out = FanOut::builder()
        .workers(2)
        .batch(1)
        .unordered()
        .recover(Recovery::new().retry(fixed(10_000, 1)))
        .build(flaky(&calls, |i| u32::from(i == 0)))
        .unwrap();
    let start = Instant::now();
    let mut stream = fan_out.process_stream(futures::stream::iter(0..9));
    let mut seen = Vec::new();
    while let Some(item) = stream.next().await {
        seen.push((item.unwrap(), start.elapsed()));
    }
    // Item 0 waits 10 s for its second attempt; every other item, those
    // round robin queued behind it on the same worker included, is done at once.
    let (last, early) = seen.split_last().unwrap();
    assert_eq!(*last, (0, Duration::from_secs(10)));
    let mut early_items: Vec<u32> = early.iter().map(|&(out, _)| out).collect();
    early_items.sort_unstable();
    assert_eq!(early_items, [10, 20, 30, 40, 50, 60, 70, 80]);
    assert!(early.iter().all(|&(_, at)| at == Duration::ZERO), "{early:?}");
    let loads = stream.loads();
    assert_eq!(loads.iter().map(|l| l.processed).sum::<u64>(), 9);
    assert!(loads.iter().all(|l| l.pending == 0 && l.processed >= 4), "{loads:?}");
    assert_eq!(calls.lock().unwrap()[&0], 2);
}

#[tokio::test(start_paused = true)]
async fn ordered_output_waits_for_a_retrying_item_and_keeps_input_order() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let fan_out = FanOut::builder()
        .workers(1)
        .batch(4)
        .recover(Recovery::new().retry(fixed(1_000, 2)))
        .build(flaky(&calls, |i| match i {
            1 => 2,
            5 => 1,
            _ => 0,
        }))
        .unwrap();
    let start = Instant::now();
    let out: Vec<u32> =
        fan_out.process_stream(futures::stream::iter(0..8)).map(Result::unwrap).collect().await;
    assert_eq!(out, [0, 10, 20, 30, 40, 50, 60, 70]);
    // Item 1 needs two waits of 1 s; item 5's single wait runs alongside.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_dead_lettered_panic_carries_its_message() {
    let dead = DeadLetterQueue::new(10);
    let fan_out = FanOut::builder()
        .workers(2)
        .recover(Recovery::new().retry(fixed(100, 1)).dead_letter(dead.clone()))
        .build(|i: u32| async move {
            match i {
                1 => panic!("bad record {i}"),
                2 => std::panic::panic_any(42_u8),
                _ => Io::Ok(i),
            }
        })
        .unwrap();
    let mut stream = fan_out.process_stream(futures::stream::iter(0..4));
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item.unwrap());
    }
    assert_eq!(out, [0, 3]);
    assert_eq!(stream.dead_lettered(), 2);
    let mut letters = dead.take();
    letters.sort_by_key(|l| l.item);
    assert_eq!(letters.len(), 2);
    assert_eq!((letters[0].item, letters[0].attempts), (1, 2));
    assert!(
        matches!(&letters[0].error, ItemError::Panicked(message) if message == "bad record 1"),
        "{:?}",
        letters[0].error
    );
    assert_eq!(letters[0].error.to_string(), "panicked: bad record 1");
    assert!(matches!(
        &letters[1].error,
        ItemError::Panicked(message) if message == "panic with a non-string payload"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_synchronous_part_is_dead_lettered_with_its_message() {
    let dead = DeadLetterQueue::new(10);
    let fan_out = FanOut::builder()
        .recover(Recovery::new().dead_letter(dead.clone()))
        .build(|i: u32| {
            assert!(i != 5, "refused {i} before awaiting");
            async move { Io::Ok(i) }
        })
        .unwrap();
    let results = fan_out.process_batch(vec![4, 5]).await;
    assert_eq!(*results[0].as_ref().unwrap(), 4);
    assert!(matches!(results[1], Err(FanError::DeadLettered { attempts: 1, .. })));
    let letter = &dead.take()[0];
    assert_eq!(letter.item, 5);
    assert!(
        matches!(&letter.error, ItemError::Panicked(message) if message == "refused 5 before awaiting"),
        "{:?}",
        letter.error
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_cancels_items_waiting_for_a_retry() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let fan_out = FanOut::builder()
        .workers(1)
        .recover(Recovery::new().retry(fixed(1_000, 5)))
        .build(move |_: u32| {
            c.fetch_add(1, SeqCst);
            async { Io::<u32>::Err(std::io::Error::other("down")) }
        })
        .unwrap();
    let mut stream = fan_out.process_stream(futures::stream::iter(0..1));
    assert!(tokio::time::timeout(Duration::from_millis(1_500), stream.next()).await.is_err());
    assert_eq!(calls.load(SeqCst), 2);
    drop(stream);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_due_retry_runs_between_the_items_of_a_batch() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&order);
    let fan_out = FanOut::builder()
        .workers(1)
        .batch(8)
        .recover(Recovery::new().retry(fixed(1_500, 1)))
        .build(move |i: u32| {
            let first = {
                let mut order = o.lock().unwrap();
                order.push(i);
                order.iter().filter(|&&seen| seen == i).count() == 1
            };
            async move {
                if i == 0 && first {
                    return Err(std::io::Error::other("first try"));
                }
                sleep(Duration::from_secs(1)).await;
                Io::Ok(i)
            }
        })
        .unwrap();
    let out = fan_out.process_batch((0..5).collect()).await;
    assert!(out.iter().all(Result::is_ok));
    // Item 0's retry is due at 1.5 s, during item 2 (1 s to 2 s): it runs
    // right after item 2, before item 3.
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 0, 3, 4]);
}

/// A retry delay too long to be reached on the clock ends the retries: the
/// item is dead-lettered (or fails with its last error), not lost in a panic.
#[tokio::test(start_paused = true)]
async fn a_retry_delay_beyond_the_clock_gives_up_without_losing_the_item() {
    let huge = || Backoff::fixed(Duration::MAX).max_retries(3).build().unwrap();
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let dead = DeadLetterQueue::new(10);
    let fan_out = FanOut::builder()
        .recover(Recovery::new().retry(huge()).dead_letter(dead.clone()))
        .build(flaky(&calls, |i| if i == 1 { u32::MAX } else { 0 }))
        .unwrap();
    let results = fan_out.process_batch(vec![0, 1, 2]).await;
    assert_eq!(*results[0].as_ref().unwrap(), 0);
    assert!(matches!(results[1], Err(FanError::DeadLettered { attempts: 1, .. })));
    assert_eq!(*results[2].as_ref().unwrap(), 20);
    let letters = dead.take();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].item, 1);
    assert_eq!(calls.lock().unwrap()[&1], 1);

    // Without a sink the item fails with its error.
    let fan_out = FanOut::builder()
        .recover(Recovery::new().retry(huge()))
        .build(flaky(&calls, |i| if i == 1 { u32::MAX } else { 0 }))
        .unwrap();
    let results = fan_out.process_batch(vec![1]).await;
    assert!(
        matches!(&results[0], Err(FanError::Worker { attempts: 1, error: ItemError::Failed(error), .. }) if error.to_string() == "1 failed #2"),
        "{:?}",
        results[0]
    );
}
