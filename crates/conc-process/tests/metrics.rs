//! What the crate emits through the `metrics` facade: every `conc.process.*`
//! name of `conc_core::metrics` is emitted by some run, and nothing else is.
//! (This binary installs a global recorder, so it holds this one test.)

use std::collections::BTreeSet;
use std::time::Duration;

use conc_core::backoff::Backoff;
use conc_core::metrics::{ALL, PROCESS_CANCELLED, PROCESS_GAVE_UP, PROCESS_RESTARTS};
use conc_core::time::ManualClock;
use conc_process::{Process, ProcessPool, Supervisor, SupervisorEvent};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_metric_is_emitted_and_nothing_else() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    // spawned, duration; failed; timed_out.
    let _ok = Process::new("true").run().await.unwrap();
    let _failed = Process::new("false").run().await.unwrap();
    let _timed_out =
        Process::new("sleep").arg("30").timeout(Duration::from_millis(50)).run().await.unwrap_err();
    // restarts, gave_up.
    let supervisor = Supervisor::builder()
        .backoff(Backoff::fixed(Duration::from_millis(1)).build().unwrap())
        .intensity(2, Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("crasher", || Process::new("false")).unwrap();
    while !matches!(events.recv().await.unwrap(), SupervisorEvent::GaveUp { .. }) {}
    supervisor.shutdown().await;
    // cancelled.
    let pool = ProcessPool::builder().concurrency(1).fail_fast(true).build().unwrap();
    let _results = pool
        .run([("bad", Process::new("false")), ("skipped", Process::new("true"))])
        .await
        .unwrap();

    let snapshot = snapshotter.snapshot().into_hashmap();
    let emitted: BTreeSet<&str> = snapshot.keys().map(|key| key.key().name()).collect();
    let declared: BTreeSet<&str> = ALL
        .iter()
        .map(|metric| metric.name)
        .filter(|name| name.starts_with("conc.process."))
        .collect();
    assert_eq!(emitted, declared, "emitted (left) against declared (right)");
    let count = |name: &str| {
        snapshot.iter().find(|(key, _)| key.key().name() == name).map(|(_, (_, _, value))| value)
    };
    assert_eq!(count(PROCESS_RESTARTS), Some(&DebugValue::Counter(2)));
    assert_eq!(count(PROCESS_GAVE_UP), Some(&DebugValue::Counter(1)));
    assert_eq!(count(PROCESS_CANCELLED), Some(&DebugValue::Counter(1)));
}
