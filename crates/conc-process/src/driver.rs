//! The process driver: portable tasks run in child processes that re-execute
//! the current binary.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conc_core::BoxFuture;
use conc_core::config::{self, ConfigError};
use conc_core::driver::{Driver, Task, TaskError, TaskOutput};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Process, ProcessError};

/// The first argument of a worker child: `<binary> --conc-process-worker
/// <handler> <result file>`. Arguments, unlike environment variables, are not
/// inherited by the processes a handler starts in turn.
pub const WORKER_FLAG: &str = "--conc-process-worker";

type Handler = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// The functions a binary offers to run in its worker children, by name.
///
/// # Examples
///
/// ```
/// use conc_process::driver::Handlers;
///
/// let handlers = Handlers::new()
///     .handler("square", |n: u64| Ok::<_, String>(n * n))
///     .handler("shout", |s: String| Ok::<_, String>(s.to_uppercase()));
/// assert_eq!(handlers.names().count(), 2);
/// ```
#[derive(Default)]
#[must_use = "handlers do nothing until passed to `init`"]
pub struct Handlers {
    handlers: HashMap<String, Handler>,
}

impl Handlers {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name`. Its input and output travel as JSON; an
    /// `Err` is reported to the parent as a failed task with its message.
    pub fn handler<I, O, E, F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        I: DeserializeOwned,
        O: Serialize,
        E: fmt::Display,
        F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
    {
        let handler: Handler = Box::new(move |input| {
            let input: I =
                serde_json::from_slice(input).map_err(|err| format!("bad input: {err}"))?;
            let output = f(input).map_err(|err| err.to_string())?;
            serde_json::to_vec(&output).map_err(|err| format!("output does not serialize: {err}"))
        });
        self.handlers.insert(name.into(), handler);
        self
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("Handlers").field("names", &names).finish()
    }
}

/// What a worker child reports, as JSON in its result file.
#[derive(serde::Serialize, serde::Deserialize)]
enum Report {
    Ok(Vec<u8>),
    Err(String),
    Panic(String),
}

/// Call first thing in `main`: if this process was started by a
/// [`ProcessDriver`] as a worker (its first argument is [`WORKER_FLAG`]), runs the requested handler on the input
/// from standard input, reports the result to the parent, and **exits**;
/// otherwise returns at once and `main` goes on.
///
/// ```no_run
/// use conc_process::driver::{self, Handlers};
///
/// fn main() {
///     driver::init(Handlers::new().handler("square", |n: u64| Ok::<_, String>(n * n)));
///     // ... the program proper, which may run tasks through ProcessDriver ...
/// }
/// ```
#[allow(
    clippy::needless_pass_by_value,
    reason = "`init(Handlers::new()...)` reads best at the top of main"
)]
pub fn init(handlers: Handlers) {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(WORKER_FLAG)) {
        return;
    }
    let code = match (args.next(), args.next()) {
        (Some(name), Some(result_path)) => run_worker(&handlers, &name, &result_path),
        _ => 2,
    };
    std::process::exit(code);
}

fn run_worker(handlers: &Handlers, name: &OsString, result_path: &OsString) -> i32 {
    let name = name.to_string_lossy();
    let mut input = Vec::new();
    let report = match std::io::stdin().read_to_end(&mut input) {
        Err(err) => Report::Err(format!("could not read input: {err}")),
        Ok(_) => match handlers.handlers.get(name.as_ref()) {
            None => Report::Err(format!("no handler named `{name}` in this binary")),
            Some(handler) => match catch_unwind(AssertUnwindSafe(|| handler(&input))) {
                Ok(Ok(output)) => Report::Ok(output),
                Ok(Err(message)) => Report::Err(message),
                Err(panic) => Report::Panic(conc_core::driver::panic_message(panic.as_ref())),
            },
        },
    };
    let code = match report {
        Report::Ok(_) => 0,
        Report::Err(_) => 1,
        Report::Panic(_) => 101,
    };
    let written = serde_json::to_vec(&report).ok().and_then(|bytes| {
        std::fs::File::create(result_path).and_then(|mut file| file.write_all(&bytes)).ok()
    });
    if written.is_none() { 3 } else { code }
}

/// A portable task running `handler` on `input`, serialized as JSON.
///
/// ```
/// let task = conc_process::driver::task("square", &7u64)?;
/// assert_eq!(task.as_portable().unwrap().handler(), "square");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn task<I: Serialize + ?Sized>(handler: &str, input: &I) -> Result<Task, serde_json::Error> {
    Ok(Task::portable(handler, serde_json::to_vec(input)?).with_label(handler.to_owned()))
}

/// Reads a portable task's output back as `O`.
///
/// # Errors
///
/// [`TaskError::OutputType`] if the output is not `O`'s JSON.
pub fn decode<O: DeserializeOwned>(output: TaskOutput) -> Result<O, TaskError> {
    let bytes = conc_core::driver::downcast_output::<Vec<u8>>(output)?;
    serde_json::from_slice(&bytes)
        .map_err(|_| TaskError::OutputType { expected: std::any::type_name::<O>() })
}

