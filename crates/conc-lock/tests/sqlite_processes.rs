//! The SQLite backend across real processes: this test binary re-executes
//! itself, and the environment variable `CONC_LOCK_SQLITE_CHILD` tells the
//! child which role to play. Without it the child tests return at once.
//!
//! - Several processes take turns on one lock and log what they do while
//!   holding it: no two holds overlap, and fences grow in log order.
//! - Kleppmann's paused client: a holder is stopped (`SIGSTOP`) past its time
//!   to live, another process takes the lock with a greater fence, and the
//!   holder, continued, is told by its release that it lost the lock.

#![cfg(unix)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conc_lock::{LockError, LockStore, SqliteBackend};

/// Selects a child's role; absent in the parent.
const ROLE: &str = "CONC_LOCK_SQLITE_CHILD";
/// The lock file a child opens.
const DB: &str = "CONC_LOCK_SQLITE_DB";
/// The log a worker child appends to.
const LOG: &str = "CONC_LOCK_SQLITE_LOG";
/// How many rounds a worker child makes.
const ROUNDS: &str = "CONC_LOCK_SQLITE_ROUNDS";
/// Marks the lines a child reports on (libtest writes around them).
const MARK: &str = "@conc ";

const WORKERS: usize = 4;
const WORKER_ROUNDS: usize = 25;
const HOLDER_TTL: Duration = Duration::from_millis(300);

/// The role this process plays, if it is a child playing `role`.
fn child_role(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|value| value == role)
}

