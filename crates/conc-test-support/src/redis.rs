//! A real `redis-server` per test: free loopback port, own temp dir, killed on drop.
//!
//! [`RedisServer::start`] runs an ephemeral server (no persistence);
//! [`RedisServer::start_durable`] runs one with an `appendfsync always` AOF, so
//! [`RedisServer::restart`] keeps the data. Fault tests stop the process with
//! [`RedisServer::pause`], kill it with [`RedisServer::kill`], and bring it back on the same
//! port and directory with [`RedisServer::restart`].
//!
//! The binary is `$CONC_REDIS_SERVER` when that is set, else `redis-server` on `PATH`
//! (or what [`RedisServerBuilder::binary`] names). Tests that should skip on a machine
//! without it use [`crate::require_redis`].
//!
//! # Examples
//!
//! ```no_run
//! use conc_test_support::RedisServer;
//!
//! let mut redis = RedisServer::start_durable()?;
//! let url = redis.url(); // "redis://127.0.0.1:<port>/"
//! // ... write through a client, then:
//! redis.restart()?;
//! assert_eq!(redis.url(), url);
//! # Ok::<(), conc_test_support::HarnessError>(())
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::resp::{self, Probe};
use crate::sys::{self, Signal};

/// The environment variable that names the `redis-server` binary (a path, or a name to
/// look up on `PATH`). When unset or empty, `redis-server` is looked up on `PATH`.
pub const BINARY_ENV: &str = "CONC_REDIS_SERVER";

/// The binary name looked up on `PATH` by default.
const DEFAULT_BINARY: &str = "redis-server";

/// How long a server has to answer `PING` after it is spawned, unless the builder says otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `SIGTERM`ed server has to exit before it gets `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often the readiness and exit loops poll.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many fresh ports a first start tries when another process takes the chosen one.
const PORT_ATTEMPTS: u32 = 5;

/// How long a restart keeps trying its (fixed) port while it is busy, and the pause between tries.
const RESTART_PORT_WAIT: Duration = Duration::from_secs(2);
const RESTART_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The longest server log kept in an error message (the tail is kept).
const MAX_LOG_IN_ERROR: usize = 16 * 1024;

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
    binary: PathBuf,
    args: Vec<OsString>,
    ready_timeout: Duration,
    port: u16,
    /// The pid of the running process, or of the last one after [`RedisServer::kill`].
    pid: u32,
    /// `None` after [`RedisServer::kill`] until [`RedisServer::restart`].
    child: Option<Child>,
    /// Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
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

    /// Stops the process in place with `SIGSTOP`: connections stay open but nothing is
    /// answered, as with a hung server or a network partition. Pausing twice is harmless.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// redis.pause()?;
    /// // ... clients now time out ...
    /// redis.resume()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal(Signal::Stop)
    }

    /// Continues a paused process with `SIGCONT`. Resuming a server that is not paused is
    /// harmless.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::start()?;
    /// redis.resume()?; // not paused: nothing happens
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal(Signal::Cont)
    }

    /// Kills the process with `SIGKILL` and reaps it, as a crash would. Calling it again is
    /// harmless; [`RedisServer::restart`] starts the server again on the same port and
    /// directory.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut redis = conc_test_support::RedisServer::start_durable()?;
    /// redis.kill()?;
    /// assert!(redis.pause().is_err()); // nothing to signal until the restart
    /// redis.restart()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        let Some(child) = self.child.as_mut() else { return Ok(()) };
        kill_and_reap(child).map_err(|source| HarnessError::Signal {
            signal: "SIGKILL",
            pid: self.pid,
            source,
        })?;
        self.child = None;
        Ok(())
    }

    /// Stops the server (`SIGTERM`, then `SIGKILL` if it has not exited within 5 s) and
    /// starts it again on the same port and directory, waiting for `PING` as
    /// [`RedisServer::start`] does. Works on a paused or killed server too. If the port is
    /// busy it retries for 2 s, then fails with [`HarnessError::PortSelection`] and leaves
    /// the server stopped (a later `restart` may succeed).
    ///
    /// A durable server keeps its data; an ephemeral one comes back empty.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut redis = conc_test_support::RedisServer::start_durable()?;
    /// let port = redis.port();
    /// redis.restart()?;
    /// assert_eq!(redis.port(), port);
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        if let Some(child) = self.child.as_mut() {
            stop(child).map_err(|source| HarnessError::Signal {
                signal: Signal::Term.name(),
                pid: self.pid,
                source,
            })?;
            self.child = None;
        }
        let deadline = Instant::now() + RESTART_PORT_WAIT;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match launch(&self.binary, &self.args, self.dir.path(), self.port, self.ready_timeout) {
                Ok(child) => {
                    self.pid = child.id();
                    self.child = Some(child);
                    return Ok(());
                }
                Err(Launch::PortBusy { log }) if Instant::now() >= deadline => {
                    return Err(HarnessError::PortSelection {
                        attempts,
                        reason: format!(
                            "port {} stayed in use for {RESTART_PORT_WAIT:?} after the restart; \
                             server log:\n{}",
                            self.port,
                            tail(&log)
                        ),
                    });
                }
                Err(Launch::PortBusy { .. }) => thread::sleep(RESTART_RETRY_DELAY),
                Err(Launch::Failed(err)) => return Err(err),
            }
        }
    }

    fn signal(&self, signal: Signal) -> Result<(), HarnessError> {
        if self.child.is_none() {
            return Err(HarnessError::NotRunning { pid: self.pid });
        }
        // The child is not reaped while `self.child` holds it, so the pid is still ours.
        sys::send(self.pid, signal).map_err(|source| HarnessError::Signal {
            signal: signal.name(),
            pid: self.pid,
            source,
        })
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

/// Options for a [`RedisServer`]; start one with [`RedisServerBuilder::start`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let redis = conc_test_support::RedisServer::builder()
///     .arg("--maxmemory", "10mb")
///     .arg("--maxmemory-policy", "noeviction")
///     .ready_timeout(Duration::from_secs(10))
///     .start()?;
/// # Ok::<(), conc_test_support::HarnessError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct RedisServerBuilder {
    durable: bool,
    binary: Option<PathBuf>,
    args: Vec<OsString>,
    ready_timeout: Duration,
}

