//! The promises of the crate docs and `docs/pipeline.md` that no other test
//! holds to: each test fails if its promise breaks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_pipeline::{DeadLetterQueue, ItemError, Outcome, Pipeline, PipelineError, Stage};
use futures::{Stream, StreamExt};
use tokio::time::{Instant, sleep};

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

/// "No task per stage and no channel between stages": inline stages run
/// without any tokio runtime, inside whoever polls them.
#[test]
fn inline_stages_need_no_runtime() {
    let pipeline = Pipeline::builder()
        .map("double", 4, 4, |n: u64| async move { n * 2 })
        .filter(|n| n % 3 != 0)
        .then(Stage::map("inc", |n: u64| async move { n + 1 }).concurrency(2).unordered())
        .build()
        .unwrap();
    let out: Vec<u64> = futures::executor::block_on(
        pipeline.process_stream(futures::stream::iter(0..10)).map(Result::unwrap).collect(),
    );
    let mut out = out;
    out.sort_unstable();
    assert_eq!(out, [3, 5, 9, 11, 15, 17]);
}

/// "A new item's future is polled at once; one that is ready there never
/// waits anywhere."
#[tokio::test]
async fn a_ready_item_comes_out_on_the_first_poll() {
    let pipeline = Pipeline::builder()
        .map("a", 8, 8, |n: u64| async move { n })
        .map("b", 8, 8, |n: u64| async move { n + 1 })
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter(0..));
    for n in 0..100 {
        assert!(matches!(futures::poll!(out.next()), Poll::Ready(Some(Ok(m))) if m == n + 1));
    }
}

/// A future that is ready once its flag is set, counting its polls.
struct Gate {
    open: Arc<AtomicBool>,
    wakers: Arc<Mutex<Vec<Waker>>>,
    polls: Arc<AtomicU64>,
}

impl Future for Gate {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, SeqCst);
        if self.open.load(SeqCst) {
            return Poll::Ready(());
        }
        self.wakers.lock().unwrap().push(cx.waker().clone());
        Poll::Pending
    }
}

/// "A future that is pending is polled again only when its own waker fires,
/// through a ready queue, never by scanning the window."
#[tokio::test]
async fn a_pending_item_is_polled_again_only_when_woken() {
    let gates: Vec<Arc<AtomicBool>> = (0..100).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let wakers: Vec<Arc<Mutex<Vec<Waker>>>> = (0..100).map(|_| Arc::default()).collect();
    let polls = Arc::new(AtomicU64::new(0));
    let (g, w, p) = (gates.clone(), wakers.clone(), Arc::clone(&polls));
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("gated", move |n: usize| Gate {
                open: Arc::clone(&g[n]),
                wakers: Arc::clone(&w[n]),
                polls: Arc::clone(&p),
            })
            .concurrency(100)
            .unordered(),
        )
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter(0..100));
    assert!(futures::poll!(out.next()).is_pending());
    assert_eq!(polls.load(SeqCst), 100, "each item polled once, at once");
    for n in (0..100).rev() {
        gates[n].store(true, SeqCst);
        for waker in wakers[n].lock().unwrap().drain(..) {
            waker.wake();
        }
        assert!(matches!(futures::poll!(out.next()), Poll::Ready(Some(Ok(())))));
    }
    assert_eq!(polls.load(SeqCst), 200, "each woken item polled once more, no other");
}

/// "The task sends what it has as soon as the stage has nothing more ready,
/// so batching adds no wait."
#[tokio::test(start_paused = true)]
async fn a_spawned_stage_hands_over_without_waiting_for_a_full_batch() {
    let pipeline = Pipeline::builder()
        .then(Stage::map("spawned", |n: u64| async move { n * 10 }).spawn().hand_off_batch(32))
        .build()
        .unwrap();
    let source = futures::stream::iter([4]).chain(futures::stream::pending());
    let mut out = pipeline.process_stream(source);
    let start = Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(1), out.next()).await;
    assert_eq!(first.expect("the lone item waits for a full batch").unwrap().unwrap(), 40);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// "Ordered stages emit in arrival order with a reorder window of
