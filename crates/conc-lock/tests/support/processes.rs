//! Real child processes for the cross-process tests: the test binary
//! re-executes itself, and the environment variable `CONC_LOCK_CHILD` tells
//! the child which role to play. Also the funnel workload those tests share.

#![allow(unreachable_pub, dead_code, reason = "shared by several test binaries")]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conc_lock::{LockBackend, LockStore};

/// Selects a child's role; absent in the parent.
pub const ROLE: &str = "CONC_LOCK_CHILD";
/// The lock file a child opens.
pub const DB: &str = "CONC_LOCK_SQLITE_DB";
/// The log a worker child appends to.
pub const LOG: &str = "CONC_LOCK_SQLITE_LOG";
/// How many rounds a worker child makes.
pub const ROUNDS: &str = "CONC_LOCK_SQLITE_ROUNDS";
/// Marks the lines a child reports on (libtest writes around them).
pub const MARK: &str = "@conc ";

/// The role this process plays, if it is a child playing `role`.
pub fn child_role(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|value| value == role)
}

pub fn env_path(name: &str) -> std::path::PathBuf {
    std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set for children")).into()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A child process killed (and reaped) if the test ends before it does, so a
/// failing test never leaves a stopped process behind.
pub struct ChildProcess(pub Option<Child>);

impl ChildProcess {
    /// Re-executes this test binary running only the test `test` in `role`.
    pub fn spawn(
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

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not yet waited for")
    }

    pub fn pid(&mut self) -> libc::pid_t {
        libc::pid_t::try_from(self.child().id()).unwrap()
    }

    /// Waits for the child; panics with its output unless it succeeded.
    pub fn wait_success(mut self) -> String {
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
pub fn signal(pid: libc::pid_t, signal: libc::c_int) {
    assert!(pid > 0);
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a
    // positive pid names exactly one process, our unreaped child.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// Waits until the child `pid` has stopped, without reaping it.
pub fn wait_stopped(pid: libc::pid_t) {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the length of the
    // call; WUNTRACED reports a stop and does not reap the child.
    let rc = unsafe { libc::waitpid(pid, &raw mut status, libc::WUNTRACED) };
    assert_eq!(rc, pid, "waitpid({pid}): {}", std::io::Error::last_os_error());
    assert!(libc::WIFSTOPPED(status), "child {pid} did not stop: status {status:#x}");
}

/// Appends `line` to `path` in one `write` on an `O_APPEND` file, so lines
/// from different processes never interleave.
pub fn append(path: &Path, line: &str) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(line.as_bytes()).unwrap();
}

/// Reports `line` to the parent on stdout.
pub fn report(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\n{MARK}{line}").unwrap();
    stdout.flush().unwrap();
}

/// The reports in a child's output.
pub fn reports(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter_map(|line| line.split_once(MARK).map(|(_, report)| report))
}

/// The funnel every cross-process funnel test uses.
pub const FUNNEL: &str = "processes:funnel";

/// One funnel worker: `rounds` times, take a slot of the funnel (limit
/// `limit`), log `enter` after taking it and `exit` before freeing it.
pub async fn funnel_worker<B: LockBackend>(
    store: LockStore<B>,
    limit: u32,
    log: &Path,
    rounds: usize,
) {
    let funnel = store.funnel(FUNNEL, limit, Duration::from_secs(30)).unwrap();
    let pid = std::process::id();
    for _ in 0..rounds {
        let permit = funnel.block(Duration::from_secs(60)).await.unwrap();
        append(log, &format!("enter {pid} {}\n", permit.slot()));
        std::thread::sleep(Duration::from_millis(2));
        append(log, &format!("exit {pid} {}\n", permit.slot()));
        permit.release().await.unwrap();
    }
}

/// Checks a funnel log written by `workers` processes of `rounds` rounds:
/// in the order the lines were appended, never more than `limit` holders at
/// once, no slot held twice at once, every round logged. Returns the most
/// holders seen at once.
pub fn check_funnel_log(text: &str, limit: usize, workers: usize, rounds: usize) -> usize {
    let mut holding = BTreeMap::<&str, &str>::new(); // slot -> pid
    let mut most = 0;
    let mut enters = 0;
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "line {index}: {line:?}\n{text}");
        let (event, pid, slot) = (fields[0], fields[1], fields[2]);
        match event {
            "enter" => {
                enters += 1;
                let previous = holding.insert(slot, pid);
                assert!(previous.is_none(), "slot {slot} taken twice at line {index}\n{text}");
                most = most.max(holding.len());
                assert!(
                    holding.len() <= limit,
                    "{} holders at line {index}\n{text}",
                    holding.len()
                );
            }
            "exit" => {
                assert_eq!(holding.remove(slot), Some(pid), "line {index}\n{text}");
            }
            other => panic!("line {index}: {other:?}"),
        }
    }
    assert_eq!(enters, workers * rounds, "{text}");
    most
}
