//! The promises of the crate docs and `docs/fan.md` that no other test
//! holds to: each test fails if its promise breaks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_fan::{
    Balance, DeadLetter, DeadLetterSink, ErrorPolicy, FanError, FanIn, FanOut, ItemError, Recovery,
};
use futures::{Stream, StreamExt};
use tokio::time::{Instant, sleep};

type Io<T> = Result<T, std::io::Error>;

/// A source that counts the items taken from it.
fn counted(
    items: impl Stream<Item = u64> + Send + 'static,
) -> (Arc<AtomicU64>, impl Stream<Item = u64> + Send + 'static) {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    (
        pulled,
        items.inspect(move |_| {
            counter.fetch_add(1, SeqCst);
        }),
    )
}

/// "A builder with the defaults: 4 workers, round robin, ordered, batches of
/// 32, 2 batches queued per worker, no timeout, fail on error": with items
/// that take an hour, each of the 4 workers runs a batch of 32 and has 2
/// more queued, and the dispatcher holds one more batch, waiting for room:
/// 4 × 32 × (1 + 2) + 32 items pulled, inside the window of 4 × 32 × (2 + 2).
#[tokio::test(start_paused = true)]
async fn the_defaults_are_four_workers_batches_of_32_and_queues_of_2() {
    let fan_out = FanOut::builder()
        .build(|n: u64| async move {
            sleep(Duration::from_secs(3_600)).await; // no timeout cuts this short
            Io::Ok(n)
        })
        .unwrap();
    let (pulled, source) = counted(futures::stream::iter(0..));
    let mut out = fan_out.process_stream(source);
    assert!(tokio::time::timeout(Duration::from_secs(1), out.next()).await.is_err());
    assert_eq!(out.loads().len(), 4);
    assert_eq!(pulled.load(SeqCst), 4 * 32 * (1 + 2) + 32);
    // Ordered and no timeout: the first result is item 0, an hour later.
    assert_eq!(out.next().await.unwrap().unwrap(), 0);
}

/// "A batch is sent as soon as the source has nothing more ready, so
/// batching adds no wait."
#[tokio::test(start_paused = true)]
async fn batching_adds_no_wait() {
    let fan_out = FanOut::builder().batch(32).build(|n: u32| async move { Io::Ok(n + 1) }).unwrap();
    // One item, then a source that never gives another nor ends.
    let source = futures::stream::iter([1]).chain(futures::stream::pending());
    let mut out = fan_out.process_stream(source);
    let start = Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(1), out.next()).await;
    assert_eq!(first.expect("the lone item waits for a full batch").unwrap().unwrap(), 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// "Custom(f): f sees every worker's load and returns an index (taken modulo
/// the worker count)."
#[tokio::test]
async fn a_custom_balance_sees_every_load_and_its_index_is_taken_modulo() {
    for (pick, expected) in [(usize::MAX, usize::MAX % 4), (4 + 1, 1), (8 + 2, 2)] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let fan_out = FanOut::builder()
            .workers(4)
            .batch(1)
            .balance(Balance::Custom(Arc::new(move |loads: &[usize]| {
                record.lock().unwrap().push(loads.len());
                pick
            })))
            .build(|n: u32| async move { Io::Ok(n) })
            .unwrap();
        let mut out = fan_out.process_stream(futures::stream::iter(0..20));
        while out.next().await.is_some() {}
        let processed: Vec<u64> = out.loads().iter().map(|load| load.processed).collect();
        let mut want = vec![0; 4];
        want[expected] = 20;
        assert_eq!(processed, want, "index {pick}");
        assert!(seen.lock().unwrap().iter().all(|&len| len == 4));
    }
}

