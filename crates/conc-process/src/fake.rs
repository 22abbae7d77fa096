//! Running processes through an injectable runner, and a fake one for tests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conc_core::BoxFuture;
use tokio::io::AsyncReadExt;

use crate::command::Input;
use crate::{
    ExitStatus, Pipe, PipeOutput, Process, ProcessError, ProcessOutput, Signal, Stream, TimeoutKind,
};

/// Something that runs processes: the real system ([`SystemRunner`]) or a
/// [`FakeRunner`]. Code that takes an `Arc<dyn ProcessRunner>` can be
/// tested without spawning anything; [`ProcessPool`](crate::ProcessPool)
/// takes one too ([`ProcessPoolBuilder::runner`](crate::ProcessPoolBuilder::runner)).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conc_process::{FakeResult, FakeRunner, Process, ProcessError, ProcessRunner, SystemRunner};
///
/// async fn current_branch(runner: &dyn ProcessRunner) -> Result<String, ProcessError> {
///     let output = runner.run(Process::new("git").args(["branch", "--show-current"])).await?.check()?;
///     Ok(output.stdout_str().trim().to_owned())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ProcessError> {
/// let fake = FakeRunner::new().on("git branch *", FakeResult::success().stdout("main\n")).prevent_stray_processes();
/// assert_eq!(current_branch(&fake).await?, "main");
/// fake.assert_ran_times("git branch*", 1);
/// # let _real: Arc<dyn ProcessRunner> = Arc::new(SystemRunner);
/// # Ok(()) }
/// ```
pub trait ProcessRunner: Send + Sync {
    /// Runs one process to its end ([`Process::run`]).
    fn run(&self, process: Process) -> BoxFuture<'_, Result<ProcessOutput, ProcessError>>;

    /// Runs a pipe of processes ([`Pipe::run`]).
    fn run_pipe(&self, pipe: Pipe) -> BoxFuture<'_, Result<PipeOutput, ProcessError>>;
}

/// The real system: spawns the processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl ProcessRunner for SystemRunner {
    fn run(&self, process: Process) -> BoxFuture<'_, Result<ProcessOutput, ProcessError>> {
        Box::pin(process.run())
    }

    fn run_pipe(&self, pipe: Pipe) -> BoxFuture<'_, Result<PipeOutput, ProcessError>> {
        Box::pin(pipe.run())
    }
}

/// What a faked process "does": its output, how it ends, how long it takes.
///
/// ```
/// use std::time::Duration;
/// use conc_process::{FakeResult, Signal};
///
/// let ok = FakeResult::success().stdout("done\n");
/// let failing = FakeResult::exit_code(2).stderr("no such file\n");
/// let killed = FakeResult::signaled(Signal::KILL);
/// let slow = FakeResult::success().after(Duration::from_secs(5)); // honours the process's timeout
/// # let _ = (ok, failing, killed, slow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a FakeResult does nothing until a FakeRunner answers with it"]
pub struct FakeResult {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    after: Duration,
}

impl FakeResult {
    /// Exits with code 0 and no output, at once.
    pub fn success() -> Self {
        Self::exit_code(0)
    }

    /// Exits with `code`.
    pub fn exit_code(code: i32) -> Self {
        Self {
            status: ExitStatus::Code(code),
            stdout: Vec::new(),
            stderr: Vec::new(),
            after: Duration::ZERO,
        }
    }

    /// Is killed by `signal`.
    pub fn signaled(signal: Signal) -> Self {
        Self { status: ExitStatus::Signaled(signal), ..Self::success() }
    }

    /// Writes this to standard output.
    pub fn stdout(mut self, stdout: impl Into<Vec<u8>>) -> Self {
        self.stdout = stdout.into();
        self
    }

    /// Writes this to standard error.
    pub fn stderr(mut self, stderr: impl Into<Vec<u8>>) -> Self {
        self.stderr = stderr.into();
        self
    }

