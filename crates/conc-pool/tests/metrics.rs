//! What the pools emit through the `metrics` facade: every pool metric of
//! `conc_core::metrics` and nothing else, labelled with the pool's name, with
//! task waits and durations read on the pool's clock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use conc_core::metrics::{ALL, POOL_TASK_DURATION, POOL_TASK_WAIT};
use conc_core::time::ManualClock;
use conc_pool::{AsyncPool, BlockingPool, ScaleDecision, ScalePolicy, ScaleSnapshot, TaskOptions};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// One operation on an instrument: its name, its labels and the value.
type Op = (String, Vec<(String, String)>, f64);

/// A recorder that keeps every operation made through its handles.
#[derive(Debug, Default, Clone)]
struct Tally(Arc<Mutex<Vec<Op>>>);

#[derive(Debug)]
struct Instrument {
    name: String,
    labels: Vec<(String, String)>,
    tally: Tally,
}

impl Instrument {
    fn note(&self, value: f64) {
        let op = (self.name.clone(), self.labels.clone(), value);
        self.tally.0.lock().unwrap_or_else(PoisonError::into_inner).push(op);
    }
}

impl CounterFn for Instrument {
    fn increment(&self, value: u64) {
        self.note(value as f64);
    }

    fn absolute(&self, value: u64) {
        self.note(value as f64);
    }
}

impl GaugeFn for Instrument {
    fn increment(&self, value: f64) {
        self.note(value);
    }

    fn decrement(&self, value: f64) {
        self.note(-value);
    }

    fn set(&self, value: f64) {
        self.note(value);
    }
}

impl HistogramFn for Instrument {
    fn record(&self, value: f64) {
        self.note(value);
    }
}

impl Tally {
    fn instrument(&self, key: &Key) -> Arc<Instrument> {
        let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        Arc::new(Instrument { name: key.name().to_owned(), labels, tally: self.clone() })
    }

    fn ops(&self) -> Vec<Op> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn names(&self) -> BTreeSet<String> {
        self.ops().into_iter().map(|(name, ..)| name).collect()
    }

    /// The values recorded under `name`.
    fn values(&self, name: &str) -> Vec<f64> {
        self.ops().into_iter().filter(|(n, ..)| n == name).map(|(.., v)| v).collect()
    }
}

impl Recorder for Tally {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.instrument(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.instrument(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.instrument(key))
    }
}

/// The pool metrics `conc_core::metrics` describes.
fn pool_names() -> BTreeSet<String> {
    ALL.iter().filter(|m| m.name.starts_with("conc.pool.")).map(|m| m.name.to_owned()).collect()
}

/// A policy that never changes the size: only `scale_up`/`scale_down` do.
struct ByHandOnly;

impl ScalePolicy for ByHandOnly {
    fn decide(&self, _: &ScaleSnapshot) -> ScaleDecision {
        ScaleDecision::Hold
    }
}

/// Every kind of event a blocking pool can see, on a manual clock: a task
/// that waited 5 ms and ran 7 ms, a panic, a cancellation, a missed
/// deadline, a refusal, scaling both ways.
#[test]
fn a_blocking_pool_emits_every_pool_metric_and_nothing_else() {
    let tally = Tally::default();
    let clock = ManualClock::new();
    let pool = metrics::with_local_recorder(&tally, || {
        BlockingPool::builder()
            .name("emitting")
            .workers(1)
            .max_workers(2)
            .scale_policy(ByHandOnly)
            .queue_capacity(4)
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let (release, gate) = mpsc::channel::<()>();
    let held = pool.submit(move || gate.recv().is_ok()).unwrap();
    while pool.metrics().busy == 0 {
        std::thread::yield_now();
    }
    let ticking = clock.clone();
    let timed = pool.submit(move || ticking.advance(Duration::from_millis(7))).unwrap();
    let mut cancelled = pool.submit(|| ()).unwrap();
    cancelled.cancel();
    let late =
        pool.submit_with(TaskOptions::new().timeout(Duration::from_millis(1)), || ()).unwrap();
    let panics = pool.submit(|| -> () { panic!("boom") }).unwrap();
    assert!(pool.try_submit(|| ()).is_err(), "the queue of 4 is full");
    clock.advance(Duration::from_millis(5));
    release.send(()).unwrap();
    assert!(held.join().unwrap());
    timed.join().unwrap();
    assert!(late.join().is_err() && panics.join().is_err() && cancelled.join().is_err());
    assert_eq!(pool.scale_up(1), 1);
    assert_eq!(pool.scale_down(1), 1);
    assert!(pool.shutdown(Duration::from_secs(30)).is_clean());

    assert_eq!(tally.names(), pool_names(), "emitted names against the described pool names");
    assert!(
        tally
            .ops()
            .iter()
            .all(|(_, labels, _)| labels.contains(&("pool".into(), "emitting".into())))
    );
    // One worker, in queue order: the held task started at once; the timed
    // one waited the 5 ms the clock moved while the worker was held, then ran
    // the 7 ms it moves the clock by; the three after it waited 12 ms.
    assert_eq!(tally.values(POOL_TASK_WAIT), [0.0, 0.005, 0.012, 0.012, 0.012]);
    assert_eq!(tally.values(POOL_TASK_DURATION), [0.005, 0.007, 0.0, 0.0, 0.0]);
}

/// The async pool emits through the same instruments.
#[tokio::test]
async fn an_async_pool_emits_waits_and_durations_on_its_clock() {
    let tally = Tally::default();
    let clock = ManualClock::new();
    let pool = metrics::with_local_recorder(&tally, || {
        AsyncPool::builder().name("async").workers(1).clock(clock.clone()).build().unwrap()
    });
    let gate = Arc::new(tokio::sync::Notify::new());
    let held = Arc::clone(&gate);
    let first = pool.submit(async move { held.notified().await }).await.unwrap();
    while pool.metrics().busy == 0 {
        tokio::task::yield_now().await;
    }
    let ticking = clock.clone();
    let second =
        pool.submit(async move { ticking.advance(Duration::from_millis(3)) }).await.unwrap();
    clock.advance(Duration::from_millis(2));
    gate.notify_one();
    first.await.unwrap();
    second.await.unwrap();
    assert!(pool.shutdown(Duration::from_secs(30)).await.is_clean());
    assert_eq!(tally.values(POOL_TASK_WAIT), [0.0, 0.002]);
    assert_eq!(tally.values(POOL_TASK_DURATION), [0.002, 0.003]);
    assert!(tally.names().iter().all(|name| pool_names().contains(name)));
}