/// "`RoundRobin`: … A stuck worker stalls the dispatcher once its queue is full."
#[tokio::test(start_paused = true)]
async fn round_robin_stalls_behind_a_stuck_worker_once_its_queue_is_full() {
    let fan_out = FanOut::builder()
        .workers(2)
        .batch(1)
        .queue(1)
        .unordered()
        .build(|n: u64| async move {
            if n == 0 {
                futures::future::pending::<()>().await;
            }
            Io::Ok(n)
        })
        .unwrap();
    let (pulled, source) = counted(futures::stream::iter(0..1_000));
    let mut out = fan_out.process_stream(source);
    let mut done = 0;
    while tokio::time::timeout(Duration::from_secs(1), out.next()).await.is_ok() {
        done += 1;
    }
    // Worker 1 finished what reached it before worker 0's queue filled.
    assert!(done <= 3, "{done} items passed the stuck worker");
    assert!(pulled.load(SeqCst) <= 5, "{} items pulled", pulled.load(SeqCst));
}

/// "Items are cloned only when a recovery is set": each attempt gets a clone.
#[tokio::test(start_paused = true)]
async fn items_are_cloned_only_with_a_recovery_once_per_attempt() {
    #[derive(Debug)]
    struct Counted(u32, Arc<AtomicUsize>);
    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.1.fetch_add(1, SeqCst);
            Self(self.0, Arc::clone(&self.1))
        }
    }
    let clones = Arc::new(AtomicUsize::new(0));
    let items = || (0..10).map(|n| Counted(n, Arc::clone(&clones))).collect::<Vec<_>>();
    let plain = FanOut::builder().build(|c: Counted| async move { Io::Ok(c.0) }).unwrap();
    assert!(plain.process_batch(items()).await.iter().all(Result::is_ok));
    assert_eq!(clones.load(SeqCst), 0, "no recovery, no clone");

    let recovering = FanOut::builder()
        .recover(
            Recovery::new()
                .retry(Backoff::fixed(Duration::from_millis(1)).max_retries(1).build().unwrap()),
        )
        .build(|c: Counted| async move {
            if c.0 == 3 { Err(std::io::Error::other("three")) } else { Ok(c.0) }
        })
        .unwrap();
    let _ = recovering.process_batch(items()).await;
    assert_eq!(clones.load(SeqCst), 9 + 2, "one clone per attempt: item 3 had two");
}

/// "Without them an item is retried until it succeeds."
#[tokio::test(start_paused = true)]
async fn without_a_bound_an_item_is_retried_until_it_succeeds() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let fan_out = FanOut::builder()
        .recover(Recovery::new().retry(Backoff::fixed(Duration::from_millis(10)).build().unwrap()))
        .build(move |n: u32| {
            let call = counter.fetch_add(1, SeqCst);
            async move { if call < 50 { Err("down") } else { Ok(n) } }
        })
        .unwrap();
    assert_eq!(*fan_out.process_batch(vec![7]).await[0].as_ref().unwrap(), 7);
    assert_eq!(calls.load(SeqCst), 51);
}

/// "The item counts in its worker's load until it is done; with ordered
/// output the items after it wait in the reorder window, which stays bounded,
/// so long backoffs under ordered output slow the source once the window is
/// full."
#[tokio::test(start_paused = true)]
async fn a_retrying_item_stays_in_its_load_and_ordered_output_bounds_the_source() {
    let fan_out = FanOut::builder()
        .workers(1)
        .batch(1)
        .queue(1)
        .recover(
            Recovery::new()
                .retry(Backoff::fixed(Duration::from_secs(10)).max_retries(1).build().unwrap()),
        )
        .build(|n: u64| {
            let first = n == 0;
            async move {
                static FAILED: AtomicUsize = AtomicUsize::new(0);
                if first && FAILED.fetch_add(1, SeqCst) == 0 { Err("once") } else { Ok(n) }
            }
        })
        .unwrap();
    let (pulled, source) = counted(futures::stream::iter(0..));
    let mut out = fan_out.process_stream(source);
    assert!(tokio::time::timeout(Duration::from_secs(5), out.next()).await.is_err());
    assert_eq!(out.loads()[0].pending, 1, "item 0 waits in its worker's load");
    // The window of 1 × 1 × (1 + 2) items: item 0 and two finished behind it.
    assert_eq!(pulled.load(SeqCst), 3);
    assert_eq!(out.next().await.unwrap().unwrap(), 0);
}

