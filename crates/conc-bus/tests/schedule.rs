//! The scheduler on a manual clock: helpers and time zones across DST
//! changes, overlapping runs, one server among many schedulers, missed
//! ticks, filters, failures, events and metrics.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conc_bus::schedule::{
    MemoryScheduleStore, MissedTicks, ScheduleError, ScheduleEvent, ScheduleStore, ScheduledTask,
    Scheduler, SkipReason,
};
use conc_bus::testing::PausedTime;
use conc_bus::{Job, MemoryQueue, Queue};
use conc_core::metrics::MetricsSource;
use conc_core::time::ManualClock;
use conc_lock::{LockStore, MemoryBackend};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// `2026-03-27T12:00:00Z` and friends, as Unix seconds, written out so the
/// tests do not depend on the library they check.
const MARCH_27_NOON_UTC: u64 = 1_774_612_800;
const OCTOBER_24_NOON_UTC: u64 = 1_792_843_200;

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

async fn ok() -> Result<(), std::io::Error> {
    Ok(())
}

/// The task names and ticks of the `Started` events received so far.
fn started(events: &mut broadcast::Receiver<ScheduleEvent>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(ScheduleEvent::Started { task, tick }) => {
                out.push((task, tick.duration_since(UNIX_EPOCH).unwrap().as_secs()));
            }
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Lagged(lost)) => panic!("{lost} events lost"),
            Err(_) => return out,
        }
    }
}

/// Advances the clock a minute at a time for `minutes`, looking at the
/// tasks after each step.
async fn walk(
    scheduler: &Scheduler<impl conc_lock::LockBackend>,
    clock: &ManualClock,
    minutes: u32,
) {
    for _ in 0..minutes {
        clock.advance(Duration::from_secs(60));
        scheduler.tick().await;
    }
    scheduler.idle().await;
}

fn paris(unix: u64) -> String {
    // Paris is UTC+1 in winter and UTC+2 in summer; the tests name the
    // offsets they expect instead of asking a time library.
    let summer_2026 = (1_774_746_000..1_792_890_000).contains(&unix);
    let offset = if summer_2026 { 2 } else { 1 };
    let local = unix + offset * 3600;
    let (hour, minute) = ((local / 3600) % 24, (local / 60) % 60);
    format!("{hour:02}:{minute:02}+0{offset}")
}

#[tokio::test]
async fn a_daily_time_in_the_spring_gap_runs_once_right_after_the_jump() {
    let clock = ManualClock::new();
    let scheduler = Scheduler::builder()
        .time_zone("Europe/Paris")
        .clock(clock.clone())
        .now_is(at(MARCH_27_NOON_UTC))
        .build()
        .unwrap();
    scheduler.add(ScheduledTask::call("at-2:30", ok).daily_at("2:30")).unwrap();
    scheduler.add(ScheduledTask::call("hourly", ok).hourly()).unwrap();
    let mut events = scheduler.subscribe();
    scheduler.tick().await;
    walk(&scheduler, &clock, 3 * 24 * 60).await;

    let runs = started(&mut events);
    let daily: Vec<String> =
        runs.iter().filter(|(task, _)| task == "at-2:30").map(|(_, tick)| paris(*tick)).collect();
    // March 28 at 2:30 CET; March 29 has no 2:30 (2:00 jumps to 3:00), so
    // it runs at 3:00 CEST, once; March 30 at 2:30 CEST.
    assert_eq!(daily, ["02:30+01", "03:00+02", "02:30+02"]);

    // The hourly task runs on each real hour: 23 on the short day.
    let march_29 = |tick: &u64| (1_774_738_800..1_774_821_600).contains(tick); // local midnight to midnight
    let hourly_on_29 =
        runs.iter().filter(|(task, tick)| task == "hourly" && march_29(tick)).count();
    assert_eq!(hourly_on_29, 23);
}

