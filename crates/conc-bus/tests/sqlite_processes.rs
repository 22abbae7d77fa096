//! The SQLite backend across real processes, under `SIGKILL`: worker
//! processes (this test binary re-executing itself, each running a
//! `conc_bus::Worker` on the shared file) drain a queue while the parent
//! kills a random one now and then and starts a new one in its place. Every
//! job must be done, none lost, and the jobs done twice are bounded by what
//! the killed workers held.
//!
//! Each worker records every job it finishes in a log of its own (one line,
//! then `fsync`) before the job is acknowledged, so the logs are the truth
//! about what ran: a job missing from every log was lost; a job in two lines
//! ran twice. A worker is killed only at progress points spread over the
//! run, and its leases (2 s) come back to the others.
//!
//! The same checker runs longer outside CI as `cargo xtask soak bus`; the
//! parameters come from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CONC_BUS_SOAK_JOBS` | 5000 | jobs pushed |
//! | `CONC_BUS_SOAK_FAULTS` | 20 | workers killed |
//! | `CONC_BUS_SOAK_WORKERS` | 4 | worker processes at a time |
//! | `CONC_BUS_SOAK_SEED` | the clock | which worker each kill picks |

#![cfg(unix)]

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conc_bus::{
    FailedStore, Job, JobContext, JobError, JobHandlers, JobId, JobOptions, Queue, QueueBackend,
    SqliteQueue, Worker,
};
use serde::{Deserialize, Serialize};

/// Selects a child's role; absent in the parent.
const ROLE: &str = "CONC_BUS_SQLITE_CHILD";
/// The queue file a child opens.
const DB: &str = "CONC_BUS_SQLITE_DB";
/// The log a worker child appends finished job ids to.
const LOG: &str = "CONC_BUS_SQLITE_LOG";

/// Jobs in flight per worker: running, and reserved ahead.
const CONCURRENCY: usize = 8;
const PREFETCH: usize = 4;
const LEASE: Duration = Duration::from_secs(2);
/// A job id and its newline, as logged.
const LINE: u64 = 27;
/// The longest the run may go without a job finishing before it is declared stuck.
const STUCK: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize, Deserialize)]
struct Work {
    n: u32,
}

impl Job for Work {
    const NAME: &'static str = "soak-work";
    fn options() -> JobOptions {
        // A job may be in flight at several kills: no attempt limit must end
        // it, so that "lost" means lost.
        JobOptions::new().max_attempts(1_000)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set for children")).into()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Writes a line to the terminal, past the test harness's capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn child_worker() {
    if std::env::var(ROLE).as_deref() != Ok("worker") {
        return;
    }
    let (db, log) = (env_path(DB), env_path(LOG));
    let log = Arc::new(Mutex::new(OpenOptions::new().create(true).append(true).open(log).unwrap()));
    runtime().block_on(async move {
        let backend = SqliteQueue::open(&db).unwrap();
        let handlers = JobHandlers::new().handle(move |_: Work, ctx: JobContext| {
            let log = Arc::clone(&log);
            async move {
                let mut file = log.lock().unwrap();
                file.write_all(format!("{}\n", ctx.id()).as_bytes()).unwrap();
                file.sync_data().unwrap();
                Ok::<(), JobError>(())
            }
        });
        let worker = Worker::builder(backend, handlers)
            .concurrency(CONCURRENCY)
            .prefetch(PREFETCH)
            .lease(LEASE)
            .poll_interval(Duration::from_millis(20))
            .build()
            .unwrap();
        // Runs until the parent kills it.
        worker.run().await.unwrap();
    });
}

/// A worker process, killed (and reaped) when dropped.
struct WorkerProcess {
    child: Child,
    stderr: PathBuf,
}

impl WorkerProcess {
    fn spawn(db: &Path, dir: &Path, name: &str) -> Self {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
            .env(ROLE, "worker")
            .env(DB, db)
            .env(LOG, dir.join(format!("{name}.log")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self { child, stderr }
    }

    /// Panics with its output when it ended by itself.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let output = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!("a worker process ended with {status}\n--- stderr\n{output}");
        }
    }

