//! Errors of fan-out runs and of fan-out configuration.

use std::time::Duration;

use conc_core::BoxError;

/// Why an item failed in a [`FanOut`](crate::FanOut).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanError {
    /// The processor returned an error.
    #[error("worker {worker} failed: {error}")]
    Failed {
        /// The worker's index.
        worker: usize,
        /// The processor's error.
        #[source]
        error: BoxError,
    },
    /// The processor panicked; the panic was caught.
    #[error("worker {worker} panicked: {message}")]
    Panicked {
        /// The worker's index.
        worker: usize,
        /// The panic message.
        message: String,
    },
    /// The item took longer than the timeout and was dropped.
    #[error("worker {worker} timed out after {after:?}")]
    TimedOut {
        /// The worker's index.
        worker: usize,
        /// The timeout.
        after: Duration,
    },
    /// The fan-out was started outside a tokio runtime.
    #[error("a fan-out needs a tokio runtime to spawn its workers on")]
    NoRuntime,
    /// A worker task ended without reporting its items.
    #[error("a fan-out worker task ended unexpectedly")]
    WorkerLost,
    /// Every attempt the retry schedule allowed failed; `last` is the last
    /// attempt's error.
    #[error("gave up after {attempts} attempts: {last}")]
    Retried {
        /// Attempts made, the first call included.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<FanError>,
    },
    /// The item failed and went to the dead letter sink, which holds the
    /// item and the error. The output stream skips these whatever the policy;
    /// [`FanOut::process_batch`](crate::FanOut::process_batch) returns them.
    #[error("worker {worker} sent the item to the dead letter sink after {attempts} attempt(s)")]
    DeadLettered {
        /// The worker's index.
        worker: usize,
        /// Attempts made, the first call included.
        attempts: u32,
    },
    /// The [`Recovery`](crate::Recovery) set on the builder is for another
    /// item type than the one the fan-out was given (possible only with a
    /// processor type that takes several input types).
    #[error("the recovery is for items of type `{recovery}`, but the fan-out got `{input}`")]
    RecoveryType {
        /// The recovery's item type.
        recovery: &'static str,
        /// The fan-out's input type.
        input: &'static str,
    },
}

impl FanError {
    /// Attempts made at the item: the count in [`Retried`](Self::Retried) and
    /// [`DeadLettered`](Self::DeadLettered), 1 for an item that failed without retries.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Retried { attempts, .. } | Self::DeadLettered { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    pub(crate) fn panicked(worker: usize, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        Self::Panicked { worker, message }
    }
}

/// A fan-out configuration that [`FanOutBuilder::build`](crate::FanOutBuilder::build) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers` was zero.
    #[error("workers must be at least 1, got {0}")]
    ZeroWorkers(usize),
    /// `batch` was zero.
    #[error("batch must be at least 1, got {0}")]
    ZeroBatch(usize),
    /// `queue` was zero.
    #[error("queue must be at least 1 batch, got {0}")]
    ZeroQueue(usize),
    /// `timeout` was zero.
    #[error("timeout must be greater than zero, got {0:?}")]
    ZeroTimeout(Duration),
}

/// A fan-out that could not start, from
/// [`FanOut::try_process_stream`](crate::FanOut::try_process_stream): the
/// reason, and the input stream handed back untouched (no item was taken).
#[non_exhaustive]
pub struct StartError<S> {
    /// Why it could not start: [`FanError::NoRuntime`] or
    /// [`FanError::RecoveryType`].
    pub error: FanError,
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
        write!(f, "fan-out not started: {}", self.error)
    }
}

impl<S> std::error::Error for StartError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
