//! The error that ends a pipeline run. Why one attempt failed is conc-core's
//! [`ItemError`]; a refused setting is conc-core's
//! [`ConfigError`](conc_core::config::ConfigError).

use std::sync::Arc;

use conc_core::item::ItemError;

/// An error that ends a pipeline run.
///
/// # Examples
///
/// ```
/// use conc_pipeline::{ItemError, Pipeline, PipelineError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let parse = Pipeline::builder()
///     .stage("parse", 1, 0, |s: &'static str| async move { s.parse::<u8>() })
///     .build()?;
/// let error = parse.process("x").await.unwrap_err();
/// assert!(matches!(&error, PipelineError::Stage { attempts: 1, error: ItemError::Failed(_), .. }));
/// assert_eq!(error.to_string(), "stage `parse` failed after 1 attempt(s): invalid digit found in string");
/// # Ok(()) }
/// ```
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