/// A [`Driver`] that runs portable tasks in child processes: each task
/// re-executes the current binary (or [`program`](ProcessDriverBuilder::program)),
/// whose `main` calls [`init`] first, with [`WORKER_FLAG`], the handler name
/// and a result file as arguments and the JSON input on standard input. A handler's error, a
/// panic, a crash or a timeout in the child is that task's error in the
/// parent; the parent never goes down with a child.
///
/// Local tasks (closures) cannot cross a process boundary and get
/// [`TaskError::Unsupported`].
///
/// # Examples
///
/// ```
/// use conc_core::driver::Driver;
/// use conc_process::driver::ProcessDriver;
///
/// let driver = ProcessDriver::builder().concurrency(4).build()?;
/// assert_eq!(driver.name(), "process");
/// # Ok::<(), conc_process::ProcessError>(())
/// ```
#[must_use = "a ProcessDriver does nothing until tasks are run on it"]
pub struct ProcessDriver {
    program: PathBuf,
    concurrency: NonZeroUsize,
    timeout: Option<Duration>,
}

/// Builds a [`ProcessDriver`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_process::driver::ProcessDriver;
///
/// let err = ProcessDriver::builder().timeout(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid `timeout` 0ns: must be longer than zero");
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProcessDriverBuilder {
    program: Option<PathBuf>,
    concurrency: usize,
    timeout: Option<Duration>,
}

impl ProcessDriver {
    /// A builder with the defaults.
    pub fn builder() -> ProcessDriverBuilder {
        ProcessDriverBuilder {
            program: None,
            concurrency: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            timeout: None,
        }
    }

    async fn run_portable(&self, task: Task) -> Result<TaskOutput, TaskError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let label = task.label().map(str::to_owned);
        let Ok(portable) = task.into_portable() else {
            return Err(TaskError::Unsupported {
                driver: "process".into(),
                reason: "a closure cannot run in another process; use a portable task (conc_process::driver::task)".into(),
            });
        };
        let (handler, input) = portable.into_parts();
        let result_path = std::env::temp_dir().join(format!(
            "conc-process-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut process = Process::new(&self.program)
            .arg(WORKER_FLAG)
            .arg(&handler)
            .arg(&result_path)
            .input(input);
        if let Some(timeout) = self.timeout {
            process = process.timeout(timeout);
        }
        let run = process.run().await;
        let report = std::fs::read(&result_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Report>(&bytes).ok());
        let _ = std::fs::remove_file(&result_path);
        let name = label.unwrap_or(handler);
        match (report, run) {
            (Some(Report::Ok(output)), Ok(_)) => Ok(Box::new(output)),
            (Some(Report::Err(message)), _) => {
                Err(TaskError::Failed(format!("task `{name}`: {message}").into()))
            }
            (Some(Report::Panic(message)), _) => Err(TaskError::Panicked { message }),
            (_, Err(err)) => Err(TaskError::Failed(Box::new(err))),
            (_, Ok(output)) => Err(TaskError::Failed(
                format!(
                    "task `{name}`: the worker process ended without a result ({}); stderr: {}",
                    output.status(),
                    output.stderr_str().trim()
                )
                .into(),
            )),
        }
    }
}

impl Driver for ProcessDriver {
    fn name(&self) -> &'static str {
        "process"
    }

    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, TaskError>>> {
        Box::pin(async move {
            futures::stream::iter(tasks)
                .map(|task| self.run_portable(task))
                .buffered(self.concurrency.get())
                .collect()
                .await
        })
    }
}

impl fmt::Debug for ProcessDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessDriver")
            .field("program", &self.program)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ProcessDriverBuilder {
    /// The binary to run as the worker; it must call [`init`] first thing.
    /// Defaults to the current executable (`std::env::current_exe`).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// At most this many worker processes at once; at least 1. Defaults to
    /// the number of CPUs.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Kills a worker (and its process group) that runs longer than this;
    /// its task fails. Zero is refused; a timeout too long for the clock to
    /// represent means none. Defaults to no timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the settings and builds the driver.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Config`] naming `program` (empty, or with a NUL
    /// byte), `concurrency` (zero) or `timeout` (zero); [`ProcessError::Spawn`] if no [`program`](Self::program) was
    /// set and the current executable cannot be found.
    pub fn build(self) -> Result<ProcessDriver, ProcessError> {
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| ConfigError::below("concurrency", 0, 1))?;
        if let Some(timeout) = self.timeout {
            config::positive("timeout", timeout)?;
        }
        let program = match self.program {
            Some(program) => {
                let text = program.as_os_str();
                if text.is_empty() || text.as_encoded_bytes().contains(&0) {
                    let reason = "must be a path: not empty, without a NUL byte";
                    return Err(ConfigError::new("program", &program, reason).into());
                }
                program
            }
            None => std::env::current_exe().map_err(|source| ProcessError::Spawn {
                program: "current executable".into(),
                source,
            })?,
        };
        Ok(ProcessDriver { program, concurrency, timeout: self.timeout })
    }
}