fn env_path(name: &str) -> std::path::PathBuf {
    std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set for children")).into()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A child process killed (and reaped) if the test ends before it does, so a
/// failing test never leaves a stopped process behind.
struct ChildProcess(Option<Child>);

impl ChildProcess {
    /// Re-executes this test binary running only the test `test` in `role`.
    fn spawn(
        test: &str,
        role: &str,
        envs: &[(&str, &Path)],
        configure: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in envs {
            command.env(name, value);
        }
        configure(&mut command);
        Self(Some(command.spawn().unwrap()))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not yet waited for")
    }

    fn pid(&mut self) -> libc::pid_t {
        libc::pid_t::try_from(self.child().id()).unwrap()
    }

    /// Waits for the child; panics with its output unless it succeeded.
    fn wait_success(mut self) -> String {
        let output = self.0.take().unwrap().wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "child failed with {}\n--- stdout\n{stdout}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `signal` to the child `pid`, which is not reaped yet (so the pid is
/// still its own).
fn signal(pid: libc::pid_t, signal: libc::c_int) {
    assert!(pid > 0);
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a
    // positive pid names exactly one process, our unreaped child.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// Waits until the child `pid` has stopped, without reaping it.
fn wait_stopped(pid: libc::pid_t) {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the length of the
    // call; WUNTRACED reports a stop and does not reap the child.
    let rc = unsafe { libc::waitpid(pid, &raw mut status, libc::WUNTRACED) };
    assert_eq!(rc, pid, "waitpid({pid}): {}", std::io::Error::last_os_error());
    assert!(libc::WIFSTOPPED(status), "child {pid} did not stop: status {status:#x}");
}

/// Appends `line` to `path` in one `write` on an `O_APPEND` file, so lines
/// from different processes never interleave.
fn append(path: &Path, line: &str) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(line.as_bytes()).unwrap();
}

/// Reports `line` to the parent on stdout.
fn report(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\n{MARK}{line}").unwrap();
    stdout.flush().unwrap();
}

/// The reports in a child's output.
fn reports(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter_map(|line| line.split_once(MARK).map(|(_, report)| report))
}

#[test]
fn child_worker() {
    if !child_role("worker") {
        return;
    }
    let (db, log) = (env_path(DB), env_path(LOG));
    let rounds: usize = std::env::var(ROUNDS).unwrap().parse().unwrap();
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        let lock = store.lock("processes:mutex", Duration::from_secs(10)).unwrap();
        let pid = std::process::id();
        for _ in 0..rounds {
            let guard = lock.block(Duration::from_secs(30)).await.unwrap();
            append(&log, &format!("enter {pid} {}\n", guard.fence()));
            std::thread::sleep(Duration::from_millis(1));
            append(&log, &format!("exit {pid}\n"));
            guard.release().await.unwrap();
            // Let the others in rather than take it straight back.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

#[test]
fn processes_take_turns_and_fences_grow_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("locks.db"), dir.path().join("holds.log"));
    let rounds = WORKER_ROUNDS.to_string();
    // The children race to create the file and its table, too.
    let workers: Vec<ChildProcess> = (0..WORKERS)
        .map(|_| {
            ChildProcess::spawn("child_worker", "worker", &[(DB, &db), (LOG, &log)], |command| {
                command.env(ROUNDS, &rounds);
            })
        })
        .collect();
    for worker in workers {
        worker.wait_success();
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * WORKERS * WORKER_ROUNDS, "{text}");
    let mut last_fence = 0;
    let mut holders = std::collections::BTreeMap::<&str, usize>::new();
    for (index, pair) in lines.chunks(2).enumerate() {
        let enter: Vec<&str> = pair[0].split(' ').collect();
        let exit: Vec<&str> = pair[1].split(' ').collect();
        assert!(
            enter.len() == 3 && enter[0] == "enter" && exit == ["exit", enter[1]],
            "hold {index} overlaps another: {:?} then {:?}\n{text}",
            pair[0],
            pair[1]
        );
        let fence: u64 = enter[2].parse().unwrap();
        assert!(fence > last_fence, "fence {fence} after {last_fence} at hold {index}\n{text}");
        last_fence = fence;
        *holders.entry(enter[1]).or_default() += 1;
    }
    assert_eq!(holders.len(), WORKERS, "{holders:?}");
    assert!(holders.values().all(|&rounds| rounds == WORKER_ROUNDS), "{holders:?}");
}

#[test]
fn child_holder() {
    if !child_role("holder") {
        return;
    }
    let db = env_path(DB);
    runtime().block_on(async {
        let store = LockStore::new(SqliteBackend::open(&db).unwrap());
        let lock = store.lock("processes:paused", HOLDER_TTL).unwrap();
        let guard = lock.get().await.unwrap().expect("the lock is free");
        report(&format!("acquired {}", guard.fence()));

        // The "work": wait for the parent, which stops this process meanwhile.
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");

        match guard.release().await {
            Err(LockError::Lost { name, fence }) => {
                assert_eq!(name, "processes:paused");
                report(&format!("lost {fence}"));
            }
            other => panic!("the late release must report the lock lost, got {other:?}"),
        }
    });
}

#[test]
fn a_paused_holder_loses_the_lock_and_its_release_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locks.db");
    let mut holder = ChildProcess::spawn("child_holder", "holder", &[(DB, &db)], |command| {
        command.stdin(Stdio::piped());
    });
    let pid = holder.pid();
    let mut stdout = BufReader::new(holder.child().stdout.take().unwrap());

    let mut output = String::new();
    let held_fence: u64 = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut stderr = String::new();
            let _ = holder.child().stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the holder ended before acquiring\n--- stdout\n{output}\n--- stderr\n{stderr}");
        }
        output.push_str(&line);
        if let Some(fence) = reports(&line).find_map(|report| report.strip_prefix("acquired ")) {
            break fence.trim().parse().unwrap();
        }
    };

    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    std::thread::sleep(HOLDER_TTL * 2);

    let runtime = runtime();
    let store = LockStore::new(SqliteBackend::open(&db).unwrap());
    let guard = runtime.block_on(async {
        let lock = store.lock("processes:paused", Duration::from_secs(30)).unwrap();
        lock.get().await.unwrap().expect("the stopped holder's ttl ran out")
    });
    assert!(guard.fence().get() > held_fence, "{:?} after {held_fence}", guard.fence());

    let mut stdin = holder.child().stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    signal(pid, libc::SIGCONT);

    stdout.read_to_string(&mut output).unwrap();
    let finished = holder.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "holder failed with {}\n--- stdout\n{output}\n--- stderr\n{}",
        finished.status,
        String::from_utf8_lossy(&finished.stderr)
    );
    let lost = reports(&output).find_map(|report| report.strip_prefix("lost "));
    assert_eq!(lost.map(str::trim), Some(held_fence.to_string().as_str()), "{output}");

    runtime.block_on(async {
        assert_eq!(store.owner_of("processes:paused").await.unwrap().as_ref(), Some(guard.owner()));
        guard.release().await.expect("the late release left the new hold alone");
    });
}
