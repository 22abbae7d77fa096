//! The error type of the harnesses.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a test server could not be found, started, signalled or reached.
///
/// Messages are written for a test failure report: they name the binary, the port or the
/// process, and errors about a server that did not come up carry its log.
///
/// # Examples
///
/// ```
/// use conc_test_support::{HarnessError, RedisServer};
///
/// let err = RedisServer::builder().binary("/no/such/redis-server").start().unwrap_err();
/// assert!(matches!(err, HarnessError::BinaryNotFound { .. }));
/// assert!(err.to_string().contains("/no/such/redis-server"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server binary is not on `PATH`, or the path given for it is not an executable file.
    #[error("{} binary not found: `{}` ({searched})", .service, .binary.display())]
    BinaryNotFound {
        /// The service whose binary was looked for, such as `redis-server`.
        service: &'static str,
        /// The name or path that was looked for.
        binary: PathBuf,
        /// Where it was looked for: the `PATH` directories, or where the path came from.
        searched: String,
    },
    /// The temporary directory for the server's files could not be created.
    #[error("failed to create a temporary directory for the server: {source}")]
    TempDir {
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The server process could not be spawned.
    #[error("failed to spawn `{}`: {source}", .binary.display())]
    Spawn {
        /// The binary that was run.
        binary: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The server did not answer `PING` within the limit, or exited before it did.
    #[error(
        "server on {addr} did not answer PING within {limit:?}{}; server log:\n{log}",
        exit_note(.exit.as_ref())
    )]
    NotReady {
        /// The address the server was started on.
        addr: SocketAddr,
        /// The readiness limit that was waited for.
        limit: Duration,
        /// The exit status, if the server process died.
        exit: Option<ExitStatus>,
        /// The server log (its tail if it is long), stdout and stderr included.
        log: String,
    },
    /// No free loopback port could be bound, or the server's port stayed busy.
    #[error("port selection failed after {attempts} attempt(s): {reason}")]
    PortSelection {
        /// How many ports (or how many tries of the same port) were attempted.
        attempts: u32,
        /// What went wrong on the last attempt.
        reason: String,
    },
    /// A signal could not be sent to the server process.
    #[error("failed to send {signal} to the server (pid {pid}): {source}")]
    Signal {
        /// The signal's name, such as `SIGSTOP`.
        signal: &'static str,
        /// The process id it was sent to.
        pid: u32,
        /// The underlying OS error.
        source: io::Error,
    },
    /// An HTTP request to a loopback server failed or got something that is not HTTP.
    #[error("http request to {url} failed: {reason}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// chromedriver refused a WebDriver command.
    #[error("webdriver command {command} failed: {error}: {message}")]
    WebDriver {
        /// The command's path.
        command: String,
        /// The WebDriver error code, such as `no such element`.
        error: String,
        /// chromedriver's message.
        message: String,
    },
    /// A state a test waited for did not come within the limit.
    #[error("waited {limit:?} for {what}, in vain")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        limit: Duration,
    },
    /// A file could not be written.
    #[error("cannot write `{}`: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The server was killed and has not been restarted, so it cannot be signalled.
    #[error("the server (last pid {pid}) is not running: it was killed and not restarted")]
    NotRunning {
        /// The process id the server last had.
        pid: u32,
    },
}

fn exit_note(exit: Option<&ExitStatus>) -> String {
    match exit {
        Some(status) => format!(" and exited ({status})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_their_subject() {
        let err = HarnessError::BinaryNotFound {
            service: "redis-server",
            binary: PathBuf::from("/x/redis-server"),
            searched: "from CONC_REDIS_SERVER".into(),
        };
        assert_eq!(
            err.to_string(),
            "redis-server binary not found: `/x/redis-server` (from CONC_REDIS_SERVER)"
        );
        let err = HarnessError::NotReady {
            addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
            limit: Duration::from_secs(5),
            exit: None,
            log: "the log".into(),
        };
        assert_eq!(
            err.to_string(),
            "server on 127.0.0.1:7000 did not answer PING within 5s; server log:\nthe log"
        );
    }
}
