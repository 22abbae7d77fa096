//! What the scheduler emits through the `metrics` facade: every
//! `conc.bus.schedule.*` name of `conc_core::metrics` is emitted, and nothing
//! else of that prefix is. (This binary installs a global recorder, so it
//! holds this one test.)

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use conc_bus::schedule::{MissedTicks, ScheduledTask, Scheduler};
use conc_core::metrics::{ALL, BUS_SCHEDULE_MISSED, BUS_SCHEDULE_RUNS, BUS_SCHEDULE_SKIPPED};
use conc_core::time::ManualClock;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test]
async fn every_scheduler_metric_is_emitted_and_nothing_else() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    let clock = ManualClock::new();
    let scheduler = Scheduler::builder()
        .clock(clock.clone())
        .now_is(UNIX_EPOCH + Duration::from_secs(1_774_612_800))
        .missed(MissedTicks::Skip)
        .build()
        .unwrap();
    scheduler.add(ScheduledTask::call("ok", || async { Ok::<(), std::io::Error>(()) })).unwrap();
    scheduler
        .add(ScheduledTask::call("fails", || async { Err::<(), _>(std::io::Error::other("no")) }))
        .unwrap();
    scheduler
        .add(
            ScheduledTask::call("skipped", || async { Ok::<(), std::io::Error>(()) }).skip(|| true),
        )
        .unwrap();
    scheduler.tick().await;
    scheduler.idle().await;
    // Ten minutes without a look: nine ticks of each task are missed, the
    // tenth is on time.
    clock.advance(Duration::from_secs(10 * 60 + 30));
    scheduler.tick().await;
    scheduler.idle().await;

    let snapshot = snapshotter.snapshot().into_vec();
    let emitted: BTreeSet<&str> = snapshot
        .iter()
        .map(|(key, ..)| key.key().name())
        .filter(|name| name.starts_with("conc.bus.schedule."))
        .collect();
    let declared: BTreeSet<&str> = ALL
        .iter()
        .map(|metric| metric.name)
        .filter(|name| name.starts_with("conc.bus.schedule."))
        .collect();
    assert_eq!(emitted, declared, "emitted (left) against declared (right)");
    let total = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(total(BUS_SCHEDULE_RUNS), 4, "ok and fails, twice");
    assert_eq!(total(BUS_SCHEDULE_SKIPPED), 2);
    assert_eq!(total(BUS_SCHEDULE_MISSED), 3 * 9);
}
