//! Why a task did not produce an output.

use std::borrow::Cow;

use crate::BoxError;

/// Why one task of a batch did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic was caught and the driver kept going.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The driver cannot run this kind of task.
    #[error("driver `{driver}` cannot run this task: {reason}")]
    Unsupported {
        /// The driver's name.
        driver: Cow<'static, str>,
        /// Why not.
        reason: Cow<'static, str>,
    },
    /// The task ran but reported a failure (a portable task's handler, a child process).
    #[error("task failed")]
    Failed(#[source] BoxError),
    /// The task was cancelled before it finished.
    #[error("task was cancelled before it finished")]
    Cancelled,
    /// The output was read back as a type it is not.
    #[error("task output is not a `{expected}`")]
    OutputType {
        /// The type asked for.
        expected: &'static str,
    },
}
