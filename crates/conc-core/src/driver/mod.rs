//! The [`Driver`] trait behind the `Concurrency::run` facade.
//!
//! `Concurrency::run(tasks)` (in `conc-pool`) hands a batch of [`Task`]s to a
//! driver and gets back one result per task, **in input order**, whatever
//! order they finished in. Drivers decide *where* tasks run: the `sync` driver
//! runs them one after another on the caller, the `thread` driver on a pool,
//! the `process` driver (in `conc-process`) in child processes. A panicking
//! task becomes [`TaskError::Panicked`] in its slot; the other tasks still run.
//!
//! # Examples
//!
//! A driver that runs each task on its own OS thread:
//!
//! ```
//! use std::sync::mpsc;
//! use conc_core::driver::{Driver, Task, TaskError, TaskOutput, downcast_output};
//! use conc_core::BoxFuture;
//!
//! #[derive(Debug)]
//! struct ThreadPerTask;
//!
//! impl Driver for ThreadPerTask {
//!     fn name(&self) -> &str { "thread-per-task" }
//!     fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, TaskError>>> {
//!         Box::pin(async move {
//!             let receivers: Vec<_> = tasks.into_iter().map(|task| {
//!                 let (tx, rx) = mpsc::channel();
//!                 std::thread::spawn(move || tx.send(task.run_local()));
//!                 rx
//!             }).collect();
//!             receivers.into_iter()
//!                 .map(|rx| rx.recv().unwrap_or(Err(TaskError::Cancelled)))
//!                 .collect()
//!         })
//!     }
//! }
//!
//! # let waker = std::task::Waker::noop();
//! # let mut cx = std::task::Context::from_waker(&waker);
//! let tasks = vec![Task::new(|| 1), Task::new(|| -> i32 { panic!("bad input") }), Task::new(|| 3)];
//! let mut run = ThreadPerTask.run(tasks);
//! # let results = loop { if let std::task::Poll::Ready(r) = run.as_mut().poll(&mut cx) { break r; } };
//! let mut results = results.into_iter();
//! assert_eq!(downcast_output::<i32>(results.next().unwrap()?)?, 1);
//! assert!(matches!(results.next().unwrap(), Err(TaskError::Panicked { .. })));
//! assert_eq!(downcast_output::<i32>(results.next().unwrap()?)?, 3);
//! # Ok::<(), TaskError>(())
//! ```

mod error;
mod task;

use std::fmt;

pub use error::TaskError;
pub use task::{PortableTask, Task, TaskOutput, downcast_output, panic_message};

use crate::BoxFuture;

/// Runs a batch of tasks somewhere and returns their results in input order.
///
/// The contract every driver keeps (each driver's own tests check it):
///
/// - the result vector has exactly one entry per task, in input order;
/// - a task that panics yields [`TaskError::Panicked`] and does not stop the
///   others;
/// - a task the driver cannot run yields [`TaskError::Unsupported`]; no task
///   is silently dropped;
/// - dropping the returned future cancels tasks not yet started where the
///   driver can (a started OS thread runs to completion).
///
/// Drivers are registered by name in the `Concurrency` manager, so the trait
/// is object-safe.
pub trait Driver: Send + Sync + fmt::Debug {
    /// The name the driver is registered under (`"sync"`, `"thread"`, `"process"`).
    fn name(&self) -> &str;

    /// Runs `tasks` and resolves to one result per task, in input order.
    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, TaskError>>>;
}
