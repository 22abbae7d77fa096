//! Behaviour of pipelines: typing, order, backpressure, errors, cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_pipeline::{
    DeadLetterQueue, ErrorPolicy, ItemError, Origin, Outcome, Pipeline, PipelineError, Stage,
};
use futures::StreamExt;
use tokio::time::sleep;

#[tokio::test]
async fn types_flow_from_stage_to_stage() {
    let pipeline = Pipeline::builder()
        .stage("parse", 2, 4, |s: &'static str| async move { s.parse::<u32>() })
        .map("double", 3, 0, |n: u32| async move { u64::from(n) * 2 })
        .filter(|n| *n != 4)
        .blocking("format", 2, 2, |n: u64| Ok::<_, std::fmt::Error>(format!("#{n}")))
        .build()
        .unwrap();
    let out: Vec<String> = pipeline
        .process_stream(futures::stream::iter(["1", "2", "3"]))
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(out, ["#2", "#6"]);
    assert_eq!(pipeline.process("5").await.unwrap(), Some("#10".to_owned()));
    assert_eq!(pipeline.process("2").await.unwrap(), None);
    assert!(
        matches!(pipeline.process("x").await, Err(PipelineError::Stage { ref stage, attempts: 1, .. }) if &**stage == "parse")
    );
}

#[tokio::test]
async fn process_batch_gives_one_outcome_per_input_in_input_order() {
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("check", |n: u32| async move {
                sleep(Duration::from_millis(u64::from(10 - n))).await;
                if n == 3 { Err("three") } else { Ok(n) }
            })
            .concurrency(4)
            .unordered()
            .on_error(ErrorPolicy::Skip),
        )
        .filter(|n| *n != 5)
        .build()
        .unwrap();
    let outcomes = pipeline.process_batch((0..8).collect()).await;
    assert_eq!(outcomes.len(), 8);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match (i, outcome) {
            (3, Outcome::Skipped { stage, attempts: 1, error }) => {
                assert_eq!(&*stage, "check");
                assert_eq!(error.to_string(), "three");
            }
            (5, Outcome::Filtered { after }) => assert_eq!(&*after, "check"),
            (i, Outcome::Output(n)) => assert_eq!(n as usize, i),
            (i, other) => panic!("input {i}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn fail_policy_ends_the_stream_with_the_error_and_cancels_the_rest() {
    let pipeline = Pipeline::builder()
        .stage("check", 2, 0, |n: u32| async move { if n == 2 { Err("bad") } else { Ok(n) } })
        .build()
        .unwrap();
    let items: Vec<_> = pipeline.process_stream(futures::stream::iter(0..100)).collect().await;
    assert_eq!(items.len(), 3);
    assert_eq!(*items[0].as_ref().unwrap(), 0);
    assert_eq!(*items[1].as_ref().unwrap(), 1);
    let Err(PipelineError::Stage { stage, attempts, error }) = &items[2] else {
        panic!("{items:?}")
    };
    assert_eq!((&**stage, *attempts, error.to_string().as_str()), ("check", 1, "bad"));

    let outcomes = pipeline.process_batch((0..6).collect()).await;
    assert!(matches!(outcomes[2], Outcome::Failed(_)));
    assert!(outcomes[3..].iter().all(|o| matches!(o, Outcome::Cancelled)), "{outcomes:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_wait_the_backoff_then_dead_letter_keeps_item_error_and_times() {
    let calls = Arc::new(AtomicUsize::new(0));
    let dead = DeadLetterQueue::new(10);
    let seen = Arc::clone(&calls);
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("send", move |order: String| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.fetch_add(1, SeqCst);
                    if order.starts_with("bad") {
                        Err(format!("{order} refused"))
                    } else {
                        Ok(order.len())
                    }
                }
            })
            .concurrency(4)
            .retry(Backoff::exponential(Duration::from_millis(100)).max_retries(3).build().unwrap())
            .dead_letter(dead.clone()),
        )
        .build()
        .unwrap();
    let outcomes = pipeline.process_batch(vec!["ok".into(), "bad-1".into(), "fine".into()]).await;
    assert!(matches!(outcomes[0], Outcome::Output(2)));
    assert!(matches!(&outcomes[1], Outcome::DeadLettered { stage } if &**stage == "send"));
    assert!(matches!(outcomes[2], Outcome::Output(4)));
    assert_eq!(calls.load(SeqCst), 2 + 4);

    let letters = dead.take();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.item, "bad-1");
    assert_eq!(letter.origin, Origin::stage("send"));
    assert_eq!(letter.attempts, 4);
    assert_eq!(letter.error.to_string(), "bad-1 refused");
    // 100 + 200 + 400 ms of backoff between the first and the last failure.
    assert_eq!(letter.last_failure - letter.first_failure, Duration::from_millis(700));

    let metrics = pipeline.metrics();
    let send = metrics.stage("send").unwrap();
    assert_eq!((send.processed, send.failed, send.retried, send.dead_lettered), (2, 1, 3, 1));
}

