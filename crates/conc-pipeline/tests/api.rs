//! The public surface: which types cross threads, and the metrics the crate
//! emits.

use std::collections::BTreeMap;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{ALL, MetricsSnapshot, MetricsSource};
use conc_pipeline::{
    DeadLetterQueue, DeadLetterSink, DrainHandle, ErrorPolicy, Outcome, Pipeline, PipelineBuilder,
    PipelineError, PipelineMetrics, PipelineStream, Stage, StageMetrics,
};
use futures::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use static_assertions::assert_impl_all;

assert_impl_all!(Pipeline<u32, String>: Send, Sync, Clone, std::fmt::Debug);
assert_impl_all!(PipelineBuilder<u32, String>: Send, Sync);
assert_impl_all!(Stage<u32, String>: Send);
assert_impl_all!(PipelineStream<u32>: Send, Unpin, futures::Stream);
assert_impl_all!(DrainHandle: Send, Sync, Clone);
assert_impl_all!(PipelineMetrics: Send, Sync, Clone, MetricsSnapshot);
assert_impl_all!(StageMetrics: Send, Sync, Clone);
assert_impl_all!(Outcome<u32>: Send, Sync);
assert_impl_all!(PipelineError: Send, Sync, std::error::Error);
assert_impl_all!(DeadLetterQueue<String>: Send, Sync, Clone, DeadLetterSink<String>);

fn send<T: Send>(_: &T) {}

#[tokio::test]
async fn the_futures_of_a_pipeline_cross_threads() {
    let pipeline: &'static Pipeline<u32> = Box::leak(Box::new(
        Pipeline::builder().map("id", 1, 0, |n: u32| async move { n }).build().unwrap(),
    ));
    let one = pipeline.process(1);
    send(&one);
    let batch = pipeline.process_batch(vec![1]);
    send(&batch);
    let spawned = tokio::spawn(async move { (one.await.unwrap(), batch.await.len()) });
    assert_eq!(spawned.await.unwrap(), (Some(1), 1));
    assert_eq!(pipeline.metrics().stage("id").unwrap().processed, 2);
}

/// Runs `exercise` under a debugging recorder and returns every metric it
/// emitted, by name and stage label.
fn emitted(exercise: impl FnOnce()) -> BTreeMap<(String, String), DebugValue> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, exercise);
    let mut names = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let stage = key.key().labels().find(|l| l.key() == "stage").map(|l| l.value().to_owned());
        names.insert((key.key().name().to_owned(), stage.unwrap_or_default()), value);
    }
    names
}

#[test]
fn every_pipeline_metric_is_emitted_and_everything_emitted_is_a_pipeline_constant() {
    let names = emitted(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let pipeline = Pipeline::builder()
                .then(
                    Stage::new("check", |n: u32| async move {
                        if n == 3 { Err("three") } else { Ok(n) }
                    })
                    .retry(Backoff::fixed(Duration::from_millis(1)).max_retries(1).build().unwrap())
                    .dead_letter(DeadLetterQueue::new(10)),
                )
                .build()
                .unwrap();
            let out = pipeline.process_stream(futures::stream::iter(0..300)).count().await;
            assert_eq!(out, 299);
        });
    });
    let emitted: Vec<&str> = {
        let mut names: Vec<&str> = names.keys().map(|(name, _)| name.as_str()).collect();
        names.dedup();
        names
    };
    let mut ours: Vec<&str> =
        ALL.iter().map(|m| m.name).filter(|name| name.starts_with("conc.pipeline.")).collect();
    ours.sort_unstable();
    assert_eq!(emitted, ours);
    let value = |name: &str| &names[&(name.to_owned(), "check".to_owned())];
    assert_eq!(*value("conc.pipeline.items.processed"), DebugValue::Counter(299));
    assert_eq!(*value("conc.pipeline.items.failed"), DebugValue::Counter(1));
    assert_eq!(*value("conc.pipeline.items.retried"), DebugValue::Counter(1));
    assert_eq!(*value("conc.pipeline.items.dead_lettered"), DebugValue::Counter(1));
    // Items 0, 128 and 256 are the sampled ones.
    assert!(
        matches!(value("conc.pipeline.stage.duration"), DebugValue::Histogram(v) if v.len() == 3)
    );
    assert!(matches!(value("conc.pipeline.stage.queue.depth"), DebugValue::Gauge(_)));
}

#[tokio::test]
async fn a_pipeline_reports_through_metrics_source() {
    fn snapshot<M: MetricsSource>(source: &M) -> M::Snapshot {
        source.metrics()
    }
    let pipeline = Pipeline::builder()
        .then(
            Stage::new("a", |n: u32| async move {
                if n.is_multiple_of(4) { Err("fours") } else { Ok(n) }
            })
            .on_error(ErrorPolicy::Skip),
        )
        .map("b", 2, 0, |n: u32| async move { n })
        .build()
        .unwrap();
    let outcomes = pipeline.process_batch((0..20).collect()).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_output()).count(), 15);
    let metrics = snapshot(&pipeline);
    let entries: Vec<String> = metrics.entries().iter().map(ToString::to_string).collect();
    assert_eq!(
        entries,
        [
            "conc.pipeline.items.processed=30",
            "conc.pipeline.items.failed=5",
            "conc.pipeline.items.retried=0",
            "conc.pipeline.items.dead_lettered=0",
            "skipped=5",
            "conc.pipeline.stage.queue.depth=0"
        ]
    );
    MetricsSource::reset_metrics(&pipeline.clone());
    assert!(pipeline.metrics().stages.iter().all(|s| s.processed == 0 && s.failed == 0));
}