impl Default for RedisServerBuilder {
    fn default() -> Self {
        Self {
            durable: false,
            binary: None,
            args: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

impl RedisServerBuilder {
    /// Turns the AOF on with `appendfsync always` (`true`) or runs without any persistence
    /// (`false`). Defaults to `false`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::builder().durable(true).start()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Adds a configuration option, as `redis-server` takes it on its command line
    /// (`--name value`). Added options come after the harness's own, so they override them.
    /// Defaults to none. An option the server rejects makes [`RedisServerBuilder::start`]
    /// fail with [`HarnessError::NotReady`], whose log says why.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::builder()
    ///     .arg("--maxmemory", "10mb")
    ///     .start()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn arg(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.args.push(name.into());
        self.args.push(value.into());
        self
    }

    /// Runs this binary (a path, or a name looked up on `PATH`) instead of
    /// `$CONC_REDIS_SERVER` or `redis-server`. Defaults to the environment's choice.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_test_support::{HarnessError, RedisServer};
    ///
    /// let err = RedisServer::builder().binary("/opt/none/redis-server").start().unwrap_err();
    /// assert!(matches!(err, HarnessError::BinaryNotFound { .. }));
    /// ```
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// How long the server has to answer `PING` after each (re)start. Defaults to 5 s.
    ///
    /// A limit too long to be a deadline (`Instant::now() + limit` does not fit an
    /// [`Instant`], as with `Duration::MAX`) means no limit: the start waits until the server
    /// answers or exits. A zero limit still probes once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let redis = conc_test_support::RedisServer::builder()
    ///     .ready_timeout(Duration::from_secs(10))
    ///     .start()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn ready_timeout(mut self, limit: Duration) -> Self {
        self.ready_timeout = limit;
        self
    }

    /// Finds the binary, creates the directory, picks a free loopback port and starts the
    /// server, waiting until it answers `PING`. If another process takes the port first, it
    /// tries a few fresh ports before giving up with [`HarnessError::PortSelection`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let redis = conc_test_support::RedisServer::builder().start()?;
    /// # Ok::<(), conc_test_support::HarnessError>(())
    /// ```
    pub fn start(self) -> Result<RedisServer, HarnessError> {
        let binary = match &self.binary {
            Some(binary) => resolve(binary, "given to RedisServerBuilder::binary", path_var())?,
            None => find_binary_in(std::env::var_os(BINARY_ENV), path_var())?,
        };
        let dir = tempfile::Builder::new()
            .prefix("conc-redis-")
            .tempdir()
            .map_err(|source| HarnessError::TempDir { source })?;
        let args = self.server_args();
        let mut last_reason = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match launch(&binary, &args, dir.path(), port, self.ready_timeout) {
                Ok(child) => {
                    return Ok(RedisServer {
                        binary,
                        args,
                        ready_timeout: self.ready_timeout,
                        port,
                        pid: child.id(),
                        child: Some(child),
                        dir,
                    });
                }
                Err(Launch::PortBusy { log }) => {
                    last_reason = format!(
                        "port {port} was taken before the server bound it; server log:\n{}",
                        tail(&log)
                    );
                }
                Err(Launch::Failed(err)) => return Err(err),
            }
        }
        Err(HarnessError::PortSelection { attempts: PORT_ATTEMPTS, reason: last_reason })
    }

