//! The supervisor and the process pool as lifecycle components: one
//! `Registry::shutdown_all(deadline)` stops real child processes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{alive, eventually};
use conc_core::lifecycle::{Lifecycle, Registry};
use conc_core::metrics::MetricsSource;
use conc_process::{
    ChildState, Process, ProcessError, ProcessPool, ProcessPoolEvent, RestartPolicy, Supervisor,
    SupervisorEvent,
};
use tokio::sync::broadcast::Receiver;

const LIMIT: Duration = Duration::from_secs(20);

async fn started_pid(events: &mut Receiver<SupervisorEvent>) -> u32 {
    loop {
        if let SupervisorEvent::Started { pid, .. } = events.recv().await.unwrap() {
            return pid;
        }
    }
}

/// A supervisor with two children and a pool with a running job, registered
/// in that order, stop in reverse order within the deadline: the children
/// get `SIGTERM` and die, the pool's job finishes, and the report is clean.
/// `start_all` brings both back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_all_stops_supervised_children_and_pool_jobs() {
    let supervisor = Arc::new(
        Supervisor::builder()
            .name("workers")
            .shutdown_grace(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    let mut events = supervisor.events();
    supervisor.supervise("a", || Process::new("sleep").arg("60").quiet()).unwrap();
    supervisor.supervise("b", || Process::new("sleep").arg("60").quiet()).unwrap();
    let pids = [started_pid(&mut events).await, started_pid(&mut events).await];
    assert!(pids.iter().all(|&pid| alive(pid)));

    let pool = ProcessPool::builder().name("jobs").build().unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let watched = ProcessPool::builder()
        .name("jobs-watched")
        .on_event(move |event| {
            if let ProcessPoolEvent::Started { .. } = event
                && let Some(tx) = started_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        })
        .build()
        .unwrap();
    let registry = Registry::new();
    registry.register(supervisor.clone()).unwrap();
    registry.register(Arc::new(pool.clone())).unwrap();
    registry.register(Arc::new(watched.clone())).unwrap();
    let run = tokio::spawn(async move {
        watched.run([("short", Process::shell("sleep 0.3; echo done"))]).await
    });
    started_rx.await.unwrap();

    let report = registry.shutdown_all(Instant::now() + LIMIT).await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.stopped, ["jobs-watched", "jobs", "workers"]);
    assert!(pids.iter().all(|&pid| !alive(pid)), "the supervised children were stopped");
    let results = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap().unwrap();
    let output = results.get("short").unwrap().as_ref().unwrap();
    assert_eq!(output.stdout_str(), "done\n", "a running job may finish before the deadline");
    assert!(!supervisor.is_running() && !pool.is_running());
    let children = supervisor.metrics().children;
    assert!(children.iter().all(|child| child.state == ChildState::Stopped), "{children:?}");

    // A stopped pool starts nothing; a stopped supervisor restarts nothing.
    let results = pool.run([("late", Process::new("true"))]).await.unwrap();
    assert!(matches!(results.get("late"), Some(Err(ProcessError::Cancelled { .. }))));

    registry.start_all().await.unwrap();
    assert!(supervisor.is_running() && pool.is_running());
    let restarted = [started_pid(&mut events).await, started_pid(&mut events).await];
    assert!(restarted.iter().all(|&pid| alive(pid) && !pids.contains(&pid)));
    let results = pool.run([("again", Process::new("true"))]).await.unwrap();
    assert!(results.successful());

    let report = registry.shutdown_all(Instant::now() + LIMIT).await;
    assert!(report.is_clean(), "{report}");
    assert!(eventually(LIMIT, || restarted.iter().all(|&pid| !alive(pid))).await);
}

/// Children that ignore `SIGTERM` and a job that would run for a minute are
/// killed before a deadline that comes long before their grace ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_cuts_the_grace_short() {
    let supervisor = Arc::new(
        Supervisor::builder()
            .name("stubborn")
            .restart(RestartPolicy::Always)
            .shutdown_grace(Duration::from_secs(600))
            .build()
            .unwrap(),
    );
    let mut events = supervisor.events();
    // `trap '' TERM` ignores TERM in the shell and in the `sleep` it starts.
    supervisor.supervise("deaf", || Process::shell("trap '' TERM; sleep 60").quiet()).unwrap();
    let pid = started_pid(&mut events).await;

    let pool = ProcessPool::builder().name("long-jobs").build().unwrap();
    let job_pool = pool.clone();
    let run =
        tokio::spawn(
            async move { job_pool.run([("minute", Process::new("sleep").arg("60"))]).await },
        );
    assert!(eventually(LIMIT, || pool.metrics().running == 1).await);

    let registry = Registry::new();
    registry.register(supervisor.clone()).unwrap();
    registry.register(Arc::new(pool.clone())).unwrap();
    let began = Instant::now();
    let report = registry.shutdown_all(began + Duration::from_secs(1)).await;
    // Killed at most a margin before the deadline: whether the registry saw
    // the stops end just before or just after it depends on the machine.
    assert_eq!(report.stopped.len() + report.failed.len(), 2, "{report}");
    assert!(eventually(LIMIT, || !alive(pid)).await, "the child outlived the deadline");
    let results = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap().unwrap();
    assert!(
        matches!(results.get("minute"), Some(Err(ProcessError::Cancelled { .. }))),
        "{results:?}"
    );
    assert!(began.elapsed() < Duration::from_secs(30), "nobody waited out the grace");
    assert_eq!(pool.metrics().cancelled, 1);
}

/// Dropping a supervisor stops its children in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_supervisor_stops_its_children() {
    let supervisor = Supervisor::builder().build().unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("sleeper", || Process::new("sleep").arg("60").quiet()).unwrap();
    let pid = started_pid(&mut events).await;
    drop(supervisor);
    assert!(eventually(LIMIT, || !alive(pid)).await);
}

/// A child added to a stopped supervisor waits for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_added_while_stopped_starts_with_the_supervisor() {
    let supervisor = Supervisor::builder().build().unwrap();
    supervisor.stop(Instant::now() + LIMIT).await.unwrap();
    let mut events = supervisor.events();
    supervisor.supervise("later", || Process::new("sleep").arg("60").quiet()).unwrap();
    assert_eq!(supervisor.metrics().children[0].state, ChildState::Stopped);
    supervisor.start().await.unwrap();
    let pid = started_pid(&mut events).await;
    assert!(alive(pid));
    supervisor.shutdown().await;
    assert!(eventually(LIMIT, || !alive(pid)).await);
}
