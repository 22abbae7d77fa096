//! The Redis backend across real processes, under `SIGKILL` of workers and
//! of the server: worker processes (this test binary re-executing itself,
//! each running a `conc_bus::Worker` on one `redis-server`) drain a queue
//! while the parent kills a random worker now and then and starts a new one
//! in its place, and kills the server (durable: AOF with `appendfsync
//! always`) and restarts it on the same port and directory. Every job whose
//! push was acknowledged must be done, the jobs done twice are bounded by
//! what was in flight at the faults, and every worker takes jobs again once
//! the server is back, without being restarted.
//!
//! Each worker writes every job it finishes to a log of its own (one
//! `write` of one line, before the job is acknowledged; a killed process
//! loses nothing it wrote, and the machine is not killed), so the logs are
//! the truth about what ran: a job missing from every log was lost; a job in
//! two lines ran twice.
//!
//! A second test holds one job in a worker process, kills it, and checks the
//! job can be reserved again once its lease has expired, and not before:
//! within the lease plus one poll of the moment the worker died. A third
//! runs worker processes on a queue with a global concurrency bound and
//! counts, in Redis, the jobs running at once across them.
//!
//! The same checker runs longer outside CI as
//! `cargo xtask soak bus --backend redis`; the parameters come from the
//! environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CONC_BUS_SOAK_JOBS` | 10000 | jobs pushed |
//! | `CONC_BUS_SOAK_FAULTS` | 20 | workers killed |
//! | `CONC_BUS_SOAK_RESTARTS` | 3 | server kills and restarts |
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
    RedisQueue, ReserveRequest, Worker,
};
use conc_core::backoff::Backoff;
use conc_test_support::RedisServer;
use serde::{Deserialize, Serialize};

/// Selects a child's role; absent in the parent.
const ROLE: &str = "CONC_BUS_REDIS_CHILD";
/// The server a child connects to.
const URL: &str = "CONC_BUS_REDIS_URL";
/// The log a worker child appends finished (or, holding, started) job ids to.
const LOG: &str = "CONC_BUS_REDIS_LOG";

/// Jobs in flight per worker: running, and reserved ahead.
const CONCURRENCY: usize = 8;
const PREFETCH: usize = 4;
const LEASE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);
/// How long the server stays down at each restart.
const OUTAGE: Duration = Duration::from_millis(300);
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
        // A job may be in flight at several faults: no attempt limit must end
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

fn env_text(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set for children"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Writes a line to the terminal, past the test harness's capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Connects, trying again while the server is down (a worker process started
/// during an outage waits for the server as a deployed one would).
async fn connect(url: &str) -> RedisQueue {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match RedisQueue::builder(url).response_timeout(Duration::from_secs(2)).connect().await {
            Ok(backend) => return backend,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the server never came back: {error}"),
        }
    }
}

/// The queue of the global concurrency test, its bound, and the key its
/// workers count running jobs in.
const LIMITED: &str = "exports";
const GLOBAL_LIMIT: u32 = 3;
const RUNNING_KEY: &str = "test:running";

/// A worker child of the bounded queue: counts the jobs running across every
/// process in Redis and logs the count it saw at each start.
fn limited_worker(url: &str, log: Arc<Mutex<File>>) {
    runtime().block_on(async move {
        let backend = connect(url).await;
        let client = redis::Client::open(url).unwrap();
        let counter = client.get_multiplexed_async_connection().await.unwrap();
        let handlers = JobHandlers::new().handle(move |_: Work, ctx: JobContext| {
            let (log, mut counter) = (Arc::clone(&log), counter.clone());
            async move {
                let running: u64 =
                    redis::cmd("INCR").arg(RUNNING_KEY).query_async(&mut counter).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _: i64 =
                    redis::cmd("DECR").arg(RUNNING_KEY).query_async(&mut counter).await.unwrap();
                let line = format!("{} {running}\n", ctx.id());
                log.lock().unwrap().write_all(line.as_bytes()).unwrap();
                Ok::<(), JobError>(())
            }
        });
        let worker = Worker::builder(backend, handlers)
            .queues([LIMITED])
            .concurrency(4)
            .prefetch(4)
            .poll_interval(Duration::from_millis(20))
            .stop_when_empty(true)
            .build()
            .unwrap();
        worker.run().await.unwrap();
    });
}