#[tokio::test]
async fn a_panic_becomes_that_items_error_with_its_message() {
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("explode", |n: u32| async move {
                assert!(n != 7, "seven is not allowed");
                n
            })
            .concurrency(2)
            .on_error(ErrorPolicy::Skip),
        )
        .build()
        .unwrap();
    let outcomes = pipeline.process_batch((5..10).collect()).await;
    let Outcome::Skipped { error: ItemError::Panicked(message), .. } = &outcomes[2] else {
        panic!("{outcomes:?}")
    };
    assert!(message.contains("seven is not allowed"));
    assert_eq!(outcomes.iter().filter(|o| o.is_output()).count(), 4);

    let blocking = Pipeline::builder()
        .blocking("explode", 1, 0, |n: u32| {
            if n == 1 { panic!("blocking boom") } else { Ok::<_, ItemError>(n) }
        })
        .build()
        .unwrap();
    let error = blocking.process(1).await.unwrap_err();
    assert!(error.to_string().contains("blocking boom"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_times_out() {
    let pipeline = Pipeline::builder()
        .then(
            Stage::map("slow", |n: u64| async move {
                sleep(Duration::from_secs(n)).await;
                n
            })
            .timeout(Duration::from_millis(1_500)),
        )
        .build()
        .unwrap();
    assert_eq!(pipeline.process(1).await.unwrap(), Some(1));
    let error = pipeline.process(2).await.unwrap_err();
    assert!(
        matches!(error, PipelineError::Stage { error: ItemError::TimedOut(d), .. } if d == Duration::from_millis(1_500))
    );
}

#[test]
fn build_names_the_bad_setting() {
    let zero = Pipeline::builder().map("a", 0, 1, |n: u32| async move { n }).build();
    let zero = zero.unwrap_err();
    assert_eq!((&*zero.field, &*zero.value), ("stage `a` concurrency", "0"));
    assert_eq!(zero.to_string(), "invalid `stage `a` concurrency` 0: must be at least 1");
    let twice = Pipeline::builder()
        .map("a", 1, 1, |n: u32| async move { n })
        .map("a", 1, 1, |n: u32| async move { n })
        .build();
    assert_eq!(
        twice.unwrap_err().to_string(),
        r#"invalid `stage 2 name` "a": must be unique: metrics and errors tell stages apart by name"#
    );
    let empty = Pipeline::builder().map("", 1, 1, |n: u32| async move { n }).build();
    assert_eq!(empty.unwrap_err().to_string(), r#"invalid `stage 1 name` "": must not be empty"#);
    let batch = Pipeline::builder()
        .then(Stage::map("b", |n: u32| async move { n }).hand_off_batch(0))
        .build();
    assert_eq!(
        batch.unwrap_err().to_string(),
        "invalid `stage `b` hand_off_batch` 0: must be at least 1"
    );
    let timeout = Pipeline::builder()
        .then(Stage::map("t", |n: u32| async move { n }).timeout(Duration::ZERO))
        .build();
    assert_eq!(timeout.unwrap_err().field, "stage `t` timeout");
    let huge = Pipeline::builder()
        .then(Stage::map("h", |n: u32| async move { n }).buffer(usize::MAX))
        .build();
    assert_eq!(
        huge.unwrap_err().to_string(),
        format!("invalid `stage `h` buffer` {}: must be at most 1048576", usize::MAX)
    );
}

/// Counts live values: the test sees when the pipeline dropped them.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_output_mid_stream_leaves_no_task_and_no_item_behind() {
    for spawn in [false, true] {
        let live = Arc::new(AtomicUsize::new(0));
        let source_live = Arc::clone(&live);
        let source = futures::stream::iter(0..).map(move |n| (n, Tracked::new(&source_live)));
        let mut first = Stage::map("hold", |(n, t): (u64, Tracked)| async move {
            sleep(Duration::from_millis(n % 7)).await;
            (n, t)
        })
        .concurrency(4)
        .buffer(4);
        if spawn {
            first = first.spawn().hand_off_batch(3);
        }
        let pipeline = Pipeline::builder()
            .then(first)
            .map("forever", 2, 0, |(n, t): (u64, Tracked)| async move {
                if n == 10 {
                    futures::future::pending::<()>().await;
                }
                t
            })
            .build()
            .unwrap();
        let mut out = pipeline.process_stream(source);
        for _ in 0..5 {
            out.next().await.unwrap().unwrap();
        }
        assert!(live.load(SeqCst) > 0);
        drop(out);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(live.load(SeqCst), 0, "spawn = {spawn}: items or tasks left running");
    }
}

#[tokio::test(start_paused = true)]
async fn memory_stays_bounded_under_a_fast_source_and_a_slow_consumer() {
    for spawn in [false, true] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let source = futures::stream::iter(0_u64..).inspect(move |_| {
            counter.fetch_add(1, SeqCst);
        });
        let mut first = Stage::map("a", |n: u64| async move { n }).concurrency(8).buffer(16);
        if spawn {
            first = first.spawn().hand_off_batch(4);
        }
        let pipeline = Pipeline::builder()
            .then(first)
            .then(
                Stage::map("b", |n: u64| async move { n + 1 }).concurrency(4).buffer(4).unordered(),
            )
            .build()
            .unwrap();
        let mut out = pipeline.process_stream(source);
        let mut consumed = 0;
        let mut most = 0;
        while consumed < 500 {
            out.next().await.unwrap().unwrap();
            consumed += 1;
            sleep(Duration::from_millis(10)).await; // a slow sink
            most = most.max(pulled.load(SeqCst) - consumed);
        }
        // Inline: windows of 8 + 16 and 4. Spawned: plus the hand-off queue of
        // max(1, 16 / 4) batches of 4, the batch being sent and the batch being read.
        let bound = if spawn { 24 + 4 + 16 + 4 + 4 + 1 } else { 24 + 4 + 1 };
        assert!(most <= bound, "spawn = {spawn}: {most} items in flight, bound {bound}");
    }
}

/// Work that needs polling to progress: each step's timer starts only when
/// the previous one has been polled to completion (like a multi-step request).
async fn stepwise(n: u32) -> u32 {
    for _ in 0..5 * (n % 4 + 1) {
        sleep(Duration::from_millis(10)).await;
    }
    n
}

async fn run_with_busy_consumer(spawn: bool) -> Vec<Result<u32, PipelineError>> {
    let mut fetch =
        Stage::map("fetch", stepwise).concurrency(4).buffer(64).timeout(Duration::from_millis(300));
    if spawn {
        fetch = fetch.spawn().hand_off_batch(1);
    }
    let pipeline = Pipeline::builder().then(fetch).build().unwrap();
    let mut out = pipeline.process_stream(futures::stream::iter(0..20));
    let mut got = Vec::new();
    while let Some(item) = out.next().await {
        got.push(item);
        sleep(Duration::from_secs(1)).await; // the consumer is busy
    }
    got
}

#[tokio::test(start_paused = true)]
async fn a_spawned_stage_keeps_working_while_the_consumer_is_busy() {
    // The futures-rs `buffered` trap: a stage polled only by the consumer
    // makes no progress while the consumer is busy, so per-item timeouts fire
    // although the work takes 200 ms at most. A spawned stage is driven by
    // its own task, so none does.
    let spawned = run_with_busy_consumer(true).await;
    let spawned: Vec<u32> =
        spawned.into_iter().map(|item| item.expect("no attempt times out")).collect();
    assert_eq!(spawned, (0..20).collect::<Vec<_>>());

    let inline = run_with_busy_consumer(false).await;
    assert!(
        matches!(
            inline.last(),
            Some(Err(PipelineError::Stage { error: ItemError::TimedOut(_), .. }))
        ),
        "inline stages starve while the consumer is busy: {inline:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn drain_stops_the_source_and_finishes_what_is_in_flight() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let source = futures::stream::iter(0_u64..).inspect(move |_| {
        counter.fetch_add(1, SeqCst);
    });
    let pipeline = Pipeline::builder()
        .map("slow", 4, 4, |n: u64| async move {
            sleep(Duration::from_millis(10)).await;
            n
        })
        .build()
        .unwrap();
    let mut out = pipeline.process_stream(source);
    let mut got = vec![out.next().await.unwrap().unwrap()];
    out.drain_handle().drain();
    while let Some(item) = out.next().await {
        got.push(item.unwrap());
    }
    let pulled = pulled.load(SeqCst);
    assert_eq!(got, (0..pulled as u64).collect::<Vec<_>>(), "every pulled item comes out");
    assert!(pulled <= 1 + 8, "pulled {pulled}");
}