/// `concurrency + buffer` items: a slow item holds back the ones behind it,
/// and the stage keeps working past it until the window is full."
#[tokio::test(start_paused = true)]
async fn an_ordered_stage_works_past_a_slow_item_until_its_window_is_full() {
    let finished = Arc::new(AtomicU64::new(0));
    let done = Arc::clone(&finished);
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("slow-head", move |n: u64| {
                let done = Arc::clone(&done);
                async move {
                    if n == 0 {
                        sleep(Duration::from_secs(60)).await;
                    }
                    done.fetch_add(1, SeqCst);
                    n
                }
            })
            .concurrency(2)
            .buffer(3),
        )
        .build()
        .unwrap();
    let (pulled, source) = counted(futures::stream::iter(0..));
    let mut out = pipeline.process_stream(source);
    assert!(tokio::time::timeout(Duration::from_secs(1), out.next()).await.is_err());
    assert_eq!(pulled.load(SeqCst), 2 + 3, "the window is concurrency + buffer");
    assert_eq!(finished.load(SeqCst), 4, "every item after the slow one is done");
    let first: Vec<u64> = out.by_ref().take(6).map(Result::unwrap).collect().await;
    assert_eq!(first, [0, 1, 2, 3, 4, 5]);
}

/// "Retries keep its place in ordered output"; "a delay too long to be
/// reached on the clock ends the retries as if the schedule were over".
#[tokio::test(start_paused = true)]
async fn a_retried_item_keeps_its_place_and_an_unreachable_delay_ends_the_retries() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let flaky = move |n: u64| {
        let call = counter.fetch_add(1, SeqCst);
        async move { if n == 2 && call < 4 { Err("not yet") } else { Ok(n) } }
    };
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("flaky", flaky)
                .concurrency(4)
                .retry(Backoff::fixed(Duration::from_secs(1)).max_retries(5).build().unwrap()),
        )
        .build()
        .unwrap();
    let out: Vec<u64> =
        pipeline.process_stream(futures::stream::iter(0..8)).map(Result::unwrap).collect().await;
    assert_eq!(out, (0..8).collect::<Vec<_>>());

    let dead = DeadLetterQueue::new(10);
    let never = Pipeline::builder()
        .then(
            Stage::new("never", |n: u64| async move { if n == 1 { Err("no") } else { Ok(n) } })
                .retry(Backoff::fixed(Duration::MAX).max_retries(3).build().unwrap())
                .dead_letter(dead.clone()),
        )
        .build()
        .unwrap();
    let start = Instant::now();
    let outcomes = never.process_batch(vec![0, 1, 2]).await;
    assert!(matches!(outcomes[1], Outcome::DeadLettered { .. }));
    assert_eq!(dead.take()[0].attempts, 1);
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait for a delay that never comes");
}

/// "Retries and dead letters keep a clone of the item while it is
/// processed": and without them the item is never cloned.
#[tokio::test]
async fn items_are_cloned_only_for_retries_and_dead_letters() {
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
    let plain = Pipeline::builder()
        .then(Stage::new("plain", |c: Counted| async move { Ok::<_, std::io::Error>(c.0) }))
        .build()
        .unwrap();
    let _ = plain.process_batch(items()).await;
    assert_eq!(clones.load(SeqCst), 0);
    let kept = Pipeline::builder()
        .then(
            Stage::new("kept", |c: Counted| async move { Ok::<_, std::io::Error>(c.0) })
                .dead_letter(DeadLetterQueue::new(10)),
        )
        .build()
        .unwrap();
    let _ = kept.process_batch(items()).await;
    assert_eq!(clones.load(SeqCst), 10, "one kept copy per item");
}

/// "A `spawn_blocking` call that has started cannot be stopped: it runs to
/// its end and its output is discarded."
#[tokio::test]
async fn a_started_blocking_call_runs_to_its_end_after_the_stream_is_dropped() {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (finished_tx, finished) = std::sync::mpsc::channel();
    let pipeline = Pipeline::builder()
        .blocking("block", 1, 0, move |n: u32| {
            started_tx.send(()).unwrap();
            let _ = gate.lock().unwrap().recv();
            finished_tx.send(n).unwrap();
            Ok::<_, std::io::Error>(n)
        })
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter([9]));
    assert!(futures::poll!(out.next()).is_pending());
    tokio::task::spawn_blocking(move || started.recv().unwrap()).await.unwrap();
    drop(out);
    release.send(()).unwrap();
    let finished = tokio::task::spawn_blocking(move || finished.recv()).await.unwrap();
    assert_eq!(finished, Ok(9), "the call ran to its end");
}

