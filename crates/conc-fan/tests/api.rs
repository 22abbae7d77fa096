//! The public surface: which types cross threads, the metrics the crate
//! emits, and one dead letter sink shared with a pipeline stage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{ALL, MetricsSnapshot, MetricsSource};
use conc_fan::{
    Balance, DeadLetter, DeadLetterQueue, DeadLetterSink, ErrorPolicy, FanError, FanIn,
    FanInHandle, FanInMetrics, FanOut, FanOutBuilder, FanOutMetrics, FanOutStream, FanPattern,
    InputKey, ItemError, Origin, Priority, Recovery, RoundRobin, WorkerLoad,
};
use futures::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use static_assertions::assert_impl_all;

type Io<T> = Result<T, std::io::Error>;
type Work = fn(u32) -> std::future::Ready<Io<u32>>;

assert_impl_all!(FanOut<u32, Work>: Send, Sync, Clone, std::fmt::Debug);
assert_impl_all!(FanOutBuilder<u32>: Send, Sync, Clone);
// Neither `Clone` nor `Debug` is asked of the item type.
assert_impl_all!(FanOutBuilder<std::sync::Mutex<u32>>: Clone, std::fmt::Debug);
assert_impl_all!(FanOutStream<u32>: Send, Sync, Unpin, futures::Stream);
assert_impl_all!(FanIn<u32>: Send, Unpin, futures::Stream);
assert_impl_all!(FanInHandle<u32>: Send, Sync, Clone);
assert_impl_all!(FanPattern<u32, Work>: Send);
assert_impl_all!(Recovery<u32>: Send, Sync, Clone);
assert_impl_all!(Balance: Send, Sync, Clone);
assert_impl_all!(FanOutMetrics: Send, Sync, Copy, MetricsSnapshot);
assert_impl_all!(FanInMetrics: Send, Sync, Copy, MetricsSnapshot);
assert_impl_all!(WorkerLoad: Send, Sync, Copy);
assert_impl_all!(InputKey: Send, Sync, Copy);
assert_impl_all!(RoundRobin: Send);
assert_impl_all!(Priority: Send);
assert_impl_all!(FanError: Send, Sync, std::error::Error);
assert_impl_all!(DeadLetterQueue<u32>: Send, Sync, Clone, DeadLetterSink<u32>);

fn send_and_sync<T: Send + Sync>(_: &T) {}
fn send<T: Send>(_: &T) {}

fn double(n: u32) -> std::future::Ready<Io<u32>> {
    std::future::ready(Ok(n * 2))
}

#[tokio::test]
async fn the_futures_of_a_fan_out_cross_threads() {
    let fan_out = FanOut::builder().build(double as Work).unwrap();
    let batch = fan_out.process_batch(vec![1, 2]);
    send(&batch);
    assert_eq!(batch.await.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [2, 4]);
    let pattern = FanPattern::new(FanIn::new(), fan_out.clone()).run();
    send_and_sync(&pattern);
    assert_eq!(pattern.count().await, 0);
}

/// A user's sink, written once: it takes dead letters of any item type.
#[derive(Debug, Clone, Default)]
struct Audit(Arc<Mutex<Vec<String>>>);

impl<T: std::fmt::Debug + Send + 'static> DeadLetterSink<T> for Audit {
    fn send(&self, letter: DeadLetter<T>) {
        let line = format!("{:?} at {}: {}", letter.item, letter.origin, letter.error);
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test]
async fn one_sink_serves_a_pipeline_stage_and_a_fan_out() {
    use conc_pipeline::{Pipeline, Stage};

    let audit = Audit::default();
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("parse", |s: String| async move { s.parse::<u32>() })
                .dead_letter(audit.clone()),
        )
        .build()
        .unwrap();
    let fan_out = FanOut::builder()
        .workers(1)
        .recover(Recovery::new().dead_letter(audit.clone()))
        .build(|n: u32| async move { 100_u32.checked_div(n).ok_or("zero") })
        .unwrap();
    assert_eq!(pipeline.process("x".to_owned()).await.unwrap(), None);
    let results = fan_out.process_batch(vec![0, 5]).await;
    assert!(matches!(results[0], Err(FanError::DeadLettered { worker: 0, attempts: 1 })));
    assert_eq!(*results[1].as_ref().unwrap(), 20);
    assert_eq!(
        *audit.0.lock().unwrap(),
        [
            r#""x" at stage `parse`: invalid digit found in string"#.to_owned(),
            "0 at worker 0: zero".to_owned()
        ]
    );
}

/// Runs `exercise` under a debugging recorder and returns every metric it
/// emitted, by name, with its value summed over labels.
fn emitted(exercise: impl FnOnce()) -> BTreeMap<String, DebugValue> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, exercise);
    let mut names = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        names.insert(key.key().name().to_owned(), value);
    }
    names
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

