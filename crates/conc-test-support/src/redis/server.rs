//! [`RedisServer`]: the running server, where to reach it, and what it left behind.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use super::RedisServerBuilder;
use super::process::{kill_and_reap, read_log};
use crate::HarnessError;
use crate::sys::{self, Signal};

/// A `redis-server` child process on a free loopback port, with its own temporary directory.
///
/// Dropping it kills the process (`SIGKILL`, after `SIGCONT` in case it is paused), reaps it
/// and removes the directory, also when the test panics.
///
/// # When the test process itself is killed
///
/// `Drop` does not run when the test binary is killed with `SIGKILL` (a CI timeout, the OOM
/// killer). On Linux the server goes anyway: it is spawned with `PR_SET_PDEATHSIG(SIGKILL)`,
/// so the kernel kills it when the test process dies. The kernel sends that signal when the
/// *thread* that spawned the child exits, and a test thread ends with its test while a server
/// it started may be shared with other tests (kept in a static) and must outlive it; so
/// servers are not spawned on the calling thread but on one harness thread that runs until
/// the process ends, and a server dies with the process, never with a thread. Only its
/// temporary directory is left behind. On other Unix systems there is no such hook: a killed
/// test process leaves its servers running (each on its own loopback port and directory, so
/// later runs are not disturbed), and they must be stopped by hand.
///
/// # Examples
///
/// ```no_run
/// use conc_test_support::RedisServer;
///
/// let redis = RedisServer::start()?;
/// println!("connect to {}", redis.url());
/// # Ok::<(), conc_test_support::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct RedisServer {
    pub(super) binary: PathBuf,
    pub(super) args: Vec<OsString>,
    pub(super) ready_timeout: Duration,
    pub(super) port: u16,
    /// The pid of the running process, or of the last one after [`RedisServer::kill`].
    pub(super) pid: u32,
    /// `None` after [`RedisServer::kill`] until [`RedisServer::restart`].
    pub(super) child: Option<Child>,
    /// Declared last so it is removed after the process is gone.
    pub(super) dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts an ephemeral server: no RDB snapshots, no AOF, so a restart loses the data.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// assert!(redis.url().starts_with("redis://127.0.0.1:"));
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn start() -> Result<Self, HarnessError> {
        Self::builder().start()
    }

    /// Starts a durable server: AOF on with `appendfsync always`, so every acknowledged write
    /// survives [`RedisServer::restart`] and even [`RedisServer::kill`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut redis = conc_test_support::RedisServer::start_durable()?;
    /// redis.restart()?; // the data written before is still there
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn start_durable() -> Result<Self, HarnessError> {
        Self::builder().durable(true).start()
    }

    /// A builder for a server with extra options, another binary or another readiness limit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::builder()
    ///     .durable(true)
    ///     .arg("--maxmemory", "10mb")
    ///     .start()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The server's URL, `redis://127.0.0.1:PORT/`, for a client's `open`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The loopback port the server listens on; it stays the same across restarts.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut redis = conc_test_support::RedisServer::start()?;
    /// let port = redis.port();
    /// redis.restart()?;
    /// assert_eq!(redis.port(), port);
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's socket address, `127.0.0.1:PORT`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// let stream = std::net::TcpStream::connect(redis.addr())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's working directory (AOF and log live here); removed on drop.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// assert!(redis.dir().join("redis.log").exists());
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log so far (`redis.log`, over all restarts), followed by anything the
    /// process wrote to stdout or stderr.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// assert!(redis.log().contains("Ready to accept connections"));
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The process id of the running server, or of the last one after [`RedisServer::kill`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut redis = conc_test_support::RedisServer::start()?;
    /// let before = redis.pid();
    /// redis.restart()?;
    /// assert_ne!(redis.pid(), before);
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a stopped process too; the SIGCONT is only for tidiness.
            let _ = sys::send(self.pid, Signal::Cont);
            let _ = kill_and_reap(&mut child);
        }
    }
}