#[tokio::test]
async fn a_daily_time_in_the_repeated_autumn_hour_runs_once_and_intervals_run_twice() {
    let clock = ManualClock::new();
    let scheduler = Scheduler::builder()
        .time_zone("Europe/Paris")
        .clock(clock.clone())
        .now_is(at(OCTOBER_24_NOON_UTC))
        .build()
        .unwrap();
    scheduler.add(ScheduledTask::call("at-2:30", ok).daily_at("2:30")).unwrap();
    scheduler.add(ScheduledTask::call("hourly", ok).hourly()).unwrap();
    scheduler.add(ScheduledTask::call("quarter", ok).every_fifteen_minutes()).unwrap();
    let mut events = scheduler.subscribe();
    scheduler.tick().await;
    walk(&scheduler, &clock, 2 * 24 * 60).await;

    let runs = started(&mut events);
    let daily: Vec<String> =
        runs.iter().filter(|(task, _)| task == "at-2:30").map(|(_, tick)| paris(*tick)).collect();
    // October 25: 2:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC
    // (CET); it runs at the first only.
    assert_eq!(daily, ["02:30+02", "02:30+01"], "October 25, then October 26");

    let october_25 = |tick: &u64| (1_792_879_200..1_792_969_200).contains(tick);
    let count =
        |name: &str| runs.iter().filter(|(task, tick)| task == name && october_25(tick)).count();
    assert_eq!(count("hourly"), 25, "the repeated hour runs twice");
    assert_eq!(count("quarter"), 25 * 4);
}

#[tokio::test]
async fn time_zones_are_per_task() {
    let clock = ManualClock::new();
    let scheduler =
        Scheduler::builder().clock(clock.clone()).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    scheduler.add(ScheduledTask::call("utc", ok).daily_at("9:00")).unwrap();
    scheduler
        .add(ScheduledTask::call("tokyo", ok).daily_at("9:00").time_zone("Asia/Tokyo"))
        .unwrap();
    let mut events = scheduler.subscribe();
    walk(&scheduler, &clock, 24 * 60).await;
    let runs = started(&mut events);
    assert_eq!(
        runs,
        [
            ("utc".to_owned(), MARCH_27_NOON_UTC + 21 * 3600),
            ("tokyo".to_owned(), MARCH_27_NOON_UTC + 12 * 3600)
        ]
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_run_still_going_makes_the_next_tick_skip_when_without_overlapping() {
    let clock = ManualClock::new();
    let scheduler =
        Scheduler::builder().clock(clock.clone()).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicU32::new(0));
    let (task_gate, task_runs) = (Arc::clone(&gate), Arc::clone(&runs));
    scheduler
        .add(
            ScheduledTask::call("slow", move || {
                let (gate, runs) = (Arc::clone(&task_gate), Arc::clone(&task_runs));
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    gate.acquire()
                        .await
                        .map(tokio::sync::SemaphorePermit::forget)
                        .map_err(std::io::Error::other)
                }
            })
            .without_overlapping(),
        )
        .unwrap();
    let mut events = scheduler.subscribe();
    assert_eq!(scheduler.tick().await, 1);
    tokio::task::yield_now().await;
    clock.advance(Duration::from_secs(60));
    assert_eq!(scheduler.tick().await, 0, "the first run still holds the lock");
    gate.add_permits(1);
    scheduler.idle().await;
    clock.advance(Duration::from_secs(60));
    assert_eq!(scheduler.tick().await, 1, "the lock was released when the run ended");
    gate.add_permits(1);
    scheduler.idle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let mut skipped = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let ScheduleEvent::Skipped { reason, .. } = event {
            skipped.push(reason);
        }
    }
    assert_eq!(skipped, [SkipReason::Overlapping]);
    assert_eq!(scheduler.metrics().skipped, 1);
}

#[tokio::test]
async fn schedulers_sharing_a_lock_store_run_each_tick_once() {
    let clock = ManualClock::new();
    let locks = LockStore::new(MemoryBackend::builder().clock(clock.clone()).build());
    let runs = Arc::new(AtomicU32::new(0));
    let schedulers: Vec<_> = (0..3)
        .map(|_| {
            let scheduler = Scheduler::builder()
                .locks(locks.clone())
                .clock(clock.clone())
                .now_is(at(MARCH_27_NOON_UTC))
                .build()
                .unwrap();
            let runs = Arc::clone(&runs);
            let task = ScheduledTask::call("report", move || {
                let runs = Arc::clone(&runs);
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), std::io::Error>(())
                }
            });
            scheduler.add(task.every_five_minutes().on_one_server()).unwrap();
            scheduler
        })
        .collect();
    for minute in 0..=60 {
        if minute > 0 {
            clock.advance(Duration::from_secs(60));
        }
        for scheduler in &schedulers {
            scheduler.tick().await;
        }
    }
    for scheduler in &schedulers {
        scheduler.idle().await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 13, "noon to one, every five minutes, once each");
    let skipped: u64 = schedulers.iter().map(|s| s.metrics().skipped).sum();
    assert_eq!(skipped, 26, "the two others skipped each tick");
}

