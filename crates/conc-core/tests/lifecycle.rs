//! The lifecycle registry: naming, order, failures, deadlines and metrics.

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conc_core::lifecycle::{Lifecycle, Registry, RegistryError, StopError};
use conc_core::metrics::{MetricEntry, MetricValue, MetricsSnapshot, MetricsSource};
use conc_core::{BoxError, BoxFuture};
use futures::executor::block_on;

/// How a fake component behaves when stopped.
#[derive(Debug, Clone, Copy)]
enum OnStop {
    Stop,
    Fail,
    Hang,
}

#[derive(Debug)]
struct Fake {
    name: String,
    running: AtomicBool,
    on_stop: OnStop,
    fail_start: bool,
    journal: Arc<Mutex<Vec<String>>>,
    handled: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FakeMetrics {
    handled: u64,
}

impl MetricsSnapshot for FakeMetrics {
    fn entries(&self) -> Vec<MetricEntry> {
        vec![
            MetricEntry::new("handled", MetricValue::Count(self.handled)),
            MetricEntry::new("load", MetricValue::Gauge(0.5)),
        ]
    }
}

impl MetricsSource for Fake {
    type Snapshot = FakeMetrics;
    fn metrics(&self) -> FakeMetrics {
        FakeMetrics { handled: self.handled.load(Ordering::SeqCst) }
    }
    fn reset_metrics(&self) {
        self.handled.store(0, Ordering::SeqCst);
    }
}

impl Lifecycle for Fake {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.journal.lock().unwrap().push(format!("start {}", self.name));
            if self.fail_start {
                return Err("port in use".into());
            }
            self.running.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.journal.lock().unwrap().push(format!("stop {}", self.name));
            match self.on_stop {
                OnStop::Stop => {
                    self.running.store(false, Ordering::SeqCst);
                    Ok(())
                }
                OnStop::Fail => Err("flush failed".into()),
                OnStop::Hang => pending().await,
            }
        })
    }
    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

struct Fixture {
    registry: Registry,
    journal: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    fn new() -> Self {
        Self { registry: Registry::new(), journal: Arc::default() }
    }

    fn add(&self, name: &str, on_stop: OnStop, fail_start: bool) -> Arc<Fake> {
        let fake = Arc::new(Fake {
            name: name.to_owned(),
            running: AtomicBool::new(false),
            on_stop,
            fail_start,
            journal: Arc::clone(&self.journal),
            handled: AtomicU64::new(0),
        });
        self.registry.register(fake.clone()).unwrap();
        fake
    }

    fn journal(&self) -> Vec<String> {
        self.journal.lock().unwrap().clone()
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[test]
fn duplicate_names_are_refused() {
    let fixture = Fixture::new();
    fixture.add("pool", OnStop::Stop, false);
    let again = Arc::new(Fake {
        name: "pool".into(),
        running: AtomicBool::new(false),
        on_stop: OnStop::Stop,
        fail_start: false,
        journal: Arc::default(),
        handled: AtomicU64::new(0),
    });
    let err = fixture.registry.register(again).unwrap_err();
    assert!(matches!(err, RegistryError::Duplicate { ref name } if name == "pool"));
    assert_eq!(err.to_string(), "a component named `pool` is already registered");
    assert_eq!(fixture.registry.len(), 1);
}

#[test]
fn get_list_and_unregister() {
    let fixture = Fixture::new();
    let pool = fixture.add("pool", OnStop::Stop, false);
    fixture.add("worker", OnStop::Stop, false);

    assert_eq!(fixture.registry.get("pool").unwrap().name(), "pool");
    let typed = fixture.registry.get_as::<Fake>("pool").unwrap();
    assert!(Arc::ptr_eq(&typed, &pool));
    assert!(fixture.registry.get_as::<String>("pool").is_none());
    assert!(fixture.registry.get("nope").is_none());

    let names: Vec<_> = fixture.registry.list().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["pool", "worker"]);

    let removed = fixture.registry.unregister("pool").unwrap();
    assert_eq!(removed.name(), "pool");
    assert!(matches!(
        fixture.registry.unregister("pool").unwrap_err(),
        RegistryError::NotFound { ref name } if name == "pool"
    ));
    assert_eq!(fixture.registry.len(), 1);
    assert!(!fixture.registry.is_empty());
}

#[test]
fn starts_in_order_and_stops_in_reverse() {
    let fixture = Fixture::new();
    for name in ["db", "pool", "worker"] {
        fixture.add(name, OnStop::Stop, false);
    }
    block_on(fixture.registry.start_all()).unwrap();
    assert!(fixture.registry.list().iter().all(|s| s.running));

    let report = block_on(fixture.registry.shutdown_all(soon()));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.stopped, ["worker", "pool", "db"]);
    assert_eq!(
        fixture.journal(),
        ["start db", "start pool", "start worker", "stop worker", "stop pool", "stop db"]
    );
    assert!(fixture.registry.list().iter().all(|s| !s.running));
}