/// "Its `send` runs on the worker": not on the task that consumes the output.
#[tokio::test]
async fn a_dead_letter_is_sent_from_a_worker_task() {
    #[derive(Clone, Default)]
    struct Where(Arc<Mutex<Option<tokio::task::Id>>>);
    impl DeadLetterSink<u32> for Where {
        fn send(&self, _: DeadLetter<u32>) {
            *self.0.lock().unwrap() = tokio::task::try_id();
        }
    }
    let sink = Where::default();
    let fan_out = FanOut::builder()
        .recover(Recovery::new().dead_letter(sink.clone()))
        .build(|_: u32| async move { Io::<u32>::Err(std::io::Error::other("no")) })
        .unwrap();
    let consumer = tokio::spawn(async move {
        let _ = fan_out.process_batch(vec![1]).await;
        tokio::task::id()
    })
    .await
    .unwrap();
    let sent_from = sink.0.lock().unwrap().expect("sent from a tokio task");
    assert_ne!(sent_from, consumer);
}

/// "The output stream skips a dead-lettered item under any policy."
#[tokio::test]
async fn a_dead_lettered_item_is_skipped_under_skip_too() {
    let fan_out = FanOut::builder()
        .on_error(ErrorPolicy::Skip)
        .recover(Recovery::new().dead_letter(conc_fan::DeadLetterQueue::new(10)))
        .build(|n: u32| async move { if n == 1 { Err("one") } else { Ok(n) } })
        .unwrap();
    let mut out = fan_out.process_stream(futures::stream::iter(0..3));
    let mut got = Vec::new();
    while let Some(item) = out.next().await {
        got.push(item.unwrap());
    }
    assert_eq!(got, [0, 2]);
    assert_eq!((out.dead_lettered(), out.skipped()), (1, 0));
}

/// "`Fail` yields the error and stops the workers"; "`process_batch`
/// processes every item whatever the policy".
#[tokio::test]
async fn fail_stops_the_workers_and_process_batch_still_runs_every_item() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let fan_out = FanOut::builder()
        .workers(1)
        .batch(1)
        .queue(1)
        .build(move |n: u64| {
            counter.fetch_add(1, SeqCst);
            async move {
                tokio::task::yield_now().await;
                if n == 2 { Err("two") } else { Ok(n) }
            }
        })
        .unwrap();
    let items: Vec<_> = fan_out.process_stream(futures::stream::iter(0..1_000)).collect().await;
    assert_eq!(items.len(), 3);
    assert!(matches!(items[2], Err(FanError::Worker { .. })));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let after_stop = calls.load(SeqCst);
    assert!(after_stop < 10, "{after_stop} items ran");
    tokio::task::yield_now().await;
    assert_eq!(calls.load(SeqCst), after_stop, "the workers are stopped");

    let results = fan_out.process_batch((0..6).collect()).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(matches!(&results[2], Err(FanError::Worker { error: ItemError::Failed(_), .. })));
}

/// "A panic in the source stream or in a `Custom` balancing function stops the
/// dispatcher: the stream yields `FanError::DispatchPanicked` in place of the
/// next item (in input order, after everything before it) and ends."
#[tokio::test]
async fn a_panicking_source_or_balance_ends_the_run_with_its_message() {
    let fan_out = FanOut::builder()
        .on_error(ErrorPolicy::Skip) // cannot skip it
        .build(|n: u32| async move { Io::Ok(n) })
        .unwrap();
    let source = futures::stream::iter(0..10).map(|n| {
        assert!(n != 5, "bad row {n}");
        n
    });
    let items: Vec<_> = fan_out.process_stream(source).collect().await;
    assert_eq!(items.len(), 6);
    assert!(items[..5].iter().enumerate().all(|(i, r)| *r.as_ref().unwrap() == i as u32));
    assert!(
        matches!(&items[5], Err(FanError::DispatchPanicked { message }) if message == "bad row 5"),
        "{items:?}"
    );

    let picky = FanOut::builder()
        .balance(Balance::Custom(Arc::new(|_: &[usize]| panic!("no worker"))))
        .build(|n: u32| async move { Io::Ok(n) })
        .unwrap();
    let items: Vec<_> = picky.process_stream(futures::stream::iter(0..10)).collect().await;
    assert!(
        matches!(&items[..], [Err(FanError::DispatchPanicked { message })] if message == "no worker"),
        "{items:?}"
    );
}