/// A worker child: logs each finished job (`worker`) or each started job,
/// then holds it forever (`holder`); or runs the bounded queue (`limited`).
#[test]
fn child_worker() {
    let role = match std::env::var(ROLE).as_deref() {
        Ok("worker") => "worker",
        Ok("holder") => "holder",
        Ok("limited") => "limited",
        _ => return,
    };
    let (url, log) = (env_text(URL), env_text(LOG));
    let log = Arc::new(Mutex::new(OpenOptions::new().create(true).append(true).open(log).unwrap()));
    if role == "limited" {
        limited_worker(&url, log);
        return;
    }
    runtime().block_on(async move {
        let backend = connect(&url).await;
        let handlers = JobHandlers::new().handle(move |_: Work, ctx: JobContext| {
            let log = Arc::clone(&log);
            async move {
                // One `write`: in the kernel once it returns, whatever kills
                // this process next.
                log.lock().unwrap().write_all(format!("{}\n", ctx.id()).as_bytes()).unwrap();
                if role == "holder" {
                    std::future::pending::<()>().await;
                }
                Ok::<(), JobError>(())
            }
        });
        let retry = Backoff::exponential(Duration::from_millis(50))
            .max_delay(Duration::from_millis(500))
            .build()
            .unwrap();
        let (concurrency, prefetch) =
            if role == "holder" { (1, 0) } else { (CONCURRENCY, PREFETCH) };
        let worker = Worker::builder(backend, handlers)
            .concurrency(concurrency)
            .prefetch(prefetch)
            .lease(LEASE)
            .poll_interval(POLL)
            .backend_retry(retry)
            .build()
            .unwrap();
        // Runs until the parent kills it: backend failures never stop it.
        worker.run().await.unwrap();
    });
}

/// A worker process, killed (and reaped) when dropped.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
    stderr: PathBuf,
}

impl WorkerProcess {
    fn spawn(role: &str, url: &str, dir: &Path, name: &str) -> Self {
        let stderr = dir.join(format!("{name}.stderr"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(URL, url)
            .env(LOG, &log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self { child, log, stderr }
    }

    /// Panics with its output when it ended by itself.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let output = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!("a worker process ended with {status}\n--- stderr\n{output}");
        }
    }

    /// Lines in its log.
    fn logged(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len()) / LINE
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

/// Workers that must finish a job after a server restart, with how many they
/// had logged when it came back.
struct AfterRestart {
    since: Instant,
    waiting: Vec<(PathBuf, u64)>,
}

#[test]
fn workers_and_the_server_killed_lose_no_acknowledged_job() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let Some(mut redis) = RedisServer::builder().durable(true).require() else { return };
    let url = redis.url();
    let jobs = env_or("CONC_BUS_SOAK_JOBS", 10_000);
    let faults = env_or("CONC_BUS_SOAK_FAULTS", 20);
    let restarts = env_or("CONC_BUS_SOAK_RESTARTS", 3);
    let workers = env_or("CONC_BUS_SOAK_WORKERS", 4).max(1) as usize;
    let clock_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let seed = env_or("CONC_BUS_SOAK_SEED", clock_seed) | 1;
    let mut picker = Picker(seed);

    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    // Every push below is acknowledged (an error fails the test), so every
    // one of these jobs must be done.
    let runtime = runtime();
    let backend = runtime.block_on(connect(&url));
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
        WorkerProcess::spawn("worker", &url, &logs, &format!("worker-{spawned}"))
    };
    let mut running: Vec<WorkerProcess> = (0..workers).map(|_| spawn(&mut spawned)).collect();
    let (mut kills, mut restarted) = (0, 0);
    let mut after_restart: Option<AfterRestart> = None;
    let mut last_progress = (0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let done = lines_logged(&logs);
        if done > last_progress.0 {
            last_progress = (done, Instant::now());
        }
        assert!(
            last_progress.1.elapsed() < STUCK,
            "no job finished for {STUCK:?}: {done} of {jobs} after {kills} kills and {restarted} restarts"
        );
        for worker in &mut running {
            worker.check_alive();
        }
        // After a restart, every worker must take jobs again before the next
        // fault: none stays stopped once the server is back.
        if let Some(wait) = &mut after_restart {
            wait.waiting.retain(|(log, before)| {
                running.iter().find(|w| &w.log == log).is_some_and(|w| w.logged() <= *before)
            });
            if wait.waiting.is_empty() {
                after_restart = None;
            } else {
                assert!(
                    wait.since.elapsed() < STUCK,
                    "workers took no job for {STUCK:?} after the server came back: {:?}",
                    wait.waiting
                );
                continue;
            }
        }
        // Kill number k when k / (faults + 1) of the jobs are done, so the
        // kills spread over the whole run; the restarts likewise, halfway
        // between kills.
        if restarted < restarts && done * (restarts + 1) >= (restarted + 1) * jobs {
            redis.kill().unwrap();
            std::thread::sleep(OUTAGE);
            redis.restart().unwrap();
            restarted += 1;
            // Near the end the queue may run dry before every worker gets a
            // job; progress is required while there is plenty left.
            let plenty = (workers * (CONCURRENCY + PREFETCH) * 8) as u64;
            if jobs.saturating_sub(done) > plenty {
                let waiting = running.iter().map(|w| (w.log.clone(), w.logged())).collect();
                after_restart = Some(AfterRestart { since: Instant::now(), waiting });
            }
            continue;
        }
        if kills < faults && done * (faults + 1) >= (kills + 1) * jobs {
            let victim = picker.next(running.len());
            running.swap_remove(victim).kill();
            kills += 1;
            running.push(spawn(&mut spawned));
            continue;
        }
        if kills == faults && restarted == restarts && done >= jobs {
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
    // A killed worker held at most its slots; a server restart may cost the
    // acknowledgements every worker had in flight.
    let per_worker = CONCURRENCY + PREFETCH;
    let bound = kills as usize * per_worker + restarted as usize * workers * per_worker;
    let (failed, size) = runtime.block_on(async {
        let backend = connect(&url).await;
        (backend.failed_count(None).await.unwrap(), backend.size("default").await.unwrap())
    });
    say(&format!(
        "soak bus --backend redis: jobs={jobs} faults={kills} restarts={restarted} workers={workers} \
         lost={lost} duplicates={duplicates} (bound {bound}) failed={failed} seed={seed} \
         elapsed={elapsed:.1?}"
    ));
    assert_eq!(lost, 0, "jobs lost");
    assert!(ran.is_subset(&pushed), "a job nobody pushed ran");
    assert_eq!(failed, 0, "jobs ended in the failed store");
    assert!(duplicates <= bound, "{duplicates} jobs ran twice, more than the {bound} in flight");
    assert_eq!(size.ready + size.delayed, 0, "{size:?}");
}

#[test]
fn a_killed_workers_job_is_visible_again_within_its_lease_plus_one_poll() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let Some(redis) = RedisServer::builder().durable(true).require() else { return };
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        let backend = connect(&url).await;
        let id = Queue::new(backend.clone()).push(Work { n: 1 }).await.unwrap();
        let holder = WorkerProcess::spawn("holder", &url, dir.path(), "holder");
        let deadline = Instant::now() + STUCK;
        while holder.logged() == 0 {
            assert!(Instant::now() < deadline, "the holder never started the job");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        holder.kill();
        let killed_at = backend.now();

        // Polled as an idle worker polls: the job is not there while the
        // dead worker's lease runs, and is there within the lease plus one poll.
        let queues = vec!["default".to_owned()];
        let mut polls = 0;
        let reserved = loop {
            let mut got = backend.reserve(ReserveRequest::new(&queues, 1, LEASE)).await.unwrap();
            let now = backend.now();
            if let Some(job) = got.jobs.pop() {
                break (job, now);
            }
            polls += 1;
            assert!(
                now.saturating_sub(killed_at) < 60_000,
                "the killed worker's job never came back"
            );
            tokio::time::sleep(POLL).await;
        };
        let (job, at) = reserved;
        assert_eq!(job.lease.job, id);
        assert_eq!(job.attempt, 2, "the dead worker's attempt was counted");
        assert!(polls > 0, "the job was taken while the dead worker's lease still ran");
        let waited = at.saturating_sub(killed_at);
        // The lease was renewed at most a third of a lease before the kill,
        // so it lapsed within a lease; one poll later it is taken. A second
        // of slack covers a loaded machine's scheduling.
        let limit = (LEASE + POLL + Duration::from_secs(1)).as_millis() as u64;
        say(&format!("the killed worker's job came back after {waited} ms ({polls} polls)"));
        assert!(waited <= limit, "came back after {waited} ms, past {limit} ms");
    });
}

