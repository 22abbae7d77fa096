//! Dead letters: failed items kept with their error.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

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
/// dropped and counted in [`dropped`](Self::dropped), so memory stays bounded
/// whatever the failure rate. Clones share the queue.
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
pub struct DeadLetterQueue<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    capacity: usize,
    state: Mutex<QueueState<T>>,
}

struct QueueState<T> {
    letters: VecDeque<DeadLetter<T>>,
    dropped: u64,
}

impl<T> DeadLetterQueue<T> {
    /// A queue keeping at most `capacity` letters (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            shared: Arc::new(Shared {
                capacity,
                state: Mutex::new(QueueState { letters: VecDeque::new(), dropped: 0 }),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<T>> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes and returns every letter, oldest first.
    pub fn take(&self) -> Vec<DeadLetter<T>> {
        self.lock().letters.drain(..).collect()
    }

    /// How many letters it holds.
    pub fn len(&self) -> usize {
        self.lock().letters.len()
    }

    /// Whether it holds no letter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many letters were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The most letters it keeps.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl<T> Clone for DeadLetterQueue<T> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T> fmt::Debug for DeadLetterQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("DeadLetterQueue")
            .field("capacity", &self.shared.capacity)
            .field("len", &state.letters.len())
            .field("dropped", &state.dropped)
            .finish()
    }
}

impl<T: Send + 'static> DeadLetterSink<T> for DeadLetterQueue<T> {
    fn send(&self, letter: DeadLetter<T>) {
        let mut state = self.lock();
        if state.letters.len() == self.shared.capacity {
            state.letters.pop_front();
            state.dropped += 1;
        }
        state.letters.push_back(letter);
    }
}
