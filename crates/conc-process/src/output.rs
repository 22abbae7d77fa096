//! What a finished process leaves behind.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::{ExitStatus, ProcessError};

/// Which output stream a chunk or line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        })
    }
}

/// What a finished process used, from the kernel's accounting (`rusage`),
/// read when it exited. Available on Linux 5.3 and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time spent in user mode.
    pub user_cpu: Duration,
    /// CPU time spent in the kernel on its behalf.
    pub system_cpu: Duration,
    /// Peak resident set size, in bytes.
    pub max_rss_bytes: u64,
}

/// The result of a process that ran to its end: how it ended, what it wrote,
/// how long it took.
///
/// A failed exit is still a `ProcessOutput` (check [`successful`](Self::successful)
/// or turn it into an error with [`check`](Self::check)); a timeout is a
/// [`ProcessError::TimedOut`] that carries the partial `ProcessOutput`.
///
/// # Examples
///
/// ```
/// use conc_process::Process;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let output = Process::new("echo").arg("hello").run().await?;
/// assert!(output.successful());
/// assert_eq!(output.stdout_str(), "hello\n");
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    pub(crate) program: String,
    pub(crate) pid: u32,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) duration: Duration,
    pub(crate) output_held_open: bool,
    pub(crate) usage: Option<ResourceUsage>,
}

impl ProcessOutput {
    /// A result with this status and no output, for fakes and tests of code
    /// that consumes results.
    ///
    /// ```
    /// use conc_process::{ExitStatus, ProcessOutput};
    ///
    /// let output = ProcessOutput::new("git", ExitStatus::Code(1)).with_stderr("fatal: not a git repository\n");
    /// assert!(output.failed());
    /// ```
    pub fn new(program: impl Into<String>, status: ExitStatus) -> Self {
        Self {
            program: program.into(),
            pid: 0,
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
            duration: Duration::ZERO,
            output_held_open: false,
            usage: None,
        }
    }

    /// Replaces the captured standard output.
    #[must_use]
    pub fn with_stdout(mut self, stdout: impl Into<Vec<u8>>) -> Self {
        self.stdout = stdout.into();
        self
    }

    /// Replaces the captured standard error.
    #[must_use]
    pub fn with_stderr(mut self, stderr: impl Into<Vec<u8>>) -> Self {
        self.stderr = stderr.into();
        self
    }

    /// Replaces the duration.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The program that ran, as given to the builder.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The process id it had (0 for a result made with [`new`](Self::new)).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How the process ended.
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// Whether it exited with code 0.
    pub fn successful(&self) -> bool {
        self.status.success()
    }

    /// Whether it exited with a non-zero code or was killed by a signal.
    pub fn failed(&self) -> bool {
        !self.successful()
    }

    /// The exit code, or `None` when a signal killed it.
    pub fn exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<crate::Signal> {
        self.status.signal()
    }

    /// Everything it wrote to standard output (empty in quiet mode).
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// Everything it wrote to standard error (empty in quiet mode).
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// Standard output as text; invalid UTF-8 is replaced with `U+FFFD`.
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text; invalid UTF-8 is replaced with `U+FFFD`.
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// Takes the captured standard output.
    pub fn into_stdout(self) -> Vec<u8> {
        self.stdout
    }

    /// Time from spawn to exit.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether its output pipes were still open when the run ended: the
    /// process exited, but something it started (a grandchild) kept standard
    /// output or error open past the drain grace. The output read until then
    /// is kept; the rest is not waited for.
    pub fn output_held_open(&self) -> bool {
        self.output_held_open
    }

    /// CPU time and peak memory the process used (Linux 5.3 and later;
    /// `None` elsewhere, and for results made with [`new`](Self::new)).
    ///
    /// Counts the process itself and the descendants it waited for.
    pub fn usage(&self) -> Option<ResourceUsage> {
        self.usage
    }

    /// `Ok(self)` if the process succeeded, else [`ProcessError::Failed`]
    /// carrying this result (Laravel's `throw()`).
    ///
    /// ```
    /// use conc_process::{Process, ProcessError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let err = Process::new("false").run().await.unwrap().check().unwrap_err();
    /// assert!(matches!(err, ProcessError::Failed { .. }));
    /// # }
    /// ```
    pub fn check(self) -> Result<Self, ProcessError> {
        if self.successful() {
            Ok(self)
        } else {
            Err(ProcessError::Failed { output: Box::new(self) })
        }
    }
}

impl fmt::Debug for ProcessOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessOutput")
            .field("program", &self.program)
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("stdout", &self.stdout_str())
            .field("stderr", &self.stderr_str())
            .field("duration", &self.duration)
            .field("output_held_open", &self.output_held_open)
            .field("usage", &self.usage)
            .finish()
    }
}
