//! Fan-out: order, balance, errors, bounded memory and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use conc_core::config::ConfigError;
use conc_fan::{Balance, ErrorPolicy, FanError, FanIn, FanOut, FanPattern, ItemError};
use futures::StreamExt;
use proptest::prelude::*;
use tokio::time::sleep;

type Io<T> = Result<T, std::io::Error>;

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ordered_results_follow_input_order_under_random_delays(
        delays in prop::collection::vec(0_u8..40, 0..120),
        workers in 1_usize..8,
        batch in 1_usize..8,
        queue in 1_usize..3,
    ) {
        let len = delays.len();
        let got: Vec<usize> = paused().block_on(async move {
            let delays = Arc::new(delays);
            let fan_out = FanOut::builder().workers(workers).batch(batch).queue(queue).build(move |i: usize| {
                let delay = u64::from(delays[i]);
                async move {
                    sleep(Duration::from_millis(delay)).await;
                    Io::Ok(i)
                }
            }).unwrap();
            fan_out.process_stream(futures::stream::iter(0..len)).map(Result::unwrap).collect().await
        });
        prop_assert_eq!(got, (0..len).collect::<Vec<_>>());
    }
}

#[tokio::test(start_paused = true)]
async fn unordered_results_come_as_they_finish_and_lose_nothing() {
    let fan_out = FanOut::builder()
        .workers(4)
        .batch(1)
        .unordered()
        .build(|i: u64| async move {
            sleep(Duration::from_millis(100 - i)).await;
            Io::Ok(i)
        })
        .unwrap();
    let got: Vec<u64> =
        fan_out.process_stream(futures::stream::iter(0..100)).map(Result::unwrap).collect().await;
    assert_ne!(got, (0..100).collect::<Vec<_>>(), "later items are faster and come first");
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn round_robin_gives_each_worker_its_share_and_custom_balance_is_obeyed() {
    let fan_out =
        FanOut::builder().workers(3).batch(1).build(|i: u32| async move { Io::Ok(i) }).unwrap();
    let mut out = fan_out.process_stream(futures::stream::iter(0..100));
    while let Some(item) = out.next().await {
        item.unwrap();
    }
    let mut shares: Vec<u64> = out.loads().iter().map(|load| load.processed).collect();
    shares.sort_unstable();
    assert_eq!(shares, [33, 33, 34]);
    assert!(out.loads().iter().all(|load| load.pending == 0));

    let last = FanOut::builder()
        .workers(4)
        .balance(Balance::Custom(Arc::new(|loads: &[usize]| loads.len() - 1)))
        .build(|i: u32| async move { Io::Ok(i) })
        .unwrap();
    let mut out = last.process_stream(futures::stream::iter(0..50));
    while out.next().await.is_some() {}
    let processed: Vec<u64> = out.loads().iter().map(|load| load.processed).collect();
    assert_eq!(processed, [0, 0, 0, 50]);

    let least_loaded = FanOut::builder()
        .workers(4)
        .balance(Balance::LeastLoaded)
        .build(|i: u32| async move { Io::Ok(i) })
        .unwrap();
    let got: Vec<u32> = least_loaded
        .process_stream(futures::stream::iter(0..1_000))
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(got, (0..1_000).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn least_loaded_keeps_work_away_from_a_stuck_worker() {
    let fan_out = FanOut::builder()
        .workers(2)
        .batch(1)
        .queue(1)
        .unordered()
        .balance(Balance::LeastLoaded)
        .build(|i: u32| async move {
            sleep(Duration::from_millis(if i == 0 { 60_000 } else { 1 })).await;
            Io::Ok(i)
        })
        .unwrap();
    let mut out = fan_out.process_stream(futures::stream::iter(0..200));
    // Everything but the stuck item and what was queued behind it before the
    // other worker had work comes out before the stuck item.
    let mut before_stuck = 0;
    while let Some(item) = out.next().await {
        if item.unwrap() == 0 {
            break;
        }
        before_stuck += 1;
    }
    assert!(before_stuck >= 195, "only {before_stuck} items passed the stuck worker");
}

#[tokio::test(start_paused = true)]
async fn errors_panics_and_timeouts_follow_the_policy() {
    let work = |i: u32| async move {
        match i {
            3 => Err(std::io::Error::other("three")),
            5 => panic!("five"),
            7 => {
                sleep(Duration::from_secs(10)).await;
                Ok(i)
            }
            _ => Ok(i),
        }
    };
    let skip = FanOut::builder()
        .workers(2)
        .timeout(Duration::from_secs(1))
        .on_error(ErrorPolicy::Skip)
        .build(work)
        .unwrap();
    let mut out = skip.process_stream(futures::stream::iter(0..10));
    let mut got = Vec::new();
    while let Some(item) = out.next().await {
        got.push(item.unwrap());
    }
    assert_eq!(got, [0, 1, 2, 4, 6, 8, 9]);
    assert_eq!(out.skipped(), 3);

    let results = skip.process_batch((0..10).collect()).await;
    assert_eq!(results.len(), 10);
    assert!(matches!(
        &results[3],
        Err(FanError::Worker { error: ItemError::Failed(error), attempts: 1, .. }) if error.to_string() == "three"
    ));
    assert!(matches!(
        &results[5],
        Err(FanError::Worker { error: ItemError::Panicked(message), .. }) if message == "five"
    ));
    assert!(matches!(
        &results[7],
        Err(FanError::Worker { error: ItemError::TimedOut(after), .. }) if *after == Duration::from_secs(1)
    ));
    assert_eq!(*results[9].as_ref().unwrap(), 9);

    let fail = FanOut::builder().workers(2).build(work).unwrap();
    let items: Vec<_> = fail.process_stream(futures::stream::iter(0..10)).collect().await;
    assert_eq!(items.len(), 4);
    assert!(matches!(items[3], Err(FanError::Worker { error: ItemError::Failed(_), .. })));
}

#[tokio::test(start_paused = true)]
async fn memory_stays_bounded_and_dropping_the_stream_stops_every_worker() {
    #[derive(Debug)]
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, SeqCst);
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let (l, p) = (Arc::clone(&live), Arc::clone(&pulled));
    let source = futures::stream::iter(0_u64..).map(move |_| {
        l.fetch_add(1, SeqCst);
        p.fetch_add(1, SeqCst);
        Tracked(Arc::clone(&l))
    });
    let fan_out = FanOut::builder()
        .workers(3)
        .batch(4)
        .queue(2)
        .build(|t: Tracked| async move {
            sleep(Duration::from_millis(1)).await;
            Io::Ok(t)
        })
        .unwrap();
    let mut out = fan_out.process_stream(source);
    let mut most = 0;
    for consumed in 1..=300 {
        drop(out.next().await.unwrap().unwrap());
        sleep(Duration::from_millis(20)).await; // a slow consumer
        most = most.max(pulled.load(SeqCst) - consumed);
    }
    let window = 3 * 4 * (2 + 2);
    assert!(most <= window, "{most} items in flight, window {window}");
    drop(out);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(live.load(SeqCst), 0, "every item dropped, every worker stopped");
}

#[test]
fn build_names_the_bad_setting() {
    let ok = |i: u32| async move { Io::Ok(i) };
    let field = |result: Result<FanOut<u32, _>, ConfigError>| result.unwrap_err().field;
    assert_eq!(field(FanOut::builder().workers(0).build(ok)), "workers");
    assert_eq!(
        FanOut::builder().batch(0).build(ok).unwrap_err().to_string(),
        "invalid `batch` 0: must be at least 1"
    );
    assert_eq!(field(FanOut::builder().queue(0).build(ok)), "queue");
    assert_eq!(
        FanOut::builder().timeout(Duration::ZERO).build(ok).unwrap_err().to_string(),
        "invalid `timeout` 0ns: must be longer than zero"
    );
    assert_eq!(
        FanOut::builder().workers(usize::MAX).build(ok).unwrap_err().to_string(),
        format!("invalid `workers` {}: must be at most 65536", usize::MAX)
    );
    let outside = FanOut::builder().build(ok).unwrap();
    let items = futures::executor::block_on(
        outside.process_stream(futures::stream::iter(0..3)).collect::<Vec<_>>(),
    );
    assert!(matches!(&items[..], [Err(FanError::NoRuntime)]));
    // The fallible entry point hands the input back untouched.
    let rejected = outside.try_process_stream(futures::stream::iter(0..3)).unwrap_err();
    assert!(matches!(rejected.error, FanError::NoRuntime));
    assert_eq!(
        rejected.to_string(),
        "not started: a fan-out needs a tokio runtime to spawn its workers on"
    );
    let back: Vec<u32> = futures::executor::block_on(rejected.into_input().collect());
    assert_eq!(back, [0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_pattern_merges_sources_then_processes_them_on_workers() {
    let mut sources = FanIn::new();
    for s in 0..10_u64 {
        sources.add(futures::stream::iter(s * 1_000..s * 1_000 + 500));
    }
    let workers =
        FanOut::builder().workers(8).build(|n: u64| async move { Io::Ok(n + 1) }).unwrap();
    let mut got: Vec<u64> =
        FanPattern::new(sources, workers).run().map(Result::unwrap).collect().await;
    got.sort_unstable();
    let expected: Vec<u64> = (0..10).flat_map(|s| s * 1_000 + 1..=s * 1_000 + 500).collect();
    assert_eq!(got, expected);
}
