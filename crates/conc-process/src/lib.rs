//! Run processes from async Rust with timeouts that reach the whole process
//! tree, output capture and callbacks, pools with a concurrency limit, and
//! real OS pipes between processes.
//!
//! # Overview
//!
//! The API is the shape of Laravel's `Process` facade, in Rust:
//!
//! | Laravel | here |
//! |---|---|
//! | `Process::run($cmd)` | [`Process::new`]`(program).args(..).run().await` |
//! | `Process::run('a \| b')` (a shell string) | [`Process::shell`]`(script)`, never implicit |
//! | `->path()`, `->env()`, `->input()` | [`Process::current_dir`], [`Process::env`] / [`env_remove`](Process::env_remove) / [`env_clear`](Process::env_clear), [`Process::input`] / [`input_reader`](Process::input_reader) |
//! | `->timeout()`, `->idleTimeout()`, `->forever()` | [`Process::timeout`], [`Process::idle_timeout`]; no timeout unless set |
//! | `->quietly()`, `->tty()` | [`Process::quiet`], [`Process::tty`] |
//! | `run($cmd, fn ($type, $output) => …)` | [`Process::on_output`], [`Process::on_line`] |
//! | `$result->successful()`, `->output()`, `->exitCode()`, `->throw()` | [`ProcessOutput::successful`], [`stdout`](ProcessOutput::stdout), [`exit_code`](ProcessOutput::exit_code), [`check`](ProcessOutput::check) |
//! | `->start()`, `->id()`, `->running()`, `->latestOutput()` | [`Process::start`], [`RunningProcess::pid`], [`is_running`](RunningProcess::is_running), [`latest_output`](RunningProcess::latest_output) |
//! | `->signal()`, `->stop()`, `->wait()`, `->waitUntil()` | [`RunningProcess::signal`], [`stop`](RunningProcess::stop), [`wait`](RunningProcess::wait), [`wait_until`](RunningProcess::wait_until) |
//! | `Process::pool(…)` | [`ProcessPool`], with a concurrency limit, fail-fast and progress events |
//! | `Process::pipe(…)` | [`Pipe`]: real OS pipes, every stage running at once |
//! | `Process::fake([...])`, `preventStrayProcesses()`, `assertRan()` | [`FakeRunner`] behind the [`ProcessRunner`] trait |
//! | — (supervisord, systemd `Restart=`) | [`Supervisor`]: restart policies, backoff with jitter, intensity limit, events |
//! | `Concurrency::driver('process')` | [`driver::ProcessDriver`]: portable tasks in re-executed child processes |
//!
//! Below the API, the things the anchors leave to the caller:
//!
//! - **Containment.** Each child leads its own process group, set through
//!   `posix_spawn` so spawning stays on the fast path. A timeout,
//!   [`RunningProcess::stop`] and dropping a handle kill the whole group, so
//!   grandchildren do not outlive the run ([`Containment`]).
//! - **No hangs, no zombies.** Both pipes are read concurrently (no deadlock
//!   on full pipes), input is written concurrently (a child that exits early
//!   is not an error), and a run ends when the child exits plus a bounded
//!   [`drain_grace`](Process::drain_grace) even if a grandchild keeps the
//!   pipes open ([`ProcessOutput::output_held_open`] reports it). Every child
//!   is reaped, also when its handle is dropped.
//! - **Timeouts that fire unobserved.** Each run is driven by a task of its
//!   own, so a timeout kills a started process whether or not anyone polls it,
//!   and [`ProcessError::TimedOut`] carries the output read until then.
//! - **Opt-in costs.** Resource limits and the parent-death signal need code
//!   in the child before `exec`, which forces fork + exec; only the processes
//!   that ask for them pay ([`Process::limit_cpu`]).
//!
//! - **One house.** Builders refuse bad settings with
//!   [`conc_core::config::ConfigError`] (inside [`ProcessError::Config`]
//!   where a run could also fail for other reasons); [`ProcessPool`] and
//!   [`Supervisor`] report through `MetricsSource` and stop with the rest of
//!   an application through `Lifecycle` and a `Registry`.
//!
//! Unix only (Linux, macOS, the BSDs).
//!
//! # Feature flags
//!
//! None yet; everything above is always available.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use conc_process::{Process, ProcessError, TimeoutKind};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ProcessError> {
//! let output = Process::new("echo").args(["hello", "world"]).run().await?;
//! assert!(output.successful());
//! assert_eq!(output.stdout_str(), "hello world\n");
//!
//! // A timeout kills the process group and hands back what was read so far.
//! let err = Process::shell("echo started; sleep 30")
//!     .timeout(Duration::from_millis(300))
//!     .run()
//!     .await
//!     .unwrap_err();
//! let ProcessError::TimedOut { kind: TimeoutKind::Total, output, .. } = err else { panic!("{err}") };
//! assert_eq!(output.stdout_str(), "started\n");
//! # Ok(()) }
//! ```
//!
//! # What it replaces
//!
//! | need | usual choice | here |
//! |---|---|---|
//! | run and capture | `tokio::process::Command::output` | [`Process::run`]: plus timeouts, callbacks, typed errors |
//! | timeout that kills the tree | `timeout(child.wait())` + manual `killpg` | [`Process::timeout`] |
//! | graceful stop | hand-written `kill(TERM)`, sleep, `kill(KILL)` | [`RunningProcess::stop`] |
//! | bounded parallel runs | `xargs -P`, `futures::stream::buffer_unordered` | [`ProcessPool`] |
//! | `a \| b \| c` | `sh -c`, or `duct` | [`Pipe`] |
//! | keep a process up | supervisord, systemd units, hand-written loops | [`Supervisor`] |
//! | fake processes in tests | mocking `Command` by hand | [`FakeRunner`] |
//! | Laravel's `Process` | — | this crate |
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(unix))]
compile_error!("conc-process supports Unix systems only");

mod command;
pub mod driver;
mod error;
mod fake;
mod output;
mod pipe;
mod pool;
mod running;
mod signal;
mod supervisor;
mod sys;
mod time;

pub(crate) use command::Limits;
pub use command::{Containment, DEFAULT_DRAIN_GRACE, Process};
pub use error::{ProcessError, TimeoutKind};
pub use fake::{FakeResult, FakeRun, FakeRunner, ProcessRunner, SystemRunner};
pub use output::{ProcessOutput, ResourceUsage, Stream};
pub use pipe::{Pipe, PipeOutput};
pub use pool::{
    ProcessPool, ProcessPoolBuilder, ProcessPoolEvent, ProcessPoolMetrics, ProcessPoolResults,
};
pub use running::RunningProcess;
pub use signal::{ExitStatus, Signal};
pub use supervisor::{
    ChildMetrics, ChildState, GiveUpReason, RestartPolicy, Supervisor, SupervisorBuilder,
    SupervisorEvent, SupervisorMetrics,
};

/// The guide's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/process.md")]
struct ProcessGuide;
