//! The store's `LockMetrics` snapshot and the `conc.lock.*` metrics it emits:
//! every `LOCK_*` constant is emitted, and nothing else is.

use std::collections::BTreeSet;
use std::time::Duration;

use conc_core::metrics::{
    LOCK_ACQUIRED, LOCK_CONTENDED, LOCK_EXPIRED, LOCK_HOLD, LOCK_RELEASED, MetricsSnapshot,
    MetricsSource,
};
use conc_core::time::ManualClock;
use conc_lock::{LockError, LockStore, MemoryBackend};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

const TTL: Duration = Duration::from_secs(10);

#[test]
fn every_lock_metric_is_emitted_and_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let clock = ManualClock::new();
    // Facade handles are registered when the store is made: under the recorder.
    let store = metrics::with_local_recorder(&recorder, || {
        LockStore::new(MemoryBackend::builder().clock(clock.clone()).build())
    });
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let lock = store.lock("job", TTL).unwrap();
            let guard = lock.get().await.unwrap().expect("free");
            assert!(store.lock("job", TTL).unwrap().get().await.unwrap().is_none());
            guard.release().await.unwrap();

            // A hold whose time to live runs out before release is lost.
            let guard = lock.get().await.unwrap().expect("free again");
            clock.advance(TTL);
            assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));

            // A funnel slot counts like a lock.
            let funnel = store.funnel("exports", 1, TTL).unwrap();
            let permit = funnel.get().await.unwrap().expect("a free slot");
            assert!(funnel.get().await.unwrap().is_none());
            drop(permit); // released by the dropped permit
        });
    });
    let metrics = store.metrics();
    assert_eq!(
        (metrics.acquired, metrics.contended, metrics.released, metrics.expired),
        (3, 2, 2, 1)
    );
    assert_eq!(metrics.entries().len(), 4);

    let snapshot = snapshotter.snapshot().into_vec();
    let emitted: BTreeSet<&str> =
        snapshot.iter().map(|(key, ..)| key.key().name()).collect::<BTreeSet<_>>();
    let expected: BTreeSet<&str> =
        [LOCK_ACQUIRED, LOCK_CONTENDED, LOCK_RELEASED, LOCK_EXPIRED, LOCK_HOLD].into();
    assert_eq!(emitted, expected, "every LOCK_* constant, and nothing else");
    let counter = |name: &str| {
        snapshot.iter().find(|(key, ..)| key.key().name() == name).map(|(.., value)| value)
    };
    assert_eq!(counter(LOCK_ACQUIRED), Some(&DebugValue::Counter(3)));
    assert_eq!(counter(LOCK_CONTENDED), Some(&DebugValue::Counter(2)));
    assert_eq!(counter(LOCK_RELEASED), Some(&DebugValue::Counter(2)));
    assert_eq!(counter(LOCK_EXPIRED), Some(&DebugValue::Counter(1)));
    assert!(matches!(counter(LOCK_HOLD), Some(DebugValue::Histogram(h)) if h.len() == 2));

    store.reset_metrics();
    assert_eq!(store.metrics(), conc_lock::LockMetrics::default());
    // Clones share the counts.
    let clone = store.clone();
    runtime.block_on(async {
        let guard = clone.lock("again", TTL).unwrap().get().await.unwrap().unwrap();
        guard.release().await.unwrap();
    });
    assert_eq!(store.metrics().acquired, 1);
}