#[tokio::test]
async fn a_spawned_stage_outside_a_runtime_reports_no_runtime() {
    let pipeline = Pipeline::builder()
        .then(Stage::map("spawned", |n: u32| async move { n }).spawn())
        .build()
        .unwrap();
    let (items, back) = std::thread::spawn(move || {
        let items = futures::executor::block_on(
            pipeline.process_stream(futures::stream::iter(0..3)).collect::<Vec<_>>(),
        );
        // The fallible entry point hands the input back untouched.
        let rejected = pipeline.try_process_stream(futures::stream::iter(0..3)).unwrap_err();
        assert!(
            matches!(&rejected.error, PipelineError::NoRuntime { stage } if &**stage == "spawned")
        );
        let back = futures::executor::block_on(rejected.into_input().collect::<Vec<u32>>());
        (items, back)
    })
    .join()
    .unwrap();
    assert!(
        matches!(&items[..], [Err(PipelineError::NoRuntime { stage })] if &**stage == "spawned")
    );
    assert_eq!(back, [0, 1, 2]);
    // Inside a runtime it starts.
    let pipeline = Pipeline::builder()
        .then(Stage::map("spawned", |n: u32| async move { n + 1 }).spawn())
        .build()
        .unwrap();
    let out = pipeline.try_process_stream(futures::stream::iter(0..3)).unwrap();
    let out: Vec<u32> = out.map(Result::unwrap).collect().await;
    assert_eq!(out, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_and_batched_stages_keep_order_across_threads() {
    let pipeline = Pipeline::builder()
        .then(Stage::map("a", |n: u64| async move { n * 3 }).concurrency(4).buffer(64).spawn())
        .then(
            Stage::map("b", |n: u64| async move { n + 1 })
                .concurrency(4)
                .buffer(64)
                .spawn()
                .hand_off_batch(1),
        )
        .map("c", 2, 8, |n: u64| async move { n })
        .build()
        .unwrap();
    let out: Vec<u64> = pipeline
        .process_stream(futures::stream::iter(0..10_000))
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(out, (0..10_000).map(|n| n * 3 + 1).collect::<Vec<_>>());
    let metrics = pipeline.metrics();
    assert_eq!(metrics.stages.len(), 3);
    assert!(metrics.stages.iter().all(|s| s.processed == 10_000 && s.in_flight == 0));
    assert!(metrics.stage("a").unwrap().latency_max >= metrics.stage("a").unwrap().latency_p50);
}