    /// Starts the server, or skips the test when the binary is missing: see
    /// [`crate::require_redis`], which is `RedisServer::builder().require()`.
    ///
    /// # Panics
    ///
    /// When the binary is missing and `CONC_REQUIRE_SERVICES=1`, or when it is there but the
    /// server fails to start.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let Some(redis) = conc_test_support::RedisServer::builder()
    ///     .arg("--maxmemory", "10mb")
    ///     .require()
    /// else {
    ///     return;
    /// };
    /// ```
    #[track_caller]
    pub fn require(self) -> Option<RedisServer> {
        match self.start() {
            Ok(server) => Some(server),
            Err(err @ HarnessError::BinaryNotFound { .. }) => {
                crate::skip_unavailable("redis-server", &err);
                None
            }
            Err(err) => panic!("redis-server is installed but failed to start: {err}"),
        }
    }

    /// The options every server gets, then the durability mode, then the caller's.
    /// Port, directory and log file are added per launch.
    fn server_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> =
            ["--bind", "127.0.0.1", "--protected-mode", "no", "--daemonize", "no", "--save", ""]
                .iter()
                .map(OsString::from)
                .collect();
        let mode: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        args.extend(mode.iter().map(OsString::from));
        args.extend(self.args.iter().cloned());
        args
    }
}

/// Resolves the `redis-server` binary as [`RedisServer::start`] does: `$CONC_REDIS_SERVER`
/// when set and not empty, else `redis-server` on `PATH`.
///
/// # Examples
///
/// ```
/// match conc_test_support::redis::find_binary() {
///     Ok(path) => assert!(path.is_file()),
///     Err(err) => println!("no redis-server here: {err}"),
/// }
/// ```
pub fn find_binary() -> Result<PathBuf, HarnessError> {
    find_binary_in(std::env::var_os(BINARY_ENV), path_var())
}

fn path_var() -> Option<OsString> {
    std::env::var_os("PATH")
}