/// "Dropped items leave no gap … A panic in `keep` fails the run."
#[tokio::test]
async fn a_panicking_filter_fails_the_run_with_its_message() {
    let pipeline = Pipeline::builder()
        .map("first", 1, 0, |n: u32| async move { n })
        .filter(|n| {
            assert!(*n != 3, "three is cursed");
            true
        })
        .build()
        .unwrap();
    let items: Vec<_> = pipeline.process_stream(futures::stream::iter(0..10)).collect().await;
    assert_eq!(items.len(), 4);
    assert!(
        matches!(&items[3], Err(PipelineError::FilterPanicked { stage, message }) if &**stage == "first" && message == "three is cursed"),
        "{items:?}"
    );
}

/// "A spawned stage's task ended without handing over its items": a panic in
/// the source, polled by the stage's task, ends the run with `TaskLost`.
#[tokio::test]
async fn a_spawned_stage_whose_task_dies_reports_task_lost() {
    let pipeline = Pipeline::builder()
        .then(Stage::map("spawned", |n: u32| async move { n }).spawn().hand_off_batch(1))
        .build()
        .unwrap();
    let source = futures::stream::iter(0..10).map(|n| {
        assert!(n != 4, "source broke");
        n
    });
    let items: Vec<_> = pipeline.process_stream(source).collect().await;
    assert!(items[..4].iter().all(Result::is_ok), "{items:?}");
    assert!(
        matches!(items.last(), Some(Err(PipelineError::TaskLost { stage })) if &**stage == "spawned"),
        "{items:?}"
    );
}

/// "Latency is sampled on one item in 128 and rounded up to a power of two
/// nanoseconds"; `busiest` names the stage with the most items in flight.
#[tokio::test(start_paused = true)]
async fn latencies_are_powers_of_two_and_busiest_names_the_bottleneck() {
    let pipeline = Pipeline::builder()
        .map("quick", 1, 0, |n: u64| async move { n })
        .then(
            Stage::map("stuck", |n: u64| async move {
                if n >= 200 {
                    futures::future::pending::<()>().await;
                }
                n
            })
            .concurrency(8)
            .unordered(),
        )
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter(0..));
    for _ in 0..200 {
        out.next().await.unwrap().unwrap();
    }
    assert!(tokio::time::timeout(Duration::from_secs(1), out.next()).await.is_err());
    let metrics = pipeline.metrics();
    assert_eq!(metrics.busiest().map(|s| &*s.name), Some("stuck"));
    assert_eq!(metrics.stage("stuck").unwrap().in_flight, 8);
    let quick = metrics.stage("quick").unwrap();
    for latency in [quick.latency_p50, quick.latency_p99, quick.latency_max] {
        let nanos = latency.as_nanos();
        assert!(nanos == 0 || nanos.is_power_of_two(), "{latency:?}");
    }
}

/// "`process` returns `Ok(None)` if it was filtered, skipped or dead-lettered."
#[tokio::test]
async fn process_answers_none_for_each_way_an_item_leaves() {
    let skip = Pipeline::builder()
        .then(
            Stage::new("odd", |n: u32| async move { if n % 2 == 1 { Ok(n) } else { Err("even") } })
                .on_error(conc_pipeline::ErrorPolicy::Skip),
        )
        .filter(|n| *n != 3)
        .build()
        .unwrap();
    assert_eq!(skip.process(1).await.unwrap(), Some(1));
    assert_eq!(skip.process(2).await.unwrap(), None, "skipped");
    assert_eq!(skip.process(3).await.unwrap(), None, "filtered");
    let dead = Pipeline::builder()
        .then(
            Stage::new("parse", |s: String| async move { s.parse::<u8>() })
                .dead_letter(DeadLetterQueue::new(1)),
        )
        .build()
        .unwrap();
    assert_eq!(dead.process("x".into()).await.unwrap(), None, "dead-lettered");
    assert!(matches!(
        Pipeline::builder()
            .stage("fail", 1, 0, |s: String| async move { s.parse::<u8>() })
            .build()
            .unwrap()
            .process("x".into())
            .await,
        Err(PipelineError::Stage { error: ItemError::Failed(_), .. })
    ));
}
