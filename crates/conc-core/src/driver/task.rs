//! [`Task`]: one unit of work handed to a driver.

use std::any::{Any, type_name};
use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::TaskError;

/// What a task produced, type-erased so one batch can hold tasks of any output
/// type. Read it back with [`downcast_output`](super::downcast_output).
pub type TaskOutput = Box<dyn Any + Send>;

type LocalBody = Box<dyn FnOnce() -> TaskOutput + Send>;

/// One unit of work for a [`Driver`](super::Driver).
///
/// A task is either *local*, a closure that runs in this process (the thread
/// and sync drivers), or *portable*, a named handler plus serialized input
/// that another process can run (the process driver, where a closure cannot
/// travel). A driver that cannot run a task's kind reports
/// [`TaskError::Unsupported`] for it rather than dropping it.
///
/// # Examples
///
/// ```
/// use conc_core::driver::{Task, downcast_output};
///
/// let task = Task::new(|| 6 * 7).with_label("answer");
/// assert_eq!(task.label(), Some("answer"));
/// let output = task.run_local()?;
/// assert_eq!(downcast_output::<i32>(output)?, 42);
/// # Ok::<(), conc_core::driver::TaskError>(())
/// ```
pub struct Task {
    label: Option<Cow<'static, str>>,
    body: Body,
}

enum Body {
    Local(LocalBody),
    Portable(PortableTask),
}

/// The portable form of a task: which handler to run and its serialized input.
///
/// # Examples
///
/// ```
/// use conc_core::driver::Task;
///
/// let task = Task::portable("thumbnail", b"{\"id\":7}".to_vec());
/// let portable = task.as_portable().unwrap();
/// assert_eq!(portable.handler(), "thumbnail");
/// assert_eq!(portable.input(), b"{\"id\":7}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortableTask {
    handler: String,
    input: Vec<u8>,
}

impl PortableTask {
    /// The name of the handler the receiving process runs.
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The serialized input for the handler.
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// The handler name and input, by value.
    pub fn into_parts(self) -> (String, Vec<u8>) {
        (self.handler, self.input)
    }
}

impl Task {
    /// A local task running `f`; its output is `f`'s return value.
    pub fn new<F, T>(f: F) -> Self
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let body: LocalBody = Box::new(move || Box::new(f()) as TaskOutput);
        Self { label: None, body: Body::Local(body) }
    }

    /// A portable task: run the handler named `handler` on `input`. Its output,
    /// when a driver runs it, is the handler's serialized output as `Vec<u8>`.
    pub fn portable(handler: impl Into<String>, input: Vec<u8>) -> Self {
        Self { label: None, body: Body::Portable(PortableTask { handler: handler.into(), input }) }
    }

    /// Names the task in events, errors and logs.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The task's label, if it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Whether the task is portable.
    pub fn is_portable(&self) -> bool {
        matches!(self.body, Body::Portable(_))
    }

    /// The portable form, if the task is portable.
    pub fn as_portable(&self) -> Option<&PortableTask> {
        match &self.body {
            Body::Portable(portable) => Some(portable),
            Body::Local(_) => None,
        }
    }

    /// Takes the portable form out of a portable task, or hands a local task
    /// back unchanged.
    ///
    /// # Errors
    ///
    /// The task itself, when it is local.
    pub fn into_portable(self) -> Result<PortableTask, Task> {
        match self.body {
            Body::Portable(portable) => Ok(portable),
            Body::Local(_) => Err(self),
        }
    }

    /// Runs a local task on the current thread, catching a panic.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] with the panic message when the closure panics;
    /// [`TaskError::Unsupported`] when the task is portable (it needs a driver
    /// that knows its handler).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::driver::{Task, TaskError};
    ///
    /// let err = Task::new(|| -> u8 { panic!("disk full") }).run_local().unwrap_err();
    /// assert!(matches!(err, TaskError::Panicked { ref message } if message == "disk full"));
    /// ```
    pub fn run_local(self) -> Result<TaskOutput, TaskError> {
        match self.body {
            Body::Local(body) => catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
                TaskError::Panicked { message: panic_message(payload.as_ref()) }
            }),
            Body::Portable(portable) => Err(TaskError::Unsupported {
                driver: Cow::Borrowed("local"),
                reason: Cow::Owned(format!(
                    "portable task for handler `{}` needs a driver that runs handlers",
                    portable.handler
                )),
            }),
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Task");
        out.field("label", &self.label);
        match &self.body {
            Body::Local(_) => out.field("body", &format_args!("Local(..)")),
            Body::Portable(portable) => out.field("body", portable),
        };
        out.finish()
    }
}

/// The message of a caught panic: the `&str` or `String` it was raised
/// with, or a placeholder for other payload types.
///
/// # Examples
///
/// ```
/// use conc_core::driver::panic_message;
///
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
/// assert_eq!(panic_message(payload.as_ref()), "boom 7");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Reads a task's output back as the type it was created with.
///
/// # Errors
///
/// [`TaskError::OutputType`] naming the expected type when the output is of
/// another type.
///
/// # Examples
///
/// ```
/// use conc_core::driver::{Task, TaskError, downcast_output};
///
/// let output = Task::new(|| "text").run_local()?;
/// let err = downcast_output::<u64>(output).unwrap_err();
/// assert!(matches!(err, TaskError::OutputType { expected: "u64" }));
/// # Ok::<(), TaskError>(())
/// ```
pub fn downcast_output<T: 'static>(output: TaskOutput) -> Result<T, TaskError> {
    output
        .downcast::<T>()
        .map(|boxed| *boxed)
        .map_err(|_| TaskError::OutputType { expected: type_name::<T>() })
}