    /// Ends after `duration` (on tokio's clock, so a paused test clock
    /// skips it). If the process has a shorter [`timeout`](Process::timeout),
    /// the run fails with [`ProcessError::TimedOut`] at the timeout instead.
    pub fn after(mut self, duration: Duration) -> Self {
        self.after = duration;
        self
    }
}

/// What a pattern answers: always the same result, or a sequence.
#[derive(Debug)]
enum Answer {
    Always(FakeResult),
    Sequence(VecDeque<FakeResult>),
}

/// One run the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeRun {
    /// Program and arguments joined with spaces ([`Process::command_line`]).
    pub command_line: String,
    /// The working directory it was given.
    pub current_dir: Option<std::path::PathBuf>,
    /// The environment variables it set (`None` values were removed).
    pub env: Vec<(String, Option<String>)>,
    /// The input it was given (for pipe stages after the first: the
    /// previous stage's output).
    pub input: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct FakeState {
    rules: Vec<(String, Answer)>,
    runs: Vec<FakeRun>,
}

/// A [`ProcessRunner`] that spawns nothing: commands are matched against
/// wildcard patterns (`*` matches any text, spaces included) mapped to
/// [`FakeResult`]s or sequences of them, every run is recorded, and tests
/// assert on what ran (Laravel's `Process::fake`).
///
/// Patterns are tried in the order added; the first match answers. A
/// command no pattern matches runs for real, unless
/// [`prevent_stray_processes`](Self::prevent_stray_processes) was called, in
/// which case the run fails with [`ProcessError::Fake`]. Output callbacks of
/// the faked process receive the fake output.
///
/// # Examples
///
/// ```
/// use conc_process::{FakeResult, FakeRunner, Process, ProcessPool};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let fake = FakeRunner::new()
///     .on_sequence("deploy *", [FakeResult::exit_code(1), FakeResult::success()])
///     .on("*", FakeResult::success())
///     .shared();
/// let pool = ProcessPool::builder().runner(fake.clone()).build()?;
/// let results = pool.run([("a", Process::new("deploy").arg("a")), ("b", Process::new("deploy").arg("b"))]).await?;
/// assert_eq!(results.failed().collect::<Vec<_>>(), ["a"]);
/// fake.assert_ran_times("deploy *", 2);
/// fake.assert_not_ran("rollback*");
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
#[must_use = "a FakeRunner does nothing until processes are run through it"]
pub struct FakeRunner {
    state: Arc<Mutex<FakeState>>,
    prevent_stray: bool,
}

impl FakeRunner {
    /// A fake with no patterns: every command runs for real until patterns
    /// are added or stray processes are prevented.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every run of a command matching `pattern` gets `result`.
    pub fn on(self, pattern: impl Into<String>, result: FakeResult) -> Self {
        self.lock().rules.push((pattern.into(), Answer::Always(result)));
        self
    }

    /// Runs of a command matching `pattern` get these results in turn; a run
    /// after the last one fails with [`ProcessError::Fake`].
    pub fn on_sequence(
        self,
        pattern: impl Into<String>,
        results: impl IntoIterator<Item = FakeResult>,
    ) -> Self {
        self.lock().rules.push((pattern.into(), Answer::Sequence(results.into_iter().collect())));
        self
    }

    /// Commands no pattern matches fail with [`ProcessError::Fake`] instead
    /// of running for real.
    pub fn prevent_stray_processes(mut self) -> Self {
        self.prevent_stray = true;
        self
    }

