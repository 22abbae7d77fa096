//! The vocabulary of components that process a stream of items (pipeline
//! stages, fan-out workers): why an attempt failed, what to do with an item
//! that keeps failing, where it goes when given up, and the input handed back
//! when a run cannot start.
//!
//! Both `conc-pipeline` and `conc-fan` speak it, so a dead letter sink written
//! once serves both:
//!
//! ```
//! use conc_core::item::{DeadLetter, DeadLetterSink, ItemError, Origin};
//! use std::sync::Mutex;
//!
//! /// Keeps the text of every item given up on, wherever it failed.
//! #[derive(Debug, Default)]
//! struct Report(Mutex<Vec<String>>);
//!
//! impl<T: std::fmt::Debug + Send + 'static> DeadLetterSink<T> for Report {
//!     fn send(&self, letter: DeadLetter<T>) {
//!         let line = format!("{:?} at {} after {}: {}", letter.item, letter.origin, letter.attempts, letter.error);
//!         self.0.lock().unwrap().push(line);
//!     }
//! }
//!
//! let report = Report::default();
//! let now = std::time::Instant::now();
//! report.send(DeadLetter::new("x", ItemError::Panicked("boom".into()), Origin::stage("parse"), 3, now, now));
//! assert_eq!(report.0.lock().unwrap()[0], r#""x" at stage `parse` after 3: panicked: boom"#);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::recent::RecentLog;

/// Why one attempt at processing an item failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::item::ItemError;
///
/// assert_eq!(ItemError::TimedOut(Duration::from_secs(1)).to_string(), "timed out after 1s");
/// assert_eq!(ItemError::Failed("bad input".into()).to_string(), "bad input");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The processor returned an error.
    #[error("{0}")]
    Failed(#[source] BoxError),
    /// The processor panicked; the panic was caught and this is its message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The attempt ran longer than its timeout and was dropped.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

impl ItemError {
    /// [`ItemError::Panicked`] with the message of a caught panic's payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_core::item::ItemError;
    ///
    /// let payload = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
    /// assert_eq!(ItemError::from_panic(payload.as_ref()).to_string(), "panicked: boom");
    /// ```
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        Self::Panicked(crate::driver::panic_message(payload))
    }
}

/// What a component does with an item that failed for good (after any
/// retries) when no dead letter sink takes it.
///
/// # Examples
///
/// ```
/// use conc_core::item::ErrorPolicy;
///
/// assert_eq!(ErrorPolicy::default(), ErrorPolicy::Fail);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// End the run: the output yields the error, then ends.
    #[default]
    Fail,
    /// Drop the item, count it, log it at `warn`, and go on with the others.
    Skip,
}

/// Where an item failed: the part of the component that gave up on it.
///
/// # Examples
///
/// ```
/// use conc_core::item::Origin;
///
/// assert_eq!(Origin::stage("parse").to_string(), "stage `parse`");
/// assert_eq!(Origin::Worker(3).to_string(), "worker 3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A pipeline stage, by name.
    Stage(Arc<str>),
    /// A fan-out worker, by index.
    Worker(usize),
}

impl Origin {
    /// [`Origin::Stage`] named `name`.
    pub fn stage(name: impl Into<Arc<str>>) -> Self {
        Self::Stage(name.into())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stage(name) => write!(f, "stage `{name}`"),
            Self::Worker(index) => write!(f, "worker {index}"),
        }
    }
}

/// An item a component gave up on, with what is needed to look into it or
/// feed it back: the item as it was received, the last error, where and after
/// how many attempts it failed, and when the first and last attempts failed.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use conc_core::item::{DeadLetter, ItemError, Origin};
///
/// let now = Instant::now();
/// let letter = DeadLetter::new(7_u32, ItemError::Failed("odd".into()), Origin::Worker(0), 1, now, now);
/// assert_eq!(letter.item, 7);
/// assert_eq!(letter.origin, Origin::Worker(0));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The item, as the failing part received it.
    pub item: T,
    /// The last attempt's error.
    pub error: ItemError,
    /// Where it failed.
    pub origin: Origin,
    /// Attempts made, the first call included.
    pub attempts: u32,
    /// When the first attempt failed (tokio's clock converted, so paused in tests).
    pub first_failure: Instant,
    /// When the last attempt failed.
    pub last_failure: Instant,
}

impl<T> DeadLetter<T> {
    /// A dead letter for `item`, which failed at `origin` with `error` after
    /// `attempts` attempts, the first failing at `first_failure` and the last
    /// at `last_failure`.
    pub fn new(
        item: T,
        error: ItemError,
        origin: Origin,
        attempts: u32,
        first_failure: Instant,
        last_failure: Instant,
    ) -> Self {
        Self { item, error, origin, attempts, first_failure, last_failure }
    }
}

/// Where a component sends the items it gives up on.
///
/// Implemented by [`DeadLetterQueue`]; implement it to forward dead letters
/// elsewhere (a channel, a durable queue). `send` runs on the component's
/// task and must not block.
pub trait DeadLetterSink<T>: Send + Sync + 'static {
    /// Takes one dead letter.
    fn send(&self, letter: DeadLetter<T>);
}

/// A bounded in-memory dead letter queue: a [`RecentLog`] of
/// [`DeadLetter`]s. When full, the oldest letter is dropped and counted in
/// [`dropped`](RecentLog::dropped), so memory stays bounded whatever the
/// failure rate. Clones share the queue.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use conc_core::item::{DeadLetter, DeadLetterQueue, DeadLetterSink, ItemError, Origin};
///
/// let queue = DeadLetterQueue::new(1);
/// let now = Instant::now();
/// for item in ["a", "b"] {
///     queue.send(DeadLetter::new(item, ItemError::Panicked("x".into()), Origin::Worker(0), 1, now, now));
/// }
/// assert_eq!(queue.dropped(), 1);
/// assert_eq!(queue.take()[0].item, "b");
/// ```
pub type DeadLetterQueue<T> = RecentLog<DeadLetter<T>>;

impl<T: Send + 'static> DeadLetterSink<T> for RecentLog<DeadLetter<T>> {
    fn send(&self, letter: DeadLetter<T>) {
        self.push(letter);
    }
}

/// A run that could not start: why, and the input handed back untouched (no
/// item was taken from it).
///
/// # Examples
///
/// ```
/// use conc_core::item::StartError;
///
/// let err = StartError::new("no tokio runtime", vec![1, 2, 3]);
/// assert_eq!(err.to_string(), "not started: no tokio runtime");
/// assert_eq!(err.into_input(), [1, 2, 3]);
/// ```
#[non_exhaustive]
pub struct StartError<I, E> {
    /// Why it could not start.
    pub error: E,
    /// The input, as it was passed in.
    pub input: I,
}

impl<I, E> StartError<I, E> {
    /// The run could not start because of `error`; `input` goes back.
    pub fn new(error: E, input: I) -> Self {
        Self { error, input }
    }

    /// The input, as it was passed in.
    pub fn into_input(self) -> I {
        self.input
    }
}

impl<I, E: fmt::Debug> fmt::Debug for StartError<I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<I, E: fmt::Display> fmt::Display for StartError<I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not started: {}", self.error)
    }
}

impl<I, E: std::error::Error + 'static> std::error::Error for StartError<I, E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