/// [`find_binary`] with the environment passed in, so it can be tested without touching
/// the process-global environment.
fn find_binary_in(
    env_value: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, HarnessError> {
    match env_value.filter(|v| !v.is_empty()) {
        Some(binary) => resolve(Path::new(&binary), &format!("from {BINARY_ENV}"), path),
        None => resolve(Path::new(DEFAULT_BINARY), "default", path),
    }
}

/// A name with a `/` is a path that must be an executable file; a bare name is looked up
/// in the `PATH` directories.
fn resolve(binary: &Path, origin: &str, path: Option<OsString>) -> Result<PathBuf, HarnessError> {
    let not_found = |searched: String| HarnessError::BinaryNotFound {
        service: DEFAULT_BINARY,
        binary: binary.to_path_buf(),
        searched,
    };
    if binary.components().count() != 1 || binary.is_absolute() {
        return if is_executable(binary) {
            Ok(binary.to_path_buf())
        } else {
            Err(not_found(format!("{origin}; no executable file at that path")))
        };
    }
    let path = path.unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            not_found(format!(
                "{origin}; searched PATH={}; install redis-server or set {BINARY_ENV}",
                path.to_string_lossy()
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Picks a port the kernel considers free right now by binding port 0 and letting go.
fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|err| HarnessError::PortSelection {
            attempts: 1,
            reason: format!("binding 127.0.0.1:0 failed: {err}"),
        })
}

/// Why one launch did not produce a ready server.
enum Launch {
    /// The server exited because its port was in use: try again (another port, or later).
    PortBusy { log: String },
    /// Anything else: give up with this error.
    Failed(HarnessError),
}

/// Spawns the server on `port` and waits until it answers `PING`; on failure the process is
/// killed and reaped before returning.
fn launch(
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
fn port_busy(log: &str, port: u16) -> bool {
    let needle = format!(":{port}");
    log.lines().any(|line| line.contains("Address already in use") && line.contains(&needle))
}

/// Sends `SIGKILL` (a no-op if it already exited) and reaps the child.
fn kill_and_reap(child: &mut Child) -> std::io::Result<ExitStatus> {
    child.kill()?;
    child.wait()
}

/// `SIGCONT` (in case it is paused), `SIGTERM`, then `SIGKILL` after [`STOP_GRACE`]; reaps.
fn stop(child: &mut Child) -> std::io::Result<()> {
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

fn read_log(dir: &Path) -> String {
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
fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(MAX_LOG_IN_ERROR);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found(err: HarnessError) -> (PathBuf, String) {
        match err {
            HarnessError::BinaryNotFound { binary, searched, .. } => (binary, searched),
            other => panic!("expected BinaryNotFound, got {other:?}"),
        }
    }

    #[test]
    fn env_path_that_does_not_exist_is_named() {
        let err = find_binary_in(Some("/nonexistent/dir/redis-server".into()), None).unwrap_err();
        let message = err.to_string();
        let (binary, searched) = not_found(err);
        assert_eq!(binary, Path::new("/nonexistent/dir/redis-server"));
        assert!(searched.contains(BINARY_ENV), "{searched}");
        assert!(message.contains("/nonexistent/dir/redis-server"), "{message}");
    }

    #[test]
    fn bare_name_is_searched_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("my-redis");
        fs::write(&fake, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(find_binary_in(Some("my-redis".into()), Some(path.clone())).unwrap(), fake);

        let (binary, searched) = not_found(find_binary_in(None, Some(path)).unwrap_err());
        assert_eq!(binary, Path::new("redis-server"));
        assert!(searched.contains("/nonexistent"), "{searched}");
    }

    #[test]
    fn empty_env_value_means_default_and_non_executables_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("redis-server");
        fs::write(&plain, "not executable").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        let path = OsString::from(dir.path());
        let (binary, _) = not_found(find_binary_in(Some(OsString::new()), Some(path)).unwrap_err());
        assert_eq!(binary, Path::new("redis-server"));
        let (binary, _) =
            not_found(find_binary_in(Some(plain.clone().into_os_string()), None).unwrap_err());
        assert_eq!(binary, plain);
    }

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

    #[test]
    fn ephemeral_and_durable_arguments() {
        let ephemeral = RedisServer::builder().arg("--maxmemory", "10mb").server_args();
        let text: Vec<_> = ephemeral.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(text.windows(2).any(|w| w == ["--save", ""]));
        assert!(text.windows(2).any(|w| w == ["--appendonly", "no"]));
        assert_eq!(text[text.len() - 2..], ["--maxmemory", "10mb"]);
        let durable = RedisServer::builder().durable(true).server_args();
        let text: Vec<_> = durable.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(text.windows(2).any(|w| w == ["--appendonly", "yes"]));
        assert!(text.windows(2).any(|w| w == ["--appendfsync", "always"]));
    }
}
