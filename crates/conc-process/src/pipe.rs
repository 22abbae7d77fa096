//! `a | b | c` with real OS pipes.

use std::time::Duration;

use crate::command::StdioOverride;
use crate::{ExitStatus, Process, ProcessError, ProcessOutput};

/// Processes connected by OS pipes, each one's standard output feeding the
/// next one's standard input, all running at once (a shell's `a | b | c`,
/// without a shell). Laravel's `Process::pipe` runs the commands one after
/// another with buffered output; here the data streams.
///
/// Each stage keeps its own standard error, status and timeouts; input set
/// on the first stage feeds the pipeline, and the last stage's output is
/// captured as usual.
///
/// # Examples
///
/// ```
/// use conc_process::{Pipeline, Process};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let output = Pipeline::new()
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
#[must_use = "a Pipeline does nothing until `run` is called"]
pub struct Pipeline {
    stages: Vec<Process>,
    timeout: Option<Duration>,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage: its standard input is the previous stage's standard output.
    pub fn pipe(mut self, process: Process) -> Self {
        self.stages.push(process);
        self
    }

    /// Kills every stage still running when the pipeline has run this long.
    /// Stages start together, so this caps each stage's own timeout.
    /// Defaults to no timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The stages and the pipeline timeout, for runners.
    pub(crate) fn into_parts(self) -> (Vec<Process>, Option<Duration>) {
        (self.stages, self.timeout)
    }

    /// Starts every stage, waits for all of them, and returns each stage's
    /// result. Fails without running anything useful if a stage cannot be
    /// started (the stages already started are killed).
    pub async fn run(self) -> Result<PipelineOutput, ProcessError> {
        if self.stages.is_empty() {
            return Err(ProcessError::InvalidConfig {
                field: "stages",
                value: "[]".into(),
                reason: "a pipeline needs at least one stage",
            });
        }
        if let Some(timeout) = self.timeout.filter(Duration::is_zero) {
            return Err(ProcessError::InvalidConfig {
                field: "timeout",
                value: format!("{timeout:?}"),
                reason: "must be greater than zero",
            });
        }
        let last = self.stages.len() - 1;
        let mut handles = Vec::with_capacity(self.stages.len());
        let mut upstream = None;
        for (index, mut stage) in self.stages.into_iter().enumerate() {
            if let Some(limit) = self.timeout {
                stage.timeout = Some(stage.timeout.map_or(limit, |own| own.min(limit)));
            }
            let mut overrides = StdioOverride::default();
            if let Some(reader) = upstream.take() {
                if stage.input.is_some() {
                    return Err(ProcessError::InvalidConfig {
                        field: "input",
                        value: format!("stage {index}"),
                        reason: "only the first stage of a pipeline takes input",
                    });
                }
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
        Ok(PipelineOutput { stages })
    }
}

/// The results of a [`Pipeline`]: one per stage, in order.
#[derive(Debug)]
pub struct PipelineOutput {
    stages: Vec<Result<ProcessOutput, ProcessError>>,
}

impl PipelineOutput {
    pub(crate) fn from_stages(stages: Vec<Result<ProcessOutput, ProcessError>>) -> Self {
        Self { stages }
    }

    /// Each stage's result, in pipeline order. A timed-out stage is an
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
