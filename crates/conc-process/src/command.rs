//! The process builder.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use conc_core::config::{self, ConfigError};
use tokio::io::AsyncRead;

use crate::running::{self, RunningProcess, Spawned};
use crate::{ProcessError, ProcessOutput, Signal, Stream};

/// How long a run keeps reading output after the process exited, by default.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_millis(200);

/// A callback that receives output chunks.
pub(crate) type ChunkCallback = Arc<dyn Fn(Stream, &[u8]) + Send + Sync>;
/// A callback that receives output lines.
pub(crate) type LineCallback = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// What a process reads on standard input.
pub(crate) enum Input {
    Bytes(Arc<[u8]>),
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

/// How far the kill of a timeout, [`RunningProcess::stop`] or a dropped
/// handle reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Containment {
    /// The child leads a new process group (`setpgid(0, 0)` through
    /// `posix_spawn`, so spawning stays fast); kills go to the whole group,
    /// which includes every descendant that did not leave it (`setsid`,
    /// `setpgid`). The default.
    ///
    /// A process group also leaves the terminal's foreground group: Ctrl-C in
    /// a terminal reaches the parent but not the child. Forward the signal
    /// yourself if the child should see it.
    #[default]
    ProcessGroup,
    /// The child stays in the parent's process group and kills reach the
    /// child only; its descendants survive a timeout.
    None,
}

/// Resource limits applied in the child before `exec` (`setrlimit`).
///
/// Any limit makes spawning take the fork + exec path instead of
/// `posix_spawn`; see [`Process::limit_cpu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Limits {
    pub(crate) cpu: Option<Duration>,
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) open_files: Option<u64>,
}

impl Limits {
    fn any(self) -> bool {
        self.cpu.is_some() || self.memory_bytes.is_some() || self.open_files.is_some()
    }
}

/// A process to run: program, arguments, environment, input, timeouts and
/// output handling, built with consuming setters (Laravel's `PendingProcess`).
///
/// Nothing runs until [`run`](Self::run) (wait for the result) or
/// [`start`](Self::start) (get a [`RunningProcess`] handle). There is no shell
/// unless you ask for one with [`Process::shell`], and no timeout unless you
/// set one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::Process;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
/// let output = Process::new("sort")
///     .input("pear\napple\n")
///     .timeout(Duration::from_secs(10))
///     .run()
///     .await?
///     .check()?;
/// assert_eq!(output.stdout_str(), "apple\npear\n");
/// # Ok(()) }
/// ```
#[must_use = "a Process does nothing until `run` or `start` is called"]
pub struct Process {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) env_clear: bool,
    pub(crate) input: Option<Input>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) quiet: bool,
    pub(crate) tty: bool,
    pub(crate) on_output: Option<ChunkCallback>,
    pub(crate) on_line: Option<LineCallback>,
    pub(crate) drain_grace: Duration,
    pub(crate) containment: Containment,
    pub(crate) limits: Limits,
    pub(crate) parent_death: Option<Signal>,
}