    /// `SIGKILL`, then reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines logged so far by every worker, from the logs' sizes.
fn lines_logged(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
        .map(|entry| entry.metadata().map_or(0, |m| m.len()))
        .sum::<u64>()
        / LINE
}

/// Every job id logged, with repeats.
fn logged(dir: &Path) -> Vec<JobId> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        if entry.path().extension().is_some_and(|ext| ext == "log") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            ids.extend(text.lines().map(|line| line.parse::<JobId>().unwrap()));
        }
    }
    ids
}

/// A small xorshift generator: which worker each kill picks.
struct Picker(u64);

impl Picker {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

#[test]
fn workers_killed_at_random_lose_no_job() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let jobs = env_or("CONC_BUS_SOAK_JOBS", 5_000);
    let faults = env_or("CONC_BUS_SOAK_FAULTS", 20);
    let workers = env_or("CONC_BUS_SOAK_WORKERS", 4).max(1) as usize;
    let clock_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let seed = env_or("CONC_BUS_SOAK_SEED", clock_seed) | 1;
    let mut picker = Picker(seed);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    let runtime = runtime();
    let backend = SqliteQueue::open(&db).unwrap();
    let pushed: HashSet<JobId> = runtime.block_on(async {
        let queue = Queue::new(backend.clone());
        let mut pushed = HashSet::new();
        let mut next = 0;
        while next < jobs {
            let chunk: Vec<Work> =
                (next..jobs.min(next + 1_000)).map(|n| Work { n: n as u32 }).collect();
            next += chunk.len() as u64;
            pushed.extend(queue.push_bulk(chunk).await.unwrap());
        }
        pushed
    });

    let started = Instant::now();
    let mut spawned = 0;
    let spawn = |spawned: &mut usize| {
        *spawned += 1;
        WorkerProcess::spawn(&db, &logs, &format!("worker-{spawned}"))
    };
    let mut running: Vec<WorkerProcess> = (0..workers).map(|_| spawn(&mut spawned)).collect();
    let mut kills = 0;
    let mut last_progress = (0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let done = lines_logged(&logs);
        if done > last_progress.0 {
            last_progress = (done, Instant::now());
        }
        assert!(
            last_progress.1.elapsed() < STUCK,
            "no job finished for {STUCK:?}: {done} of {jobs} after {kills} kills"
        );
        for worker in &mut running {
            worker.check_alive();
        }
        // Kill number k when k / (faults + 1) of the jobs are done, so the
        // kills spread over the whole run.
        if kills < faults && done * (faults + 1) >= (kills + 1) * jobs {
            let victim = picker.next(running.len());
            running.swap_remove(victim).kill();
            kills += 1;
            running.push(spawn(&mut spawned));
            continue;
        }
        if kills == faults && done >= jobs {
            let done_ids: HashSet<JobId> = logged(&logs).into_iter().collect();
            if pushed.is_subset(&done_ids) {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    for worker in running {
        worker.kill();
    }

    let lines = logged(&logs);
    let ran: HashSet<JobId> = lines.iter().copied().collect();
    let lost = pushed.difference(&ran).count();
    let duplicates = lines.len() - ran.len();
    let bound = kills as usize * (CONCURRENCY + PREFETCH);
    let failed = runtime.block_on(backend.failed_count(None)).unwrap();
    say(&format!(
        "soak bus: jobs={jobs} faults={kills} workers={workers} lost={lost} duplicates={duplicates} \
         (bound {bound}) failed={failed} seed={seed} elapsed={elapsed:.1?}"
    ));
    assert_eq!(lost, 0, "jobs lost");
    assert!(ran.is_subset(&pushed), "a job nobody pushed ran");
    assert_eq!(failed, 0, "jobs ended in the failed store");
    assert!(duplicates <= bound, "{duplicates} jobs ran twice, more than the {bound} in flight");
    let size = runtime.block_on(backend.size("default")).unwrap();
    assert_eq!(size.ready + size.delayed, 0, "{size:?}");
}
