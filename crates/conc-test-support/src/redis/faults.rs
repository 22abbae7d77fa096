//! The fault controls of a [`RedisServer`]: pause, resume, kill and restart.

use std::thread;
use std::time::Instant;

use super::process::{Launch, kill_and_reap, launch, stop, tail};
use super::{RESTART_PORT_WAIT, RESTART_RETRY_DELAY, RedisServer};
use crate::HarnessError;
use crate::sys::{self, Signal};

impl RedisServer {
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
