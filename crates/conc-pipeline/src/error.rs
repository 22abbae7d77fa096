//! Errors: what went wrong with one item, with a whole pipeline, and with a
//! pipeline's configuration.

use std::sync::Arc;
use std::time::Duration;

use conc_core::BoxError;

/// Why one attempt at processing an item failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The processor returned an error.
    #[error("{0}")]
    Failed(#[source] BoxError),
    /// The processor panicked; the panic was caught and this is its message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The attempt ran longer than the stage's timeout and was dropped.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

impl ItemError {
    /// Turns a caught panic payload into [`ItemError::Panicked`] with its message.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        Self::Panicked(message)
    }
}

/// An error that ends a pipeline run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A stage whose error policy is [`ErrorPolicy::Fail`](crate::ErrorPolicy::Fail)
    /// failed on an item; the run stopped there.
    #[error("stage `{stage}` failed after {attempts} attempt(s): {error}")]
    Stage {
        /// The stage's name.
        stage: Arc<str>,
        /// How many attempts were made, the first call included.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        error: ItemError,
    },
    /// A filter predicate panicked.
    #[error("filter after stage `{stage}` panicked: {message}")]
    FilterPanicked {
        /// The stage before the filter (`"source"` for a filter before the first stage).
        stage: Arc<str>,
        /// The panic message.
        message: String,
    },
    /// A spawned stage was started outside a tokio runtime.
    #[error("stage `{stage}` is spawned but there is no tokio runtime to spawn it on")]
    NoRuntime {
        /// The stage's name.
        stage: Arc<str>,
    },
    /// A spawned stage's task ended without handing over its items.
    #[error("the task of stage `{stage}` ended unexpectedly")]
    TaskLost {
        /// The stage's name.
        stage: Arc<str>,
    },
}

/// A pipeline that could not start, from
/// [`Pipeline::try_process_stream`](crate::Pipeline::try_process_stream): the
/// reason, and the input stream handed back untouched (no item was taken).
#[non_exhaustive]
pub struct StartError<S> {
    /// Why it could not start: [`PipelineError::NoRuntime`].
    pub error: PipelineError,
    /// The input stream, as it was passed in.
    pub input: S,
}

impl<S> StartError<S> {
    /// The input stream, as it was passed in.
    pub fn into_input(self) -> S {
        self.input
    }
}

impl<S> std::fmt::Debug for StartError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<S> std::fmt::Display for StartError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pipeline not started: {}", self.error)
    }
}

impl<S> std::error::Error for StartError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A pipeline configuration that [`PipelineBuilder::build`](crate::PipelineBuilder::build)
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A stage name was empty.
    #[error("stage name must not be empty")]
    EmptyName,
    /// Two stages share a name (metrics and errors are keyed by it).
    #[error("stage name `{stage}` is used twice")]
    DuplicateName {
        /// The repeated name.
        stage: String,
    },
    /// A stage's concurrency was zero.
    #[error("stage `{stage}`: concurrency must be at least 1, got {value}")]
    ZeroConcurrency {
        /// The stage's name.
        stage: String,
        /// The value given.
        value: usize,
    },
    /// A stage's hand-off batch size was zero.
    #[error("stage `{stage}`: hand_off_batch must be at least 1, got {value}")]
    ZeroHandOffBatch {
        /// The stage's name.
        stage: String,
        /// The value given.
        value: usize,
    },
    /// A stage's timeout was zero.
    #[error("stage `{stage}`: timeout must be greater than zero, got {value:?}")]
    ZeroTimeout {
        /// The stage's name.
        stage: String,
        /// The value given.
        value: Duration,
    },
}