#[test]
fn the_global_concurrency_of_a_queue_holds_across_processes() {
    const JOBS: u64 = 60;
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let Some(redis) = conc_test_support::require_redis() else { return };
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        let backend = connect(&url).await;
        backend.set_global_concurrency(LIMITED, Some(GLOBAL_LIMIT)).await.unwrap();
        let queue = Queue::new(backend);
        for n in 0..JOBS {
            queue.dispatch(Work { n: n as u32 }).on_queue(LIMITED).await.unwrap();
        }
    });
    // Four processes of four slots each: sixteen could run at once.
    let mut workers: Vec<WorkerProcess> = (0..4)
        .map(|i| WorkerProcess::spawn("limited", &url, dir.path(), &format!("limited-{i}")))
        .collect();
    let deadline = Instant::now() + STUCK;
    for worker in &mut workers {
        while worker.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the workers never drained the queue");
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = worker.child.wait().unwrap();
        let output = std::fs::read_to_string(&worker.stderr).unwrap_or_default();
        assert!(status.success(), "a worker process failed: {status}\n{output}");
    }
    let mut seen = Vec::new();
    for worker in &workers {
        let text = std::fs::read_to_string(&worker.log).unwrap_or_default();
        seen.extend(
            text.lines().map(|line| line.split(' ').nth(1).unwrap().parse::<u64>().unwrap()),
        );
    }
    assert_eq!(seen.len() as u64, JOBS, "every job ran once");
    let most = seen.iter().copied().max().unwrap();
    say(&format!("at most {most} jobs ran at once across 4 processes (bound {GLOBAL_LIMIT})"));
    assert!(most <= u64::from(GLOBAL_LIMIT), "{most} jobs ran at once, more than {GLOBAL_LIMIT}");
    assert!(most > 1, "the jobs never overlapped, so the bound was not exercised");
}