    /// This fake behind an `Arc`, to hand to code under test while keeping
    /// it for assertions.
    pub fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }

    /// Every run so far, in order.
    pub fn runs(&self) -> Vec<FakeRun> {
        self.lock().runs.clone()
    }

    /// How many runs matched `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.lock().runs.iter().filter(|run| wildcard_match(pattern, &run.command_line)).count()
    }

    /// Panics unless a command matching `pattern` ran.
    ///
    /// # Panics
    ///
    /// When the expectation does not hold, listing what ran; this is a test assertion.
    #[track_caller]
    pub fn assert_ran(&self, pattern: &str) {
        assert!(
            self.count(pattern) > 0,
            "expected a run matching `{pattern}`; ran: {:?}",
            self.command_lines()
        );
    }

    /// Panics unless a run matching `pattern` satisfies `check`.
    ///
    /// # Panics
    ///
    /// When the expectation does not hold, listing what ran; this is a test assertion.
    #[track_caller]
    pub fn assert_ran_with(&self, pattern: &str, check: impl Fn(&FakeRun) -> bool) {
        let state = self.lock();
        let found =
            state.runs.iter().any(|run| wildcard_match(pattern, &run.command_line) && check(run));
        drop(state);
        assert!(
            found,
            "expected a run matching `{pattern}` that passes the check; ran: {:?}",
            self.command_lines()
        );
    }

    /// Panics unless commands matching `pattern` ran exactly `times` times.
    ///
    /// # Panics
    ///
    /// When the expectation does not hold, listing what ran; this is a test assertion.
    #[track_caller]
    pub fn assert_ran_times(&self, pattern: &str, times: usize) {
        let count = self.count(pattern);
        assert_eq!(count, times, "runs matching `{pattern}`; ran: {:?}", self.command_lines());
    }

    /// Panics if a command matching `pattern` ran.
    ///
    /// # Panics
    ///
    /// When the expectation does not hold, listing what ran; this is a test assertion.
    #[track_caller]
    pub fn assert_not_ran(&self, pattern: &str) {
        assert_eq!(
            self.count(pattern),
            0,
            "expected no run matching `{pattern}`; ran: {:?}",
            self.command_lines()
        );
    }

    /// Panics if anything ran.
    ///
    /// # Panics
    ///
    /// When the expectation does not hold, listing what ran; this is a test assertion.
    #[track_caller]
    pub fn assert_nothing_ran(&self) {
        let ran = self.command_lines();
        assert!(ran.is_empty(), "expected no runs; ran: {ran:?}");
    }

    fn command_lines(&self) -> Vec<String> {
        self.lock().runs.iter().map(|run| run.command_line.clone()).collect()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the run and picks its answer: `Ok(None)` means "run for real".
    fn answer(&self, run: FakeRun) -> Result<Option<FakeResult>, ProcessError> {
        let mut state = self.lock();
        let command = run.command_line.clone();
        state.runs.push(run);
        let Some((pattern, answer)) =
            state.rules.iter_mut().find(|(pattern, _)| wildcard_match(pattern, &command))
        else {
            if self.prevent_stray {
                return Err(ProcessError::Fake {
                    command,
                    reason: "no fake matches it and stray processes are prevented".into(),
                });
            }
            return Ok(None);
        };
        match answer {
            Answer::Always(result) => Ok(Some(result.clone())),
            Answer::Sequence(results) => {
                results.pop_front().map(Some).ok_or_else(|| ProcessError::Fake {
                    command,
                    reason: format!("the sequence for `{pattern}` is exhausted"),
                })
            }
        }
    }

    async fn run_one(
        &self,
        mut process: Process,
        input: Option<Vec<u8>>,
    ) -> Result<ProcessOutput, ProcessError> {
        // A setting the real run would refuse is refused here too, before
        // anything is recorded, so a fake cannot hide a bad configuration.
        process.validate()?;
        let input = match (input, process.input.take()) {
            (Some(input), _) => Some(input),
            (None, Some(Input::Bytes(bytes))) => Some(bytes.to_vec()),
            (None, Some(Input::Reader(mut reader))) => {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes).await.map_err(|source| ProcessError::Spawn {
                    program: process.command_line(),
                    source,
                })?;
                Some(bytes)
            }
            (None, None) => None,
        };
        let run = FakeRun {
            command_line: process.command_line(),
            current_dir: process.cwd.clone(),
            env: process
                .env
                .iter()
                .map(|(key, value)| {
                    (
                        key.to_string_lossy().into_owned(),
                        value.as_ref().map(|v| v.to_string_lossy().into_owned()),
                    )
                })
                .collect(),
            input: input.clone(),
        };
        let Some(result) = self.answer(run)? else {
            if let Some(input) = input {
                process = process.input(input);
            }
            return process.run().await;
        };
        let program = process.program.to_string_lossy().into_owned();
        let timed_out = process.timeout.filter(|timeout| *timeout < result.after);
        tokio::time::sleep(timed_out.unwrap_or(result.after)).await;
        let deliver = |stream: Stream, bytes: &[u8]| {
            if let (Some(callback), false) = (&process.on_output, bytes.is_empty()) {
                callback(stream, bytes);
            }
            if let Some(callback) = &process.on_line {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    callback(
                        stream,
                        &String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)),
                    );
                }
            }
        };
        deliver(Stream::Stdout, &result.stdout);
        deliver(Stream::Stderr, &result.stderr);
        let keep = !process.quiet;
        let output = ProcessOutput::new(program, result.status)
            .with_stdout(if keep { result.stdout } else { Vec::new() })
            .with_stderr(if keep { result.stderr } else { Vec::new() })
            .with_duration(timed_out.unwrap_or(result.after));
        match timed_out {
            Some(after) => Err(ProcessError::TimedOut {
                kind: TimeoutKind::Total,
                after,
                output: Box::new(ProcessOutput {
                    status: ExitStatus::Signaled(Signal::KILL),
                    ..output
                }),
            }),
            None => Ok(output),
        }
    }
}