impl Process {
    /// A process running `program` directly, without a shell. A program
    /// without a `/` is looked up on `PATH`. An empty program, or a NUL byte
    /// in the program, an argument, the working directory or the environment,
    /// is refused when the process is run ([`ProcessError::Config`]).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            env_clear: false,
            input: None,
            timeout: None,
            idle_timeout: None,
            quiet: false,
            tty: false,
            on_output: None,
            on_line: None,
            drain_grace: DEFAULT_DRAIN_GRACE,
            containment: Containment::ProcessGroup,
            limits: Limits::default(),
            parent_death: None,
        }
    }

    /// A shell command line, run as `/bin/sh -c <script>`. The script is
    /// interpreted by the shell: never paste untrusted input into it; pass
    /// such values through [`env`](Self::env) and refer to them as `"$NAME"`.
    ///
    /// ```
    /// use conc_process::Process;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
    /// let output = Process::shell(r#"printf '%s' "$GREETING" | tr a-z A-Z"#)
    ///     .env("GREETING", "hi; rm -rf /")
    ///     .run()
    ///     .await?;
    /// assert_eq!(output.stdout_str(), "HI; RM -RF /");
    /// # Ok(()) }
    /// ```
    pub fn shell(script: impl AsRef<OsStr>) -> Self {
        Self::new("/bin/sh").arg("-c").arg(script)
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// The working directory of the child. Defaults to the parent's.
    ///
    /// A relative program path containing a `/` (`./bin/tool`) is resolved
    /// against this directory on Unix.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the child. The child inherits the
    /// parent's environment unless [`env_clear`](Self::env_clear) is called.
    /// A key that is empty or holds `=` is refused when the process is run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes an inherited environment variable from the child.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment, plus what
    /// [`env`](Self::env) sets (before or after this call).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.retain(|(_, value)| value.is_some());
        self
    }

    /// Bytes written to the child's standard input, which is then closed. If
    /// the child exits without reading them all, the rest is dropped quietly.
    /// Defaults to no input (standard input reads end-of-file at once).
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(Input::Bytes(input.into().into()));
        self
    }

    /// Streams a reader into the child's standard input, then closes it.
    pub fn input_reader(mut self, reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        self.input = Some(Input::Reader(Box::new(reader)));
        self
    }

    /// Kills the process group when the process has run this long, and fails
    /// the run with [`ProcessError::TimedOut`] carrying the output read so
    /// far. Armed at spawn: it fires whether or not anyone is waiting. Zero
    /// is refused ([`ProcessError::Config`]); a timeout too long for the
    /// clock to represent (such as `Duration::MAX`) means no timeout.
    /// Defaults to no timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Kills the process group when it has written nothing to standard
    /// output or error for this long ([`TimeoutKind::Idle`](crate::TimeoutKind::Idle)).
    /// Zero is refused; a timeout too long for the clock to represent means
    /// none. Defaults to no idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Does not keep the output. Without callbacks or an idle timeout, the
    /// child's output goes to `/dev/null` and no pipes are made at all.
    /// Defaults to capturing both streams.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Runs the child on the parent's terminal: it inherits standard input,
    /// output and error, so interactive programs (editors, pagers, prompts)
    /// work. Nothing is captured, and input, callbacks and the idle timeout
    /// do not apply. Defaults to off.
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// Calls `callback` with each chunk of output as it is read, tagged with
    /// its stream. Called on the task that drives the process: keep it short.
    /// A panic in it kills the process and fails the run.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use conc_process::{Process, Stream};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_process::ProcessError> {
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&seen);
    /// Process::shell("echo out; echo err >&2")
    ///     .on_output(move |stream, bytes| sink.lock().unwrap().push((stream, bytes.to_vec())))
    ///     .run()
    ///     .await?;
    /// assert!(seen.lock().unwrap().contains(&(Stream::Stderr, b"err\n".to_vec())));
    /// # Ok(()) }
    /// ```
    pub fn on_output(mut self, callback: impl Fn(Stream, &[u8]) + Send + Sync + 'static) -> Self {
        self.on_output = Some(Arc::new(callback));
        self
    }

    /// Calls `callback` with each complete line of output, without its line
    /// ending, tagged with its stream; a last line without a newline is
    /// delivered at end of output. Invalid UTF-8 is replaced with `U+FFFD`.
    pub fn on_line(mut self, callback: impl Fn(Stream, &str) + Send + Sync + 'static) -> Self {
        self.on_line = Some(Arc::new(callback));
        self
    }

    /// How long to keep reading output after the process exited. Output
    /// pipes normally close when the process exits; if a descendant still
    /// holds them, the run ends after this grace anyway and the result
    /// reports [`output_held_open`](ProcessOutput::output_held_open). Zero
    /// stops reading at the exit; a grace too long for the clock to represent
    /// waits for the pipes to close however long that takes.
    /// Defaults to [`DEFAULT_DRAIN_GRACE`] (200 ms).
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// How far kills reach. Defaults to [`Containment::ProcessGroup`].
    pub fn containment(mut self, containment: Containment) -> Self {
        self.containment = containment;
        self
    }

    /// Limits the child's CPU time (`RLIMIT_CPU`); past it the child gets
    /// `SIGXCPU`. The kernel counts whole seconds, so a limit under one
    /// second or with a fraction of a second is refused
    /// ([`ProcessError::Config`]) rather than rounded. Defaults to no limit.
    ///
    /// **Forces fork + exec.** Limits and [`parent_death_signal`](Self::parent_death_signal)
    /// need code to run in the child before `exec`, so spawning cannot use
    /// `posix_spawn`: forking copies the parent's page tables, and spawn time
    /// grows with the parent's resident memory (`process/spawn_parent_rss` in
    /// `docs/performance.md` measured 50 ms per spawn from a parent with
    /// 1 GiB resident, against 0.93 ms on the default path).
    pub fn limit_cpu(mut self, cpu: Duration) -> Self {
        self.limits.cpu = Some(cpu);
        self
    }

    /// Limits the child's address space in bytes (`RLIMIT_AS`); allocations
    /// past it fail. Zero is refused; `u64::MAX` is the kernel's "unlimited".
    /// Defaults to no limit. **Forces fork + exec** (see [`limit_cpu`](Self::limit_cpu)).
    pub fn limit_memory(mut self, bytes: u64) -> Self {
        self.limits.memory_bytes = Some(bytes);
        self
    }

    /// Limits the number of files the child may have open (`RLIMIT_NOFILE`).
    /// Zero is refused; a limit above what the system allows fails the spawn
    /// ([`ProcessError::Spawn`]). Defaults to no limit. **Forces fork + exec**
    /// (see [`limit_cpu`](Self::limit_cpu)).
    pub fn limit_open_files(mut self, files: u64) -> Self {
        self.limits.open_files = Some(files);
        self
    }

    /// Linux: the child gets `signal` when the parent dies
    /// (`PR_SET_PDEATHSIG`). The kernel ties this to the *thread* that
    /// spawned the child, so such children are spawned from one long-lived
    /// thread kept for the purpose; the child also checks, after arming it,
    /// that the parent did not already die. A number that is no signal is
    /// refused. **Forces fork + exec** (see [`limit_cpu`](Self::limit_cpu)).
    /// Ignored on other systems.
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.parent_death = Some(signal);
        self
    }

    /// The program as given.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments as given.
    ///
    /// ```
    /// use conc_process::Process;
    ///
    /// let process = Process::new("git").args(["log", "-1"]);
    /// assert_eq!(process.arguments(), ["log", "-1"]);
    /// ```
    pub fn arguments(&self) -> &[OsString] {
        &self.args
    }

    /// The command line as text, for logs and fakes: program and arguments
    /// joined with spaces (arguments are not quoted).
    pub fn command_line(&self) -> String {
        let mut line = self.program.to_string_lossy().into_owned();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }

    /// Runs the process to its end and returns its result. A non-zero exit
    /// is an `Ok` result (see [`ProcessOutput::check`]); timeouts and spawn
    /// failures are errors. Dropping the future kills the process group.
    pub async fn run(self) -> Result<ProcessOutput, ProcessError> {
        let spawned = self.spawn(StdioOverride::default()).await?;
        running::run_inline(spawned).await
    }

    /// Starts the process and returns a handle to it. Timeouts are armed now
    /// and fire even if the handle is never polled. Dropping the handle kills
    /// the process group (see [`RunningProcess::detach`] to let it run).
    ///
    /// Must be called within a tokio runtime (the process is driven by a task
    /// spawned on it).
    pub async fn start(self) -> Result<RunningProcess, ProcessError> {
        self.start_with(StdioOverride::default()).await
    }

    pub(crate) async fn start_with(
        self,
        overrides: StdioOverride,
    ) -> Result<RunningProcess, ProcessError> {
        Ok(running::launch(self.spawn(overrides).await?))
    }

    /// Validates the settings and spawns the child.
    async fn spawn(mut self, overrides: StdioOverride) -> Result<Spawned, ProcessError> {
        self.validate()?;
        let program = self.program.to_string_lossy().into_owned();
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        if self.env_clear {
            command.env_clear();
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let watch_output = !self.tty
            && (!self.quiet
                || self.on_output.is_some()
                || self.on_line.is_some()
                || self.idle_timeout.is_some());
        let (stdin, stdout, stderr) = if self.tty {
            (Stdio::inherit(), Stdio::inherit(), Stdio::inherit())
        } else {
            let piped_or_null = || if watch_output { Stdio::piped() } else { Stdio::null() };
            let stdin = if self.input.is_some() { Stdio::piped() } else { Stdio::null() };
            (stdin, piped_or_null(), piped_or_null())
        };
        command.stdin(overrides.stdin.unwrap_or(stdin));
        command.stdout(overrides.stdout.unwrap_or(stdout));
        command.stderr(stderr);
        if self.containment == Containment::ProcessGroup {
            command.process_group(0);
        }
        command.kill_on_drop(true);
        let needs_hook =
            self.limits.any() || (cfg!(target_os = "linux") && self.parent_death.is_some());
        if needs_hook {
            crate::sys::install_pre_exec(&mut command, self.limits, self.parent_death);
        }
        let child = if cfg!(target_os = "linux") && self.parent_death.is_some() {
            running::spawn_on_keeper_thread(command).await
        } else {
            command.spawn()
        };
        let child = child.map_err(|source| self.spawn_error(program.clone(), source))?;
        let spawned = Spawned {
            program,
            child,
            input: self.input.take(),
            timeout: self.timeout,
            idle_timeout: self.idle_timeout,
            capture: !self.quiet,
            on_output: self.on_output.take(),
            on_line: self.on_line.take(),
            drain_grace: self.drain_grace,
            group: self.containment == Containment::ProcessGroup,
        };
        Ok(spawned)
    }

    fn spawn_error(&self, program: String, source: std::io::Error) -> ProcessError {
        match source.kind() {
            std::io::ErrorKind::NotFound => {
                if let Some(cwd) = self.cwd.as_ref().filter(|cwd| !cwd.is_dir()) {
                    return ConfigError::new("current_dir", cwd, "must be an existing directory")
                        .into();
                }
                ProcessError::NotFound { program }
            }
            std::io::ErrorKind::PermissionDenied => ProcessError::PermissionDenied { program },
            _ => ProcessError::Spawn { program, source },
        }
    }

    /// Checks the settings, naming the first one found wrong.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.program.is_empty() {
            return Err(ConfigError::new("program", &self.program, "must not be empty"));
        }
        no_nul("program", &self.program)?;
        for arg in &self.args {
            no_nul("args", arg)?;
        }
        if let Some(cwd) = &self.cwd {
            no_nul("current_dir", cwd.as_os_str())?;
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.as_bytes().contains(&b'=') {
                return Err(ConfigError::new(
                    "env",
                    key,
                    "must name a variable: not empty, without `=`",
                ));
            }
            no_nul("env", key)?;
            if let Some(value) = value {
                no_nul("env", value)?;
            }
        }
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout)?;
        }
        if let Some(timeout) = self.idle_timeout {
            config::positive("idle_timeout", timeout)?;
        }
        if self.tty && self.idle_timeout.is_some() {
            return Err(ConfigError::new(
                "idle_timeout",
                self.idle_timeout,
                "must not be set on a tty process, whose output is not watched",
            ));
        }
        if self.tty && self.input.is_some() {
            return Err(ConfigError::new(
                "input",
                "Some(..)",
                "must not be set on a tty process, which reads the terminal",
            ));
        }
        if let Some(cpu) = self.limits.cpu {
            config::at_least("limit_cpu", cpu, Duration::from_secs(1))?;
            if cpu.subsec_nanos() != 0 {
                return Err(ConfigError::new(
                    "limit_cpu",
                    cpu,
                    "must be a whole number of seconds, as the kernel counts them",
                ));
            }
        }
        if let Some(bytes) = self.limits.memory_bytes {
            config::at_least("limit_memory", bytes, 1)?;
        }
        if let Some(files) = self.limits.open_files {
            config::at_least("limit_open_files", files, 1)?;
        }
        if let Some(signal) = self.parent_death {
            let max = crate::sys::max_signal();
            if !(1..=max).contains(&signal.as_raw()) {
                let reason = format!("must be a signal number from 1 to {max}");
                return Err(ConfigError::new("parent_death_signal", signal, reason));
            }
        }
        Ok(())
    }
}

/// `text` when it has no NUL byte, which no C string (and so no program,
/// argument, path or environment entry) can carry.
fn no_nul(field: &'static str, text: &OsStr) -> Result<(), ConfigError> {
    if text.as_bytes().contains(&0) {
        Err(ConfigError::new(field, text, "must not contain a NUL byte"))
    } else {
        Ok(())
    }
}

/// Stdio handed in by a pipeline in place of the builder's.
#[derive(Default)]
pub(crate) struct StdioOverride {
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &self.env)
            .field("env_clear", &self.env_clear)
            .field(
                "input",
                &self.input.as_ref().map(|input| match input {
                    Input::Bytes(bytes) => format!("{} bytes", bytes.len()),
                    Input::Reader(_) => "reader".to_owned(),
                }),
            )
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("quiet", &self.quiet)
            .field("tty", &self.tty)
            .field("on_output", &self.on_output.is_some())
            .field("on_line", &self.on_line.is_some())
            .field("drain_grace", &self.drain_grace)
            .field("containment", &self.containment)
            .field("limits", &self.limits)
            .field("parent_death", &self.parent_death)
            .finish()
    }
}