#[tokio::test]
async fn schedulers_of_separate_lock_handles_on_one_sqlite_file_run_each_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.db");
    let clock = ManualClock::new();
    let runs = Arc::new(AtomicU32::new(0));
    let mut schedulers = Vec::new();
    for _ in 0..2 {
        // Each its own connection to the file, as two processes would have.
        let locks = LockStore::new(conc_lock::SqliteBackend::open(&path).unwrap());
        let scheduler = Scheduler::builder()
            .locks(locks)
            .clock(clock.clone())
            .now_is(at(MARCH_27_NOON_UTC))
            .build()
            .unwrap();
        let runs = Arc::clone(&runs);
        let task = ScheduledTask::call("report", move || {
            let runs = Arc::clone(&runs);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<(), std::io::Error>(())
            }
        });
        scheduler.add(task.on_one_server()).unwrap();
        schedulers.push(scheduler);
    }
    for minute in 0..10 {
        if minute > 0 {
            clock.advance(Duration::from_secs(60));
        }
        for scheduler in &schedulers {
            scheduler.tick().await;
        }
    }
    for scheduler in &schedulers {
        scheduler.idle().await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
}

/// A scheduler that ran an hourly task at 10:00 stops; another starts at
/// 15:30 with the same store: 11:00 to 15:00 were missed.
async fn after_downtime(policy: MissedTicks) -> (Vec<u64>, Vec<ScheduleEvent>) {
    const TEN_UTC: u64 = MARCH_27_NOON_UTC - 2 * 3600;
    let store = Arc::new(MemoryScheduleStore::new());
    let clock = ManualClock::new();
    let first = Scheduler::builder()
        .store(Shared(Arc::clone(&store)))
        .clock(clock.clone())
        .now_is(at(TEN_UTC))
        .build()
        .unwrap();
    first.add(ScheduledTask::call("hourly", ok).hourly()).unwrap();
    assert_eq!(first.tick().await, 1);
    first.idle().await;
    drop(first);

    let second = Scheduler::builder()
        .store(Shared(store))
        .clock(ManualClock::new())
        .now_is(at(TEN_UTC + 5 * 3600 + 1800))
        .missed(policy)
        .build()
        .unwrap();
    second.add(ScheduledTask::call("hourly", ok).hourly()).unwrap();
    let mut events = second.subscribe();
    second.tick().await;
    second.idle().await;
    let mut ticks = Vec::new();
    let mut other = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            ScheduleEvent::Started { tick, .. } => {
                ticks.push((tick.duration_since(UNIX_EPOCH).unwrap().as_secs() - TEN_UTC) / 3600);
            }
            ScheduleEvent::Finished { .. } => {}
            event => other.push(event),
        }
    }
    (ticks, other)
}

/// A store shared by two schedulers of one test.
#[derive(Debug)]
struct Shared(Arc<MemoryScheduleStore>);

impl ScheduleStore for Shared {
    fn last_tick<'a>(
        &'a self,
        task: &'a str,
    ) -> conc_core::BoxFuture<'a, Result<Option<SystemTime>, conc_core::BoxError>> {
        self.0.last_tick(task)
    }
    fn record_tick<'a>(
        &'a self,
        task: &'a str,
        tick: SystemTime,
    ) -> conc_core::BoxFuture<'a, Result<(), conc_core::BoxError>> {
        self.0.record_tick(task, tick)
    }
}