impl ProcessRunner for FakeRunner {
    fn run(&self, process: Process) -> BoxFuture<'_, Result<ProcessOutput, ProcessError>> {
        Box::pin(self.run_one(process, None))
    }

    /// Runs each stage through the fake in order, feeding each stage's
    /// output to the next as its recorded input.
    fn run_pipe(&self, pipe: Pipe) -> BoxFuture<'_, Result<PipeOutput, ProcessError>> {
        Box::pin(async move {
            pipe.validate()?;
            let (stages, timeout) = pipe.into_parts();
            let mut results = Vec::with_capacity(stages.len());
            let mut carried = None;
            for mut stage in stages {
                if let Some(limit) = timeout {
                    stage.timeout = Some(stage.timeout.map_or(limit, |own| own.min(limit)));
                }
                let result = self.run_one(stage, carried.take()).await;
                carried = Some(match &result {
                    Ok(output) => output.stdout().to_vec(),
                    Err(err) => {
                        err.output().map(|output| output.stdout().to_vec()).unwrap_or_default()
                    }
                });
                results.push(result);
            }
            Ok(PipeOutput::from_stages(results))
        })
    }
}

impl<T: ProcessRunner + ?Sized> ProcessRunner for Arc<T> {
    fn run(&self, process: Process) -> BoxFuture<'_, Result<ProcessOutput, ProcessError>> {
        (**self).run(process)
    }

    fn run_pipe(&self, pipe: Pipe) -> BoxFuture<'_, Result<PipeOutput, ProcessError>> {
        (**self).run_pipe(pipe)
    }
}

impl fmt::Debug for FakeRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeRunner")
            .field("patterns", &state.rules.iter().map(|(pattern, _)| pattern).collect::<Vec<_>>())
            .field("runs", &state.runs.len())
            .field("prevent_stray", &self.prevent_stray)
            .finish_non_exhaustive()
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("git status", "git status"));
        assert!(!wildcard_match("git status", "git status -s"));
        assert!(wildcard_match("git *", "git status -s"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*status*", "git status -s"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXbY"));
        assert!(wildcard_match("a*a", "aa"));
        assert!(!wildcard_match("a*a", "a"));
        assert!(!wildcard_match("cargo *", "git cargo x"));
    }
}
