//! The `Concurrency` facade: drivers by name, results in input order, defer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_core::driver::{Driver, Task, TaskError, TaskOutput, downcast_output};
use conc_pool::{Concurrency, ConcurrencyError};

fn outputs(results: Vec<Result<TaskOutput, TaskError>>) -> Vec<Result<u64, String>> {
    results
        .into_iter()
        .map(|r| r.map(|o| downcast_output::<u64>(o).unwrap()).map_err(|e| e.to_string()))
        .collect()
}

fn batch() -> Vec<Task> {
    (0..20_u64)
        .map(|i| {
            Task::new(move || {
                assert!(i != 13, "task 13 fails");
                // Later tasks finish first on the thread driver.
                std::thread::sleep(Duration::from_micros((20 - i) * 200));
                i
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_driver_keeps_input_order_and_isolates_panics() {
    let concurrency = Concurrency::new().unwrap();
    for driver in ["thread", "sync"] {
        let results = outputs(concurrency.run_on(driver, batch()).await.unwrap());
        assert_eq!(results.len(), 20, "{driver}");
        for (i, result) in results.iter().enumerate() {
            if i == 13 {
                assert_eq!(
                    result.as_ref().unwrap_err(),
                    "task panicked: task 13 fails",
                    "{driver}"
                );
            } else {
                assert_eq!(*result, Ok(i as u64), "{driver}");
            }
        }
    }
}

#[derive(Debug, Default)]
struct Recording {
    batches: AtomicUsize,
}

impl Driver for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, TaskError>>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Box::pin(
            async move { tasks.into_iter().map(|_| Ok(Box::new(0_u64) as TaskOutput)).collect() },
        )
    }
}

#[tokio::test]
async fn custom_drivers_register_by_name_and_can_be_the_default() {
    let concurrency = Concurrency::new().unwrap();
    assert_eq!(
        concurrency.set_default("nope").unwrap_err(),
        ConcurrencyError::UnknownDriver { name: "nope".into() }
    );
    let recording = Arc::new(Recording::default());
    concurrency.register(recording.clone());
    concurrency.set_default("recording").unwrap();
    let results = outputs(concurrency.run(vec![Task::new(|| 5_u64)]).await.unwrap());
    assert_eq!(results, [Ok(0)]);
    assert_eq!(recording.batches.load(Ordering::SeqCst), 1);
    assert!(concurrency.run_on("missing", Vec::new()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_tasks_run_in_the_background_and_are_tracked() {
    let concurrency = Concurrency::new().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let tasks: Vec<Task> = (0..3)
        .map(|_| {
            let ran = Arc::clone(&ran);
            let gate = Arc::clone(&gate);
            Task::new(move || {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    concurrency.defer(tasks).unwrap();
    // `defer` returned at once; the tasks are still waiting for the gate.
    assert_eq!(concurrency.deferred_pending(), 1);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    drop(release);
    assert!(concurrency.wait_deferred(Duration::from_secs(60)).await);
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    assert_eq!(concurrency.deferred_pending(), 0);
}

#[test]
fn defer_needs_a_runtime() {
    let concurrency = Concurrency::new().unwrap();
    assert_eq!(concurrency.defer(Vec::new()).unwrap_err(), ConcurrencyError::NoRuntime);
}

/// The facade is a component: stopping it waits for the deferred batches
/// and refuses new ones; its metrics count what it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_facade_waits_for_deferred_work_and_refuses_more() {
    use conc_core::lifecycle::Lifecycle;

    let concurrency = Concurrency::new().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    concurrency
        .defer(vec![Task::new(move || {
            std::thread::sleep(Duration::from_millis(20));
            counter.fetch_add(1, Ordering::SeqCst);
        })])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    concurrency.stop(deadline).await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "stop waited for the deferred batch");
    assert!(!concurrency.is_running());
    assert_eq!(concurrency.defer(Vec::new()), Err(ConcurrencyError::Stopped));
    let m = concurrency.metrics();
    assert_eq!((m.batches, m.tasks, m.deferred_pending, m.deferred_done), (1, 1, 0, 1));
    concurrency.start().await.unwrap();
    assert!(concurrency.defer(Vec::new()).is_ok());
}