#[tokio::test]
async fn missed_ticks_are_skipped_run_once_or_run_each_as_the_policy_says() {
    let missed = |ran| ScheduleEvent::Missed { task: "hourly".into(), ticks: 5, ran };
    let (ticks, other) = after_downtime(MissedTicks::Skip).await;
    assert_eq!((ticks, other), (vec![], vec![missed(0)]));
    let (ticks, other) = after_downtime(MissedTicks::RunOnce).await;
    assert_eq!((ticks, other), (vec![5], vec![missed(1)]), "once, for 15:00");
    let (ticks, other) = after_downtime(MissedTicks::RunAll { max: 3 }).await;
    assert_eq!((ticks, other), (vec![3, 4, 5], vec![missed(3)]), "the latest three, oldest first");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_store_remembers_the_last_tick_across_restarts() {
    use conc_bus::schedule::SqliteScheduleStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let first = Scheduler::builder()
        .store(SqliteScheduleStore::open(&path).unwrap())
        .clock(clock.clone())
        .now_is(at(MARCH_27_NOON_UTC))
        .build()
        .unwrap();
    first.add(ScheduledTask::call("daily", ok).daily_at("12:00")).unwrap();
    assert_eq!(first.tick().await, 1);
    drop(first);
    // Two days later, a new process: one tick (March 28) was missed.
    let second = Scheduler::builder()
        .store(SqliteScheduleStore::open(&path).unwrap())
        .clock(ManualClock::new())
        .now_is(at(MARCH_27_NOON_UTC + 2 * 86_400 - 60))
        .missed(MissedTicks::RunOnce)
        .build()
        .unwrap();
    second.add(ScheduledTask::call("daily", ok).daily_at("12:00")).unwrap();
    let mut events = second.subscribe();
    assert_eq!(second.tick().await, 1);
    second.idle().await;
    assert_eq!(started(&mut events), [("daily".to_owned(), MARCH_27_NOON_UTC + 86_400)]);
}

/// A task named `name` that counts its runs.
fn counting(name: &str) -> (ScheduledTask, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let task = ScheduledTask::call(name, move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), std::io::Error>(())
        }
    });
    (task, runs)
}

#[tokio::test]
async fn filters_decide_on_each_tick() {
    let clock = ManualClock::new();
    let scheduler =
        Scheduler::builder().clock(clock.clone()).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&open);
    let (when, when_runs) = counting("when");
    scheduler.add(when.when(move || flag.load(Ordering::SeqCst))).unwrap();
    let (skip, skip_runs) = counting("skip");
    scheduler.add(skip.skip(|| true)).unwrap();
    let (between, between_runs) = counting("between");
    scheduler.add(between.hourly().between("13:00", "15:00")).unwrap();
    let (unless, unless_runs) = counting("unless");
    scheduler.add(unless.hourly().unless_between("22:00", "2:00")).unwrap();
    scheduler.tick().await; // 12:00: `when` says no
    open.store(true, Ordering::SeqCst);
    walk(&scheduler, &clock, 24 * 60 - 1).await;
    let count = |runs: &AtomicU32| runs.load(Ordering::SeqCst);
    assert_eq!(count(&when_runs), 24 * 60 - 1);
    assert_eq!(count(&skip_runs), 0);
    assert_eq!(count(&between_runs), 3, "13:00, 14:00, 15:00");
    assert_eq!(count(&unless_runs), 24 - 5, "not 22:00 to 2:00");
    assert_eq!(scheduler.metrics().skipped, 1 + 24 * 60 + (24 - 3) + 5);
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digest;
impl Job for Digest {
    const NAME: &'static str = "digest";
}

#[tokio::test]
async fn a_job_task_pushes_the_job_each_tick() {
    let clock = ManualClock::new();
    let queue = Queue::new(MemoryQueue::new());
    let scheduler =
        Scheduler::builder().clock(clock.clone()).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    scheduler.add(ScheduledTask::job(&queue, Digest).every_ten_minutes()).unwrap();
    assert_eq!(scheduler.tasks(), ["digest"]);
    scheduler.tick().await;
    walk(&scheduler, &clock, 60).await;
    assert_eq!(queue.size("default").await.unwrap().ready, 7);
}

#[tokio::test]
async fn failures_and_panics_are_reported_and_counted() {
    let clock = ManualClock::new();
    let scheduler =
        Scheduler::builder().clock(clock.clone()).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    scheduler
        .add(ScheduledTask::call("fails", || async {
            Err::<(), _>(std::io::Error::other("disk full"))
        }))
        .unwrap();
    scheduler
        .add(ScheduledTask::call("panics", || async {
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        }))
        .unwrap();
    let mut events = scheduler.subscribe();
    scheduler.tick().await;
    scheduler.idle().await;
    let mut errors = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let ScheduleEvent::Failed { task, error, .. } = event {
            errors.push((task, error));
        }
    }
    errors.sort();
    assert_eq!(
        errors,
        [
            ("fails".to_owned(), "disk full".to_owned()),
            ("panics".to_owned(), "panicked: boom".to_owned())
        ]
    );
    let metrics = scheduler.metrics();
    assert_eq!((metrics.runs, metrics.failed, metrics.succeeded, metrics.running), (2, 2, 0, 0));
}

