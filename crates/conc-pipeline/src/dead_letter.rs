//! Dead letters: failed items kept with their error.

use std::sync::Arc;

use conc_core::recent::RecentLog;
use tokio::time::Instant;

use crate::error::ItemError;

/// An item a stage gave up on, with everything needed to look into it or
/// feed it back: the item as the stage received it, the stage, the last
/// error, the number of attempts and when the first and last failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The item, as the failing stage received it.
    pub item: T,
    /// The failing stage's name.
    pub stage: Arc<str>,
    /// The last attempt's error.
    pub error: ItemError,
    /// Attempts made, the first call included.
    pub attempts: u32,
    /// When the first attempt failed (tokio's clock, so paused in tests).
    pub first_failure: Instant,
    /// When the last attempt failed.
    pub last_failure: Instant,
}

/// Where a stage sends the items it gives up on.
///
/// Implemented by [`DeadLetterQueue`]; implement it to forward dead letters
/// elsewhere (a channel, a durable queue). `send` runs on the stage's task
/// and must not block.
pub trait DeadLetterSink<T>: Send + Sync + 'static {
    /// Takes one dead letter.
    fn send(&self, letter: DeadLetter<T>);
}

/// A bounded in-memory dead letter queue. When full, the oldest letter is
/// dropped and counted in [`dropped`](RecentLog::dropped), so memory stays bounded
/// whatever the failure rate. Clones share the queue. It is conc-core's
/// [`RecentLog`] of [`DeadLetter`]s: `take`, `len`, `dropped` and `capacity`
/// come from there.
///
/// # Examples
///
/// ```
/// use conc_pipeline::{DeadLetterQueue, Pipeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), conc_pipeline::BuildError> {
/// let dead = DeadLetterQueue::new(100);
/// let pipeline = Pipeline::builder()
///     .then(
///         conc_pipeline::Stage::new("parse", |s: String| async move { s.parse::<u32>() })
///             .dead_letter(dead.clone()),
///     )
///     .build()?;
/// let parsed = pipeline.process_batch(vec!["1".into(), "x".into()]).await;
/// assert!(parsed[0].is_output());
/// let letters = dead.take();
/// assert_eq!(letters[0].item, "x");
/// assert_eq!(&*letters[0].stage, "parse");
/// # Ok(()) }
/// ```
pub type DeadLetterQueue<T> = RecentLog<DeadLetter<T>>;

impl<T: Send + 'static> DeadLetterSink<T> for RecentLog<DeadLetter<T>> {
    fn send(&self, letter: DeadLetter<T>) {
        self.push(letter);
    }
}