#[test]
fn a_failed_start_names_the_component_and_starts_nothing_after_it() {
    let fixture = Fixture::new();
    fixture.add("db", OnStop::Stop, false);
    fixture.add("http", OnStop::Stop, true);
    fixture.add("worker", OnStop::Stop, false);

    let err = block_on(fixture.registry.start_all()).unwrap_err();
    let RegistryError::StartFailed { name, source } = err else { panic!("{err:?}") };
    assert_eq!(name, "http");
    assert_eq!(source.to_string(), "port in use");
    assert_eq!(fixture.journal(), ["start db", "start http"]);
}

#[test]
fn failures_and_overruns_are_reported_and_the_rest_still_stop() {
    let fixture = Fixture::new();
    fixture.add("first", OnStop::Stop, false);
    fixture.add("stuck", OnStop::Hang, false);
    fixture.add("broken", OnStop::Fail, false);
    fixture.add("last", OnStop::Stop, false);
    block_on(fixture.registry.start_all()).unwrap();

    let deadline = Instant::now() + Duration::from_millis(50);
    let report = block_on(fixture.registry.shutdown_all(deadline));

    assert_eq!(report.stopped, ["last", "first"]);
    let failed: Vec<_> = report.failed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(failed, ["broken", "stuck"]);
    assert!(matches!(&report.failed[0].1, StopError::Failed(e) if e.to_string() == "flush failed"));
    assert!(matches!(report.failed[1].1, StopError::DeadlineExceeded));
    assert!(!report.is_clean());
    assert_eq!(
        report.to_string(),
        "2 stopped; `broken` stop failed: flush failed; `stuck` did not stop before the deadline"
    );
}

#[test]
fn a_past_deadline_still_lets_ready_components_stop() {
    let fixture = Fixture::new();
    fixture.add("quick", OnStop::Stop, false);
    let report = block_on(fixture.registry.shutdown_all(Instant::now()));
    assert_eq!(report.stopped, ["quick"]);
    assert!(report.is_clean());
}

#[test]
fn metrics_are_aggregated_and_reset() {
    let fixture = Fixture::new();
    let a = fixture.add("a", OnStop::Stop, false);
    let b = fixture.add("b", OnStop::Stop, false);
    a.handled.store(3, Ordering::SeqCst);
    b.handled.store(4, Ordering::SeqCst);

    let metrics = fixture.registry.metrics();
    assert_eq!(metrics.components.len(), 2);
    assert_eq!(metrics.components[0].0, "a");
    assert_eq!(metrics.total_count("handled"), 7);
    assert!((metrics.total_gauge("load") - 1.0).abs() < f64::EPSILON);
    assert_eq!(metrics.total_count("missing"), 0);

    fixture.registry.reset_metrics();
    assert_eq!(fixture.registry.metrics().total_count("handled"), 0);
}

#[test]
fn debug_lists_names() {
    let fixture = Fixture::new();
    fixture.add("pool", OnStop::Stop, false);
    assert_eq!(format!("{:?}", fixture.registry), r#"["pool"]"#);
}

/// A component that looks at a sibling through the registry while being
/// asked about itself: the registry must not hold its lock meanwhile.
#[derive(Debug)]
struct Watcher {
    registry: std::sync::Weak<Registry>,
}

impl Lifecycle for Watcher {
    fn name(&self) -> &'static str {
        "watcher"
    }
    fn start(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
    fn is_running(&self) -> bool {
        // Registering while `list` runs: a writer queued behind a held read
        // lock would deadlock here.
        let registry = self.registry.upgrade().unwrap();
        let late = Arc::new(Fake {
            name: format!("late-{}", registry.len()),
            running: AtomicBool::new(false),
            on_stop: OnStop::Stop,
            fail_start: false,
            journal: Arc::default(),
            handled: AtomicU64::new(0),
        });
        registry.register(late).unwrap();
        registry.get("db").is_some_and(|db| db.is_running())
    }
}

impl MetricsSource for Watcher {
    type Snapshot = ();
    fn metrics(&self) {}
    fn reset_metrics(&self) {}
}

#[test]
fn components_may_use_the_registry_from_their_own_methods() {
    let registry = Arc::new(Registry::new());
    let watcher = Arc::new(Watcher { registry: Arc::downgrade(&registry) });
    registry.register(watcher).unwrap();
    let listed = registry.list();
    assert_eq!(listed.len(), 1, "the list is a snapshot taken before component code ran");
    assert_eq!(registry.len(), 2, "the watcher registered a component meanwhile");
}

#[test]
fn an_unregistered_component_can_be_registered_again() {
    let fixture = Fixture::new();
    fixture.add("pool", OnStop::Stop, false);
    let erased = fixture.registry.unregister("pool").unwrap();
    fixture.registry.register(erased).unwrap();
    assert_eq!(fixture.registry.list()[0].name, "pool");
}