#[tokio::test]
async fn bad_tasks_and_settings_are_refused_with_the_setting_named() {
    let scheduler = Scheduler::builder().build().unwrap();
    let field = |result: Result<(), ScheduleError>| match result {
        Err(ScheduleError::Config(error)) => error.field.to_string(),
        other => panic!("expected a refused setting, got {other:?}"),
    };
    assert_eq!(field(scheduler.add(ScheduledTask::call("a", ok).cron("61 * * * *"))), "cron");
    assert_eq!(
        field(scheduler.add(ScheduledTask::call("a", ok).time_zone("Mars/Olympus"))),
        "time_zone"
    );
    assert_eq!(field(scheduler.add(ScheduledTask::call("a", ok).daily_at("9"))), "daily_at");
    assert_eq!(
        field(scheduler.add(ScheduledTask::call("a", ok).without_overlapping_for(Duration::ZERO))),
        "without_overlapping_for"
    );
    assert_eq!(
        field(scheduler.add(ScheduledTask::call("a", ok).missed(MissedTicks::RunAll { max: 0 }))),
        "missed"
    );
    scheduler.add(ScheduledTask::call("a", ok)).unwrap();
    assert_eq!(field(scheduler.add(ScheduledTask::call("a", ok))), "name");

    let build = |builder: conc_bus::schedule::SchedulerBuilder| match builder.build() {
        Err(ScheduleError::Config(error)) => error.field.to_string(),
        other => panic!("expected a refused setting, got {other:?}"),
    };
    assert_eq!(build(Scheduler::builder().time_zone("Nowhere")), "time_zone");
    assert_eq!(build(Scheduler::builder().grace(Duration::ZERO)), "grace");
    assert_eq!(build(Scheduler::builder().lock_ttl(Duration::MAX)), "lock_ttl");
    assert_eq!(build(Scheduler::builder().poll(Duration::ZERO)), "poll");
    assert_eq!(build(Scheduler::builder().name("")), "name");
}

#[tokio::test(start_paused = true)]
async fn the_loop_runs_ticks_on_time_under_tokio_time() {
    let scheduler =
        Scheduler::builder().clock(PausedTime).now_is(at(MARCH_27_NOON_UTC)).build().unwrap();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (record, clock) = (Arc::clone(&runs), scheduler.clone());
    scheduler
        .add(ScheduledTask::call("every-minute", move || {
            let (record, clock) = (Arc::clone(&record), clock.clone());
            async move {
                let now = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                record.lock().unwrap().push(at(now));
                Ok::<(), std::io::Error>(())
            }
        }))
        .unwrap();
    scheduler.start().unwrap();
    tokio::time::sleep(Duration::from_secs(10 * 60 + 30)).await;
    scheduler.stop();
    scheduler.idle().await;
    let runs = runs.lock().unwrap().clone();
    let expected: Vec<SystemTime> =
        (0..=10).map(|minute| at(MARCH_27_NOON_UTC + minute * 60)).collect();
    assert_eq!(runs, expected, "each minute, on the minute");
}

#[tokio::test]
async fn a_registry_starts_and_stops_it() {
    use conc_core::lifecycle::Lifecycle;
    let scheduler = Scheduler::builder().build().unwrap();
    scheduler.add(ScheduledTask::call("a", ok)).unwrap();
    Lifecycle::start(&scheduler).await.unwrap();
    tokio::task::yield_now().await;
    assert!(scheduler.is_running());
    Lifecycle::stop(&scheduler, std::time::Instant::now() + Duration::from_secs(5)).await.unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!scheduler.is_running());
}

static_assertions::assert_impl_all!(Scheduler: Send, Sync, Clone);
static_assertions::assert_impl_all!(ScheduledTask: Send, Sync);
static_assertions::assert_impl_all!(ScheduleEvent: Send, Sync);
static_assertions::assert_impl_all!(ScheduleError: Send, Sync);
