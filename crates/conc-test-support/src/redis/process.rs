//! The server's process: launching it on a port and waiting for `PING`, stopping and
//! reaping it, and reading its log.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{MAX_LOG_IN_ERROR, POLL_INTERVAL, STOP_GRACE};
use crate::HarnessError;
use crate::resp::{self, Probe};
use crate::sys::{self, Signal};

/// Picks a port the kernel considers free right now by binding port 0 and letting go.
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|err| HarnessError::PortSelection {
            attempts: 1,
            reason: format!("binding 127.0.0.1:0 failed: {err}"),
        })
}

/// Why one launch did not produce a ready server.
pub(super) enum Launch {
    /// The server exited because its port was in use: try again (another port, or later).
    PortBusy { log: String },
    /// Anything else: give up with this error.
    Failed(HarnessError),
}

/// Spawns the server on `port` and waits until it answers `PING`; on failure the process is
/// killed and reaped before returning.
pub(super) fn launch(
    binary: &Path,
    args: &[OsString],
    dir: &Path,
    port: u16,
    ready_timeout: Duration,
) -> Result<Child, Launch> {
    let (stdout, stderr) =
        open_output(dir).map_err(|source| Launch::Failed(HarnessError::TempDir { source }))?;
    // The log file is appended to across restarts: judge this launch by what it added.
    let log_start = fs::metadata(dir.join(LOG_FILE)).map_or(0, |meta| meta.len());
    let mut command = Command::new(binary);
    command
        .args(args)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(LOG_FILE))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let mut child = sys::spawn_tied(command).map_err(|source| {
        Launch::Failed(HarnessError::Spawn { binary: binary.to_path_buf(), source })
    })?;
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    match wait_ready(&mut child, addr, ready_timeout) {
        Ok(()) => Ok(child),
        Err(exit) => {
            if exit.is_none() {
                // Timed out while still running: do not leave it behind.
                let _ = kill_and_reap(&mut child);
            }
            let log = read_log(dir);
            let this_launch = fs::read(dir.join(LOG_FILE))
                .ok()
                .and_then(|bytes| {
                    let start = usize::try_from(log_start).ok()?;
                    Some(String::from_utf8_lossy(bytes.get(start..)?).into_owned())
                })
                .unwrap_or_default();
            if exit.is_some() && port_busy(&this_launch, port) {
                Err(Launch::PortBusy { log })
            } else {
                Err(Launch::Failed(HarnessError::NotReady {
                    addr,
                    limit: ready_timeout,
                    exit,
                    log: tail(&log).to_owned(),
                }))
            }
        }
    }
}

/// Polls until the server answers; `Err(Some(status))` if it exited, `Err(None)` on timeout.
fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    limit: Duration,
) -> Result<(), Option<ExitStatus>> {
    let deadline = deadline_after(limit);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Some(status));
        }
        if resp::probe(addr, child.id()) == Probe::Ready {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(None);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// The instant `limit` from now, or `None` (no deadline) when that is too far in the future
/// for an [`Instant`], as with `Duration::MAX`.
fn deadline_after(limit: Duration) -> Option<Instant> {
    Instant::now().checked_add(limit)
}

/// Whether the log says this launch could not listen on `port` because it was in use.
pub(super) fn port_busy(log: &str, port: u16) -> bool {
    let needle = format!(":{port}");
    log.lines().any(|line| line.contains("Address already in use") && line.contains(&needle))
}

/// Sends `SIGKILL` (a no-op if it already exited) and reaps the child.
pub(super) fn kill_and_reap(child: &mut Child) -> std::io::Result<ExitStatus> {
    child.kill()?;
    child.wait()
}

/// `SIGCONT` (in case it is paused), `SIGTERM`, then `SIGKILL` after [`STOP_GRACE`]; reaps.
pub(super) fn stop(child: &mut Child) -> std::io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = child.id();
    // A stopped process keeps SIGTERM pending until it is continued.
    sys::send(pid, Signal::Cont)?;
    sys::send(pid, Signal::Term)?;
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    kill_and_reap(child).map(drop)
}

const LOG_FILE: &str = "redis.log";
const OUTPUT_FILE: &str = "redis.stdout-stderr.log";

/// The server's stdout and stderr both append to one file in its directory.
fn open_output(dir: &Path) -> std::io::Result<(File, File)> {
    let stdout = OpenOptions::new().create(true).append(true).open(dir.join(OUTPUT_FILE))?;
    Ok((stdout.try_clone()?, stdout))
}

pub(super) fn read_log(dir: &Path) -> String {
    let read = |name: &str| {
        fs::read(dir.join(name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let mut log = read(LOG_FILE);
    let output = read(OUTPUT_FILE);
    if !output.trim().is_empty() {
        let _ = write!(log, "\n--- stdout/stderr ---\n{output}");
    }
    log
}

/// The last [`MAX_LOG_IN_ERROR`] bytes of `log`, cut at a character boundary.
pub(super) fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(MAX_LOG_IN_ERROR);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Launch, MAX_LOG_IN_ERROR, deadline_after, kill_and_reap, launch, port_busy, tail};
    use crate::redis::{DEFAULT_READY_TIMEOUT, RedisServer, find_binary};

    #[test]
    fn a_port_held_by_another_server_is_reported_busy() {
        let Some(other) = crate::require_redis() else { return };
        let binary = find_binary().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let args = RedisServer::builder().server_args();
        // The probe reaches `other`, which answers PONG with the wrong process_id, so only
        // the new process's exit decides.
        match launch(&binary, &args, dir.path(), other.port(), DEFAULT_READY_TIMEOUT) {
            Err(Launch::PortBusy { log }) => assert!(port_busy(&log, other.port()), "{log}"),
            Err(Launch::Failed(err)) => panic!("expected PortBusy, got {err}"),
            Ok(mut child) => {
                let _ = kill_and_reap(&mut child);
                panic!("launched a second server on a busy port");
            }
        }
    }

    #[test]
    fn a_limit_too_long_for_an_instant_means_no_deadline() {
        assert_eq!(deadline_after(Duration::MAX), None);
        let soon = deadline_after(Duration::from_secs(5)).expect("5 s from now fits an Instant");
        assert!(soon > Instant::now());
    }

    #[test]
    fn detects_port_in_use_lines() {
        let log = "1:M 01 Jan 2024 00:00:00.000 # Warning: Could not create server TCP listening \
                   socket 127.0.0.1:7001: bind: Address already in use\n";
        assert!(port_busy(log, 7001));
        assert!(!port_busy(log, 7002));
        assert!(!port_busy("Ready to accept connections", 7001));
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let log = format!("é{}", "x".repeat(MAX_LOG_IN_ERROR));
        let cut = tail(&log);
        assert!(cut.len() <= MAX_LOG_IN_ERROR);
        assert!(cut.chars().all(|c| c == 'x'));
        assert_eq!(tail("short"), "short");
    }
}
