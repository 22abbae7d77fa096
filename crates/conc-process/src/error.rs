//! Why running a process failed.

use std::time::Duration;

use conc_core::config::ConfigError;

use crate::{ProcessOutput, Signal};

/// Which timeout stopped a process.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::{Process, ProcessError, TimeoutKind};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = Process::new("sleep").arg("30").idle_timeout(Duration::from_millis(50)).run().await.unwrap_err();
/// assert!(matches!(err, ProcessError::TimedOut { kind: TimeoutKind::Idle, .. }));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The total run time exceeded [`Process::timeout`](crate::Process::timeout).
    Total,
    /// No output arrived for [`Process::idle_timeout`](crate::Process::idle_timeout).
    Idle,
}

/// Why running a process failed.
///
/// A process that ran and exited unsuccessfully is not an error: it is a
/// [`ProcessOutput`] whose [`check`](ProcessOutput::check) turns it into
/// [`ProcessError::Failed`]. Errors are for runs that were refused, could not
/// start, or did not end on their own.
///
/// # Examples
///
/// ```
/// use conc_process::{Process, ProcessError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = Process::new("conc-no-such-program").run().await.unwrap_err();
/// assert!(matches!(err, ProcessError::NotFound { .. }));
/// assert_eq!(err.to_string(), "program `conc-no-such-program` not found");
///
/// let err = Process::new("").run().await.unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid `program` "": must not be empty"#);
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// A setting was refused (its name, value and the rule it broke); nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The program does not exist (not on `PATH`, or no such file).
    #[error("program `{program}` not found")]
    NotFound {
        /// The program as given.
        program: String,
    },
    /// The program exists but may not be executed.
    #[error("program `{program}` is not executable: permission denied")]
    PermissionDenied {
        /// The program as given.
        program: String,
    },
    /// Spawning failed for another reason.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program as given.
        program: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A timeout elapsed; the process (and its process group) was killed.
    /// Carries everything read until then.
    #[error("`{}` timed out ({kind:?}) after {after:?}", output.program())]
    TimedOut {
        /// Which timeout.
        kind: TimeoutKind,
        /// The timeout that elapsed.
        after: Duration,
        /// The partial result: output read before the kill, and the kill status.
        output: Box<ProcessOutput>,
    },
    /// The process exited unsuccessfully (from [`ProcessOutput::check`]); carries the result.
    #[error("`{}` failed: {}", output.program(), output.status())]
    Failed {
        /// The result of the failed run.
        output: Box<ProcessOutput>,
    },
    /// An output callback panicked; the process was killed.
    #[error("output callback of `{program}` panicked: {message}")]
    CallbackPanicked {
        /// The program that was running.
        program: String,
        /// The panic message.
        message: String,
    },
    /// A signal could not be sent because the process has already exited.
    #[error("cannot send {signal} to process {pid}: it has exited")]
    NotRunning {
        /// The process id it had.
        pid: u32,
        /// The signal that was not sent.
        signal: Signal,
    },
    /// Sending a signal failed.
    #[error("could not send {signal} to process {pid}: {source}")]
    Signal {
        /// The process id.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the process failed.
    #[error("could not wait for process {pid}: {source}")]
    Wait {
        /// The process id.
        pid: u32,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A [`FakeRunner`](crate::FakeRunner) refused the run: no pattern
    /// matched and stray processes are prevented, or a sequence ran out.
    #[error("fake for `{command}`: {reason}")]
    Fake {
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },
    /// The run was cancelled (a pool's fail-fast or stop, a driver gone); its group was killed.
    #[error("`{name}` was cancelled")]
    Cancelled {
        /// The job or program name.
        name: String,
    },
}

impl ProcessError {
    /// The partial or final result this error carries, if any.
    ///
    /// ```
    /// use conc_process::{ExitStatus, ProcessOutput};
    ///
    /// let err = ProcessOutput::new("false", ExitStatus::Code(1)).check().unwrap_err();
    /// assert_eq!(err.output().map(ProcessOutput::exit_code), Some(Some(1)));
    /// ```
    pub fn output(&self) -> Option<&ProcessOutput> {
        match self {
            Self::TimedOut { output, .. } | Self::Failed { output } => Some(output),
            _ => None,
        }
    }

    /// The refused setting, if this is a [`ProcessError::Config`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use conc_process::Process;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = Process::new("true").timeout(Duration::ZERO).run().await.unwrap_err();
    /// assert_eq!(err.config().map(|config| &*config.field), Some("timeout"));
    /// # }
    /// ```
    pub fn config(&self) -> Option<&ConfigError> {
        match self {
            Self::Config(config) => Some(config),
            _ => None,
        }
    }
}