#[test]
fn every_fan_metric_is_emitted_and_everything_emitted_is_a_fan_constant() {
    let names = emitted(|| {
        paused().block_on(async {
            let fan_out = FanOut::builder()
                .workers(2)
                .batch(1)
                .recover(
                    Recovery::new()
                        .retry(
                            Backoff::fixed(Duration::from_millis(1))
                                .max_retries(1)
                                .build()
                                .unwrap(),
                        )
                        .dead_letter(DeadLetterQueue::new(10)),
                )
                .build(|n: u32| async move { if n == 3 { Err("three") } else { Ok(n) } })
                .unwrap();
            let mut inputs = FanIn::new();
            inputs.add(futures::stream::iter(0..100));
            let out: Vec<u32> =
                FanPattern::new(inputs, fan_out).run().map(Result::unwrap).collect().await;
            assert_eq!(out.len(), 99);
        });
    });
    let ours: Vec<&str> =
        ALL.iter().map(|m| m.name).filter(|name| name.starts_with("conc.fan.")).collect();
    assert_eq!(names.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut sorted = ours.clone();
        sorted.sort_unstable();
        sorted
    });
    let count = |name: &str| match names[name] {
        DebugValue::Counter(n) => n,
        ref other => panic!("{name} is {other:?}"),
    };
    assert_eq!(count("conc.fan.items.merged"), 100);
    assert_eq!(count("conc.fan.items.dispatched"), 100);
    assert_eq!(count("conc.fan.items.processed"), 99);
    assert_eq!(count("conc.fan.items.retried"), 1);
    assert_eq!(count("conc.fan.items.failed"), 1);
    assert_eq!(count("conc.fan.items.dead_lettered"), 1);
}

#[tokio::test(start_paused = true)]
async fn fan_out_and_fan_in_report_through_metrics_source() {
    fn snapshot<M: MetricsSource>(source: &M) -> M::Snapshot {
        source.metrics()
    }
    let fan_out = FanOut::builder()
        .workers(3)
        .on_error(ErrorPolicy::Skip)
        .recover(
            Recovery::new()
                .retry(Backoff::fixed(Duration::from_secs(1)).max_retries(2).build().unwrap()),
        )
        .build(|n: u32| async move { if n.is_multiple_of(10) { Err("tens") } else { Ok(n) } })
        .unwrap();
    let mut out = fan_out.process_stream(futures::stream::iter(0..50));
    let mut ok = 0;
    while let Some(result) = out.next().await {
        ok += u32::from(result.is_ok());
    }
    assert_eq!((ok, out.skipped()), (45, 5));
    let metrics = snapshot(&fan_out);
    assert_eq!(
        (metrics.dispatched, metrics.processed, metrics.failed, metrics.retried, metrics.skipped),
        (50, 45, 5, 10, 5)
    );
    let entries: Vec<String> = metrics.entries().iter().map(ToString::to_string).collect();
    assert_eq!(
        entries,
        [
            "conc.fan.items.dispatched=50",
            "conc.fan.items.processed=45",
            "conc.fan.items.failed=5",
            "conc.fan.items.retried=10",
            "conc.fan.items.dead_lettered=0",
            "skipped=5"
        ]
    );
    // Clones share the counters; a reset zeroes them.
    MetricsSource::reset_metrics(&fan_out.clone());
    assert_eq!(fan_out.metrics(), FanOutMetrics::default());

    let mut fan_in = FanIn::new();
    let handle = fan_in.handle();
    fan_in.add(futures::stream::iter(0..200));
    assert_eq!(snapshot(&handle).inputs, 1);
    let mut fan_in = Box::pin(fan_in);
    for _ in 0..200 {
        fan_in.next().await.unwrap();
    }
    assert_eq!(snapshot(&*fan_in).merged, 200, "the owner sees every item");
    // A handle sees them once per 64 and when the fan-in waits or yields.
    let seen = snapshot(&handle).merged;
    assert!((200 - 63..=200).contains(&seen), "{seen}");
    handle.reset_metrics();
    assert_eq!(snapshot(&*fan_in).merged, 200 - seen);
}

#[test]
fn an_item_error_reads_the_same_in_both_crates() {
    let error = FanError::Worker {
        worker: 1,
        attempts: 2,
        error: ItemError::TimedOut(Duration::from_secs(3)),
    };
    assert_eq!(error.to_string(), "worker 1 failed after 2 attempt(s): timed out after 3s");
    assert_eq!(error.attempts(), 2);
    let stage = conc_pipeline::PipelineError::Stage {
        stage: "s".into(),
        attempts: 2,
        error: conc_pipeline::ItemError::TimedOut(Duration::from_secs(3)),
    };
    assert_eq!(stage.to_string(), "stage `s` failed after 2 attempt(s): timed out after 3s");
    assert_eq!(Origin::Worker(1).to_string(), "worker 1");
}
