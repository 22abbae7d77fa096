//! Errors of fan-out runs.

use conc_core::item::ItemError;

/// Why an item, or a whole run, failed in a [`FanOut`](crate::FanOut).
///
/// An item's own failure is [`Worker`](Self::Worker): the worker that gave
/// up, the attempts made and the last attempt's [`ItemError`] (the
/// processor's error, a caught panic with its message, or a timeout), the
/// same error a pipeline stage reports. The other variants are the fan-out's
/// own.
///
/// # Examples
///
/// ```
/// use conc_fan::{FanError, FanOut, ItemError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let parse = FanOut::builder().workers(1).build(|s: &'static str| async move { s.parse::<u8>() })?;
/// let results = parse.process_batch(vec!["7", "x"]).await;
/// let Err(FanError::Worker { worker: 0, attempts: 1, error: ItemError::Failed(error) }) = &results[1]
/// else {
///     panic!("{results:?}")
/// };
/// assert_eq!(error.to_string(), "invalid digit found in string");
/// assert_eq!(
///     results[1].as_ref().unwrap_err().to_string(),
///     "worker 0 failed after 1 attempt(s): invalid digit found in string"
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanError {
    /// An item failed on a worker, after every attempt its recovery allowed.
    #[error("worker {worker} failed after {attempts} attempt(s): {error}")]
    Worker {
        /// The worker's index.
        worker: usize,
        /// Attempts made, the first call included.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        error: ItemError,
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
    /// The source stream or the [`Balance::Custom`](crate::Balance::Custom)
    /// function panicked; the fan-out took no item after it.
    #[error("the fan-out's dispatcher panicked: {message}")]
    DispatchPanicked {
        /// The panic message.
        message: String,
    },
    /// The fan-out was started outside a tokio runtime.
    #[error("a fan-out needs a tokio runtime to spawn its workers on")]
    NoRuntime,
    /// A worker task ended without reporting its items.
    #[error("a fan-out worker task ended unexpectedly")]
    WorkerLost,
}

impl FanError {
    /// Attempts made at the item: the count in [`Worker`](Self::Worker) and
    /// [`DeadLettered`](Self::DeadLettered); 0 for the errors that are not
    /// about one item.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::FanError;
    ///
    /// assert_eq!(FanError::DeadLettered { worker: 2, attempts: 4 }.attempts(), 4);
    /// assert_eq!(FanError::NoRuntime.attempts(), 0);
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Worker { attempts, .. } | Self::DeadLettered { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// The last attempt's error, for [`Worker`](Self::Worker).
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_fan::{FanError, ItemError};
    ///
    /// let error = FanError::Worker { worker: 0, attempts: 1, error: ItemError::Panicked("boom".into()) };
    /// assert!(matches!(error.item_error(), Some(ItemError::Panicked(message)) if message == "boom"));
    /// assert!(FanError::WorkerLost.item_error().is_none());
    /// ```
    pub fn item_error(&self) -> Option<&ItemError> {
        match self {
            Self::Worker { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the error is about the run rather than one item: the
    /// [`ErrorPolicy`](crate::ErrorPolicy) cannot skip it.
    pub(crate) fn ends_the_run(&self) -> bool {
        matches!(self, Self::DispatchPanicked { .. } | Self::NoRuntime | Self::WorkerLost)
    }
}
