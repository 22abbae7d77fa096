//! What travels between stages: an item, or the record of why an input
//! produced no item. Every input keeps its index to the end, so ordered
//! stages keep filtered holes in place without stalling and
//! [`Pipeline::process_batch`](crate::Pipeline::process_batch) reports one
//! outcome per input.

use std::sync::Arc;

use conc_core::item::ItemError;

use crate::error::PipelineError;

/// One input's progress through the stages.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    /// The input's position in the source, from 0.
    pub(crate) index: u64,
    pub(crate) state: State<T>,
}

#[derive(Debug)]
pub(crate) enum State<T> {
    Item(T),
    Gone(Gone),
}

/// Why an input produced no item. The rare, large cases are boxed so a slot
/// stays small on the hot path.
#[derive(Debug)]
pub(crate) enum Gone {
    Filtered(Arc<str>),
    Skipped(Box<(Arc<str>, u32, ItemError)>),
    DeadLettered(Arc<str>),
    Failed(Box<PipelineError>),
}

impl<T> Slot<T> {
    pub(crate) fn gone(index: u64, gone: Gone) -> Self {
        Self { index, state: State::Gone(gone) }
    }
}

/// What became of one input of [`Pipeline::process_batch`](crate::Pipeline::process_batch).
///
/// # Examples
///
/// ```
/// use conc_pipeline::{Outcome, Pipeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_core::config::ConfigError> {
/// let pipeline = Pipeline::builder()
///     .map("double", 2, 4, |n: u32| async move { n * 2 })
///     .filter(|n| *n != 4)
///     .build()?;
/// let outcomes = pipeline.process_batch(vec![1, 2, 3]).await;
/// assert!(matches!(outcomes[0], Outcome::Output(2)));
/// assert!(matches!(outcomes[1], Outcome::Filtered { .. }));
/// assert!(matches!(outcomes[2], Outcome::Output(6)));
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[must_use]
pub enum Outcome<T> {
    /// The input came out of the last stage as this item.
    Output(T),
    /// A filter dropped it.
    Filtered {
        /// The stage after which the filter ran (`"source"` before the first stage).
        after: Arc<str>,
    },
    /// A stage with [`ErrorPolicy::Skip`](crate::ErrorPolicy::Skip) failed on it.
    Skipped {
        /// The stage's name.
        stage: Arc<str>,
        /// Attempts made, the first call included.
        attempts: u32,
        /// The last attempt's error.
        error: ItemError,
    },
    /// A stage failed on it and handed it to its dead letter sink.
    DeadLettered {
        /// The stage's name.
        stage: Arc<str>,
    },
    /// It failed a stage whose policy is [`ErrorPolicy::Fail`](crate::ErrorPolicy::Fail),
    /// which ended the run.
    Failed(PipelineError),
    /// The run ended (another input failed it) before this input finished.
    Cancelled,
}

impl<T> Outcome<T> {
    /// The output item, if the input made it through.
    pub fn output(self) -> Option<T> {
        match self {
            Self::Output(item) => Some(item),
            _ => None,
        }
    }

    /// Whether the input made it through every stage.
    pub fn is_output(&self) -> bool {
        matches!(self, Self::Output(_))
    }
}

impl<T> From<State<T>> for Outcome<T> {
    fn from(state: State<T>) -> Self {
        match state {
            State::Item(item) => Self::Output(item),
            State::Gone(Gone::Filtered(after)) => Self::Filtered { after },
            State::Gone(Gone::Skipped(skipped)) => {
                let (failed_at, attempts, error) = *skipped;
                Self::Skipped { stage: failed_at, attempts, error }
            }
            State::Gone(Gone::DeadLettered(failed_at)) => Self::DeadLettered { stage: failed_at },
            State::Gone(Gone::Failed(error)) => Self::Failed(*error),
        }
    }
}
