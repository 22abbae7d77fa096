//! [`RedisServerBuilder`]: the options of a server, and starting it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::binary::{find_binary_in, path_var, resolve};
use super::process::{Launch, free_port, launch, tail};
use super::{BINARY_ENV, DEFAULT_READY_TIMEOUT, PORT_ATTEMPTS, RedisServer};
use crate::HarnessError;

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
    /// [`Instant`](std::time::Instant), as with `Duration::MAX`) means no limit: the start
    /// waits until the server answers or exits. A zero limit still probes once.
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
    pub(super) fn server_args(&self) -> Vec<OsString> {
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

#[cfg(test)]
mod tests {
    use super::RedisServer;

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
