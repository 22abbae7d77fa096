//! Worker heartbeats across real processes: two worker processes (this test
//! binary re-executing itself) on one SQLite file, then on one real
//! redis-server, are seen by a third handle with their pids, queues and
//! counts; the one killed with `SIGKILL` leaves the list once its missed-beat
//! window has passed (checked on a reader whose clock the test moves, so no
//! wait decides it); the one stopped gracefully leaves it at once (checked on
//! a reader whose clock stands still, so expiry cannot be why).

#![cfg(unix)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conc_bus::{
    AnyBackend, Job, JobContext, JobError, JobHandlers, Queue, QueueBackend, SqliteQueue, Worker,
    WorkerBeat,
};
use conc_core::time::ManualClock;
use serde::{Deserialize, Serialize};

/// Selects a child's role; absent in the parent.
const ROLE: &str = "CONC_BUS_BEAT_CHILD";
/// The backend a child opens: `sqlite:<path>` or a `redis://` URL.
const BACKEND: &str = "CONC_BUS_BEAT_BACKEND";
/// The child's worker name, which is also its queue.
const NAME: &str = "CONC_BUS_BEAT_NAME";
/// The child's heartbeat interval, in milliseconds.
const INTERVAL: &str = "CONC_BUS_BEAT_INTERVAL";
/// A file whose appearance asks the child to stop gracefully.
const STOP: &str = "CONC_BUS_BEAT_STOP";
/// The longest any wait for the children may take.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    fail: bool,
}

impl Job for Task {
    const NAME: &'static str = "beat-task";
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set for children"))
}

async fn open(url: &str, clock: Option<ManualClock>) -> AnyBackend {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let mut builder = SqliteQueue::builder(path);
        if let Some(clock) = clock {
            builder = builder.clock(clock);
        }
        return AnyBackend::new(builder.open().unwrap());
    }
    #[cfg(feature = "redis")]
    {
        let mut builder = conc_bus::RedisQueue::builder(url);
        if let Some(clock) = clock {
            builder = builder.clock(clock);
        }
        AnyBackend::new(builder.connect().await.unwrap())
    }
    #[cfg(not(feature = "redis"))]
    panic!("no backend for {url}")
}

#[test]
fn child_worker() {
    if std::env::var(ROLE).as_deref() != Ok("worker") {
        return;
    }
    let (url, name, stop) = (var(BACKEND), var(NAME), PathBuf::from(var(STOP)));
    let interval = Duration::from_millis(var(INTERVAL).parse().unwrap());
    runtime().block_on(async move {
        let backend = open(&url, None).await;
        let handlers = JobHandlers::new().handle(|job: Task, _: JobContext| async move {
            if job.fail { Err(JobError::fatal("refused")) } else { Ok(()) }
        });
        let worker = Worker::builder(backend, handlers)
            .name(name.clone())
            .queues([name])
            .concurrency(2)
            .poll_interval(Duration::from_millis(20))
            .heartbeat_interval(interval)
            .build()
            .unwrap();
        worker.start().unwrap();
        while !stop.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.stop(Duration::from_secs(5));
        worker.stopped().await;
    });
}

/// A worker process, killed (and reaped) when dropped.
struct WorkerProcess {
    child: Child,
    stop: PathBuf,
    stderr: PathBuf,
}

impl WorkerProcess {
    fn spawn(url: &str, dir: &Path, name: &str, interval_ms: u64) -> Self {
        let stderr = dir.join(format!("{name}.stderr"));
        let stop = dir.join(format!("{name}.stop"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
            .env(ROLE, "worker")
            .env(BACKEND, url)
            .env(NAME, name)
            .env(INTERVAL, interval_ms.to_string())
            .env(STOP, &stop)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self { child, stop, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks it to stop gracefully and waits until it exited, successfully.
    fn stop(mut self) {
        File::create(&self.stop).unwrap();
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the worker never stopped");
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "the worker failed: {status}\n{output}");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(beats: &[WorkerBeat], pid: u32) -> Option<&WorkerBeat> {
    beats.iter().find(|beat| beat.pid == pid)
}

/// The scenario on the backend at `url`.
fn two_workers_are_seen_by_a_third_handle(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let reader = runtime.block_on(async {
        let reader = open(url, None).await;
        let queue = Queue::new(reader.clone());
        for _ in 0..3 {
            queue.dispatch(Task { fail: false }).on_queue("alpha").await.unwrap();
        }
        for fail in [false, false, false, false, true] {
            queue.dispatch(Task { fail }).on_queue("beta").await.unwrap();
        }
        reader
    });
    // alpha beats every 200 ms, beta every 2 s.
    let alpha = WorkerProcess::spawn(url, dir.path(), "alpha", 200);
    let beta = WorkerProcess::spawn(url, dir.path(), "beta", 2_000);

    // Both appear with what they did, as their beats catch up.
    let deadline = Instant::now() + PATIENCE;
    let beats = loop {
        let beats = runtime.block_on(reader.workers()).unwrap();
        let done = |pid, processed, failed| {
            find(&beats, pid).is_some_and(|b| (b.processed, b.failed) == (processed, failed))
        };
        if done(alpha.pid(), 3, 0) && done(beta.pid(), 4, 1) {
            break beats;
        }
        assert!(Instant::now() < deadline, "the beats never showed the work: {beats:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(beats.len(), 2, "{beats:#?}");
    let a = find(&beats, alpha.pid()).unwrap();
    assert_eq!(
        (a.name.as_str(), a.queues.as_slice(), a.concurrency),
        ("alpha", &["alpha".to_owned()][..], 2)
    );
    assert_eq!((a.interval_ms, a.busy), (200, 0));
    assert!(!a.host.is_empty() && a.beat_at >= a.started_at, "{a:?}");
    assert_ne!(a.id, find(&beats, beta.pid()).unwrap().id);

    // alpha dies without a word. A reader one second ahead of now, past
    // alpha's 600 ms window and well inside beta's 6 s one, no longer lists
    // it, and deletes it from the store.
    drop(alpha);
    let ahead = ManualClock::new();
    let ahead_reader = runtime.block_on(open(url, Some(ahead.clone())));
    ahead.advance(Duration::from_secs(1));
    let listed = runtime.block_on(ahead_reader.workers()).unwrap();
    assert_eq!(listed.iter().map(|b| b.pid).collect::<Vec<_>>(), [beta.pid()], "{listed:#?}");

    // beta stops gracefully: gone at once, even for a reader whose clock
    // stands still (so its beat cannot have expired there).
    let still = ManualClock::new();
    let still_reader = runtime.block_on(open(url, Some(still)));
    let listed = runtime.block_on(still_reader.workers()).unwrap();
    assert_eq!(listed.iter().map(|b| b.pid).collect::<Vec<_>>(), [beta.pid()]);
    beta.stop();
    assert_eq!(runtime.block_on(still_reader.workers()).unwrap(), Vec::new());
    assert_eq!(runtime.block_on(reader.workers()).unwrap(), Vec::new());
}

#[test]
fn sqlite_workers_of_two_processes_are_listed_and_leave() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    drop(SqliteQueue::open(&path).unwrap());
    two_workers_are_seen_by_a_third_handle(&format!("sqlite:{}", path.display()));
}

#[cfg(feature = "redis")]
#[test]
fn redis_workers_of_two_processes_are_listed_and_leave() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let Some(redis) = conc_test_support::require_redis() else { return };
    two_workers_are_seen_by_a_third_handle(&redis.url());
}
