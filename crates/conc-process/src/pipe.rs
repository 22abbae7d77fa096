//! `a | b | c` with real OS pipes.

use std::time::Duration;

use conc_core::config::{self, ConfigError};

use crate::command::StdioOverride;
use crate::{ExitStatus, Process, ProcessError, ProcessOutput};

/// Processes connected by OS pipes, each one's standard output feeding the
/// next one's standard input, all running at once (a shell's `a | b | c`,
/// without a shell). Laravel's `Process::pipe` runs the commands one after
/// another with buffered output; here the data streams.
///
/// Each stage keeps its own standard error, status and timeouts; input set
/// on the first stage feeds the pipe, and the last stage's output is
/// captured as usual. (Named `Pipe`, not `Pipeline`: `conc-pipeline`'s
/// `Pipeline` is the staged pipeline of async functions.)
///
/// # Examples
///
/// ```
/// use conc_process::{Pipe, Process};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let output = Pipe::new()
///     .pipe(Process::new("printf").arg("pear\napple\nfig\n"))
///     .pipe(Process::new("sort"))
///     .pipe(Process::new("head").args(["-n", "2"]))
///     .run()
///     .await?;
/// assert!(output.successful());
/// assert_eq!(output.stdout_str(), "apple\nfig\n");
/// assert_eq!(output.stages().len(), 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "a Pipe does nothing until `run` is called"]
pub struct Pipe {
    stages: Vec<Process>,
    timeout: Option<Duration>,
}

impl Pipe {
    /// A pipe with no stages yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage: its standard input is the previous stage's standard output.
    pub fn pipe(mut self, process: Process) -> Self {
        self.stages.push(process);
        self
    }

    /// Kills every stage still running when the pipe has run this long.
    /// Stages start together, so this caps each stage's own timeout. Zero is
    /// refused; a timeout too long for the clock to represent means none.
    /// Defaults to no timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the pipe's own settings and each stage's, naming the stage.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.stages.is_empty() {
            return Err(ConfigError::new("stages", "[]", "must hold at least one stage"));
        }
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout)?;
        }
        for (index, stage) in self.stages.iter().enumerate() {
            stage.validate().map_err(|err| err.within(format_args!("stage {index}")))?;
            if index > 0 && stage.input.is_some() {
                return Err(ConfigError::new(
                    "input",
                    "Some(..)",
                    "must not be set: only the first stage of a pipe takes input",
                )
                .within(format_args!("stage {index}")));
            }
        }
        Ok(())
    }

    /// The stages and the pipe timeout, for runners.
    pub(crate) fn into_parts(self) -> (Vec<Process>, Option<Duration>) {
        (self.stages, self.timeout)
    }

    /// Starts every stage, waits for all of them, and returns each stage's
    /// result. Every stage's settings are checked before any starts
    /// ([`ProcessError::Config`] names the stage); if a stage then cannot be
    /// started, the stages already started are killed and the error returned.
    pub async fn run(self) -> Result<PipeOutput, ProcessError> {
        self.validate()?;
        let last = self.stages.len() - 1;
        let mut handles = Vec::with_capacity(self.stages.len());
        let mut upstream = None;
        for (index, mut stage) in self.stages.into_iter().enumerate() {
            if let Some(limit) = self.timeout {
                stage.timeout = Some(stage.timeout.map_or(limit, |own| own.min(limit)));
            }
            let mut overrides = StdioOverride::default();
            if let Some(reader) = upstream.take() {
                overrides.stdin = Some(std::process::Stdio::from(reader));
            }
            if index < last {
                let (reader, writer) = std::io::pipe().map_err(|source| ProcessError::Spawn {
                    program: stage.program().to_string_lossy().into_owned(),
                    source,
                })?;
                overrides.stdout = Some(std::process::Stdio::from(writer));
                upstream = Some(reader);
            }
            // Our copies of the pipe ends are closed when `start_with`
            // returns, so each reader sees end of file when its writer exits.
            handles.push(stage.start_with(overrides).await?);
        }
        let mut stages = Vec::with_capacity(handles.len());
        for handle in handles {
            stages.push(handle.wait().await);
        }
        Ok(PipeOutput { stages })
    }
}

/// The results of a [`Pipe`]: one per stage, in order.
///
/// # Examples
///
/// ```
/// use conc_process::{ExitStatus, Pipe, Process};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let output = Pipe::new().pipe(Process::new("false")).pipe(Process::new("cat")).run().await?;
/// assert_eq!(output.statuses(), [Some(ExitStatus::Code(1)), Some(ExitStatus::Code(0))]);
/// assert!(!output.successful(), "pipefail: any failing stage fails the pipe");
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a pipe's output says whether every stage succeeded"]
pub struct PipeOutput {
    stages: Vec<Result<ProcessOutput, ProcessError>>,
}

impl PipeOutput {
    pub(crate) fn from_stages(stages: Vec<Result<ProcessOutput, ProcessError>>) -> Self {
        Self { stages }
    }

    /// Each stage's result, in pipe order. A timed-out stage is an
    /// error carrying its partial output.
    pub fn stages(&self) -> &[Result<ProcessOutput, ProcessError>] {
        &self.stages
    }

    /// Each stage's exit status, or `None` for a stage that ended in an error.
    pub fn statuses(&self) -> Vec<Option<ExitStatus>> {
        self.stages.iter().map(|stage| stage.as_ref().ok().map(ProcessOutput::status)).collect()
    }

    /// Whether every stage exited with code 0 (a shell's `pipefail`). An
    /// upstream stage killed by `SIGPIPE` because a downstream one stopped
    /// reading counts as a failure, as in `pipefail`.
    pub fn successful(&self) -> bool {
        self.stages.iter().all(|stage| matches!(stage, Ok(output) if output.successful()))
    }

    /// The last stage's result (or partial result, for a timeout).
    pub fn last(&self) -> Option<&ProcessOutput> {
        match self.stages.last()? {
            Ok(output) => Some(output),
            Err(err) => err.output(),
        }
    }

    /// The last stage's standard output.
    pub fn stdout(&self) -> &[u8] {
        self.last().map(ProcessOutput::stdout).unwrap_or_default()
    }

    /// The last stage's standard output as text (lossy UTF-8).
    pub fn stdout_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.stdout())
    }

    /// Takes the stage results.
    pub fn into_stages(self) -> Vec<Result<ProcessOutput, ProcessError>> {
        self.stages
    }
}