/// "A timeout too long to be reached on the clock (`Duration::MAX`) never fires."
#[tokio::test(start_paused = true)]
async fn a_timeout_of_duration_max_never_fires() {
    let fan_out = FanOut::builder()
        .timeout(Duration::MAX)
        .build(|n: u32| async move {
            sleep(Duration::from_secs(86_400 * 365)).await;
            Io::Ok(n)
        })
        .unwrap();
    assert_eq!(*fan_out.process_batch(vec![3]).await[0].as_ref().unwrap(), 3);
}

/// A stream that counts its polls and is ready only while `ready` items remain.
struct Polled {
    polls: Arc<AtomicU64>,
    ready: u64,
}

impl Stream for Polled {
    type Item = u64;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Option<u64>> {
        self.polls.fetch_add(1, SeqCst);
        if self.ready == 0 {
            return Poll::Pending; // never woken again
        }
        self.ready -= 1;
        Poll::Ready(Some(self.ready))
    }
}

/// "An input is polled only after its waker fired (or right after it gave an
/// item), so the cost per item does not depend on the number of inputs."
#[tokio::test]
async fn pending_inputs_are_not_polled_again_until_woken() {
    let idle_polls = Arc::new(AtomicU64::new(0));
    let mut fan_in = FanIn::new();
    for _ in 0..1_000 {
        fan_in.add(Polled { polls: Arc::clone(&idle_polls), ready: 0 });
    }
    let hot_polls = Arc::new(AtomicU64::new(0));
    fan_in.add(Polled { polls: Arc::clone(&hot_polls), ready: 10_000 });
    let mut fan_in = std::pin::pin!(fan_in);
    for _ in 0..10_000 {
        fan_in.next().await.unwrap();
    }
    assert_eq!(idle_polls.load(SeqCst), 1_000, "each idle input was polled once, when added");
    assert_eq!(hot_polls.load(SeqCst), 10_000);
}

/// "The merge holds no items of its own: items go from the input to the
/// consumer."
#[tokio::test]
async fn the_fan_in_takes_an_item_only_when_the_consumer_asks() {
    let (pulled_a, a) = counted(futures::stream::iter(0..100));
    let (pulled_b, b) = counted(futures::stream::iter(100..200));
    let mut fan_in = FanIn::new();
    fan_in.add(a);
    fan_in.add(b);
    let mut fan_in = std::pin::pin!(fan_in);
    for taken in 1..=150 {
        fan_in.next().await.unwrap();
        assert_eq!(pulled_a.load(SeqCst) + pulled_b.load(SeqCst), taken);
    }
}

/// "Keys are never reused, so an old key cannot remove a newer input."
#[tokio::test]
async fn an_old_key_cannot_remove_a_newer_input_in_its_slot() {
    let mut fan_in = FanIn::new();
    let old = fan_in.add(futures::stream::iter([1]));
    assert!(fan_in.remove(old).is_some());
    let new = fan_in.add(futures::stream::iter([2])); // reuses the slot
    assert_ne!(old, new);
    assert!(fan_in.remove(old).is_none());
    let handle = fan_in.handle();
    handle.remove(old);
    drop(handle);
    assert_eq!(fan_in.collect::<Vec<_>>().await, [2]);
}
